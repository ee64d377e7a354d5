import argparse
import copy
import errno
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from common import checkpoint, cli, data, distributed, paths, writer
from common import step as common_step
from common.device import fast_bf16
from common.model import CIFAR10_CLASSES, GST
from conftest import (REPO, course_test_pass, ctrl_c, load_script, no_launch, only_run,
                      events, printed_run, run_dirs, scalar_tags, scalars)

p23 = load_script("p23_train")
LOG_WHAT_IT_LEARNED = p23.log_what_it_learned     # for the tests that need the pictures drawn


@pytest.fixture(autouse=True)
def no_pictures(monkeypatch):
    """These tests are about training, resuming and files: the per-epoch TensorBoard pictures
    (half a second an epoch to draw) are tested in test_tensorboard_pictures.py, and drawn
    for real in the README walk and every subprocess run here."""
    monkeypatch.setattr(p23, "log_what_it_learned", lambda *args, **kwargs: None)


def _paths(tmp_path, name="run"):
    return ["--logdir", str(tmp_path / name / "logs"),
            "--checkpoint-dir", str(tmp_path / name / "ckpt"),
            "--data-root", str(tmp_path / "data")]


def _ckpt_names(folder):
    return sorted(p.name for p in folder.iterdir())


def _run_checkpoints(tmp_path, name="run"):
    """The one run folder under <checkpoint-dir>/p23_train/."""
    (folder,) = (tmp_path / name / "ckpt" / "p23_train").iterdir()
    return folder


def _accuracy_the_course_way(state, dataset):
    """Oracle: the saved weights on the test set through the course's ToTensor + DataLoader."""
    gst = GST()
    gst.load_state_dict(state["model"])
    gst.eval()
    dataset.transform = transforms.ToTensor()
    right = 0
    with torch.no_grad():
        for imgs, targets in DataLoader(dataset, batch_size=100):
            right += (gst(imgs).argmax(1) == targets).sum().item()
    return right / len(dataset)


def sha256_of_weights(path):
    """Oracle for --metrics' weights_sha256_by_rank: hashlib over the saved state_dict's
    names and NCHW float bytes, read back from the checkpoint file."""
    h = hashlib.sha256()
    for name, tensor in torch.load(path, weights_only=True)["model"].items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensor.numpy()).tobytes())
    return h.hexdigest()


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as e:
        p23.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "P23 完整的模型训练套路" in out
    for flag in ("--resume", "--metrics", "--image-folder", "--fake-data", "--seed", "--momentum"):
        assert flag in out


def test_fake_data_learns_logs_checkpoints_and_metrics(tmp_path, monkeypatch, capsys):
    # 1000 synthetic images in batches of 10: 100 steps an epoch; --log-every 100 is the course's.
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 1000)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 250)
    metrics = tmp_path / "m" / "metrics.json"
    rc = p23.main(["--fake-data", "--epochs", "2", "--batch-size", "10", "--lr", "0.02",
                   "--seed", "0", "--device", "cpu", "--log-every", "100",
                   "--metrics", str(metrics), *_paths(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == data.synthetic_note() and out.count(data.synthetic_note()) == 1
    assert "1000 to train and 250 to test" in data.synthetic_note()
    assert "训练数据集的长度为：1000" in out and "测试数据集的长度为：250" in out
    assert "-------第 1 轮训练开始-------" in out and "-------第 2 轮训练开始-------" in out
    steps = [int(s) for s in re.findall(r"训练次数：(\d+), Loss: [\d.]+", out)]
    assert steps == [100, 200]                          # printed every 100 steps
    printed_acc = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", out)]
    printed_loss = [float(a) for a in re.findall(r"整体测试集上的Loss: ([\d.]+)", out)]
    assert len(printed_acc) == 2 and len(printed_loss) == 2 and out.count("模型已保存") == 2

    # A run owns its files: checkpoints/p23_train/<run-id>/ beside logs/p23_train/<run-id>/.
    run = only_run(tmp_path / "run" / "logs", "p23_train")
    ckpt_dir = _run_checkpoints(tmp_path)
    assert ckpt_dir.name == run.name
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth", "gst_1.pth"]
    state = torch.load(ckpt_dir / "gst_1.pth", weights_only=True)
    assert state["arch"] == "GST" and state["epoch"] == 1 and state["total_train_step"] == 200
    assert state["classes"] == list(CIFAR10_CLASSES) and state["run_id"] == run.name
    assert state["data"] == {"source": "fake-data", "path": None, "train_images": 1000,
                             "test_images": 250}
    assert state["args"]["lr"] == 0.02 and state["args"]["logdir"] == str(tmp_path / "run" / "logs")
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.02
    # common/checkpoint.py's docstring lists every key p23 writes, and no other
    listed = set(re.findall(r"``(\w+)``", checkpoint.__doc__.split("p23_train writes")[1]
                            .split("Any dict")[0]))
    assert listed == set(state)

    # Learned: far above chance (0.1), and the printed accuracy is what an independent
    # evaluation of the saved weights (ToTensor + DataLoader, the course's pipeline) gives.
    oracle = _accuracy_the_course_way(state, data.FakeCIFAR10(train=False))
    assert printed_acc[-1] == pytest.approx(oracle, abs=1e-9)
    assert oracle > 0.6

    # TensorBoard: the course's three tags, at the course's steps.
    assert {"train_loss", "test_loss", "test_accuracy"} <= scalar_tags(run)
    assert [s for s, _ in scalars(run, "train_loss")] == [100, 200]
    assert [s for s, _ in scalars(run, "test_loss")] == [0, 1]
    assert [v for _, v in scalars(run, "test_accuracy")] == pytest.approx(printed_acc)
    assert [v for _, v in scalars(run, "test_loss")] == pytest.approx(printed_loss, rel=1e-6)

    # --metrics: one JSON object with the design's keys.
    m = json.loads(metrics.read_text())
    assert set(m) == {"test_accuracy", "test_loss", "epochs", "train_images_per_s",
                      "train_images_per_s_by_epoch", "device", "amp", "cuda_graph", "checkpoint",
                      "world_size", "weights_sha256_by_rank", "confusion_matrix",
                      "test_accuracy_per_class"}
    assert m["world_size"] == 1
    assert m["weights_sha256_by_rank"] == [sha256_of_weights(m["checkpoint"])]
    by_epoch = m["train_images_per_s_by_epoch"]
    assert len(by_epoch) == 2 and min(by_epoch) <= m["train_images_per_s"] <= max(by_epoch)
    assert m["train_images_per_s"] == pytest.approx(2 / sum(1 / v for v in by_epoch))
    assert m["amp"] is False and m["cuda_graph"] is False
    assert m["test_accuracy"] == pytest.approx(printed_acc[-1])
    assert m["test_loss"] == pytest.approx(printed_loss[-1])
    assert m["epochs"] == 2 and m["device"] == "cpu" and m["train_images_per_s"] > 0
    assert m["checkpoint"] == str(ckpt_dir / "gst_1.pth")


@pytest.mark.parametrize("normalize", [None, (0.5, 0.5)])
def test_the_test_pass_against_an_oracle_on_a_set_with_a_partial_last_batch(normalize):
    # 45 test images in batches of 8: five full batches and one of 5, which must count too
    torch.manual_seed(0)
    gst = p23.make_model(10, torch.device("cpu"))
    images = torch.randint(0, 256, (45, 3, 32, 32), dtype=torch.uint8)
    targets = torch.randint(0, 10, (45,))
    loader = data.InMemoryLoader(images, targets, 8, channels_last=True, normalize=normalize,
                                 even_steps=False)
    total_test_loss, accuracy, confusion = p23.test(gst, loader, nn.CrossEntropyLoss(), 45, 10)
    oracle_loss, right = course_test_pass(gst, images, targets, 8, normalize)
    assert float(total_test_loss) == pytest.approx(oracle_loss, rel=1e-5)
    assert float(accuracy) == pytest.approx(right / 45)
    predicted = course_predictions(gst, images, normalize)
    assert confusion.tolist() == [[sum(1 for t, p in zip(targets.tolist(), predicted)
                                       if (t, p) == (i, j)) for j in range(10)]
                                  for i in range(10)]
    assert int(confusion.sum()) == 45 and int(confusion.trace()) == right
    # counts, as integers: float32 would print 3.0 in --metrics and stop counting at 2**24
    assert confusion.dtype == torch.int64 and confusion.device == torch.device("cpu")
    assert gst.training is False       # the course's gst.eval() before testing


def _training_parts(images: int, batch_size: int):
    torch.manual_seed(0)
    gst = p23.make_model(10, torch.device("cpu"))
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.01)
    step = functools.partial(p23.train_step, gst, nn.CrossEntropyLoss(), optimizer)
    loader = data.InMemoryLoader(torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8),
                                 torch.randint(0, 10, (images,)), batch_size, channels_last=True)
    return gst, step, loader


def test_train_on_its_own_counts_its_steps_under_a_bar_named_train(capsys):
    # what the benchmark calls: p23.train(gst, step, loader), every other argument its default
    gst, step, loader = _training_parts(20, 8)
    assert p23.train(gst, step, loader) == 3                  # 8 + 8 + 4 images, from 0
    captured = capsys.readouterr()
    assert captured.out == ""                                  # no loss line before step 100
    assert re.search(r"(^|\r)train: 100%\|", captured.err)     # counted in batches:
    assert re.search(r"3/3 \[[^]]*(batch/s|s/batch)\]", captured.err)
    # and with show_progress=False (torchrun's other ranks), no bar at all
    assert p23.train(gst, step, loader, 3, show_progress=False) == 6
    assert capsys.readouterr().err == ""
    assert gst.training


def test_the_loss_line_is_the_courses_and_the_bar_shows_the_same_loss(capsys):
    """Every log_every steps the course's line, exactly; the bar's loss= is the same value to
    4 places."""
    gst, step, loader = _training_parts(48, 4)
    assert p23.train(gst, step, loader, log_every=4) == 12
    captured = capsys.readouterr()
    lines = [re.fullmatch(r"训练次数：(\d+), Loss: (\d+\.\d+)", line)
             for line in captured.out.splitlines()]
    assert all(lines) and [int(m[1]) for m in lines] == [4, 8, 12]
    bars = [b for b in captured.err.split("\r") if b.strip()]
    assert bars[-1].startswith("train: 100%|██████████| 12/12 [")
    assert bars[-1].rstrip().endswith(f", loss={float(lines[-1][2]):.4f}]")


@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal (POSIX)")
def test_the_bar_follows_the_terminals_width_when_the_window_is_resized(monkeypatch):
    """In a terminal (a pseudo-terminal here) the bar is drawn at its width, and redrawn at the
    new width when the learner narrows the window mid-epoch (tqdm's dynamic_ncols)."""
    import fcntl
    import pty
    import struct
    import termios
    import threading
    master, slave = pty.openpty()

    def resize(columns):
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))

    shown = []

    def read():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:                  # EIO: the terminal's other end was closed
                break
            if not chunk:
                break
            shown.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    resize(200)
    terminal = open(slave, "w", encoding="utf-8")
    monkeypatch.setattr(sys, "stderr", terminal)
    gst, train_step, loader = _training_parts(24, 4)

    def step(imgs, targets):
        loss = train_step(imgs, targets)
        resize(61)                           # narrowed to 61 columns after the first step
        return loss

    try:
        assert p23.train(gst, step, loader) == 6
    finally:
        terminal.close()
    reader.join(10)
    os.close(master)
    bars = [b for b in b"".join(shown).decode().split("\r") if b.strip()]
    # drawn at the terminal's width: tqdm 4.70 keeps the last column free, 4.66 does not
    free = 200 - len(bars[0])
    assert bars[0].startswith("train:   0%|") and free in (0, 1)
    # redrawn at 61 (less the same free column), padded with spaces over what the last,
    # wider drawing left
    assert bars[-1].startswith("train: 100%|") and len(bars[-1].rstrip()) == 61 - free


def test_per_class_accuracy_by_hand():
    # rows: true class; columns: predicted. a: 4 images, 3 right; b: none; c: 1 image, right
    confusion = torch.tensor([[3, 1, 0], [0, 0, 0], [0, 0, 1]])
    assert p23.per_class_accuracy(confusion, ["a", "b", "c"]) == {"a": 0.75, "c": 1.0}


def course_predictions(gst, images, normalize=None) -> list[int]:
    x = images.double() / 255
    if normalize is not None:
        x = (x - normalize[0]) / normalize[1]
    with torch.no_grad():
        return copy.deepcopy(gst).double()(x).argmax(1).tolist()


@pytest.mark.parametrize("steps_per_epoch, flag, expected", [
    (782, None, 100),        # CIFAR-10 at batch 64: the course's every 100 steps
    (500, None, 100),
    (499, None, 49),         # smaller: about ten points an epoch
    (32, None, 3),           # --fake-data at batch 64
    (5, None, 1),
    (32, 7, 7),              # --log-every
])
def test_log_interval(steps_per_epoch, flag, expected):
    assert writer.log_interval(steps_per_epoch, flag) == expected


def test_quick_start_draws_a_curve_in_every_epoch(tmp_path, monkeypatch, capsys):
    # The quick start's data, in small: 320 images at batch 64 = 5 steps an epoch, so a point
    # every step; with the course's fixed 100 steps this run would log nothing at all.
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 320)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 64)
    assert p23.main(["--fake-data", "--epochs", "2", "--device", "cpu", *_paths(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train_loss every 1 step (5 steps an epoch)" in out
    run = only_run(tmp_path / "run" / "logs", "p23_train")
    assert [s for s, _ in scalars(run, "train_loss")] == list(range(1, 11))
    assert [s for s, _ in scalars(run, "test_accuracy")] == [0, 1]


def test_seed_makes_runs_repeatable(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 128)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 32)
    args = ["--fake-data", "--epochs", "1", "--batch-size", "16", "--seed", "3", "--device", "cpu"]
    assert p23.main([*args, *_paths(tmp_path, "a")]) == 0
    assert p23.main([*args, *_paths(tmp_path, "b")]) == 0
    a = torch.load(_run_checkpoints(tmp_path, "a") / "gst_0.pth", weights_only=True)
    b = torch.load(_run_checkpoints(tmp_path, "b") / "gst_0.pth", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k])


def _fake_run(tmp_path, monkeypatch, capsys, name, *extra, train=300, test=100):
    """A seeded 2-epoch --fake-data run on the CPU: (its printed losses, accuracies, checkpoint)."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", train)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", test)
    capsys.readouterr()
    assert p23.main(["--fake-data", "--epochs", "2", "--batch-size", "10", "--lr", "0.02",
                     "--seed", "0", "--device", "cpu", "--log-every", "5", *extra,
                     *_paths(tmp_path, name)]) == 0
    out = capsys.readouterr().out
    losses = [float(v) for v in re.findall(r"训练次数：\d+, Loss: ([\d.]+)", out)]
    accuracies = [float(v) for v in re.findall(r"整体测试集上的正确率: ([\d.]+)", out)]
    return out, losses, accuracies, checkpoint.load(_run_checkpoints(tmp_path, name) / "gst_1.pth")


def test_amp_trains_in_bfloat16_and_learns_as_fp32_does(tmp_path, monkeypatch, capsys):
    out, losses, accuracies, state = _fake_run(tmp_path, monkeypatch, capsys, "amp", "--amp")
    _, fp32_losses, fp32_accuracies, _ = _fake_run(tmp_path, monkeypatch, capsys, "fp32")
    slow = "note: --amp: this cpu does not compute in bfloat16 natively"
    assert (slow in out) is not fast_bf16(torch.device("cpu"))
    assert len(losses) == 12 and losses[-1] < losses[0] - 0.5          # the loss falls
    assert accuracies[1] > accuracies[0] and accuracies[1] >= 0.2      # accuracy rises
    # bf16 did run (the numbers differ from fp32's) and learnt the same within noise
    assert losses != fp32_losses
    assert losses == pytest.approx(fp32_losses, abs=0.05)
    assert accuracies == pytest.approx(fp32_accuracies, abs=0.05)
    assert state["args"]["amp"] is True
    # a resumed run keeps training in bf16: --amp is one of the run's settings
    assert "amp" in p23.RESUMED


@pytest.mark.parametrize("macos_14, said", [
    (False, "error"),   # autocast would warn, turn itself off and train in fp32 under "amp"
    (True, "note"),     # it runs bf16, reported no faster there than fp32
])
def test_amp_on_mps_is_refused_before_macos_14_and_noted_after(monkeypatch, capsys,
                                                               macos_14, said):
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer",
                        lambda major, minor: macos_14 or (major, minor) < (14, 0))
    args = argparse.Namespace(amp=True, cuda_graph=False)
    mps, one = torch.device("mps"), distributed.World()
    if said == "error":
        with pytest.raises(cli.UserError) as e:
            p23.speed_flags(args, {"amp"}, mps, one)
        assert str(e.value) == ("--amp: bfloat16 on mps needs macOS 14 or newer; "
                                "train without --amp here")
    else:
        assert p23.speed_flags(args, {"amp"}, mps, one) is False
        assert capsys.readouterr().out == (
            "note: --amp: Apple GPUs are reported to train no faster in bfloat16 (M1 and M2 "
            "emulate it), so bf16 autocast will be slower here than without --amp\n")
    args.amp = False              # without --amp, neither: macOS is not asked
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", None)
    assert p23.speed_flags(args, set(), mps, one) is False
    assert capsys.readouterr().out == ""


def test_train_step_with_amp_computes_the_layers_in_bfloat16():
    gst = GST()
    dtypes = []
    gst.model[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.01)
    imgs, targets = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    for amp in (False, True):
        loss = p23.train_step(gst, torch.nn.CrossEntropyLoss(), optimizer, imgs, targets, amp)
        assert loss.dtype == torch.float32
    assert dtypes == [torch.float32, torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in gst.parameters())


def test_amp_asks_for_bfloat16_whatever_the_devices_autocast_default():
    """CUDA's autocast default is float16, which the step must not take: it names bfloat16.
    Here the CPU's default is made float16 as CUDA's is, and the layers still run in bfloat16."""
    gst = GST()
    dtypes = []
    gst.model[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.01)
    default = torch.get_autocast_dtype("cpu")
    torch.set_autocast_dtype("cpu", torch.float16)
    try:
        p23.train_step(gst, torch.nn.CrossEntropyLoss(), optimizer, torch.rand(4, 3, 32, 32),
                       torch.tensor([0, 1, 2, 3]), amp=True)
    finally:
        torch.set_autocast_dtype("cpu", default)
    assert dtypes == [torch.bfloat16]


def test_a_step_by_default_is_the_courses_fp32_step_exactly():
    """make_train_step and train_step, every option at its default: the course's forward, loss,
    zero_grad, backward and SGD step in fp32, bit for bit what those lines give by hand."""
    gst, _, loader = _training_parts(16, 8)
    loss_fn, twin = nn.CrossEntropyLoss(), copy.deepcopy(gst)
    imgs, targets = next(iter(loader))
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.01)
    by_hand = []
    for _ in range(2):                       # the course's lines, on a copy of the model
        loss = loss_fn(twin(imgs), targets)
        twin_optimizer.zero_grad()
        loss.backward()
        twin_optimizer.step()
        by_hand.append(loss.detach())
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.01)
    step = p23.make_train_step(gst, loss_fn, optimizer, loader)    # warms up, then puts back
    first = step(imgs, targets)
    second = p23.train_step(gst, loss_fn, optimizer, imgs, targets)
    assert first.dtype == second.dtype == torch.float32
    assert torch.equal(first, by_hand[0]) and torch.equal(second, by_hand[1])
    assert all(torch.equal(a, b) for a, b in zip(gst.parameters(), twin.parameters()))


def test_with_cuda_graph_the_step_is_the_graph_recorded_on_the_first_batch(monkeypatch):
    """cuda_graph=True reaches common.step: the step returned is its CUDAGraphStep, recorded on
    the loader's first sample batch (a stand-in records here; CUDA's own runs in the GPU tests)."""
    made = []

    class Recorded:
        def __init__(self, step_fn, imgs, targets):
            self.step_fn, self.shape = step_fn, tuple(imgs.shape)
            made.append(self)

        def __call__(self, imgs, targets):
            return self.step_fn(imgs, targets)

    monkeypatch.setattr(common_step, "CUDAGraphStep", Recorded)
    gst, _, loader = _training_parts(20, 8)          # batches of 8, 8 and 4
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.01)
    step = p23.make_train_step(gst, nn.CrossEntropyLoss(), optimizer, loader, cuda_graph=True)
    assert made == [step] and step.shape == (8, 3, 32, 32)
    assert p23.make_train_step(gst, nn.CrossEntropyLoss(), optimizer, loader) is not made[0]
    assert len(made) == 1


def test_cuda_graph_flags_change_nothing_on_cpu(tmp_path, monkeypatch, capsys):
    runs = {name: _fake_run(tmp_path, monkeypatch, capsys, name, *flags, train=60, test=20)
            for name, flags in {"plain": [], "no": ["--no-cuda-graph"],
                                "yes": ["--cuda-graph"]}.items()}
    note = ("note: --cuda-graph records CUDA graphs only on CUDA without torchrun: on cpu the "
            "steps run eagerly, as without it")
    assert [note in out for out, *_ in runs.values()] == [False, False, True]
    plain = runs["plain"][3]
    for out, losses, accuracies, state in runs.values():
        assert losses == runs["plain"][1] and accuracies == runs["plain"][2]
        for k, v in plain["model"].items():
            assert torch.equal(state["model"][k], v), k


def test_the_resume_command_repeats_how_the_steps_ran():
    args = p23.get_args_parser().parse_args(["--no-cuda-graph", "--device", "cpu"])
    line = p23.resume_command(REPO / "gst_0.pth", args, {"cuda_graph", "device"})
    assert line.endswith(" --device cpu --no-cuda-graph")
    args.cuda_graph = True
    assert p23.resume_command(REPO / "gst_0.pth", args, {"cuda_graph"}).endswith(
        "gst_0.pth --cuda-graph")
    assert "cuda-graph" not in p23.resume_command(REPO / "gst_0.pth", args, set())


def test_the_resume_command_repeats_what_this_run_changed_from_its_checkpoint():
    args = p23.get_args_parser().parse_args(["--resume", "last", "--epochs", "4", "--lr", "0.02",
                                             "--fake-data", "--amp"])
    saved = {k: p23.saved_form(v) for k, v in vars(args).items()}
    saved.update(epochs=3, lr=0.01, fake_data=False, image_folder="/pictures", amp=False)
    line = p23.resume_command(REPO / "gst_2.pth", args, {"epochs", "lr"}, saved=saved)
    assert line.endswith("gst_2.pth --fake-data --epochs 4 --lr 0.02 --amp")
    # what the checkpoint holds is not repeated; nor is --no-fake-data, which doesn't exist
    args.fake_data, args.image_folder = False, Path("/pictures")
    saved.update(epochs=4, lr=0.02, fake_data=True, image_folder=None, amp=True)
    assert p23.resume_command(REPO / "gst_2.pth", args, set(), saved=saved).endswith(
        "gst_2.pth --image-folder /pictures")


def test_ctrl_c_before_a_resumed_run_saves_keeps_its_new_settings(tmp_path, monkeypatch, capsys):
    """`--resume last --epochs 4 --lr 0.02`, then Ctrl-C before that run saved anything: the
    command it prints goes on from the old checkpoint with the new epochs and lr."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    paths = _paths(tmp_path)
    assert p23.main(["--fake-data", "--epochs", "2", "--batch-size", "16", "--device", "cpu",
                     *paths]) == 0
    run_ckpt = _run_checkpoints(tmp_path)
    with monkeypatch.context() as m:
        real_train = p23.train

        def interrupted(gst, step, loader, *args, **kwargs):
            def stops():
                yield next(iter(loader))
                raise KeyboardInterrupt
            return real_train(gst, step, stops(), *args, **kwargs)

        m.setattr(p23, "train", interrupted)
        assert p23.main(["--resume", "last", "--epochs", "4", "--lr", "0.02", *paths]) == 130
    err = capsys.readouterr().err
    (command,) = re.findall(r"go on with: (.+)$", err, re.M)
    assert re.search(r"^stopped during epoch 3 of 4: gst_1\.pth holds epoch 2; go on with: ", err, re.M)
    # its curves stay: the checkpoint goes on from them
    assert "train_loss" in scalar_tags(only_run(tmp_path / "run" / "logs", "p23_train"))
    command = shlex.split(command)
    assert command[command.index("--resume") + 1] == str(run_ckpt / "gst_1.pth")
    assert command[command.index("--epochs") + 1] == "4" and command[command.index("--lr") + 1] == "0.02"
    assert p23.main(command[2:]) == 0
    assert _ckpt_names(run_ckpt) == [f"gst_{i}.pth" for i in range(4)]
    final = checkpoint.load(run_ckpt / "gst_3.pth")
    assert final["args"]["epochs"] == 4 and final["optimizer"]["param_groups"][0]["lr"] == 0.02


@pytest.mark.parametrize("seed, repeatable", [(["--seed", "3"], True), ([], False)])
def test_seed_chooses_the_kernels_and_says_so(seed, repeatable, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    chosen = []
    monkeypatch.setattr(p23, "choose_kernels", lambda device, repeatable: chosen.append(
        (device, repeatable)))
    assert p23.main(["--fake-data", "--epochs", "1", "--device", "cpu", *seed,
                     *_paths(tmp_path)]) == 0
    assert chosen == [(torch.device("cpu"), repeatable)]
    with pytest.raises(SystemExit):
        p23.main(["--help"])
    assert "torch.use_deterministic_algorithms" in " ".join(capsys.readouterr().out.split())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_seed_makes_a_cuda_run_repeat_exactly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 1000)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 200)
    digests = []
    for name in ("a", "b"):
        metrics = tmp_path / f"{name}.json"
        assert p23.main(["--fake-data", "--epochs", "2", "--seed", "0", "--device", "cuda",
                         "--metrics", str(metrics), *_paths(tmp_path, name)]) == 0
        digests.append(json.loads(metrics.read_text())["weights_sha256_by_rank"])
    assert digests[0] == digests[1]
    assert torch.backends.cudnn.benchmark is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_into_a_cuda_graph_run_continues_exactly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 1000)    # 15 full batches and one of 40
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)   # no atomics' noise
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 200)
    args = ["--fake-data", "--momentum", "0.9", "--seed", "0", "--device", "cuda",
            "--cuda-graph"]
    metrics = tmp_path / "m.json"
    assert p23.main([*args, "--epochs", "2", "--metrics", str(metrics),
                     *_paths(tmp_path, "ref")]) == 0
    assert json.loads(metrics.read_text())["cuda_graph"] is True
    ref = checkpoint.load(_run_checkpoints(tmp_path, "ref") / "gst_1.pth")
    assert p23.main([*args, "--epochs", "1", *_paths(tmp_path)]) == 0
    assert p23.main(["--resume", "last", "--epochs", "2", "--cuda-graph", "--device", "cuda",
                     *_paths(tmp_path)]) == 0
    final = checkpoint.load(_run_checkpoints(tmp_path) / "gst_1.pth")
    assert final["total_train_step"] == ref["total_train_step"] == 32
    for k, v in ref["model"].items():
        torch.testing.assert_close(final["model"][k], v, rtol=1e-4, atol=1e-5)
    for k, v in ref["optimizer"]["state"].items():
        torch.testing.assert_close(final["optimizer"]["state"][k]["momentum_buffer"],
                                   v["momentum_buffer"], rtol=1e-4, atol=1e-5)


def test_a_second_run_leaves_the_first_runs_files_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 128)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 32)
    args = ["--fake-data", "--batch-size", "32", "--device", "cpu", *_paths(tmp_path)]
    assert p23.main([*args, "--epochs", "3"]) == 0
    (first,) = (tmp_path / "run" / "ckpt" / "p23_train").iterdir()
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert sorted(before) == ["gst_0.pth", "gst_1.pth", "gst_2.pth"]

    assert p23.main([*args, "--epochs", "2"]) == 0             # the same second, maybe: -2
    after = {p.name: p.read_bytes() for p in first.iterdir()}
    assert after == before                                      # byte for byte
    second = [d for d in (tmp_path / "run" / "ckpt" / "p23_train").iterdir() if d != first]
    assert len(second) == 1 and _ckpt_names(second[0]) == ["gst_0.pth", "gst_1.pth"]
    assert sorted(r.name for r in run_dirs(tmp_path / "run" / "logs", "p23_train")) == sorted(
        [first.name, second[0].name])
    # --resume last goes on with the newest run: the second, ended after epoch 2 of 2
    capsys.readouterr()
    assert p23.main([*args, "--resume", "last"]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: {second[0] / 'gst_1.pth'} has trained 2 epochs, and --epochs 2 asks "
                   "for no more: nothing to train (add --epochs N, more than 2, to go on)\n")


def _interrupt_in_second_epoch(monkeypatch, after_batches=3, kill=False):
    """Make p23's second call of train() see Ctrl-C after a few batches, as a user would;
    ``kill``: a real SIGTERM sent to this process there instead (`kill PID`)."""
    real_train = p23.train
    calls = []

    def stops(loader):
        for n, batch in enumerate(loader):
            if n == after_batches:
                if not kill:
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    def train(gst, step, loader, *args, **kwargs):
        calls.append(1)
        return real_train(gst, step, stops(loader) if len(calls) == 2 else loader, *args,
                          **kwargs)

    monkeypatch.setattr(p23, "train", train)


def test_ctrl_c_then_resume_equals_an_unbroken_run(tmp_path, monkeypatch, capsys):
    # 400 images in batches of 4: 100 steps per epoch, so train_loss is logged every 10 steps.
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 400)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 40)
    args = ["--fake-data", "--epochs", "2", "--batch-size", "4", "--lr", "0.005",
            "--momentum", "0.5", "--seed", "1"]

    # The reference: two epochs without a break.
    assert p23.main([*args, "--device", "cpu", *_paths(tmp_path, "ref")]) == 0
    ref = torch.load(_run_checkpoints(tmp_path, "ref") / "gst_1.pth", weights_only=True)

    # Ctrl-C during epoch 2: exit 130, gst_0.pth intact, no gst_1.pth, no temporary file.
    logdir = tmp_path / "run" / "logs"
    with monkeypatch.context() as m:
        _interrupt_in_second_epoch(m)
        capsys.readouterr()
        assert p23.main([*args, *_paths(tmp_path)]) == 130
    ckpt_dir = _run_checkpoints(tmp_path)
    err = capsys.readouterr().err
    assert "stopped during epoch 2 of 2: gst_0.pth holds epoch 1; go on with: " in err
    assert err.splitlines()[-1].endswith(   # the paths as given; --device and the data too
        f"/p23_train.py --resume {ckpt_dir / 'gst_0.pth'} --logdir {logdir} --checkpoint-dir "
        f"{tmp_path / 'run' / 'ckpt'}"), err      # the last line: no "interrupted" after it
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth"]
    gst_0 = checkpoint.load(ckpt_dir / "gst_0.pth")
    assert gst_0["epoch"] == 0 and gst_0["total_train_step"] == 100

    # --resume with nothing else but where files go: the run's own settings (batch 4, lr,
    # momentum, --fake-data, 2 epochs) come from the checkpoint.
    assert p23.main(["--resume", str(ckpt_dir / "gst_0.pth"), *_paths(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "-------第 1 轮训练开始-------" not in out and "-------第 2 轮训练开始-------" in out
    assert f"resuming run {ckpt_dir.name} from {ckpt_dir / 'gst_0.pth'}: epoch 2 of 2" in out
    assert out.splitlines()[0] == data.synthetic_note()
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth", "gst_1.pth"]
    final = checkpoint.load(ckpt_dir / "gst_1.pth")
    assert final["epoch"] == 1 and final["total_train_step"] == 200
    # one run, one curve: the interrupted epoch's points (110, 120) are replaced, not doubled
    run = only_run(logdir, "p23_train")
    assert run.name == ckpt_dir.name
    assert [s for s, _ in scalars(run, "train_loss")] == list(range(10, 201, 10))
    assert [s for s, _ in scalars(run, "test_loss")] == [0, 1]

    # The optimizer state came back: with momentum, the resumed run ends with the same
    # momentum buffers and weights as the unbroken one (the shuffle order resumed too).
    assert final["optimizer"]["param_groups"][0]["momentum"] == 0.5
    assert final["args"]["batch_size"] == 4 and final["args"]["lr"] == 0.005
    for k, v in ref["optimizer"]["state"].items():
        assert torch.allclose(final["optimizer"]["state"][k]["momentum_buffer"],
                              v["momentum_buffer"], rtol=0, atol=1e-6)
    for k, v in ref["model"].items():
        assert torch.allclose(final["model"][k], v, rtol=0, atol=1e-6), k


def test_kill_stops_a_run_as_ctrl_c_does(tmp_path, monkeypatch, capsys):
    """SIGTERM (`kill PID`, `timeout`, a scheduler's stop) in epoch 2: exit 143, not a silent
    death; the finished epoch's checkpoint stays and the line says how to go on."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    no_launch(monkeypatch)
    with monkeypatch.context() as m:
        _interrupt_in_second_epoch(m, kill=True)
        assert p23.main(["--fake-data", "--epochs", "3", "--batch-size", "8",
                         *_paths(tmp_path)]) == 143
    ckpt_dir = _run_checkpoints(tmp_path)
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("stopped during epoch 2 of 3: gst_0.pth holds epoch 1; go on "
                              "with: ") and f"--resume {ckpt_dir / 'gst_0.pth'}" in err[-1]
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth"]


def _ctrl_c_while_saving_epoch_2(tmp_path, monkeypatch, capsys, presses, epochs, *flags):
    """p23 on 64 synthetic images, batch 8, ``epochs`` epochs, with the learner's Ctrl-C (a
    real SIGINT, ``presses`` times) once epoch 2's TensorBoard points are written, as its
    checkpoint is about to be. Returns (the run's checkpoint folder, stderr's lines)."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    no_launch(monkeypatch)
    real_save, calls = checkpoint.save, []

    def save(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)
        return real_save(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(checkpoint, "save", save)
        m.setattr(p23, "log_what_it_learned", LOG_WHAT_IT_LEARNED)
        assert p23.main(["--fake-data", "--epochs", str(epochs), "--batch-size", "8", *flags,
                         *_paths(tmp_path)]) == 130
    return _run_checkpoints(tmp_path), capsys.readouterr().err.splitlines()


@pytest.fixture
def plain_sigint():
    """SIGINT as it meets a plain ``python`` run (a test runner may handle it its own way)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_while_an_epoch_is_saved_waits_for_its_checkpoint(tmp_path, monkeypatch, capsys,
                                                                 plain_sigint):
    """A stop between an epoch's TensorBoard points and its checkpoint left points that no
    checkpoint goes on from: the resume drew that epoch twice (two test_loss points at step 1).
    Now the checkpoint is written first, then the run stops, and each epoch is drawn once."""
    ckpt_dir, err = _ctrl_c_while_saving_epoch_2(tmp_path, monkeypatch, capsys, 1, 3)
    assert ("finishing epoch 2's TensorBoard points and checkpoint, then stopping (Ctrl-C again "
            "stops at once)") in err
    assert err[-1].startswith("stopped after epoch 2 of 3: gst_1.pth holds epoch 2; go on with: ")
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth", "gst_1.pth"]
    assert checkpoint.load(ckpt_dir / "gst_1.pth")["total_test_step"] == 2

    monkeypatch.setattr(p23, "log_what_it_learned", LOG_WHAT_IT_LEARNED)   # drawn: their steps
    assert p23.main(["--resume", str(ckpt_dir / "gst_1.pth"), *_paths(tmp_path)]) == 0
    run = only_run(tmp_path / "run" / "logs", "p23_train")
    tags = sorted(scalar_tags(run) - {"train_loss"})
    assert "test_loss" in tags and "test_accuracy" in tags and len(tags) > 4    # + each class
    for tag in tags:
        assert [s for s, _ in scalars(run, tag)] == [0, 1, 2], tag
    assert [e.step for e in events(run).Images("test_confusion_matrix")] == [0, 1, 2]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # put back


def test_ctrl_c_while_the_last_epoch_is_saved_says_the_training_is_complete(tmp_path, monkeypatch,
                                                                          capsys, plain_sigint):
    """Held until the last checkpoint is saved, the stop has nothing left to go on with: a
    go-on line there named a resume that refuses ("has trained 2 epochs, and --epochs 2 asks
    for no more")."""
    metrics = tmp_path / "m.json"
    ckpt_dir, err = _ctrl_c_while_saving_epoch_2(tmp_path, monkeypatch, capsys, 1, 2,
                                                 "--metrics", str(metrics))
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth", "gst_1.pth"]
    assert err[-1] == (f"stopped after the last epoch, 2 of 2: the training is complete, "
                       f"{ckpt_dir / 'gst_1.pth'} holds it (--metrics {metrics} was not written)")
    # every epoch trained: the HParams entry is finished (its session_end_info written)
    acc = events(only_run(tmp_path / "run" / "logs", "p23_train"))
    assert "_hparams_/session_end_info" in acc.PluginTagToContent("hparams")


def test_ctrl_c_twice_while_an_epoch_is_saved_stops_at_once(tmp_path, monkeypatch, capsys,
                                                            plain_sigint):
    ckpt_dir, err = _ctrl_c_while_saving_epoch_2(tmp_path, monkeypatch, capsys, 2, 3)
    assert err[-1].startswith("stopped during epoch 2 of 3: gst_0.pth holds epoch 1; go on with: ")
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["gst_0.pth"]     # no temporary file


class _Head:
    """stdout piped into ``head -n``: after ``lines`` lines the reader is gone, and the next
    write fails as a closed pipe's does."""

    def __init__(self, lines):
        self.lines, self.text = lines, ""

    def write(self, text):
        if self.text.count("\n") >= self.lines:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        self.text += text
        return len(text)

    def flush(self):
        pass


def test_output_piped_into_head_stops_the_run_and_says_how_to_go_on(tmp_path, monkeypatch,
                                                                     capsys):
    """`p23_train.py ... | head -20`: when head has its lines the run cannot print, and stopped
    in silence (exit 1, nothing on stderr), a half-trained run left as the newest."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    capsys.readouterr()
    # 8 lines before the first epoch's, 8 a (batch 8) epoch: head stops reading in epoch 2
    monkeypatch.setattr(sys, "stdout", head := _Head(lines=20))
    assert p23.main(["--fake-data", "--epochs", "3", "--batch-size", "8",
                     *_paths(tmp_path)]) == 1
    monkeypatch.undo()
    assert "模型已保存" in head.text and "-------第 2 轮训练开始-------" in head.text
    ckpt_dir = _run_checkpoints(tmp_path)
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("stopped during epoch 2 of 3: the program reading its output (a "
                              "`| head`?) stopped reading, and a run prints to its end (to keep "
                              "its output, send it to a file: > train.log); gst_0.pth holds "
                              "epoch 1; go on with: ")
    assert err[-1].endswith(f"--resume {ckpt_dir / 'gst_0.pth'} --logdir {tmp_path / 'run' / 'logs'} "
                            f"--checkpoint-dir {tmp_path / 'run' / 'ckpt'}")
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth"]


def test_output_piped_into_head_before_a_checkpoint_says_no_more(tmp_path, monkeypatch, capsys):
    """`| head -5`: stopped before any checkpoint, "run the same command again" would stop at
    the same line again."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", _Head(lines=9))
    assert p23.main(["--fake-data", "--epochs", "3", "--batch-size", "8",
                     *_paths(tmp_path)]) == 1
    monkeypatch.undo()
    assert capsys.readouterr().err.splitlines()[-1] == (
        "stopped during epoch 1 of 3: the program reading its output (a `| head`?) stopped "
        "reading, and a run prints to its end (to keep its output, send it to a file: > "
        "train.log); no checkpoint was saved, nothing to resume")
    assert list((tmp_path / "run" / "ckpt" / "p23_train").iterdir()) == []


def test_the_printed_resume_command_works_pasted_as_it_is(tmp_path, monkeypatch, capsys):
    # The ants/bees sample (20 training images, batch 4: 5 steps an epoch, train_loss every
    # step), 4 epochs, Ctrl-C in epoch 2; the line it prints is run in a shell, where the
    # data and settings come from the checkpoint.
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as m:
        _interrupt_in_second_epoch(m)
        assert p23.main(["--image-folder", str(paths.SAMPLE_IMAGE_FOLDER), "--batch-size", "4",
                         "--epochs", "4", "--logdir", "logs", "--checkpoint-dir", "ckpt"]) == 130
    err = capsys.readouterr().err
    (command,) = re.findall(r"go on with: (.+)$", err, re.M)
    assert " --resume ckpt/p23_train/" in command and command.endswith(
        "/gst_0.pth --logdir logs --checkpoint-dir ckpt")

    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable),
                                                 os.environ.get("PATH", "")]))
    done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.findall(r"-------第 (\d+) 轮训练开始-------", done.stdout) == ["2", "3", "4"]
    (run,) = run_dirs(tmp_path / "logs", "p23_train")
    assert _ckpt_names(tmp_path / "ckpt" / "p23_train" / run.name) == [
        f"gst_{i}.pth" for i in range(4)]
    assert [s for s, _ in scalars(run, "train_loss")] == list(range(1, 4 * 5 + 1))
    assert [s for s, _ in scalars(run, "test_accuracy")] == [0, 1, 2, 3]


def test_resume_overrides_forks_and_refuses_other_classes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    paths = _paths(tmp_path)
    assert p23.main(["--fake-data", "--epochs", "2", "--batch-size", "16", "--device", "cpu",
                     *paths]) == 0
    run_ckpt = _run_checkpoints(tmp_path)

    # --epochs given here overrides the saved 2: the finished run goes on, in its folder
    assert p23.main(["--resume", "last", "--epochs", "3", "--lr", "0.05", *paths]) == 0
    out = capsys.readouterr().out
    assert f"resuming run {run_ckpt.name} from {run_ckpt / 'gst_1.pth'}: epoch 3 of 3" in out
    assert _ckpt_names(run_ckpt) == ["gst_0.pth", "gst_1.pth", "gst_2.pth"]
    state = checkpoint.load(run_ckpt / "gst_2.pth")
    assert state["args"]["epochs"] == 3 and state["args"]["batch_size"] == 16
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.05 and state["args"]["lr"] == 0.05

    # An older epoch of a run goes on as a new run: the first run's later files stay as they are
    before = {p.name: p.read_bytes() for p in run_ckpt.iterdir()}
    assert p23.main(["--resume", str(run_ckpt / "gst_0.pth"), *paths]) == 0
    out = capsys.readouterr().out
    assert f"{run_ckpt / 'gst_0.pth'}".split("/")[-1] + " is not its run's last checkpoint " \
           "(gst_2.pth is): it goes on as a new run" in out
    assert {p.name: p.read_bytes() for p in run_ckpt.iterdir()} == before
    forks = [d for d in run_ckpt.parent.iterdir() if d != run_ckpt]
    assert len(forks) == 1 and _ckpt_names(forks[0]) == ["gst_1.pth"]   # epoch 2 of the saved 2

    # A data source given here replaces the saved one; other classes are one line
    pics = _image_folder(tmp_path / "pics", n_train=2, n_val=1)
    assert p23.main(["--resume", str(run_ckpt / "gst_2.pth"), "--image-folder", str(pics),
                     "--epochs", "4", *paths]) == 1
    assert capsys.readouterr().err == (
        f"error: {run_ckpt / 'gst_2.pth'} was trained on classes {list(CIFAR10_CLASSES)}, "
        "but this data has ['ants', 'bees']\n")


def test_resume_with_another_seed_shuffles_by_it_and_with_its_own_goes_on_exactly(
        tmp_path, monkeypatch):
    """--seed on --resume overrides the run's, as --resume's help says of every flag: the
    shuffles from there on are the new seed's (repeatably); the run's own seed goes on as if
    never stopped."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    run = ["--fake-data", "--batch-size", "8", "--momentum", "0.9", "--seed", "1"]
    assert p23.main([*run, "--epochs", "3", *_paths(tmp_path, "ref")]) == 0
    unbroken = checkpoint.load(_run_checkpoints(tmp_path, "ref") / "gst_2.pth")["model"]
    assert p23.main([*run, "--epochs", "2", *_paths(tmp_path)]) == 0
    gst_1 = _run_checkpoints(tmp_path) / "gst_1.pth"

    def resumed(*flags):
        name = f"from_{len(list(tmp_path.iterdir()))}"
        shutil.copytree(tmp_path / "run", tmp_path / name)
        assert p23.main(["--resume", str(tmp_path / name / gst_1.relative_to(tmp_path / "run")),
                         "--epochs", "3", *flags, *_paths(tmp_path, name)]) == 0
        state = checkpoint.load(_run_checkpoints(tmp_path, name) / "gst_2.pth")
        return state["model"], state["args"]["seed"]

    def same(a, b):
        return all(torch.equal(a[k], b[k]) for k in a)

    own, own_seed = resumed("--seed", "1")
    assert same(own, unbroken) and own_seed == 1        # its own seed: as if never stopped
    assert same(resumed()[0], unbroken)                  # (and without --seed)
    other, other_seed = resumed("--seed", "2")
    assert other_seed == 2 and not same(other, unbroken)    # another order for epoch 3
    assert same(resumed("--seed", "2")[0], other)            # ...the same each time


def test_resume_last_without_a_run_is_one_line_with_the_command_that_starts_one(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    given = ["--fake-data", "--epochs", "1", *_paths(tmp_path)]
    assert p23.main(["--resume", "last", *given]) == 1
    err = capsys.readouterr().err
    m = re.fullmatch(rf"error: no p23_train run in "
                     rf"{re.escape(str(tmp_path / 'run' / 'ckpt' / 'p23_train'))}: start one with "
                     r"(.+)\n", err)
    assert m, err
    # the same command less --resume: the same data (offline, --fake-data), and the run lands
    # where this looked
    command = shlex.split(m.group(1))
    assert command[1].endswith("scripts/p23_train.py") and command[2:] == given
    assert p23.main(["--resume=last", *given]) == 1
    assert shlex.split(capsys.readouterr().err.split("start one with ")[1])[2:] == given
    assert p23.main(command[2:]) == 0
    assert _ckpt_names(_run_checkpoints(tmp_path)) == ["gst_0.pth"]


def test_a_folder_through_a_file_is_one_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for flag in ("--checkpoint-dir", "--logdir"):
        assert p23.main(["--fake-data", "--epochs", "1", *_paths(tmp_path), flag, str(afile)]) == 1
        assert capsys.readouterr().err == (f"error: cannot write {afile / 'p23_train'}: a part of "
                                           "the path is a file, not a folder; name a folder, not "
                                           f"a file, with {flag} DIR\n")


def test_a_loss_that_runs_away_stops_with_a_command_that_does_not(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 320)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 64)
    argv = ["--fake-data", "--epochs", "3", "--lr", "1e6", "--seed", "0", "--device", "cpu",
            *_paths(tmp_path)]
    assert p23.main(argv) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    # no checkpoint, but the curve stays: TensorBoard shows where the loss ran away
    assert list((tmp_path / "run" / "ckpt" / "p23_train").iterdir()) == []
    curve = scalars(only_run(tmp_path / "run" / "logs", "p23_train"), "train_loss")
    assert len(curve) >= 2 and not curve[-1][1] < 1000 * curve[0][1]     # huge, inf or nan
    m = re.fullmatch(r"error: training diverged: the loss is (nan|inf) at step \d+ "
                     r"\(--lr 1000000\.0, --momentum 0\.0\)\. Start again with a smaller --lr: "
                     r"(.+)", err)
    assert m, err
    again = shlex.split(m.group(2))
    assert again[1].endswith("scripts/p23_train.py")
    assert again[2:] == [a for a in argv if a not in ("--lr", "1e6")] + ["--lr", "0.01"]
    assert p23.main(again[2:]) == 0                 # pasted: it trains
    assert p23.smaller_lr_command(["--lr=0.005", "--fake-data"], 0.005).endswith(
        "p23_train.py --fake-data --lr 0.0005")


def test_ctrl_c_while_saving_leaves_no_corrupt_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    real_save, saves = torch.save, []

    def save(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) == 2:           # the second epoch's checkpoint: die half-way through
            f.write(b"half a checkpoint")
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    rc = p23.main(["--fake-data", "--epochs", "3", "--device", "cpu", *_paths(tmp_path)])
    assert rc == 130
    ckpt_dir = _run_checkpoints(tmp_path)
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth"]
    assert checkpoint.load(ckpt_dir / "gst_0.pth")["epoch"] == 0


def test_ctrl_c_in_the_first_epoch_leaves_no_run_behind(tmp_path, monkeypatch, capsys):
    """Nothing goes on from a run stopped before its first checkpoint: neither an empty
    checkpoint folder nor a TensorBoard run of a few points is left (the rerun is a new run)."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    monkeypatch.setattr(p23, "train", ctrl_c)
    assert p23.main(["--fake-data", "--device", "cpu", *_paths(tmp_path)]) == 130
    out, err = capsys.readouterr()
    assert err == ("stopped during epoch 1 of 10: no checkpoint was saved, nothing to resume "
                   "(its TensorBoard run is removed too): run the same command again\n")
    logs = printed_run(out)                                           # it was made, then removed
    assert logs.parent == tmp_path / "run" / "logs" / "p23_train" and not logs.exists()
    assert list((tmp_path / "run" / "ckpt" / "p23_train").iterdir()) == []
    assert list((tmp_path / "run" / "logs" / "p23_train").iterdir()) == []


def test_a_lost_process_in_the_first_epoch_leaves_no_run_behind(tmp_path, monkeypatch, capsys):
    """torchrun's other process dies before rank 0's first checkpoint: one line, no folders."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)

    def peer_dies(*args, **kwargs):
        raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection "
                           "closed by peer [127.0.0.1]:4242")

    monkeypatch.setattr(p23, "train", peer_dies)
    assert p23.main(["--fake-data", "--device", "cpu", *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        "error: lost contact with the other processes in epoch 1 of 10 (Connection closed by "
        "peer [127.0.0.1]:4242): no checkpoint was saved, nothing to resume (its TensorBoard "
        "run is removed too): run the same command again\n")
    assert list((tmp_path / "run" / "ckpt" / "p23_train").iterdir()) == []
    assert list((tmp_path / "run" / "logs" / "p23_train").iterdir()) == []


def test_a_tensorboard_run_that_cannot_start_is_one_line_and_leaves_no_folders(
        tmp_path, monkeypatch, capsys):
    """The event file can't be made (here: refused): its line alone, with no "Stopped in
    epoch 1" (none started), and neither run folder left."""
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)

    def refused(log_dir, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", log_dir)

    monkeypatch.setattr(writer, "RunWriter", refused)
    assert p23.main(["--fake-data", "--device", "cpu", *_paths(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert err == (f"error: cannot write {printed_run(out)}: permission denied; choose a folder you can "
                   "write to with --logdir DIR\n")
    assert "第 1 轮训练开始" not in out
    assert list((tmp_path / "run" / "ckpt" / "p23_train").iterdir()) == []
    assert list((tmp_path / "run" / "logs" / "p23_train").iterdir()) == []


def test_resume_errors(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nope" / "gst_4.pth"
    assert p23.main(["--fake-data", "--resume", str(missing), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: no such checkpoint: {missing}\n"

    bare = tmp_path / "bare.pth"
    torch.save(GST().state_dict(), bare)           # lesson 22's format: no optimizer, no epoch
    assert p23.main(["--fake-data", "--resume", str(bare), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"error: {bare} is not a training checkpoint of p23_train.py (it needs model, optimizer "
        "and epoch): --resume takes a gst_<epoch>.pth written by it\n")

    done = tmp_path / "gst_9.pth"
    gst = GST()
    checkpoint.save({"model": gst.state_dict(), "epoch": 9, "classes": list(CIFAR10_CLASSES),
                     "optimizer": torch.optim.SGD(gst.parameters(), lr=0.01).state_dict()}, done)
    assert p23.main(["--fake-data", "--resume", str(done), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"error: {done} has trained 10 epochs, and --epochs 10 asks "
                                       "for no more: nothing to train (add --epochs N, more than "
                                       "10, to go on)\n")
    assert p23.main(["--resume", str(done), "--epochs", "5", *_paths(tmp_path)]) == 1
    assert "has trained 10 epochs, and --epochs 5 asks for no more" in capsys.readouterr().err

    pickled = tmp_path / "gst_method1.pth"
    torch.save(GST(), pickled)                      # lesson 22's whole model: never unpickled
    assert p23.main(["--resume", str(pickled), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"error: {pickled} is not a training checkpoint of p23_train.py (it needs model, optimizer "
        "and epoch): --resume takes a gst_<epoch>.pth written by it\n")
    assert not (tmp_path / "run").exists()          # nothing written by a failed start


@pytest.mark.parametrize("field, value, words", [
    ("epoch", "3", "its 'epoch' should be a whole number, 0 or more, not '3'"),
    ("optimizer", [1, 2], "its 'optimizer' should be an optimizer's state_dict, not [1, 2]"),
    ("rng", torch.zeros(3), "its 'rng' should be a generator's state (a uint8 tensor), not a "
                            "torch.float32 tensor of shape [3]"),
    ("rng", torch.zeros(3, dtype=torch.uint8), "its shuffle state (rng) does not fit torch's "
                                               "generator (Expected "),     # torch's own words
    ("args.batch_size", -5, "holds a setting this script would not take: --batch-size -5 (must "
                            "be 1 or more, not -5)"),
    ("args.epochs", "3", "holds a setting this script would not take: --epochs 3 (saved as str "
                         "'3')"),
])
def test_resume_of_a_checkpoint_made_by_hand_is_one_line(tmp_path, capsys, field, value, words):
    """A checkpoint with the right keys but a field of another kind (made by hand, or by your
    own script): a TypeError or IndexError deep in the resumed run, before; now one line."""
    gst = GST()
    state = {"model": gst.state_dict(), "epoch": 0, "classes": list(CIFAR10_CLASSES),
             "optimizer": torch.optim.SGD(gst.parameters(), lr=0.01).state_dict(),
             "rng": torch.Generator().get_state(), "args": {"batch_size": 8, "epochs": 3}}
    if field.startswith("args."):
        state["args"][field[5:]] = value
    else:
        state[field] = value
    made = checkpoint.save(state, tmp_path / "gst_0.pth")
    capsys.readouterr()
    assert p23.main(["--fake-data", "--resume", str(made), *_paths(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {made}") and words in err and err.count("\n") == 1, err
    assert "第 1 轮训练开始" not in out and "第 2 轮训练开始" not in out
    assert not (tmp_path / "run").exists()          # nothing written by a failed start


def _image_folder(root, n_train=12, n_val=4):
    """Two classes told apart by colour, images of odd sizes (resized to 32x32 by p23)."""
    rng = np.random.default_rng(0)
    colours = {"ants": (200, 40, 40), "bees": (40, 40, 200)}
    for split, n in (("train", n_train), ("val", n_val)):
        for name, colour in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(rng.normal(colour, 30, (40, 50, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg")
    return root


def test_image_folder_trains_on_your_own_classes(tmp_path, capsys):
    folder = _image_folder(tmp_path / "pics")
    rc = p23.main(["--image-folder", str(folder), "--epochs", "6", "--batch-size", "4",
                   "--lr", "0.05", "--seed", "0", *_paths(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == [f"your pictures: {folder} (train/ and val/), 2 classes: "
                                    "ants, bees; each resized to 32x32",
                                    "训练数据集的长度为：24", "测试数据集的长度为：8"]
    state = checkpoint.load(_run_checkpoints(tmp_path) / "gst_5.pth")
    assert state["classes"] == ["ants", "bees"]
    assert state["data"] == {"source": "image-folder", "path": str(folder), "train_images": 24,
                             "test_images": 8}
    assert state["normalize"] == (0.5, 0.5)           # your own pictures are centred
    assert state["model"]["model.8.weight"].shape == (2, 64)
    acc = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", out)]
    assert acc[-1] == 1.0                             # red vs blue: easy


def test_the_readme_ants_bees_command_learns_without_a_seed(tmp_path, capsys):
    readme = (REPO / "README.md").read_text()
    (line,) = re.findall(r"^python scripts/p23_train\.py (--image-folder dataset/hymenoptera_sample"
                         r" [^#\n]*?)\s*#", readme, re.M)
    argv = line.split()
    assert "--seed" not in argv
    argv[1] = str(REPO / argv[1])
    assert p23.main([*argv, *_paths(tmp_path)]) == 0
    out = capsys.readouterr().out
    accuracy = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", out)]
    assert accuracy[0] <= 0.8 and min(accuracy[-5:]) >= 0.9, accuracy   # learnt, and held


def test_image_folder_errors(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert p23.main(["--image-folder", str(missing), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: image folder not found: {missing}\n"

    no_val = tmp_path / "no_val"
    (no_val / "train" / "ants").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(no_val / "train" / "ants" / "a.png")
    assert p23.main(["--image-folder", str(no_val), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"error: {no_val} has no val/ folder; expected "
                                       f"{no_val}/val/<class>/<image>\n")

    other = tmp_path / "other"
    for split, cls in (("train", "ants"), ("val", "wasps")):
        (other / split / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(other / split / cls / "a.png")
    assert p23.main(["--image-folder", str(other), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"error: {other}/val has classes ['wasps'], "
                                       "but train/ has ['ants']\n")

    pics = _image_folder(tmp_path / "pics", n_train=1, n_val=1)
    assert p23.main(["--image-folder", str(pics / "train"), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"error: {pics / 'train'} has no train/ folder; expected {pics / 'train'}/train/<class>/"
        f"<image> ({pics / 'train'} is one of them: name the folder above it, {pics})\n")
    picture = pics / "train" / "ants" / "0.jpg"
    assert p23.main(["--image-folder", str(picture), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"error: {picture} is a file: --image-folder takes the folder that holds "
        "train/<class>/<image> and val/<class>/<image>\n")

    one_class = tmp_path / "one_class"
    for split in ("train", "val"):
        (one_class / split / "ants").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(one_class / split / "ants" / "a.png")
    assert p23.main(["--image-folder", str(one_class), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"error: {one_class}/train has one class folder (ants): a "
                                       "classifier learns to tell classes apart, so it needs "
                                       "two or more\n")

    for resume in ([], ["--resume", "last"]):     # (not a "start one with" that fails so)
        assert p23.main([*resume, "--image-folder", str(other), "--fake-data",
                         *_paths(tmp_path)]) == 1
        # said before anything else: not after the --fake-data banner
        assert capsys.readouterr() == ("", "error: --image-folder and --fake-data both choose "
                                           "the data: pass one\n")
    assert not (tmp_path / "run").exists()


def test_real_cifar10_files_are_used(real_cifar, tmp_path, capsys):
    rc = p23.main(["--data-root", str(real_cifar), "--epochs", "1",
                   "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "训练数据集的长度为：50" in out and "测试数据集的长度为：20" in out
    (run,) = (tmp_path / "ckpt" / "p23_train").iterdir()
    assert _ckpt_names(run) == ["gst_0.pth"]
    assert checkpoint.load(run / "gst_0.pth")["data"] == {
        "source": "cifar10", "path": str(real_cifar), "train_images": 50, "test_images": 20}


def test_offline_without_cifar_is_one_line(tmp_path, offline, capsys):
    rc = p23.main(["--epochs", "1", *_paths(tmp_path)])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: CIFAR-10 is not in {tmp_path / 'data'} and no source could "
                          "give it: ")
    assert err.count("\n") == 1 and "--fake-data" in err
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_absent_device_is_one_line(tmp_path, capsys):
    if torch.backends.mps.is_available():
        pytest.skip("this machine has mps")
    assert p23.main(["--fake-data", "--device", "mps", *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("error: device 'mps' is not available on this machine")


@pytest.mark.parametrize("flag, value, words", [
    ("--lr", "nan", "a finite number, above 0; not nan"),
    ("--lr", "inf", "a finite number, above 0; not inf"),
    ("--lr", "1e39", "a number float32 holds (at most 3.403e+38), above 0; not 1e39"),
    ("--momentum", "1", "0 or more and below 1, not 1"),
    ("--log-every", "0", "1 or more, not 0"),
])
def test_bad_numbers_are_argparse_errors_naming_the_flag(tmp_path, capsys, flag, value, words):
    with pytest.raises(SystemExit) as e:
        p23.main(["--fake-data", flag, value, *_paths(tmp_path)])
    assert e.value.code == 2
    assert capsys.readouterr().err == (f"error: argument {flag}: must be {words} "
                                       "(see --help)\n")
    assert not (tmp_path / "run").exists()


def test_no_amp_on_resume_turns_a_saved_amp_off():
    parser = p23.get_args_parser()
    argv = ["--resume", "last", "--no-amp"]
    args = p23.resumed_args(parser.parse_args(argv), {"amp": True, "epochs": 3},
                            cli.given(parser, argv))
    assert args.amp is False and args.epochs == 3
    argv = ["--resume", "last"]
    assert p23.resumed_args(parser.parse_args(argv), {"amp": True},
                            cli.given(parser, argv)).amp is True
