"""P16 神经网络——非线性激活 — Non-linear activations, ReLU and Sigmoid

Without a non-linear function between them, stacked layers collapse into one linear map.
ReLU keeps positive numbers and turns negative ones into 0; Sigmoid squeezes every number
into (0, 1) with 1 / (1 + e^-x). inplace=False (the default) returns a new tensor and leaves
the input untouched, so the original data isn't lost.

What to look at:
  - ReLU on the course's 2x2 input [[1, -0.5], [-1, 3]]: input.shape:
    torch.Size([1, 1, 2, 2]), then under "output = relu_net(input):" [[1., 0.], [0., 3.]];
  - TensorBoard, tags "input" and "output": CIFAR-10 test images and the same images through
    Sigmoid. Pixels in [0, 1] come out in [0.5, 0.73], so the output looks grey and washed
    out. (ReLU would change nothing visible: the pixels are never negative.)

Example:
  python scripts/p16_nonlinear.py --fake-data
  tensorboard --logdir logs
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import ReLU, Sigmoid

from common import cli
from common.data import announce_synthetic, cifar10_test_loader
from common.device import get_device
from common.writer import make_writer, need_logdir

SCRIPT = "p16_nonlinear"


class ReLUNet(nn.Module):
    """The course's first GST of this lesson, named after what it does: one ReLU."""

    def __init__(self):
        super().__init__()
        self.relu1 = ReLU()             # inplace=False by default: the input is kept

    def forward(self, input):
        output = self.relu1(input)
        return output


class SigmoidNet(nn.Module):
    """The course's second GST of this lesson, named after what it does: one Sigmoid."""

    def __init__(self):
        super().__init__()
        self.sigmoid1 = Sigmoid()

    def forward(self, input):
        output = self.sigmoid1(input)
        return output


def get_args_parser():
    return cli.parser(__doc__, cli.device_flags(), cli.data_flags(), cli.logdir_flags())


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    need_logdir(args.logdir, SCRIPT)     # a wrong --logdir: now, not after the data
    device = get_device(args.device)
    announce_synthetic(args)

    # 1. ReLU / ReLU on a small tensor
    input = torch.tensor([[1, -0.5],
                          [-1, 3]])
    # The course reshaped into `output` but then fed the un-reshaped `input` to the module;
    # the reshaped [1, 1, 2, 2] batch is what was meant, so that is what goes in here.
    input = torch.reshape(input, (-1, 1, 2, 2)).to(device)
    print(f"input.shape: {input.shape}")

    relu_net = ReLUNet().to(device)
    output = relu_net(input)
    print("output = relu_net(input):")
    print(output)

    # 2. Sigmoid对图片的处理效果 / Sigmoid on images: the CIFAR-10 test set in batches of 64
    dataloader = cifar10_test_loader(args, batch_size=64)

    sigmoid_net = SigmoidNet().to(device)
    writer = make_writer(args.logdir, SCRIPT)
    step = 0
    for data in dataloader:
        imgs, targets = data
        imgs = imgs.to(device)
        writer.add_images("input", imgs, global_step=step)
        output = sigmoid_net(imgs)
        writer.add_images("output", output, global_step=step)
        step += 1
    writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
