"""P18 神经网络——搭建小实战和Sequential的使用 — A small CIFAR-10 model, and nn.Sequential

The CIFAR10-quick model (3 x [5x5 conv, 2x2 max-pool], flatten, two linear layers), written
twice as the course does: first one attribute per layer with a forward() that calls each in
turn, then the same layers inside one nn.Sequential, whose forward() is a single call. The
Sequential form is the course's GST, the network every later lesson trains: it lives in
common/model.py and is imported here.

Padding 2 comes from the output-size formula in the Conv2d docs, with stride 1, dilation 1:
  H_out = (H_in + 2*padding - dilation*(kernel_size-1) - 1) / stride + 1
  32    = (32   + 2*padding - 1*(5-1) - 1) / 1 + 1   ->  padding = 2

What to look at:
  - both models printed, each under a line saying which way it is: the same nine layers,
    named conv1 ... linear2 in the first form (LayerwiseGST), model.0 ... model.8 in the
    Sequential form (GST). The video's printout says (model1): Sequential( — the course
    names the attribute model1 here and model from lesson 23 on; GST is one class for every
    lesson, with lesson 23's name, so its checkpoints' keys are model.0.weight ...;
  - the shape check: input = torch.ones(64, 3, 32, 32) -> output.shape:
    torch.Size([64, 10]), ten class scores per image (64 x 4 x 4 = 1024 values reach the
    first Linear), and the same shape from the first way;
  - TensorBoard, tab GRAPHS: the model's graph (double-click GST to open it).

Example:
  python scripts/p18_sequential.py
  tensorboard --logdir logs
"""
from __future__ import annotations

import argparse
import warnings

import torch
from torch import nn
from torch.nn import Conv2d, Flatten, Linear, MaxPool2d

from common import cli
from common.device import get_device
from common.model import GST
from common.writer import make_writer, need_logdir

SCRIPT = "p18_sequential"


class LayerwiseGST(nn.Module):
    """第一种 / the first way: one attribute per layer, called one by one in forward().

    The course names this class GST as well; it is called LayerwiseGST here because GST is the
    Sequential form below, defined once for every lesson in common/model.py.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = Conv2d(3, 32, 5, padding=2)   # padding from the formula above
        self.maxpool1 = MaxPool2d(2)
        self.conv2 = Conv2d(32, 32, 5, padding=2)
        self.maxpool2 = MaxPool2d(2)
        self.conv3 = Conv2d(32, 64, 5, padding=2)
        self.maxpool3 = MaxPool2d(2)
        self.flatten = Flatten()
        self.linear1 = Linear(1024, 64)            # 64 channels x 4 x 4 after three poolings
        self.linear2 = Linear(64, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = self.maxpool1(x)
        x = self.conv2(x)
        x = self.maxpool2(x)
        x = self.conv3(x)
        x = self.maxpool3(x)
        x = self.flatten(x)
        x = self.linear1(x)
        x = self.linear2(x)
        return x


def get_args_parser() -> argparse.ArgumentParser:
    return cli.parser(__doc__, cli.device_flags(), cli.logdir_flags())


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    need_logdir(args.logdir, SCRIPT)     # a wrong --logdir: now, not after the data
    device = get_device(args.device)

    # 1. 第一种写法 / the first way: separate layers
    gst_layers = LayerwiseGST().to(device)
    print("gst_layers = LayerwiseGST(), 第一种 / the first way (one attribute per layer):")
    print(gst_layers)

    # 2. 第二种写法 Sequential / the second way: nn.Sequential (common.model.GST)
    gst = GST().to(device)
    print("gst = GST() from common.model, 第二种 / the second way (nn.Sequential):")
    print(gst)

    # 3. 检查网络 / check the network: a batch of 64 images of ones in, 64 x 10 scores out
    input = torch.ones(64, 3, 32, 32, device=device)   # batch_size 64, 3 channels, 32x32
    with torch.no_grad():
        output = gst(input)
        print(f"output.shape: {output.shape}")                             # [64, 10]
        print(f"gst_layers(input).shape: {gst_layers(input).shape}  (the first way: the same)")

    # 4. 用TensorBoard看网络结构 / the model graph in TensorBoard (tab GRAPHS)
    writer = make_writer(args.logdir, SCRIPT)
    with warnings.catch_warnings():
        # add_graph traces the model with torch.jit.trace, which PyTorch now marks deprecated;
        # the warning is about TensorBoard's internals, not this lesson's code.
        warnings.filterwarnings("ignore", category=FutureWarning, message=r"`torch\.jit\.trace")
        writer.add_graph(gst, input)
    writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
