"""P14 神经网络——卷积层 — The convolution layer, nn.Conv2d

nn.Conv2d(in_channels, out_channels, kernel_size) is lesson 13's F.conv2d as a layer that
owns its kernels: one kernel per output channel, learnable weights drawn at random when the
layer is made. Here nn.Conv2d(3, 6, 3) turns each RGB image of the CIFAR-10 test set into 6
feature maps of 30x30 (a 3x3 kernel with no padding loses one pixel on every side).

What to look at:
  - the shapes: imgs.shape: torch.Size([64, 3, 32, 32]) -> output.shape:
    torch.Size([64, 6, 30, 30]).
    The course prints them for every batch (157 batches for the real test set); this prints
    the first batch and then how many batches ran — --print-every-batch prints them all;
  - TensorBoard, tags "input" and "output", one step per batch. TensorBoard draws an image
    from 3 channels (RGB), not 6, so the output is reshaped to (-1, 3, 30, 30): each image's
    6 channels become two 3-channel images, and the 64 images of a batch show as 128.

Example:
  python scripts/p14_conv2d.py --fake-data
  tensorboard --logdir logs
"""
from __future__ import annotations


import torch
from torch import nn

from common import cli
from common.data import announce_synthetic, cifar10_test_loader
from common.device import get_device
from common.writer import make_writer, need_logdir

SCRIPT = "p14_conv2d"


class Conv3to6(nn.Module):
    """The course's GST of this lesson, named after what it does: one Conv2d, 3 -> 6 channels."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=3, stride=1, padding=0)

    def forward(self, x):
        x = self.conv1(x)
        return x


def get_args_parser():
    p = cli.parser(__doc__, cli.device_flags(), cli.data_flags(), cli.logdir_flags())
    p.add_argument("--print-every-batch", action="store_true",
                   help="print imgs.shape and output.shape for every batch, as the course does "
                        "(default: off, the first batch's shapes and then the number of batches)")
    return p


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    need_logdir(args.logdir, SCRIPT)     # a wrong --logdir: now, not after the data
    device = get_device(args.device)
    announce_synthetic(args)

    # 1. 准备数据集 / the CIFAR-10 test set in batches of 64
    dataloader = cifar10_test_loader(args, batch_size=64)

    # 2. 搭建神经网络 / the network: one convolution layer
    conv3to6 = Conv3to6().to(device)

    # 3. 卷积并写入TensorBoard / convolve every batch, log input and output
    writer = make_writer(args.logdir, SCRIPT)
    step = 0
    with torch.no_grad():               # only looking, no training: no gradients needed
        for data in dataloader:
            imgs, targets = data
            imgs = imgs.to(device)
            output = conv3to6(imgs)
            if step == 0 or args.print_every_batch:
                print(f"imgs.shape: {imgs.shape}")        # torch.Size([64, 3, 32, 32])
                print(f"output.shape: {output.shape}")    # torch.Size([64, 6, 30, 30])
            writer.add_images("input", imgs, step)
            # torch.Size([64, 6, 30, 30]): 6 channels can't be shown, an image has 3.
            # -1 lets reshape work out the batch: 64 x 6 channels = 128 x 3 channels.
            output = torch.reshape(output, (-1, 3, 30, 30))
            writer.add_images("output", output, step)
            step += 1
    writer.close()
    print(f"batches: {step}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
