"""One TensorBoard run per invocation: ``<logdir>/<script>/<run-id>/``.

Lesson 07's pain — a rerun writing into the same folder mixes its curves with the old
ones, and the fix was deleting the event files — cannot happen: a run folder is never reused
by another run. (A resumed p23 run goes on in its own folder: see :func:`open_writer`.)
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import threading
from pathlib import Path

from common import disk, runs
from common.cli import UserError

try:
    from torch.utils.tensorboard import SummaryWriter, summary
except ImportError as e:      # no tensorboard package: only the lessons that write need it
    SummaryWriter = summary = None
    _MISSING = str(e)

# tensorboard 2.20 and older import pkg_resources when the `tensorboard` command starts, and
# setuptools 81 and later no longer have it (tensorflow/tensorboard#7003): the event files
# are written all the same, but the viewer stops with "No module named 'pkg_resources'".
FIRST_TENSORBOARD_WITHOUT_PKG_RESOURCES = (2, 21)

# The course prints and logs the training loss every 100 steps: a CIFAR-10 epoch at batch 64
# has 782. A small set (--fake-data: 32 steps an epoch) would draw one point in five epochs,
# so an epoch of fewer than LOG_EVERY_FROM steps logs about LOG_POINTS_PER_EPOCH times instead.
LOG_EVERY = 100
LOG_EVERY_FROM = 500
LOG_POINTS_PER_EPOCH = 10

# TensorBoard's writer thread looks at its queue at least every FLUSH_SECS (its default, 120,
# is also how often it flushes). A Ctrl-C or kill that lands inside TensorBoard's queue can
# lose the thread's wake-up: seen once, close() then waited out the whole 120 s before the run
# stopped (cleanly). Now that costs at most FLUSH_SECS.
FLUSH_SECS = 5


def log_interval(steps_per_epoch: int, log_every: int | None = None) -> int:
    """Steps between two ``train_loss`` points: ``log_every`` when given, else as above."""
    if log_every is not None:
        return log_every
    if steps_per_epoch >= LOG_EVERY_FROM:
        return LOG_EVERY
    return max(1, steps_per_epoch // LOG_POINTS_PER_EPOCH)


def open_writer(run_dir: Path, logdir: Path, *, purge_step: int | None = None) -> SummaryWriter:
    """A ``SummaryWriter`` (a :class:`RunWriter`) on ``run_dir``; prints where it writes.

    ``purge_step``: a resumed run's first step. TensorBoard then hides what the interrupted
    run logged at that step and after, so the curve goes on as one line.
    """
    need_tensorboard()
    print(f"TensorBoard run: {run_dir}  (view: tensorboard --logdir {logdir})")
    if (problem := viewer_problem()) is not None:
        print(f"note: {problem}")
    _quiet_writer_threads()
    try:
        return RunWriter(log_dir=str(run_dir), purge_step=purge_step, flush_secs=FLUSH_SECS)
    except OSError as e:
        if not disk.is_write_failure(e):
            raise
        raise disk.failed(run_dir, e, "--logdir DIR") from None


if SummaryWriter is not None:
    class RunWriter(SummaryWriter):
        """A ``SummaryWriter`` whose failed write is one line: :class:`~common.disk.WriteError`.

        TensorBoard writes the event file in a thread of its own. When a write fails there
        (a full disk, a file-size limit), the next ``add_*``, ``flush`` or ``close`` raises
        that ``OSError`` in the script, with no file name; here it is the event file's
        ``cannot write <file>: <cause>; ...``, so no curve is lost without a word.
        """

        def _get_file_writer(self):
            file_writer = super()._get_file_writer()
            events = file_writer.event_writer
            if not getattr(events, "_one_line_errors", False):
                for name in ("add_event", "flush", "close"):
                    setattr(events, name, _one_line(getattr(events, name), events))
                events._one_line_errors = True
            return file_writer


def _one_line(method, events):
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except OSError as e:
            if not disk.is_write_failure(e):
                raise
            e.filename = None
            where = getattr(events, "_file_name", None) or events.get_logdir()
            raise disk.failed(Path(where), e, "--logdir DIR") from None
    return call


def close(writer: SummaryWriter | None) -> None:
    """``writer.close()`` in a ``finally:``: its failed write is one line, or, while another
    error is already on its way out, nothing (that error is the one to show)."""
    if writer is None:
        return
    already_failing = sys.exc_info()[1] is not None
    try:
        writer.close()
    except disk.WriteError:
        if not already_failing:
            raise


_hook_installed = False


def _quiet_writer_threads() -> None:
    """No traceback from TensorBoard's writer thread when its write fails: the failure comes
    back in the main thread at the next write, which says it in one line (:func:`write_failure`)."""
    global _hook_installed
    if _hook_installed:
        return
    previous = threading.excepthook

    def hook(args):
        if type(args.thread).__name__ == "_AsyncWriterThread" \
                and disk.is_write_failure(args.exc_value):
            return
        previous(args)

    threading.excepthook = hook
    _hook_installed = True


def need_tensorboard() -> None:
    """Stop with one line, before any folder is made, if the tensorboard package is missing."""
    if SummaryWriter is None:
        raise UserError(f"TensorBoard is not installed in this Python ({_MISSING}): "
                        "pip install -r requirements.txt")


def viewer_problem() -> str | None:
    """Why ``tensorboard --logdir`` would not start in this Python, for the known cause (see
    :data:`FIRST_TENSORBOARD_WITHOUT_PKG_RESOURCES`), and the fix; None when it would."""
    try:
        version = importlib.metadata.version("tensorboard")
    except importlib.metadata.PackageNotFoundError:
        return None
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if numbers < FIRST_TENSORBOARD_WITHOUT_PKG_RESOURCES \
            and importlib.util.find_spec("pkg_resources") is None:
        fixed = ".".join(map(str, FIRST_TENSORBOARD_WITHOUT_PKG_RESOURCES))
        return (f"the tensorboard command will stop with \"No module named 'pkg_resources'\": "
                f"tensorboard {version} needs it and this environment's setuptools no longer "
                f"has it. Fix: pip install -U \"tensorboard>={fixed}\"")
    return None


def need_logdir(logdir: Path, script: str) -> None:
    """Stop now, before any data is read, unless TensorBoard is installed and
    ``<logdir>/<script>/`` can be made and written (a mistyped ``--logdir``)."""
    need_tensorboard()
    disk.need_writable(Path(logdir) / script, "--logdir DIR")


def make_writer(logdir: Path, script: str, run_id: str | None = None) -> SummaryWriter:
    """A ``SummaryWriter`` for a new run of ``script``; ``run_id`` defaults to the time."""
    need_logdir(logdir, script)
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


def end_hparams(writer: SummaryWriter) -> None:
    """Mark ``writer``'s HParams entry finished (status "success"): a run stopped before its
    last epoch stays "unknown" in the HParams table until a resume finishes it."""
    writer._get_file_writer().add_summary(summary.hparams({}, {})[2])
