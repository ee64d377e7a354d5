"""One TensorBoard run per invocation: ``<logdir>/<script>/<run-id>/``.

Lesson 07's pain — a rerun writing into the same folder mixes its curves with the old
ones, and the fix was deleting the event files — cannot happen: a run folder is never reused
by another run. (A resumed p23 run goes on in its own folder: see :func:`open_writer`.)
"""
from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter, summary

from common import runs

# The course prints and logs the training loss every 100 steps: a CIFAR-10 epoch at batch 64
# has 782. A small set (--fake-data: 32 steps an epoch) would draw one point in five epochs,
# so an epoch of fewer than LOG_EVERY_FROM steps logs about LOG_POINTS_PER_EPOCH times instead.
LOG_EVERY = 100
LOG_EVERY_FROM = 500
LOG_POINTS_PER_EPOCH = 10


def log_interval(steps_per_epoch: int, log_every: int | None = None) -> int:
    """Steps between two ``train_loss`` points: ``log_every`` when given, else as above."""
    if log_every is not None:
        return log_every
    if steps_per_epoch >= LOG_EVERY_FROM:
        return LOG_EVERY
    return max(1, steps_per_epoch // LOG_POINTS_PER_EPOCH)


def open_writer(run_dir: Path, logdir: Path, *, purge_step: int | None = None) -> SummaryWriter:
    """A ``SummaryWriter`` on ``run_dir``; prints where it writes.

    ``purge_step``: a resumed run's first step. TensorBoard then hides what the interrupted
    run logged at that step and after, so the curve goes on as one line.
    """
    print(f"TensorBoard run: {run_dir}  (view: tensorboard --logdir {logdir})")
    return SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)


def make_writer(logdir: Path, script: str, run_id: str | None = None) -> SummaryWriter:
    """A ``SummaryWriter`` for a new run of ``script``; ``run_id`` defaults to the time."""
    _, (run_dir,) = runs.new_run(script, logdir, run_id=run_id)
    return open_writer(run_dir, logdir)


def add_hparams(writer: SummaryWriter, hparams: dict, metrics: list[str]) -> None:
    """An entry in the HParams tab for ``writer``'s run: ``hparams`` (numbers, strings; None
    is left out) against ``metrics``, tags this run logs as scalars (the table shows each
    one's last value).

    ``SummaryWriter.add_hparams`` would write them into a sub-run of its own,
    ``<run>/<time.time()>/``, which shows up as a second run beside each real one
    (pytorch/pytorch#32651); here they go into the run's own folder, as its other tags do.
    """
    experiment, session_start, _ = summary.hparams(
        {k: str(v) if isinstance(v, bool) else v for k, v in hparams.items()},
        dict.fromkeys(metrics, 0.0))
    file_writer = writer._get_file_writer()
    file_writer.add_summary(experiment)
    file_writer.add_summary(session_start)
