"""p23's training speed in one process and under torchrun with 1 and N processes (DDP), on
the CIFAR-sized synthetic set of p23_cifar_sized.py: what `torchrun --nproc-per-node N` buys
on this machine. Each configuration runs as a learner runs it, one after the other, and
--metrics gives its training images/s (all processes together, test passes excluded).

  python benchmarks/torchrun_processes.py --device cpu --epochs 1          # 1 and 2 processes
  python benchmarks/torchrun_processes.py --device cuda --epochs 3 --nproc 1  # a GPU: is DDP free?

torchrun gives each process OMP_NUM_THREADS=1 when it starts more than one (and says so); a
plain run and a 1-process torchrun use every core.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # run as a file: benchmarks/ and common/ importable

from benchmarks.p23_cifar_sized import FOLDER, write_cifar_format  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="p23's --device (default: cpu)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs a run (default: 1)")
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2],
                        help="torchrun process counts to time (default: 1 2)")
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "p23-cifar-sized",
                        help="the CIFAR-sized files (default: %(default)s)")
    args = parser.parse_args(argv)
    if not (args.cache / FOLDER / "batches.meta").is_file():   # made once, before any launch
        write_cifar_format(args.cache)
    work = Path(tempfile.mkdtemp(prefix="torchrun-bench-"))
    job = [str(HERE / "p23_cifar_sized.py"), "--cache", str(args.cache), "--epochs",
           str(args.epochs), "--device", args.device, "--logdir", str(work / "logs"),
           "--checkpoint-dir", str(work / "ckpt")]
    runs = [("python", None, [sys.executable])]
    runs += [(f"torchrun ×{n}", n, [sys.executable, "-m", "torch.distributed.run",
                                    "--standalone", f"--nproc-per-node={n}"])
             for n in args.nproc]
    rows = []
    for name, n, launcher in runs:
        metrics = work / f"{len(rows)}.json"
        t0 = time.perf_counter()
        done = subprocess.run([*launcher, *job, "--metrics", str(metrics)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        m = json.loads(metrics.read_text())
        rows.append((name, m["world_size"], m["train_images_per_s"], wall,
                     m["test_accuracy"]))
        print(f"{name}: {m['train_images_per_s']:.0f} images/s, {wall:.0f} s in all",
              flush=True)
    base = rows[0][2]
    print(f"\n{args.device}, {args.epochs} epoch(s) of 50000 images, {os.cpu_count()} cores\n")
    print("| run | processes | train images/s | vs python | wall s | test accuracy |")
    print("|---|---|---|---|---|---|")
    for name, world, speed, wall, accuracy in rows:
        print(f"| {name} | {world} | {speed:.0f} | {speed / base:.2f}× | {wall:.0f} | "
              f"{accuracy:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
