"""Training throughput: the course's loop (lesson 23) against p23_train.py's, same data, same
device, and both against the ceiling: GST's bare training step with no data path at all.

Every row trains GST with CrossEntropyLoss and SGD (lr 0.01), batches of 64, on the same
CIFAR-sized synthetic images (common.data.FakeCIFAR10, 32x32 RGB):

  course      torchvision dataset with ToTensor() + DataLoader(batch_size=64): every image
              goes through PIL and ToTensor one by one; each batch is copied with .to(device);
              the loss is printed every 100 steps (into a buffer, not the terminal).
  p23         p23_train.train() itself (the script is imported, so this measures the real
              thing): the set is one uint8 tensor on the device (common.data.InMemoryLoader),
              shuffled, one gather + divide per batch, channels_last where p23 uses it, the
              step made by p23_train.make_train_step; "amp" adds --amp (bf16 autocast),
              "graph" --cuda-graph (CUDA only).
  step        the ceiling: p23's training step called on one batch already on the device,
              again and again (no loader, no gather, no progress bar); "graph" replays it as
              one CUDA graph (CUDA only).

Each p23 row is also printed as a fraction of the fastest bare step of the same precision
(fp32 or amp): how close p23 comes to what the hardware allows.

Each measurement is one epoch over --images images, after a warm-up (p23's own, before its
first epoch, and 20 untimed batches) that is not timed; building the dataset and p23's one
host-to-device copy are not timed either. The rows alternate --repeats times; medians are
printed.

  python benchmarks/train_throughput.py --device cpu --images 10000 --repeats 5
  python benchmarks/train_throughput.py --device cuda --images 50000 --repeats 3
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import io
import itertools
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))        # run as a file: the repository's scripts/ (p23) importable

from common import cli, data  # noqa: E402
from common.cli import UserError, positive_int  # noqa: E402
from common.device import choose_kernels, fast_bf16, get_device, synchronize  # noqa: E402
from common.model import GST  # noqa: E402
from scripts import p23_train  # noqa: E402  (importing it runs nothing)

WARMUP_BATCHES = 20


def course_setup(dataset, device):
    """Lesson 23's training loop as the notes write it; ``loop(batches=None)`` runs one epoch."""
    train_dataloader = DataLoader(dataset, batch_size=64)
    gst = GST().to(device)
    loss_fn = nn.CrossEntropyLoss().to(device)
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.01)

    def loop(batches=None):
        total_train_step = 0
        for data_ in itertools.islice(train_dataloader, batches):
            imgs, targets = data_
            imgs = imgs.to(device)
            targets = targets.to(device)
            outputs = gst(imgs)
            loss = loss_fn(outputs, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_train_step += 1
            if total_train_step % 100 == 0:
                print("训练次数：{}, Loss: {}".format(total_train_step, loss.item()))
    return loop


def p23_setup(p23, images, targets, device, channels_last=None, amp=False, cuda_graph=False):
    """p23's loop: its model, the in-memory loader, its prepared step, and p23_train.train().

    ``channels_last=None`` takes p23's own choice (``make_model``); False forces NCHW.
    """
    gst, train_dataloader, step = _p23_step(p23, images, targets, device, channels_last, amp,
                                            cuda_graph)
    return lambda batches=None: p23.train(gst, step, itertools.islice(train_dataloader, batches))


def step_setup(p23, images, targets, device, amp=False, cuda_graph=False):
    """The ceiling: p23's prepared step on one batch already on the device, ``len(images) / 64``
    times (the last, partial batch included as a full one)."""
    _, train_dataloader, step = _p23_step(p23, images, targets, device, None, amp, cuda_graph)
    imgs, targets = train_dataloader.sample_batches()[0]

    def loop(batches=None):
        for _ in range(batches or len(train_dataloader)):
            step(imgs, targets)
    return loop


def _p23_step(p23, images, targets, device, channels_last, amp, cuda_graph):
    generator = torch.Generator().manual_seed(0)
    if channels_last is None:
        channels_last = p23.use_channels_last(device)
        gst = p23.make_model(10, device)
    else:
        gst = GST().to(device, memory_format=torch.channels_last if channels_last
                       else torch.contiguous_format)
    train_dataloader = data.InMemoryLoader(images, targets, 64, shuffle=True, device=device,
                                           channels_last=channels_last, generator=generator)
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.01)
    step = p23.make_train_step(gst, nn.CrossEntropyLoss(), optimizer, train_dataloader, amp=amp,
                               cuda_graph=cuda_graph)
    return gst, train_dataloader, step


def timed(device, fn) -> float:
    """Seconds ``fn()`` takes, with the device's queued work included; output discarded."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = cli.parser(__doc__)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="where to train (default: auto, the accelerator if there is one)")
    parser.add_argument("--images", type=positive_int, default=10000,
                        help="images per timed epoch (default: 10000)")
    parser.add_argument("--repeats", type=positive_int, default=3,
                        help="timed epochs of each loop; medians are reported (default: 3)")
    parser.add_argument("--nchw", action="store_true",
                        help="also time p23's loop with the default NCHW memory format "
                             "(to see what channels_last brings)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="also time p23 and the bare step with --amp, bf16 autocast "
                             "(default: where the device computes in bf16 natively; on CPUs "
                             "without AVX-512 BF16 or AMX those rows are 2 to 10 times slower)")
    args = parser.parse_args(argv)
    try:
        device = get_device(args.device)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    p23 = p23_train
    choose_kernels(device, repeatable=False)   # what p23 sets without --seed: cudnn.benchmark
    dataset = data.FakeCIFAR10(train=True, size=args.images, transform=transforms.ToTensor())
    images, targets = data.cifar_uint8(dataset)
    n = len(dataset)
    cl = p23.use_channels_last(device)
    graphs = [False, True] if device.type == "cuda" else [False]
    amp = fast_bf16(device) if args.amp is None else args.amp
    precisions = ["fp32", "amp"] if amp else ["fp32"]
    loops = {"course": course_setup(dataset, device)}
    for precision in precisions:
        for graph in graphs:
            name = "p23" + (" amp" if precision == "amp" else "") + (" graph" if graph else "")
            loops[name] = p23_setup(p23, images, targets, device, amp=precision == "amp",
                                    cuda_graph=graph)
    if args.nchw and cl:
        loops["p23 NCHW"] = p23_setup(p23, images, targets, device, channels_last=False)
    for precision in precisions:
        for graph in graphs:
            name = "step" + (" amp" if precision == "amp" else "") + (" graph" if graph else "")
            loops[name] = step_setup(p23, images, targets, device, amp=precision == "amp",
                                     cuda_graph=graph)

    gpu = f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""
    print(f"device: {device}{gpu}; {platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{n} images per epoch, {args.repeats} repeats; p23 channels_last: {cl}; "
          f"fast bf16: {fast_bf16(device)}")
    for loop in loops.values():
        timed(device, functools.partial(loop, WARMUP_BATCHES))
    runs = {name: [] for name in loops}
    for r in range(args.repeats):
        for name, loop in loops.items():
            runs[name].append(n / timed(device, loop))
        print(f"  repeat {r + 1}: " + ", ".join(f"{name} {v[-1]:,.0f}" for name, v in runs.items())
              + " images/s", flush=True)

    medians = {name: statistics.median(v) for name, v in runs.items()}
    ceiling = {p: max(m for name, m in medians.items() if name.startswith("step")
                      and ("amp" in name) == (p == "amp")) for p in precisions}
    for name, m in medians.items():
        line = f"{name:>14}: {m:>9,.0f} images/s (median)"
        if name.startswith("p23") or name.startswith("step"):
            line += f"  {m / medians['course']:5.2f}x the course"
        if name.startswith("p23") and "NCHW" not in name:
            line += f", {m / ceiling['amp' if 'amp' in name else 'fp32']:.2f} of the ceiling"
        print(line)
    if "p23 NCHW" in medians:
        print(f"channels_last / NCHW: {medians['p23'] / medians['p23 NCHW']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
