"""p23 launched by torchrun: DistributedDataParallel over 2 CPU processes with gloo, as a
learner launches it, and what happens when one of the processes dies or hangs."""
from __future__ import annotations

import json
import os
import re
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import ImageFolder

from common import checkpoint, cli, data, distributed
from common.model import GST
from conftest import REPO, load_script, one_process_launch, scalars
from test_p23_train import sha256_of_weights

p23 = load_script("p23_train")
SCRIPT = REPO / "scripts" / "p23_train.py"
# `torchrun` is this module run by the venv's python; the -m spelling finds it in any venv.
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]

needs_proc = pytest.mark.skipif(not Path("/proc/self/environ").exists(),
                                reason="finds torchrun's worker processes in /proc")


def _paths(tmp_path):
    return ["--device", "cpu", "--logdir", str(tmp_path / "logs"),
            "--checkpoint-dir", str(tmp_path / "ckpt")]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    """An --image-folder of 3 classes told apart by colour: 100 training pictures each and 30
    to test, 32x32 PNG. Small, so the processes' start-up is most of a test's time."""
    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for split, n in (("train", 100), ("val", 30)):
        for name, colour in {"red": (200, 60, 60), "green": (60, 200, 60),
                             "blue": (60, 60, 200)}.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = rng.normal(colour, 60, (32, 32, 3)).clip(0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def _course_numbers(state, folder: Path, batch_size=64) -> tuple[float, float]:
    """Oracle: the saved weights on ``folder/val`` in one process, the course's way, through
    torchvision's ImageFolder, ToTensor and Normalize: (accuracy, the sum of each batch's
    mean loss)."""
    gst = GST(len(state["classes"]))
    gst.load_state_dict(state["model"])
    gst.eval()
    val = ImageFolder(folder / "val", transform=transforms.Compose([
        transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]))
    right, total_loss = 0, 0.0
    with torch.no_grad():
        for imgs, targets in DataLoader(val, batch_size=batch_size):
            outputs = gst(imgs)
            total_loss += nn.CrossEntropyLoss()(outputs, targets).item()
            right += (outputs.argmax(1) == targets).sum().item()
    return right / len(val), total_loss


class Launch:
    """``torchrun ... scripts/p23_train.py ARGS`` in the background, its output in files.
    A launch still running when its test ends is killed, workers too (see ``no_leftovers``)."""
    running: list["Launch"] = []

    def __init__(self, tmp_path: Path, *args, torchrun=()):
        self.out, self.err = tmp_path / "out.txt", tmp_path / "err.txt"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([*TORCHRUN, *torchrun, str(SCRIPT), *map(str, args)],
                                         cwd=tmp_path, stdout=out, stderr=err)
        Launch.running.append(self)

    def kill(self) -> None:
        """SIGKILL torchrun and every process under it (its workers have sessions of their
        own, so no process group reaches them)."""
        def tree(pid):
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                children = []
            return [pid, *(p for child in map(int, children) for p in tree(child))]

        for pid in tree(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def wait(self, timeout=120) -> tuple[int, str, str]:
        rc = self.proc.wait(timeout=timeout)
        return rc, self.out.read_text(), self.err.read_text()

    def worker(self, rank: int) -> int:
        """The pid of the worker process of ``rank`` (torchrun's child with RANK=rank)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        for pid in map(int, children.split()):
            if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                return pid
        raise AssertionError(f"no worker of rank {rank} among {children!r}")

    def when(self, path_glob: str, root: Path, timeout=120) -> Path:
        """Wait until a file matching ``path_glob`` under ``root`` exists; return it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                found = list(root.glob(path_glob))
            except FileNotFoundError:    # (Python 3.11: a folder removed while it was listed)
                found = []
            if found:
                return found[0]
            assert self.proc.poll() is None, self.err.read_text()
            time.sleep(0.01)
        raise AssertionError(f"no {path_glob} after {timeout} s")


@pytest.fixture(autouse=True)
def no_leftovers():
    """A failed test leaves no torchrun behind: six hung ones once slowed every later test."""
    yield
    while Launch.running:
        launch = Launch.running.pop()
        if launch.proc.poll() is None:
            launch.kill()


def _printed(out: str, words: str) -> list[float]:
    return [float(v) for v in re.findall(words + r" ([\d.]+)", out)]


@needs_proc
def test_two_processes_train_what_one_process_trains_through_a_killed_worker(tmp_path, pictures,
                                                                            capsys):
    recipe = ["--image-folder", str(pictures), "--lr", "0.02", "--momentum", "0.9", "--epochs", "6"]
    # The oracle: one process, batches of 128.
    one = tmp_path / "one"
    assert p23.main([*recipe, "--seed", "0", "--batch-size", "128", *_paths(one)]) == 0
    capsys.readouterr()
    (one_run,) = (one / "ckpt" / "p23_train").iterdir()
    ones = [checkpoint.load(one_run / f"gst_{i}.pth") for i in range(6)]

    # torchrun goes on from its first epoch with two processes at batches of 64, and restarts
    # them once when one is killed. Each step averages the gradients of two batches of 64 from
    # the same shuffled order: the one-process step on those 128 images.
    launch = Launch(tmp_path, "--resume", one_run / "gst_0.pth", "--batch-size", 64,
                    "--metrics", tmp_path / "m.json", *_paths(tmp_path),
                    torchrun=["--max-restarts=1"])
    launch.when("ckpt/p23_train/*/gst_1.pth", tmp_path)
    os.kill(launch.worker(1), signal.SIGKILL)
    rc, out, err = launch.wait()
    assert rc == 0, err

    # Rank 0 alone prints the course's lines (and the progress bar): once in each start.
    assert out.count("训练数据集的长度为：300") == 2 and out.count("-------第 2 轮训练开始") == 1
    assert out.count("-------第 6 轮训练开始") == 1
    assert re.search(r"torchrun launch \S+ \(restart 1\): going on from \S*gst_\d.pth", out)
    assert "torchrun: 2 processes on 1 machine(s), each training on batches of 64: 128 images " \
           "a step in all" in out
    assert "train_loss every 1 step (3 steps an epoch)" in out      # 300 / 128 a step
    assert "epoch 6/6:" in err and "rank 1" not in err

    # One set of files, rank 0's: a new run (gst_0 is another run's), gone on after the kill.
    (run,) = (tmp_path / "ckpt" / "p23_train").iterdir()
    assert sorted(p.name for p in run.iterdir()) == [f"gst_{i}.pth" for i in range(1, 6)]
    (logs,) = (tmp_path / "logs" / "p23_train").iterdir()
    assert logs.name == run.name and len(list(logs.iterdir())) == 2        # one file a start
    assert [s for s, _ in scalars(logs, "test_accuracy")] == [1, 2, 3, 4, 5]
    assert [s for s, _ in scalars(logs, "train_loss")] == list(range(4, 19))
    states = [checkpoint.load(run / f"gst_{i}.pth") for i in range(1, 6)]
    assert [(s["world_size"], s["total_train_step"]) for s in states] == \
        [(2, 3 * i) for i in range(2, 7)]
    assert len({s["torchrun_launch"] for s in states}) == 1 and states[0]["torchrun_launch"]

    # The same model as one process: the same weights (momentum and shuffle carried through
    # the resume and the restart), the same test accuracy each epoch.
    for name, tensor in ones[5]["model"].items():
        torch.testing.assert_close(states[-1]["model"][name], tensor, rtol=1e-4, atol=1e-5)
    assert [s["test_accuracy"] for s in states] == [s["test_accuracy"] for s in ones[1:]]
    assert states[-1]["test_accuracy"] > 0.5                          # chance is 1/3

    # The test pass covered the whole test set once: the printed numbers are those of the
    # saved weights on all 90 pictures, in one process, the course's way.
    accuracy, loss = _printed(out, "整体测试集上的正确率:"), _printed(out, "整体测试集上的Loss:")
    assert (accuracy[-1], loss[-1]) == pytest.approx(_course_numbers(states[-1], pictures),
                                                     rel=1e-5)

    # The processes ended with the same weights, the checkpoint's.
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["world_size"] == 2
    # each process counted its share of the test set: the confusion matrix holds all 90
    matrix = m["confusion_matrix"]
    assert sum(map(sum, matrix)) == 90
    assert sum(matrix[k][k] for k in range(3)) / 90 == pytest.approx(accuracy[-1])
    assert m["weights_sha256_by_rank"] == [sha256_of_weights(run / "gst_5.pth")] * 2

    # A checkpoint written under torchrun goes on in one process, in the same run.
    assert p23.main(["--resume", str(run / "gst_5.pth"), "--epochs", "7",
                     *_paths(tmp_path)]) == 0
    assert f"resuming run {run.name}" in capsys.readouterr().out
    state = checkpoint.load(run / "gst_6.pth")
    assert state["world_size"] == 1 and state["total_train_step"] == 18 + 5   # 300 / 64


@needs_proc
def test_without_restarts_a_killed_worker_ends_the_run_and_keeps_its_checkpoints(tmp_path,
                                                                                pictures):
    launch = Launch(tmp_path, "--image-folder", pictures, "--epochs", 30, *_paths(tmp_path))
    first = launch.when("ckpt/p23_train/*/gst_0.pth", tmp_path)
    os.kill(launch.worker(1), signal.SIGKILL)
    killed = time.monotonic()
    rc, out, err = launch.wait(timeout=60)
    assert rc != 0 and time.monotonic() - killed < 10           # torchrun stops rank 0 at once
    assert "Signal 9 (SIGKILL) received" in err
    saved = sorted(first.parent.iterdir())
    assert 1 <= len(saved) < 30 and all(p.suffix == ".pth" for p in saved)  # no temporary file
    assert [checkpoint.load(p)["epoch"] for p in saved] == list(range(len(saved)))


@needs_proc
def test_a_hung_worker_ends_the_run_after_dist_timeout(tmp_path, pictures):
    # SIGSTOP: alive but silent, as a process stuck or cut off from the network. Rank 0 waits
    # --dist-timeout at the next step's all-reduce, then stops with one line and the command
    # that goes on.
    launch = Launch(tmp_path, "--image-folder", pictures, "--epochs", 30, "--dist-timeout", 2,
                    *_paths(tmp_path))
    launch.when("ckpt/p23_train/*/gst_0.pth", tmp_path)
    hung = launch.worker(1)
    os.kill(hung, signal.SIGSTOP)
    stopped = time.monotonic()
    while "error:" not in launch.err.read_text():
        assert time.monotonic() - stopped < 2 + 10, "rank 0 still waits"
        time.sleep(0.05)
    # torchrun now stops the hung process: SIGTERM, which acts once it runs again (else
    # torchrun's SIGKILL comes 30 s later).
    os.kill(hung, signal.SIGCONT)
    rc, out, err = launch.wait(timeout=60)
    assert rc != 0
    # rank 0's line; rank 1, run again, may say it lost rank 0 before SIGTERM ends it
    line, *others = [line for line in err.splitlines() if line.startswith("error:")]
    assert all(o.startswith("error: rank 1: lost contact with the other processes in epoch ")
               for o in others)
    (run,) = (tmp_path / "ckpt" / "p23_train").iterdir()
    last = sorted(run.iterdir(), key=lambda p: int(p.stem.split("_")[1]))[-1]
    epoch = checkpoint.load(last)["epoch"] + 1               # the epoch the last one holds
    # (torchrun by its name where the shell finds this venv's, else by its path)
    torchrun = "torchrun" if shutil.which("torchrun") == str(Path(sys.executable).with_name(
        "torchrun")) else str(Path(sys.executable).with_name("torchrun"))
    assert line == (f"error: lost contact with the other processes in epoch {epoch + 1} of 30 "
                    "(Timed out waiting 2000ms for recv operation to complete): "
                    f"{last.name} holds epoch {epoch}; go on with: {torchrun} --standalone "
                    f"--nproc-per-node=2 {SCRIPT} --resume {last.relative_to(tmp_path)} "
                    "--device cpu --logdir logs --checkpoint-dir ckpt --dist-timeout 2")


def test_a_restarted_launch_goes_on_from_its_own_last_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 200)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 50)
    paths = [*_paths(tmp_path), "--fake-data", "--seed", "0"]
    assert p23.main(["--epochs", "1", *paths]) == 0                # another run, no torchrun
    (other,) = (tmp_path / "ckpt" / "p23_train").iterdir()
    one_process_launch(monkeypatch, "launch-a")
    assert p23.main(["--epochs", "1", *paths]) == 0                # launch-a's first epoch
    capsys.readouterr()
    (mine,) = {d for d in (tmp_path / "ckpt" / "p23_train").iterdir()} - {other}
    os.utime(other / "gst_0.pth")                        # the other run is the newest on disk

    # Started again by torchrun with more epochs: it finds launch-a's checkpoint, not the
    # newest one, and goes on in its run.
    one_process_launch(monkeypatch, "launch-a")
    assert p23.main(["--epochs", "2", *paths]) == 0
    out = capsys.readouterr().out
    assert f"torchrun launch launch-a (restart 1): going on from {mine / 'gst_0.pth'}" in out
    assert sorted(p.name for p in mine.iterdir()) == ["gst_0.pth", "gst_1.pth"]
    assert checkpoint.load(mine / "gst_1.pth")["torchrun_launch"] == "launch-a"
    # Started again once it is done: nothing left to train, and it says so.
    one_process_launch(monkeypatch, "launch-a")
    assert p23.main(["--epochs", "2", *paths]) == 0
    assert "this launch's run has trained all 2 epochs: nothing left to do" in \
        capsys.readouterr().out
    # Another launch starts a run of its own.
    one_process_launch(monkeypatch, "launch-b")
    assert p23.main(["--epochs", "1", *paths]) == 0
    assert len(list((tmp_path / "ckpt" / "p23_train").iterdir())) == 3


def test_processes_that_see_different_runs_stop_in_one_line(monkeypatch):
    # rank 1 found no checkpoint (another machine's --checkpoint-dir): every rank says so
    monkeypatch.setattr(distributed, "gather", lambda mine: [mine, [1, 0, 300]])
    w = distributed.World(launched=True, rank=0, world_size=2, local_world_size=2)
    with pytest.raises(cli.UserError) as e:
        p23.check_agreement(w, first_epoch=4, steps=9, train_images=300)
    assert str(e.value) == (
        "the processes do not see the same run: rank 0 has first_epoch 4, steps 9, "
        "train_images 300; rank 1 has first_epoch 1, steps 0, train_images 300. Every process "
        "must read the same data and checkpoints (on several machines: --data-root and "
        "--checkpoint-dir on a shared filesystem)")
    p23.check_agreement(distributed.World(), first_epoch=4)      # one process: nothing to check
