"""The flags every script shares, and the wrapper that turns a user error into one line.

Each ``*_flags()`` returns a parent parser (``add_help=False``) to pass in ``parents=[...]``,
so a flag has one spelling, one meaning and one default everywhere::

    parser = argparse.ArgumentParser(description=__doc__, parents=[cli.device_flags()])

``@cli.entrypoint`` on ``main(argv) -> int`` prints ``error: ...`` on stderr and returns a
non-zero code for a :class:`UserError`, instead of a traceback; Ctrl-C, and ``kill`` (SIGTERM),
stop it the same clean way.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Callable

from common import paths


class UserError(Exception):
    """Bad input from the user: a missing file, a wrong folder, an absent device...

    The message is shown as one line, ``error: <message>``, and the script exits 1.
    """


EXIT_ERROR = 1
EXIT_INTERRUPTED = 130                       # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM       # 143


class _Terminated:
    """SIGTERM (``kill PID``, ``timeout``, a job scheduler's stop) raised as Ctrl-C is, so a
    run stops the same clean way: what was saved is kept, and the line says how to go on.
    Python's default for it is to die at once, silently. Not under torchrun (or any launch
    that sets its variables), whose agent stops its processes with SIGTERM and handles their
    exit itself; only in the main thread, the one Python runs signal handlers in."""
    received = False
    LEFT = object()          # install() left SIGTERM as it was: nothing to put back

    @classmethod
    def handler(cls, signum, frame):
        cls.received = True
        raise KeyboardInterrupt

    @classmethod
    def install(cls):
        """The handler in place, returning the one it replaced (``LEFT``: left as it was)."""
        launched = {"TORCHELASTIC_RUN_ID", "LOCAL_RANK", "RANK", "WORLD_SIZE"} & set(os.environ)
        if launched or threading.current_thread() is not threading.main_thread():
            return cls.LEFT
        cls.received = False
        return signal.signal(signal.SIGTERM, cls.handler)


@contextlib.contextmanager
def finishing(what: str):
    """Ctrl-C or ``kill`` while ``what`` is being written: write it to the end, then stop.

    A stop between an epoch's TensorBoard points and its checkpoint left points that no
    checkpoint goes on from, and the resume drew that epoch a second time beside them; inside
    this block the stop waits (a second Ctrl-C stops at once). Only the signals that raise
    KeyboardInterrupt in this (main) thread are held: under torchrun, SIGTERM stays the agent's.
    """
    held = [signum for signum in (signal.SIGINT, signal.SIGTERM)
            if signal.getsignal(signum) in (signal.default_int_handler, _Terminated.handler)]
    if threading.current_thread() is not threading.main_thread() or not held:
        yield
        return
    before = {signum: signal.getsignal(signum) for signum in held}
    pending = []

    def hold(signum, frame):
        if pending:                                   # a second one: stop now
            before[signum](signum, frame)
        pending.append(signum)
        again = "Ctrl-C again" if signum == signal.SIGINT else "a second kill"
        try:     # (a handler that prints while stderr is mid-write gets "reentrant call")
            print(f"finishing {what}, then stopping ({again} stops at once)", file=sys.stderr)
        except (OSError, RuntimeError, ValueError):
            pass

    def set_all(handlers):
        for signum, handler in handlers.items():
            signal.signal(signum, handler)

    try:     # (set inside the try: a stop landing between the two still puts both back)
        set_all({signum: hold for signum in held})
        yield
    finally:
        set_all(before)
    if pending:                                   # the stop that waited, as it would have been
        before[pending[0]](pending[0], None)


def entrypoint(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap ``main(argv) -> int`` so a :class:`UserError` or Ctrl-C ends with one line."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        previous = _Terminated.install()
        try:
            return main(*args, **kwargs)
        except UserError as e:
            print(f"error: {_which_process()}{e}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt as e:    # its message, where one says what was kept
            if not _which_process():      # under torchrun, rank 0 speaks for all
                print(str(e) or ("terminated" if _Terminated.received else "interrupted"),
                      file=sys.stderr)
            if getattr(e, "exit_at_once", False):   # see distributed.process_group
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except (OSError, ValueError):     # a closed pipe: nothing to keep
                        pass
                os._exit(EXIT_INTERRUPTED)            # no interpreter clean-up to hang in
            return EXIT_TERMINATED if _Terminated.received else EXIT_INTERRUPTED
        except BrokenPipeError as e:
            # The output was piped into a reader that stopped early (`... | head`): stop
            # quietly (a training run says on stderr what it kept, ``e.stopped``), and point
            # stdout at devnull so the interpreter's final flush is silent.
            if getattr(e, "stopped", None) and not _which_process():
                try:
                    print(e.stopped, file=sys.stderr)
                except (OSError, ValueError):
                    pass
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            return EXIT_ERROR
        except OSError as e:     # after BrokenPipeError, itself an OSError
            # A write that failed where no line of ours says so (common/disk words the rest).
            from common import disk
            if e.errno not in disk.ONLY_WRITES:
                raise
            print(f"error: {_which_process()}{disk.failed(None, e)}", file=sys.stderr)
            return EXIT_ERROR
        finally:
            if previous is not _Terminated.LEFT:
                # (None: a handler set outside Python, which signal cannot name: the default)
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    return wrapper


def output_name() -> str:
    """What a failed write that names no file was writing: this program's printed output
    (a print() to a file on a full disk), and where it goes when that can be told."""
    try:
        where = os.readlink(f"/proc/self/fd/{sys.stdout.fileno()}")
    except (OSError, ValueError, AttributeError):
        where = None
    return "the printed output (standard output" + (f", {where}" if where else "") + ")"


def _which_process() -> str:
    """``"rank N: "`` in a torchrun process other than rank 0, whose errors say who they are."""
    rank = os.environ.get("RANK", "0")
    return "" if rank == "0" else f"rank {rank}: "


# --- numbers, checked where they are parsed ------------------------------------------------
# Each is an argparse ``type=``: a value out of range is argparse's own error naming the flag,
# ``error: argument --epochs: must be 1 or more, not 0``, and exit 2, before any work starts.

FLOAT32_MAX = 3.4028234663852886e38     # torch.finfo(torch.float32).max
FLOAT32_SMALLEST = 1.401298464324817e-45  # the smallest float32 above 0 (a subnormal)
INT64_MAX = 2**63 - 1                    # torch.iinfo(torch.int64).max


def _short(text: str) -> str:
    """A number as typed, cut to its first and last digits when it runs past one line."""
    return text if len(text) <= 30 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"


def _checked(cast: Callable[[str], float], ok: Callable[[float], bool], words: str,
             name: str) -> Callable[[str], float]:
    kind = "a whole number" if cast is int else "a number"

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            shown = repr(text) if len(text) <= 30 else _short(text)
            raise argparse.ArgumentTypeError(f"must be {kind}, {words}; not {shown}") from None
        if cast is int:
            # Python's ints have no end, torch's (int64) do; math.isfinite(10**400) would
            # raise OverflowError, which argparse shows as a traceback.
            if abs(value) > INT64_MAX:
                raise argparse.ArgumentTypeError(f"must be a whole number torch holds (at most "
                                                 f"{INT64_MAX}), {words}; not {_short(text)}")
        # float("nan") and float("inf") parse: neither is a learning rate or a momentum.
        elif not math.isfinite(value):        # inf is "above 0", but no step size
            raise argparse.ArgumentTypeError(f"must be a finite number, {words}; not "
                                             f"{_short(text)}")
        elif abs(value) > FLOAT32_MAX:         # the weights are float32: SGD's step overflows
            raise argparse.ArgumentTypeError(f"must be a number float32 holds (at most "
                                             f"{FLOAT32_MAX:.4g}), {words}; not {_short(text)}")
        elif 0 < abs(value) < FLOAT32_SMALLEST:  # 0 in float32: --lr 1e-50 trained nothing
            raise argparse.ArgumentTypeError(f"must be a number float32 holds (at least "
                                             f"{FLOAT32_SMALLEST:.4g}, else it is 0), {words}; "
                                             f"not {_short(text)}")
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {words}, not {_short(text)}")
        return value

    parse.__name__ = name
    return parse


positive_int = _checked(int, lambda v: v >= 1, "1 or more", "positive_int")
positive_float = _checked(float, lambda v: v > 0, "above 0", "positive_float")
SEED_MAX = 2**32 - 1     # numpy and torch both take any seed in 0 .. 2**32 - 1
seed_int = _checked(int, lambda v: 0 <= v <= SEED_MAX, f"0 to {SEED_MAX}", "seed_int")
# A DataLoader worker is a process of its own: more of them than the CPUs this process may
# use only slows loading down (DataLoader warns so itself), and by the hundred they fill the
# memory until the system kills processes. os.sched_getaffinity is what DataLoader counts.
CPUS = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 1)
workers_int = _checked(int, lambda v: 0 <= v <= CPUS,
                       f"0 to {CPUS} (the CPUs here: each worker is a process)", "workers_int")
# A wait for the other processes: beyond a week is no wait a person means, and gloo's and the
# TCP store's clocks overflow (1e10 s gave an instant "timed out", 1e13 s a traceback).
TIMEOUT_MAX_S = 7 * 24 * 3600
timeout_seconds = _checked(float, lambda v: 0 < v <= TIMEOUT_MAX_S,
                           f"above 0 and at most {TIMEOUT_MAX_S} (a week)", "timeout_seconds")
# SGD's momentum: 0 is none (the course), 0.9 the usual; 1 or more never forgets a step and
# the weights run away.
momentum_float = _checked(float, lambda v: 0 <= v < 1, "0 or more and below 1", "momentum_float")


_positive_int_or_all = _checked(int, lambda v: v >= 1, "1 or more, or all", "positive_int_or_all")


def positive_int_or_all(text: str) -> int | None:
    """A count, or ``all`` (None): ``--max-batches all`` runs every batch."""
    return None if text.strip().lower() == "all" else _positive_int_or_all(text)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line: ``error: argument --epochs: ...``, exit 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def device_flags() -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to compute; auto picks the accelerator if there is one (default: auto)")
    return p


def data_flags(*, num_workers: bool = True) -> argparse.ArgumentParser:
    """Flags of the CIFAR-10 lessons (``num_workers=False`` for a script without a DataLoader)."""
    p = _parent()
    p.add_argument("--data-root", type=Path, default=paths.DATASET_DIR,
                   help="where datasets live; CIFAR-10 is downloaded here when missing "
                        "(default: dataset/ in the repository)")
    p.add_argument("--fake-data", action="store_true",
                   help="use a small CIFAR-shaped synthetic set: no download, no network "
                        "(default: off, the real CIFAR-10)")
    p.add_argument("--mirror", action="append", default=None, metavar="URL",
                   help="a URL (or a path) of cifar-10-python.tar.gz to get CIFAR-10 from, tried "
                        "before $CIFAR10_MIRROR and the built-in sources; repeat it for "
                        "several (the file must have torchvision's md5) (default: none)")
    if num_workers:
        p.add_argument("--num-workers", type=workers_int, default=0,
                       help="DataLoader worker processes, at most the CPUs here "
                            f"({CPUS}); 0 loads in the main process (default: 0)")
    return p


def image_folder_flags(default: Path | None = paths.SAMPLE_IMAGE_FOLDER) -> argparse.ArgumentParser:
    """``--image-folder``: a folder with ``train/`` and ``val/``, one sub-folder per class."""
    p = _parent()
    shown = "none" if default is None else _show(default)
    p.add_argument("--image-folder", type=Path, default=default,
                   help="a folder holding train/ and val/, each with one sub-folder per class, "
                        f"like the course's ants/bees data (default: {shown})")
    return p


def image_flags() -> argparse.ArgumentParser:
    """``--image``: one picture of ``--image-folder`` (the lessons that look at a single image)."""
    p = _parent()
    p.add_argument("--image", default="train/ants/0013035.jpg",
                   help="the picture: a path from here, or one inside --image-folder "
                        "(default: train/ants/0013035.jpg, the course's ant)")
    return p


def image_path(image: str, image_folder: Path) -> Path:
    """``--image``: the file it names from here (a tab-completed path), or the one inside
    ``--image-folder`` (the default's ``train/ants/...``). Neither, or two different files,
    is one :class:`UserError`."""
    given = Path(image)
    if given.is_absolute():
        return given
    inside = image_folder / given
    if given.exists() and inside.exists() and not os.path.samefile(given, inside):
        raise UserError(f"--image {image} names two pictures, {given.resolve()} (from here) "
                        f"and {inside} (in --image-folder): give the one you mean by its "
                        "full path")
    if given.exists():
        return given
    if not inside.exists():
        raise UserError(f"image not found: {image}, neither from here ({Path.cwd()}) nor in "
                        f"--image-folder {image_folder}")
    return inside


def logdir_flags() -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--logdir", type=Path, default=paths.LOGS_DIR,
                   help="TensorBoard root; each run goes to <logdir>/<script>/<run-id>/ "
                        "(default: logs/ in the repository)")
    return p


def checkpoint_flags(help: str = "where checkpoints are written and looked for "
                                  "(default: checkpoints/ in the repository)"
                     ) -> argparse.ArgumentParser:
    """``--checkpoint-dir``; ``help`` says what it means to the script (which sub-folder)."""
    p = _parent()
    p.add_argument("--checkpoint-dir", type=Path, default=paths.CHECKPOINT_DIR, help=help)
    return p


def trust_flags() -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading a whole pickled model (the course's torch.save(model)). "
                        "Unpickling can run arbitrary code: only for files you made yourself "
                        "(default: off, weights only)")
    return p


def verbose_flags(what: str) -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--verbose", action="store_true", help=f"{what} (default: off)")
    return p


def seed_flags(default: int | None = None) -> argparse.ArgumentParser:
    p = _parent()
    _add_seed(p, default)
    return p


def _add_seed(p: argparse.ArgumentParser, default: int | None, kernels: bool = False) -> None:
    # kernels: the script calls common.device.choose_kernels(device, repeatable=seed given)
    cuda = ("; on CUDA it also picks deterministic kernels (cuDNN's autotuner off, "
            "torch.use_deterministic_algorithms), as torchvision's reference scripts do: the "
            "same numbers every run, a little slower" if kernels else "")
    p.add_argument("--seed", type=seed_int, default=default,
                   help=f"random seed for repeatable runs{cuda} (default: "
                        f"{'none, a fresh run each time' if default is None else default})")


def train_flags(*, batch_size: int = 64, epochs: int | None = 10, lr: float | None = 0.01,
                seed: int | None = None, kernels: bool = False,
                epochs_are: str = "passes over the training data") -> argparse.ArgumentParser:
    """``--batch-size --epochs --lr --seed``; the course's values are the defaults.

    A lesson that has no use for ``--epochs`` or ``--lr`` passes ``None`` to leave it out;
    ``epochs_are`` says what its epochs are, where that is not training on the training set.
    ``kernels``: the lesson trains on the device and calls
    :func:`common.device.choose_kernels`, so ``--help`` says what ``--seed`` does on CUDA.
    """
    p = _parent()
    p.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help=f"images per batch (default: {batch_size})")
    if epochs is not None:
        p.add_argument("--epochs", type=positive_int, default=epochs,
                       help=f"{epochs_are} (default: {epochs})")
    if lr is not None:
        p.add_argument("--lr", type=positive_float, default=lr,
                       help=f"learning rate of SGD (default: {lr})")
    _add_seed(p, seed, kernels)
    return p


def parser(doc: str | None, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The script's parser: its docstring as the description, the shared flags as parents."""
    return _Parser(description=doc, parents=list(parents),
                   formatter_class=argparse.RawDescriptionHelpFormatter)


def counted(n: int, thing: str, things: str | None = None) -> str:
    """``"1 epoch"``, ``"2 epochs"``: ``n`` and ``thing``, plural (``things``, by default
    ``thing + "s"``) but for 1."""
    return f"{n} {thing if n == 1 else things or thing + 's'}"


def reason(e: BaseException) -> str:
    """An exception in a few words for an error line: its ``reason`` (urllib's errors carry
    one) or itself, first line only; its type's name when it has no message."""
    why = getattr(e, "reason", None) or e
    return str(why).splitlines()[0] if str(why) else type(e).__name__


class _Unset(list):
    """The marker :func:`given` leaves where the command line said nothing."""


def given(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations ``argv`` sets itself, as opposed to their defaults (``{"epochs"}``...).

    argparse fills a default only where the namespace lacks the attribute, so parsing into a
    namespace already holding a marker leaves the marker wherever the command line said nothing.
    """
    unset = _Unset()       # a list, so that an "append" flag (--mirror) can copy and extend it
    marked = argparse.Namespace(**{k: unset for k in vars(parser.parse_args(argv))})
    return {k for k, v in vars(parser.parse_args(argv, namespace=marked)).items() if v is not unset}


def command_line(script: str | Path, *args: str | Path, launcher: list[str] | None = None) -> str:
    """A shell line that runs ``script`` with ``args`` again, to print for pasting.

    Paths are shown as :func:`shown` shows them. The program (``python``, or ``launcher``'s
    first word, ``["torchrun", ...]``) is the one beside this interpreter: by its name where
    the shell finds that very one by it, else by its full path.
    """
    program, *words = launcher or [Path(sys.executable).name]
    return shlex.join([_beside_python(program), *words,
                       *(shown(a) if isinstance(a, Path) else str(a) for a in (script, *args))])


def _beside_python(name: str) -> str:
    """``name``, or the full path of the program of that name in this interpreter's folder
    (a venv's ``bin``, with its ``torchrun``) where the shell would find another one, or none,
    by the name: a venv used by its path, not activated. ``name`` where that folder lacks it."""
    beside = Path(sys.executable).parent / name
    on_path = shutil.which(name)
    if (on_path and _same_place(Path(on_path), beside)) or not beside.exists():
        return name
    return str(beside)


def _same_place(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file name in one folder (folder links followed). Not
    the file itself: a venv's ``bin/python`` links to the Python it was made from, and only
    run by its own path does it see the venv's packages."""
    return a.name == b.name and a.parent.resolve() == b.parent.resolve()


def without(argv: list[str], flag: str) -> list[str]:
    """``argv`` less ``flag`` and its value, in either spelling (``--lr 1``, ``--lr=1``), and
    as argparse's abbreviations (``--res last``), which the command parsed, so mean ``flag``."""
    kept, skip = [], False
    for arg in argv:
        name, eq, _ = arg.partition("=")
        if skip:
            skip = False
        elif arg.startswith("--") and len(name) > 2 and flag.startswith(name):
            skip = not eq
        else:
            kept.append(arg)
    return kept


def shown(path: Path) -> str:
    """A path as the user can paste it here: as typed when relative, relative to the working
    directory when inside it, else absolute."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    for inside, cwd in ((path, Path.cwd()), (path.resolve(), Path.cwd().resolve())):
        try:
            return str(inside.relative_to(cwd))
        except ValueError:
            pass
    return str(path)


def _show(path: Path) -> str:
    """A default path as the user sees it: relative to the repository when inside it."""
    try:
        return str(path.relative_to(paths.REPO_ROOT)) + "/"
    except ValueError:
        return str(path)
