"""P12 神经网络的基本骨架——nn.Module的使用 — nn.Module, the skeleton of every network

Every network is a subclass of nn.Module: __init__ builds its parts (after
super().__init__()), forward(input) says how an input becomes an output. You never call
forward yourself: calling the module, module(x), runs nn.Module.__call__, which calls forward.

What to look at: "output = add_one(x): tensor(2.)". The module adds one to its input,
x = torch.tensor(1.0), so the output is tensor(2.).
It runs on the CPU, as in the course: there is no model worth moving to a device yet.

Example:
  python scripts/p12_nn_module.py
"""
from __future__ import annotations

import torch
from torch import nn

from common import cli


class AddOne(nn.Module):
    """The course's GST of this lesson, named after what it does: output = input + 1."""

    def __init__(self):
        super().__init__()

    def forward(self, input):   # 前向传播: an input goes through forward to give the output
        output = input + 1
        return output


def get_args_parser():
    return cli.parser(__doc__)


@cli.entrypoint
def main(argv=None) -> int:
    get_args_parser().parse_args(argv)

    # 1. 创建模型 / build the module
    add_one = AddOne()

    # 2. 调用模型 / call it: __call__() runs forward()
    x = torch.tensor(1.0)
    output = add_one(x)
    print(f"output = add_one(x): {output!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
