"""P19 损失函数与反向传播 — Loss functions and backpropagation

A loss measures how far the output is from the target (smaller is better) and, through
backward(), gives every parameter a gradient: the direction to move it to lower the loss.

What to look at:
  - the course's printed losses, each after the loss that gives it, on inputs [1, 2, 3] vs
    targets [1, 2, 5]:
      L1Loss(): tensor(0.6667)                 (|0| + |0| + |-2|) / 3
      L1Loss(reduction='sum'): tensor(2.)      |0| + |0| + |-2|
      MSELoss(): tensor(1.3333)                (0² + 0² + 2²) / 3
    and CrossEntropyLoss on scores x = [0.1, 0.2, 0.3] for 3 classes, target class 1:
      CrossEntropyLoss(): tensor(1.1019)       -x[1] + ln(exp(0.1) + exp(0.2) + exp(0.3))
    (log is ln);
  - backpropagation through the CIFAR-10 network (GST): the first convolution's
    weight.grad is None before result_loss.backward() and a tensor of the weight's shape,
    torch.Size([32, 3, 5, 5]), after it (what the course looks at in the debugger, under
    gst -> model1 -> _modules -> '0' -> weight; here the Sequential is gst.model, as in
    lesson 23's GST), then each batch's "result_loss, batch N:"
    (one batch by default; --max-batches all runs the whole test set, as the course does).

Example:
  python scripts/p19_loss.py --fake-data
"""
from __future__ import annotations

import argparse
import math

import torch
from torch import nn
from torch.nn import CrossEntropyLoss, L1Loss, MSELoss

from common import cli
from common.data import announce_synthetic, cifar10_test_loader
from common.device import get_device
from common.model import GST


def get_args_parser() -> argparse.ArgumentParser:
    p = cli.parser(__doc__, cli.device_flags(), cli.data_flags())
    p.add_argument("--max-batches", type=cli.positive_int_or_all, default=1, metavar="N",
                   help="run backward on N batches of 64, printing each loss; the course runs "
                        "the whole test set: 'all' (default: 1)")
    return p


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = get_device(args.device)
    announce_synthetic(args)

    # 1. L1Loss 与 MSELoss / L1 and mean squared error
    inputs = torch.tensor([1, 2, 3], dtype=torch.float32)
    targets = torch.tensor([1, 2, 5], dtype=torch.float32)
    inputs = torch.reshape(inputs, (1, 1, 1, 3))     # batch 1, channel 1, 1 row, 3 columns
    targets = torch.reshape(targets, (1, 1, 1, 3))

    loss = L1Loss()                                  # reduction='mean': the average |difference|
    result = loss(inputs, targets)
    print(f"L1Loss(): {result!r}")                   # tensor(0.6667)
    loss = L1Loss(reduction='sum')                   # the sum of |difference|
    result = loss(inputs, targets)
    print(f"L1Loss(reduction='sum'): {result!r}")    # tensor(2.)

    loss_mse = MSELoss()
    result_mse = loss_mse(inputs, targets)
    print(f"MSELoss(): {result_mse!r}")              # tensor(1.3333)

    # 2. CrossEntropyLoss / cross entropy, for classification into C classes
    x = torch.tensor([0.1, 0.2, 0.3])
    y = torch.tensor([1])
    x = torch.reshape(x, (1, 3))                     # batch_size 1, 3 classes
    loss_cross = CrossEntropyLoss()
    result_cross = loss_cross(x, y)
    print(f"CrossEntropyLoss(): {result_cross!r}")   # tensor(1.1019)
    scores = x[0].tolist()
    by_hand = -scores[1] + math.log(sum(math.exp(s) for s in scores))
    print(f"by hand: -x[class] + ln(sum(exp(x))) = -{scores[1]:g} + "
          f"ln(exp(0.1) + exp(0.2) + exp(0.3)) = {by_hand:.4f}")

    # 3. 反向传播 / backpropagation through the CIFAR-10 network
    dataloader = cifar10_test_loader(args, batch_size=64, drop_last=True)
    gst = GST().to(device)
    loss = nn.CrossEntropyLoss()
    conv1_weight = gst.model[0].weight       # the course's model1[0].weight; model here
    batches = 0
    for data in dataloader:
        imgs, targets = data
        imgs, targets = imgs.to(device), targets.to(device)
        outputs = gst(imgs)                          # [64, 10]: ten class scores per image
        result_loss = loss(outputs, targets)
        if batches == 0:
            print(f"before backward(): model[0].weight.grad = {conv1_weight.grad}")
        result_loss.backward()                       # fills .grad of every parameter
        if batches == 0:
            print(f"after backward():  model[0].weight.grad is a tensor of shape "
                  f"{conv1_weight.grad.shape} (weight: {conv1_weight.shape})")
        print(f"result_loss, batch {batches + 1}: {result_loss!r}")
        batches += 1
        if batches == args.max_batches:
            break
    # No optimizer here (that is lesson 20), so nothing is updated: without zero_grad()
    # the gradients of later batches add up in .grad.
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
