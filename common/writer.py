"""One TensorBoard run per invocation: ``<logdir>/<script>/<run-id>/``.

Lesson 07's pain — a rerun writing into the same folder mixes its curves with the old
ones, and the fix was deleting the event files — cannot happen: a run folder is never reused.
"""
from __future__ import annotations

import time
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


def new_run_dir(logdir: Path, script: str, run_id: str | None = None) -> Path:
    """Create and return a fresh ``<logdir>/<script>/<run-id>``; ``run_id`` defaults to the time."""
    base = Path(logdir) / script
    base.mkdir(parents=True, exist_ok=True)
    stem = run_id or time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        run_dir = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            run_dir.mkdir()          # atomic: two runs can't both create the same folder
            return run_dir
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run folder under {base}")


def make_writer(logdir: Path, script: str, run_id: str | None = None) -> SummaryWriter:
    """A ``SummaryWriter`` for a new run of ``script``; prints where it writes."""
    run_dir = new_run_dir(logdir, script, run_id)
    print(f"TensorBoard run: {run_dir}  (view: tensorboard --logdir {logdir})")
    return SummaryWriter(log_dir=str(run_dir))
