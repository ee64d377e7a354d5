"""Runs: one id per run of a script, naming its TensorBoard folder and its checkpoint folder.

A run of ``p23_train`` owns ``<logdir>/p23_train/<run-id>/`` and
``<checkpoint-dir>/p23_train/<run-id>/`` — the same id in both, so a checkpoint leads to its
curves, and no run ever writes into another's folders. The id is the start time,
``YYYYmmdd-HHMMSS`` (``-2``, ``-3``... when that second is taken).
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from common.cli import UserError, shown
from common import disk
from common.disk import make_dir

_EPOCH = re.compile(r"_(\d+)\.pth$")


def new_run(script: str, *roots: Path, run_id: str | None = None) -> tuple[str, list[Path]]:
    """Create ``<root>/<script>/<id>`` under every root with one fresh id; return the id and folders.

    ``mkdir`` is atomic, so two runs started in the same second can't take the same id.
    """
    stem = run_id or time.strftime("%Y%m%d-%H%M%S")
    bases = [Path(root) / script for root in roots]
    for base in bases:
        make_dir(base)
    for n in range(1, 10_000):
        candidate = stem if n == 1 else f"{stem}-{n}"
        made: list[Path] = []
        try:
            for base in bases:
                # parents=True: remade if another run's check (disk.need_writable) has just
                # removed the empty base it made; an existing id still raises FileExistsError
                (base / candidate).mkdir(parents=True)
                made.append(base / candidate)
            return candidate, made
        except FileExistsError:
            for folder in made:          # taken in one root: free the others, try the next id
                folder.rmdir()
        except OSError as e:
            raise disk.failed(base / candidate, e) from None
    raise RuntimeError(f"no free run id under {', '.join(map(str, bases))}")


def epoch_of(path: Path) -> int | None:
    """The N of ``<name>_N.pth``, or None for another name."""
    m = _EPOCH.search(Path(path).name)
    return int(m.group(1)) if m else None


def checkpoints_of(run_dir: Path) -> list[Path]:
    """A run folder's ``<name>_N.pth`` files, in epoch order."""
    found = [p for p in Path(run_dir).glob("*.pth") if p.is_file() and epoch_of(p) is not None]
    return sorted(found, key=epoch_of)


def latest_checkpoint(checkpoint_root: Path, script: str) -> Path | None:
    """The last epoch's checkpoint of the newest run of ``script`` under ``checkpoint_root``.

    The newest run is the one whose latest checkpoint was written last (a resumed old run
    counts as newer than a run started before it was resumed). None when there is no run.
    """
    runs = [checkpoints_of(d) for d in (Path(checkpoint_root) / script).glob("*/") if d.is_dir()]
    runs = [files for files in runs if files]
    if not runs:
        return None
    newest = max(runs, key=lambda files: (max(p.stat().st_mtime_ns for p in files),
                                          files[-1].parent.name))
    return newest[-1]


def need_latest_checkpoint(checkpoint_root: Path, script: str, how: str) -> Path:
    """:func:`latest_checkpoint`, or one :class:`UserError` line saying how to make one
    (``how``), or, when ``--checkpoint-dir`` runs through a file, that it does: a run started
    there would fail the same way."""
    found = latest_checkpoint(checkpoint_root, script)
    if found is None:
        where = Path(checkpoint_root) / script
        if (afile := disk.file_in_the_way(where)) is not None:
            raise UserError(f"no {script} run in {where}: {shown(afile)} is a file, not a folder; "
                            "name the folder that holds the runs with --checkpoint-dir DIR")
        raise UserError(f"no {script} run in {where}: {how}")
    return found
