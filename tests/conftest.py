"""Shared test helpers: load a lesson script as a module, read TensorBoard event files,
and build CIFAR-10 on disk in torchvision's real format (tiny, made here, offline)."""
from __future__ import annotations

import contextlib
import copy
import importlib
import io
import os
import pickle
import re
import resource
import socket
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    # this tree's common/ and scripts/ (docs/, dataset/, benchmarks/): the tests test the tree
    # they are in, whichever tree `pip install -e .` pointed at
    sys.path.insert(0, str(REPO))

from common import data  # noqa: E402

SCRIPTS = REPO / "scripts"


def pytest_configure(config):
    """Under pytest-xdist (``-n N``), the machine's cores shared out among the N test
    processes, and among the scripts they start: N processes each running torch on every
    core spend their time waiting on one another (OpenMP's threads spin)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def load_script(name: str, folder: str = "scripts"):
    """Import ``<folder>/<name>.py`` (a lesson by default; importing one must run nothing) as
    the module ``<folder>.<name>``: the name the benchmark imports it by too, and the one
    mutmut's mutants of it answer to (tools/mutation.sh)."""
    return importlib.import_module(f"{folder}.{name}")


def free_port() -> int:
    """A loopback port nothing listens on now: for a server a test starts, or one it refuses."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_process_launch(monkeypatch, launch_id: str = "launch-a") -> None:
    """This process as torchrun would start one of one: its environment, a free port (call
    again for a new process group)."""
    for k, v in {"RANK": 0, "WORLD_SIZE": 1, "LOCAL_RANK": 0, "LOCAL_WORLD_SIZE": 1,
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": free_port(),
                 "TORCHELASTIC_RUN_ID": launch_id, "TORCHELASTIC_RESTART_COUNT": 1}.items():
        monkeypatch.setenv(k, str(v))


def no_launch(monkeypatch) -> None:
    """This process as a plain ``python`` run, whatever launched pytest: none of torchrun's
    variables (set, a test that really sends itself SIGTERM would end pytest with it)."""
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(k, raising=False)


def ctrl_c(*args, **kwargs):
    """Stands in for a call that the learner's Ctrl-C interrupts."""
    raise KeyboardInterrupt


def after_note(out: str) -> list[str]:
    """stdout's lines after the --fake-data note, which must be the first line, and only there."""
    note = data.synthetic_note()          # called now: a test may have shrunk the fake set
    lines = out.splitlines()
    assert lines[0] == note and out.count(note) == 1
    return lines[1:]


def printed_run(out: str) -> Path:
    """The one TensorBoard run folder a script said it writes (``common.writer.open_writer``)."""
    (folder,) = re.findall(r"^TensorBoard run: (\S+)  ", out, re.M)
    return Path(folder)


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
def subprocesses_run_unmutated_code(monkeypatch):
    """Under mutation testing (tools/mutation.sh), mutmut names the mutant under test in the
    environment as well as inside this process. A script a test starts in a subprocess would
    inherit it, and its mutated copy would then look for mutmut's configuration in the
    test's folder and fail: there, the name is taken out, so a subprocess runs the code as
    written (the mutant is still active in this process, which mutmut keeps apart)."""
    monkeypatch.delenv("MUTANT_UNDER_TEST", raising=False)


@pytest.fixture(autouse=True)
def in_its_own_folder(tmp_path_factory, monkeypatch):
    """Every test runs in an empty folder of its own: whatever code writes relative to the
    working directory lands there, never in the repository, nor where the next test would
    find it (under mutation testing, a mutant that put CIFAR-10 in ./None let later mutants
    read it). Beside ``tmp_path``, not in it, so that a test's listing of ``tmp_path`` and the
    paths printed for pasting (``cli.shown`` shortens those under the working directory)
    stay as they were."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


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


def course_test_pass(gst, images: torch.Tensor, targets: torch.Tensor, batch_size: int,
                     normalize=None) -> tuple[float, int]:
    """Oracle for a test pass: ``(the sum of each batch's mean cross-entropy, the number of
    images classified right)`` of ``gst`` on uint8 ``images``, batches taken in order (the last
    one partial). Computed apart from the scripts: a float64 copy of the model over the whole
    set at once, the loss written out as logsumexp(logits) - logit of the target."""
    model = copy.deepcopy(gst).to("cpu", torch.float64).eval()
    x = images.to(torch.float64) / 255
    if normalize is not None:
        mean, std = normalize
        x = (x - mean) / std
    with torch.no_grad():
        logits = model(x.contiguous())
    per_image = torch.logsumexp(logits, 1) - logits[torch.arange(len(targets)), targets]
    total = sum(chunk.mean().item() for chunk in per_image.split(batch_size))
    return total, int((logits.argmax(1) == targets).sum())


def sideways_photo(path: Path) -> Path:
    """A JPEG as a phone stores a photo held upright: the pixels sideways, 40 wide and 20 high
    (left half red, right half blue), and the EXIF orientation 6, "turn 90 degrees clockwise
    to show". Shown upright it is 20 wide and 40 high: red on top, blue below."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6                      # Orientation
    Image.fromarray(pixels).save(path, "JPEG", quality=95, exif=exif)
    return path


def upright_photo(path: Path) -> Path:
    """:func:`sideways_photo` as it is shown: red on top, blue below, with no EXIF tag."""
    pixels = np.zeros((40, 20, 3), np.uint8)
    pixels[:20] = (255, 0, 0)
    pixels[20:] = (0, 0, 255)
    Image.fromarray(pixels).save(path, "JPEG", quality=95)
    return path
