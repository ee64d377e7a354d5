"""P15 神经网络——最大池化的使用 — Max pooling, nn.MaxPool2d

Max pooling slides a window over the input and keeps only the largest number under it. The
stride defaults to the window size, so MaxPool2d(3) looks at non-overlapping 3x3 blocks.
ceil_mode decides what happens at the border where a window sticks out of the input:
ceil_mode=True keeps a result for that partial window, ceil_mode=False (the default) drops it.
Pooling keeps the strongest features while shrinking the data: fewer numbers, faster training.

What to look at:
  - the course's 5x5 input (input.shape: torch.Size([1, 1, 5, 5])) pooled with a 3x3 window,
    each output under the line "output = maxpool3(input), ceil_mode=...":
    ceil_mode=True -> [[2., 3.], [5., 1.]], ceil_mode=False -> [[2.]];
  - TensorBoard, tags "input" and "output": CIFAR-10 test images and the same images pooled
    to 10x10 (ceil_mode=False), blurred like a mosaic but still recognisable.

Example:
  python scripts/p15_maxpool.py --fake-data
  tensorboard --logdir logs
"""
from __future__ import annotations

import torch
from torch import nn

from common import cli
from common.data import announce_synthetic, cifar10_test_loader
from common.device import get_device
from common.writer import make_writer, need_logdir

SCRIPT = "p15_maxpool"


class MaxPool3(nn.Module):
    """The course's GST of this lesson, named after what it does: a 3x3 max pooling."""

    def __init__(self, ceil_mode: bool = False):
        super().__init__()
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, ceil_mode=ceil_mode)

    def forward(self, input):
        output = self.maxpool1(input)
        return output


def get_args_parser():
    return cli.parser(__doc__, cli.device_flags(), cli.data_flags(), cli.logdir_flags())


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    need_logdir(args.logdir, SCRIPT)     # a wrong --logdir: now, not after the data
    device = get_device(args.device)
    announce_synthetic(args)

    # 1. 输入 / the input, float32 as in the course: its PyTorch refused an integer tensor
    # ("max_pool2d" not implemented for 'Long'). Today's CPU accepts one, but layers are
    # made for float feature maps, so the course's float32 stays.
    input = torch.tensor([[1, 2, 0, 3, 1],
                          [0, 1, 2, 3, 1],
                          [1, 2, 1, 0, 0],
                          [5, 2, 3, 1, 1],
                          [2, 1, 0, 1, 1]], dtype=torch.float32)
    input = torch.reshape(input, (-1, 1, 5, 5)).to(device)
    print(f"input.shape: {input.shape}")

    # 2. 最大池化 / pool it twice: ceil_mode=True keeps the partial windows, False drops them
    for ceil_mode in (True, False):
        maxpool3 = MaxPool3(ceil_mode=ceil_mode).to(device)
        output = maxpool3(input)
        print(f"output = maxpool3(input), ceil_mode={ceil_mode}:")
        print(output)

    # 3. 对图片的处理效果 / the effect on images: the CIFAR-10 test set in batches of 64
    dataloader = cifar10_test_loader(args, batch_size=64)

    maxpool3 = MaxPool3(ceil_mode=False).to(device)
    writer = make_writer(args.logdir, SCRIPT)
    step = 0
    for data in dataloader:
        imgs, targets = data
        imgs = imgs.to(device)
        writer.add_images("input", imgs, step)      # add_images, with an s: a whole batch
        output = maxpool3(imgs)                     # [64, 3, 32, 32] -> [64, 3, 10, 10]
        writer.add_images("output", output, step)
        step += 1
    writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
