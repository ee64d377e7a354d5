"""Shared test helpers: load a lesson script as a module, read TensorBoard event files,
and build CIFAR-10 on disk in torchvision's real format (tiny, made here, offline)."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import pickle
import resource
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from common import data

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"


def load_script(name: str):
    """Import ``scripts/<name>.py`` as a module (importing must run nothing)."""
    path = SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"lesson_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def after_note(out: str) -> list[str]:
    """stdout's lines after the --fake-data note, which must be the first line, and only there."""
    note = data.synthetic_note()          # called now: a test may have shrunk the fake set
    lines = out.splitlines()
    assert lines[0] == note and out.count(note) == 1
    return lines[1:]


def run_dirs(logdir: Path, script: str) -> list[Path]:
    """The run folders a script made under ``<logdir>/<script>/``."""
    base = Path(logdir) / script
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def only_run(logdir: Path, script: str) -> Path:
    runs = run_dirs(logdir, script)
    assert len(runs) == 1, f"expected one run under {logdir}/{script}, found {runs}"
    return runs[0]


def events(run_dir: Path) -> EventAccumulator:
    """All events of a run (no sampling), loaded."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0,
                                                        "tensors": 0, "graph": 0})
    acc.Reload()
    return acc


def scalar_tags(run_dir: Path) -> set[str]:
    return set(events(run_dir).Tags()["scalars"])


def image_tags(run_dir: Path) -> set[str]:
    return set(events(run_dir).Tags()["images"])


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in events(run_dir).Scalars(tag)]


def decoded(source, tag: str) -> dict[int, np.ndarray]:
    """``{step: HWC uint8 array}`` of an image tag, decoded from the event file's PNGs.

    ``source`` is a run folder or an already loaded :class:`EventAccumulator`."""
    acc = source if isinstance(source, EventAccumulator) else events(source)
    return {e.step: np.asarray(Image.open(io.BytesIO(e.encoded_image_string)))
            for e in acc.Images(tag)}


def write_cifar10(root: Path, n_train: int = 50, n_test: int = 20, seed: int = 0) -> Path:
    """A tiny CIFAR-10 in torchvision's on-disk format: ``root/cifar-10-batches-py/``.

    Five ``data_batch_N`` pickles, ``test_batch`` and ``batches.meta``, each image 3072 uint8
    values (R plane, G plane, B plane) as in the real files; labels 0..9. The real files' md5
    sums can't be matched, so tests pair this with ``real_cifar`` below.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(name: str, n: int):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)

    per = -(-n_train // 5)
    for i in range(1, 6):
        batch(f"data_batch_{i}", per)
    batch("test_batch", n_test)
    names = ["airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names}, f)
    return Path(root)


@pytest.fixture
def real_cifar(tmp_path, monkeypatch) -> Path:
    """A data root holding a tiny CIFAR-10 that torchvision's real ``CIFAR10`` class reads.

    torchvision checks each file's md5 against the official ones; only that check
    (file exists and md5 matches -> file exists) is replaced, so parsing, ``.data``/``.targets``/``.classes`` and transforms are the real code.
    """
    import torchvision.datasets.cifar as cifar
    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: Path(fpath).is_file())
    return write_cifar10(tmp_path / "data")


@contextlib.contextmanager
def file_size_limit(n: int):
    """No file of this process can grow past ``n`` bytes, until the block ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size)``: a folder on a tmpfs of that size (``"3m"``), unmounted after."""
    mounted = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk-{size}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=True)


@pytest.fixture
def offline(monkeypatch):
    """Make every download fail as it does with no network: URLError from urllib."""
    import torchvision.datasets.utils as utils

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(utils, "_urlretrieve", no_network)
    monkeypatch.setattr("urllib.request.urlopen", no_network)


@pytest.fixture(autouse=True)
def default_outputs(request, tmp_path, monkeypatch):
    """A script called in a test without --logdir or --checkpoint-dir writes under the test's
    own folder, never into the repository's logs/ and checkpoints/ (a learner's runs).
    A test marked ``repository_defaults`` sees the real defaults (and must not write)."""
    from common import paths
    if request.node.get_closest_marker("repository_defaults"):
        return
    monkeypatch.setattr(paths, "LOGS_DIR", tmp_path / "default-logs")
    monkeypatch.setattr(paths, "CHECKPOINT_DIR", tmp_path / "default-checkpoints")
