"""P20 优化器 — Optimizers, torch.optim

An optimizer updates the parameters from their gradients. Every step is the same three lines:
    optimizer.zero_grad()   clear the gradients of the previous step
    loss.backward()         compute new gradients (lesson 19)
    optimizer.step()        move each parameter against its gradient, scaled by lr
after output = model(input) and loss = loss_fn(output, target). Here: SGD with lr=0.01 trains
the CIFAR-10 network (GST) on the test set in batches of 64, as the course does, for 20 epochs.

What to look at:
  - "epoch N/20  running_loss: ...", the sum of the batch losses over one epoch: it falls
    epoch after epoch, the network is learning (--print-steps also prints every batch's
    "result_loss: tensor(...)", as the course does);
  - in a debugger, stop on optim.step(): gst.model[0].weight.grad is None before the first
    backward(), a tensor after it, and the weights change at step().

Example:
  python scripts/p20_optim.py --fake-data --epochs 5 --seed 0
"""
from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from common import cli
from common.data import announce_synthetic, cifar10_test_loader
from common.device import choose_kernels, get_device
from common.model import GST


def get_args_parser() -> argparse.ArgumentParser:
    p = cli.parser(__doc__, cli.device_flags(), cli.data_flags(),
                   cli.train_flags(batch_size=64, epochs=20, lr=0.01, kernels=True,
                                   epochs_are="passes over the data it trains on (the "
                                              "course's: the test set)"))
    p.add_argument("--print-steps", action="store_true",
                   help="also print every batch's loss, as the course does (default: off)")
    return p


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = get_device(args.device)
    announce_synthetic(args)
    if args.seed is not None:
        torch.manual_seed(args.seed)     # the same initial weights, so the same losses
    choose_kernels(device, repeatable=args.seed is not None)

    # 1. 准备数据集 / the data: the CIFAR-10 test set, as the course uses it
    dataloader = cifar10_test_loader(args, batch_size=args.batch_size, drop_last=True)

    # 2. 网络、损失函数、优化器 / the network, the loss, the optimizer
    gst = GST().to(device)
    loss = nn.CrossEntropyLoss()
    optim = torch.optim.SGD(gst.parameters(), lr=args.lr)

    # 3. 训练 / train: every epoch is one pass over the data
    for epoch in range(args.epochs):
        running_loss = 0.0
        for step, data in enumerate(dataloader, start=1):
            imgs, targets = data
            imgs, targets = imgs.to(device), targets.to(device)
            outputs = gst(imgs)
            result_loss = loss(outputs, targets)
            optim.zero_grad()            # clear the previous step's gradients
            result_loss.backward()       # new gradients
            optim.step()                 # update the parameters
            if args.print_steps:
                print(f"epoch {epoch + 1} step {step}  result_loss: {result_loss!r}")
            # The course wrote `running_loss += result_loss`: adding the tensor keeps every
            # step's autograd graph alive all epoch (memory grows); .item() adds just the number.
            running_loss += result_loss.item()
        print(f"epoch {epoch + 1}/{args.epochs}  running_loss: {running_loss:.4f}")
        if not math.isfinite(running_loss):     # nan or inf: the weights have run away
            raise cli.UserError(f"training diverged: running_loss is {running_loss} in epoch "
                                f"{epoch + 1} (--lr {args.lr}): start again with a smaller --lr, "
                                "such as the course's 0.01")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
