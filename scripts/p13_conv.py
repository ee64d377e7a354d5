"""P13 卷积操作 — The convolution operation, F.conv2d

torch.nn.functional.conv2d slides a kernel over an input: at each position it multiplies the
overlapping numbers and adds them up into one output number. (torch.nn wraps these
functions into layers, the next lesson's nn.Conv2d.) conv2d wants 4-D tensors,
[batch_size, channels, height, width], so the course's 5x5 input and 3x3 kernel are reshaped
to [1, 1, 5, 5] and [1, 1, 3, 3] first.

What to look at (each result printed under the call that made it):
  - input.shape: torch.Size([1, 1, 5, 5]) and kernel.shape: torch.Size([1, 1, 3, 3]);
  - stride=1: the kernel moves one step at a time, a 3x3 output
    [[10, 12, 12], [18, 16, 16], [13, 9, 3]];
  - stride=2: two steps at a time, a 2x2 output [[10, 12], [13, 3]];
  - stride=1, padding=1: a ring of zeros around the input first, so the output stays 5x5.
Integer tensors in, integer tensors out: this runs on the CPU, as in the course.

Example:
  python scripts/p13_conv.py
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from common import cli


def get_args_parser():
    return cli.parser(__doc__)


@cli.entrypoint
def main(argv=None) -> int:
    get_args_parser().parse_args(argv)

    # 1. 输入图像和卷积核 / the input image and the kernel
    input = torch.tensor([[1, 2, 0, 3, 1],
                          [0, 1, 2, 3, 1],
                          [1, 2, 1, 0, 0],
                          [5, 2, 3, 1, 1],
                          [2, 1, 0, 1, 1]])
    kernel = torch.tensor([[1, 2, 1],
                           [0, 1, 0],
                           [2, 1, 0]])

    # 2. 变换尺寸 / reshape: (batch_size, channels, height, width)
    input = torch.reshape(input, (1, 1, 5, 5))
    kernel = torch.reshape(kernel, (1, 1, 3, 3))
    print(f"input.shape: {input.shape}")
    print(f"kernel.shape: {kernel.shape}")

    # 3. 卷积 / convolve: stride 1, then stride 2 (each result under a line saying which)
    output = F.conv2d(input, kernel, stride=1)
    print("output = F.conv2d(input, kernel, stride=1):")
    print(output)

    output2 = F.conv2d(input, kernel, stride=2)
    print("output2 = F.conv2d(input, kernel, stride=2):")
    print(output2)

    # 4. 填充 / padding=1: zeros around the border, so a 3x3 kernel keeps 5x5
    output3 = F.conv2d(input, kernel, stride=1, padding=1)
    print("output3 = F.conv2d(input, kernel, stride=1, padding=1):")
    print(output3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
