"""P23 完整的模型训练套路 — .item(), argmax and accuracy: the small pieces of lesson 23

Before and while writing the training script (p23_train.py), the course tries three things
on tiny tensors; this is that scratch file. .item() turns a one-element tensor into a Python
number (what the training loop prints as the loss). argmax(1) turns the network's outputs,
one row of class scores per image, into the predicted class of each image. Comparing the
predictions with the targets and summing the Trues counts the right answers: divided by the
number of images, that is the accuracy p23_train.py prints after every epoch.

What to look at (each value after the expression that gave it):
  - print(a): tensor(5), and print(a.item()): 5 (a number, no "tensor");
  - outputs.argmax(1): tensor([1, 1]) for outputs [[0.1, 0.2], [0.3, 0.4]] (从横向看: the
    column of each row's largest score), and outputs.argmax(0): tensor([0, 1]) for
    [[0.1, 0.2], [0.05, 0.4]] (从纵向看: the row of each column's largest), where
    argmax(1) is still tensor([1, 1]);
  - preds == targets: tensor([False,  True]) for targets [0, 1], and its sum, tensor(1):
    one of the two images right, an accuracy of 0.5.
It runs on the CPU, as in the course: two images, two classes.

Example:
  python scripts/p23_accuracy.py
"""
from __future__ import annotations

import torch

from common import cli


def get_args_parser():
    return cli.parser(__doc__)


@cli.entrypoint
def main(argv=None) -> int:
    get_args_parser().parse_args(argv)

    # 1. 关于.item() / .item(): a tensor of one element as a plain Python number
    a = torch.tensor(5)
    # (!r: an f-string's plain {a} would format a 0-dim tensor as its number, like .item())
    print(f"print(a): {a!r}")
    print(f"print(a.item()): {a.item()!r}")

    # 2. argmax: two images (rows), two classes (columns); each row holds one image's scores
    outputs = torch.tensor([[0.1, 0.2],
                            [0.3, 0.4]])
    print(f"outputs:\n{outputs!r}")
    print(f"outputs.argmax(1): {outputs.argmax(1)!r}")     # 从横向看 / along each row
    # The course changes one score for argmax(0): on the first outputs, down each column
    # also gives [1, 1]. Here the two directions differ.
    outputs = torch.tensor([[0.1, 0.2],
                            [0.05, 0.4]])
    print(f"outputs:\n{outputs!r}")
    print(f"outputs.argmax(0): {outputs.argmax(0)!r}")     # 从纵向看 / down each column
    print(f"outputs.argmax(1): {outputs.argmax(1)!r}")     # (beside it: along each row again)

    # 3. 正确率 / accuracy: the predicted class of each image against its target
    outputs = torch.tensor([[0.1, 0.2],
                            [0.3, 0.4]])
    preds = outputs.argmax(1)
    targets = torch.tensor([0, 1])
    print(f"preds = outputs.argmax(1): {preds!r}, targets: {targets!r}")
    print(f"preds == targets: {preds == targets!r}")
    print(f"(preds == targets).sum(): {(preds == targets).sum()!r}")
    # p23_train.py's test() adds up exactly this, batch by batch, and divides at the end:
    # total_accuracy / test_data_size.
    accuracy = (preds == targets).sum().item() / len(targets)
    print(f"accuracy = (preds == targets).sum().item() / len(targets): {accuracy!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
