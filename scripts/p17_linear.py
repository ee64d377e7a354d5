"""P17 神经网络——线性层及其他层介绍 — Linear layers, nn.Linear

nn.Linear(in_features, out_features) computes y = x·Wᵀ + b on the LAST dimension of its
input: in_features values in, out_features values out (weight = the k's, bias = the b's
that training adjusts). The course flattens a whole batch of 64 CIFAR-10 images,
64 x 3 x 32 x 32 = 196608 values, into one long vector and feeds it to Linear(196608, 10).

What to look at:
  - the shapes: imgs.shape: torch.Size([64, 3, 32, 32]) -> torch.flatten(imgs).shape:
    torch.Size([196608]) -> gst(output).shape: torch.Size([10]).
    The course prints them for every batch; this prints the first batch and then how many
    batches ran (--print-every-batch prints them all);
  - why drop_last=True: 10000 test images are 156 batches of 64 and one of 16; 16 images
    flatten to 49152 values, which Linear(196608, 10) refuses — the script shows the error;
  - reshape(1, 1, 1, -1) (the course's first try) vs flatten: Linear works on the last
    dimension, so [1, 1, 1, 196608] -> [1, 1, 1, 10]; flatten gives [196608] -> [10].
    (Flattening the whole batch mixes 64 images into one input: a real model flattens each
    image, nn.Flatten() -> [64, 3072], as lesson 18 does.)

Example:
  python scripts/p17_linear.py --fake-data
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

from common import cli
from common.data import announce_synthetic, cifar10_test_loader
from common.device import get_device

BATCH_SIZE = 64
IN_FEATURES = BATCH_SIZE * 3 * 32 * 32       # 196608: a whole batch of 64 images, flattened


class FlatLinear(nn.Module):
    """The course's GST of this lesson, named after what it does: one Linear(196608, 10).

    (GST is the CIFAR-10 network of lesson 18, common.model.GST.)
    """

    def __init__(self):
        super().__init__()
        self.linear1 = nn.Linear(IN_FEATURES, 10)

    def forward(self, input):
        output = self.linear1(input)
        return output


def get_args_parser() -> argparse.ArgumentParser:
    p = cli.parser(__doc__, cli.device_flags(), cli.data_flags())
    p.add_argument("--print-every-batch", action="store_true",
                   help="print the three shapes for every batch, as the course does "
                        "(default: off, the first batch's shapes and then the number of batches)")
    p.add_argument("--max-batches", type=cli.positive_int_or_all, default=None, metavar="N",
                   help="stop after N batches, or 'all' to run them all, as the course does "
                        "(default: all)")
    return p


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = get_device(args.device)
    announce_synthetic(args)

    # 1. 准备数据集 / the CIFAR-10 test set in batches of 64
    # drop_last=True: Linear(196608, 10) takes exactly 64 images' worth of values.
    dataloader = cifar10_test_loader(args, batch_size=BATCH_SIZE, drop_last=True)

    # 2. 搭建神经网络 / the network: one linear layer
    gst = FlatLinear().to(device)

    # 3. 展平并送入线性层 / flatten each batch and pass it through the linear layer
    batches = 0
    with torch.no_grad():                    # only looking at shapes: no gradients needed
        for data in dataloader:
            imgs, targets = data
            imgs = imgs.to(device)
            # The course first wrote torch.reshape(imgs, (1, 1, 1, -1)), then torch.flatten.
            output = torch.flatten(imgs)
            if batches == 0 or args.print_every_batch:
                print(f"imgs.shape: {imgs.shape}")                         # [64, 3, 32, 32]
                print(f"torch.flatten(imgs).shape: {output.shape}")        # [196608]
            output = gst(output)
            if batches == 0 or args.print_every_batch:
                print(f"gst(output).shape: {output.shape}")                # [10]
            if batches == 0:
                show_reshape_vs_flatten(gst, imgs)
            batches += 1
            if batches == args.max_batches:
                break
        print(f"{cli.counted(batches, 'batch', 'batches')} of {BATCH_SIZE}")

        # 4. 为什么 drop_last=True / why drop_last=True
        show_drop_last(gst, len(dataloader.dataset), device)
    return 0


def show_reshape_vs_flatten(gst: FlatLinear, imgs: torch.Tensor) -> None:
    """The course's first version: reshape to [1, 1, 1, -1]. Linear acts on the last dim."""
    reshaped = torch.reshape(imgs, (1, 1, 1, -1))
    print(f"reshape(imgs, (1, 1, 1, -1)): {reshaped.shape} -> linear1 -> "
          f"{gst(reshaped).shape}  (same numbers as flatten, with three extra dims of size 1)")


def show_drop_last(gst: FlatLinear, n_images: int, device: torch.device) -> None:
    """What the last, short batch would do to Linear(196608, 10) without drop_last=True."""
    left = n_images % BATCH_SIZE
    if left == 0:
        print(f"{n_images} images are whole batches of {BATCH_SIZE}: drop_last drops nothing")
        return
    values = left * 3 * 32 * 32
    print(f"drop_last=True dropped the last batch: {n_images} images = "
          f"{n_images // BATCH_SIZE} x {BATCH_SIZE} + {left}; flattened, {left} images are "
          f"{values} values, and Linear({IN_FEATURES}, 10) refuses them:")
    try:
        gst(torch.zeros(values, device=device))
    except RuntimeError as e:
        print(f"  RuntimeError: {str(e).splitlines()[0]}")


if __name__ == "__main__":
    raise SystemExit(main())
