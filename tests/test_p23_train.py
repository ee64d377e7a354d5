import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from common import checkpoint, data
from common.model import CIFAR10_CLASSES, GST
from conftest import load_script, only_run, run_dirs, scalar_tags, scalars

p23 = load_script("p23_train")


def _paths(tmp_path, name="run"):
    return ["--logdir", str(tmp_path / name / "logs"),
            "--checkpoint-dir", str(tmp_path / name / "ckpt"),
            "--data-root", str(tmp_path / "data")]


def _ckpt_names(folder):
    return sorted(p.name for p in folder.iterdir())


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


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as e:
        p23.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "P23 完整的模型训练套路" in out
    for flag in ("--resume", "--metrics", "--image-folder", "--fake-data", "--seed", "--momentum"):
        assert flag in out


def test_fake_data_learns_logs_checkpoints_and_metrics(tmp_path, monkeypatch, capsys):
    # 1000 synthetic images in batches of 10: 100 steps an epoch, so train_loss is logged.
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 1000)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 250)
    metrics = tmp_path / "m" / "metrics.json"
    rc = p23.main(["--fake-data", "--epochs", "2", "--batch-size", "10", "--lr", "0.02",
                   "--seed", "0", "--device", "cpu", "--metrics", str(metrics), *_paths(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "训练数据集的长度为：1000" in out and "测试数据集的长度为：250" in out
    assert "-------第 1 轮训练开始-------" in out and "-------第 2 轮训练开始-------" in out
    steps = [int(s) for s in re.findall(r"训练次数：(\d+), Loss: [\d.]+", out)]
    assert steps == [100, 200]                          # printed every 100 steps
    printed_acc = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", out)]
    printed_loss = [float(a) for a in re.findall(r"整体测试集上的Loss: ([\d.]+)", out)]
    assert len(printed_acc) == 2 and len(printed_loss) == 2 and out.count("模型已保存") == 2

    # Checkpoints: the course's names, plain data loadable with weights_only=True.
    ckpt_dir = tmp_path / "run" / "ckpt"
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth", "gst_1.pth"]
    state = torch.load(ckpt_dir / "gst_1.pth", weights_only=True)
    assert state["arch"] == "GST" and state["epoch"] == 1 and state["total_train_step"] == 200
    assert state["classes"] == list(CIFAR10_CLASSES)
    assert state["args"]["lr"] == 0.02 and state["args"]["logdir"] == str(tmp_path / "run" / "logs")
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.02

    # Learned: far above chance (0.1), and the printed accuracy is what an independent
    # evaluation of the saved weights (ToTensor + DataLoader, the course's pipeline) gives.
    oracle = _accuracy_the_course_way(state, data.FakeCIFAR10(train=False))
    assert printed_acc[-1] == pytest.approx(oracle, abs=1e-9)
    assert oracle > 0.6

    # TensorBoard: one run with the course's three tags, at the course's steps.
    run = only_run(tmp_path / "run" / "logs", "p23_train")
    assert {"train_loss", "test_loss", "test_accuracy"} <= scalar_tags(run)
    assert [s for s, _ in scalars(run, "train_loss")] == [100, 200]
    assert [s for s, _ in scalars(run, "test_loss")] == [0, 1]
    assert [v for _, v in scalars(run, "test_accuracy")] == pytest.approx(printed_acc)
    assert [v for _, v in scalars(run, "test_loss")] == pytest.approx(printed_loss, rel=1e-6)

    # --metrics: one JSON object with the design's keys.
    m = json.loads(metrics.read_text())
    assert set(m) == {"test_accuracy", "test_loss", "epochs", "train_images_per_s", "device",
                      "checkpoint"}
    assert m["test_accuracy"] == pytest.approx(printed_acc[-1])
    assert m["test_loss"] == pytest.approx(printed_loss[-1])
    assert m["epochs"] == 2 and m["device"] == "cpu" and m["train_images_per_s"] > 0
    assert m["checkpoint"] == str(ckpt_dir / "gst_1.pth")


def test_seed_makes_runs_repeatable(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 128)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 32)
    args = ["--fake-data", "--epochs", "1", "--batch-size", "16", "--seed", "3", "--device", "cpu"]
    assert p23.main([*args, *_paths(tmp_path, "a")]) == 0
    assert p23.main([*args, *_paths(tmp_path, "b")]) == 0
    a = torch.load(tmp_path / "a" / "ckpt" / "gst_0.pth", weights_only=True)
    b = torch.load(tmp_path / "b" / "ckpt" / "gst_0.pth", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k])


def _interrupt_in_second_epoch(monkeypatch, after_batches=3):
    """Make p23's second call of train() see Ctrl-C after a few batches, as a user would."""
    real_train = p23.train
    calls = []

    def stops(loader):
        for n, batch in enumerate(loader):
            if n == after_batches:
                raise KeyboardInterrupt
            yield batch

    def train(gst, loader, *args, **kwargs):
        calls.append(1)
        return real_train(gst, stops(loader) if len(calls) == 2 else loader, *args, **kwargs)

    monkeypatch.setattr(p23, "train", train)


def test_ctrl_c_then_resume_continues_at_the_right_epoch(tmp_path, monkeypatch, capsys):
    # 400 images in batches of 4: 100 steps per epoch, so train_loss is logged once an epoch.
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 400)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 40)
    args = ["--fake-data", "--epochs", "2", "--batch-size", "4", "--lr", "0.005",
            "--momentum", "0.5", "--seed", "1", "--device", "cpu"]

    # The reference: two epochs without a break.
    assert p23.main([*args, *_paths(tmp_path, "ref")]) == 0
    ref = torch.load(tmp_path / "ref" / "ckpt" / "gst_1.pth", weights_only=True)

    # Ctrl-C during epoch 2: exit 130, gst_0.pth intact, no gst_1.pth, no temporary file.
    ckpt_dir, logdir = tmp_path / "run" / "ckpt", tmp_path / "run" / "logs"
    with monkeypatch.context() as m:
        _interrupt_in_second_epoch(m)
        capsys.readouterr()
        assert p23.main([*args, *_paths(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert f"stopped during epoch 2: {ckpt_dir / 'gst_0.pth'} holds the last finished epoch" in err
    assert err.rstrip().endswith("interrupted")
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth"]
    gst_0 = checkpoint.load(ckpt_dir / "gst_0.pth")
    assert gst_0["epoch"] == 0 and gst_0["total_train_step"] == 100
    first_run = only_run(logdir, "p23_train")
    assert [s for s, _ in scalars(first_run, "train_loss")] == [100]

    # --resume: epoch 2 only, into a new run folder whose steps continue.
    assert p23.main([*args, "--resume", str(ckpt_dir / "gst_0.pth"), *_paths(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "-------第 1 轮训练开始-------" not in out and "-------第 2 轮训练开始-------" in out
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth", "gst_1.pth"]
    final = checkpoint.load(ckpt_dir / "gst_1.pth")
    assert final["epoch"] == 1 and final["total_train_step"] == 200
    resumed = [r for r in run_dirs(logdir, "p23_train") if r != first_run]
    assert len(resumed) == 1
    assert [s for s, _ in scalars(resumed[0], "train_loss")] == [200]
    assert [s for s, _ in scalars(resumed[0], "test_loss")] == [1]

    # The optimizer state came back: with momentum, the resumed run ends with the same
    # momentum buffers and weights as the unbroken one (the shuffle order resumed too).
    assert final["optimizer"]["param_groups"][0]["momentum"] == 0.5
    assert all(torch.isfinite(v).all() for v in final["model"].values())
    for k, v in ref["optimizer"]["state"].items():
        assert torch.allclose(final["optimizer"]["state"][k]["momentum_buffer"],
                              v["momentum_buffer"], rtol=0, atol=1e-6)
    for k, v in ref["model"].items():
        assert torch.allclose(final["model"][k], v, rtol=0, atol=1e-6), k


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
    ckpt_dir = tmp_path / "run" / "ckpt"
    assert _ckpt_names(ckpt_dir) == ["gst_0.pth"]
    assert checkpoint.load(ckpt_dir / "gst_0.pth")["epoch"] == 0


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
    checkpoint.save({"model": GST().state_dict(), "optimizer": {}, "epoch": 9,
                     "classes": list(CIFAR10_CLASSES)}, done)
    assert p23.main(["--fake-data", "--resume", str(done), *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"error: {done} already finished epoch 10 of --epochs 10: "
                                       "nothing to train (raise --epochs to go on)\n")
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
    assert "训练数据集的长度为：24" in out and "测试数据集的长度为：8" in out
    state = checkpoint.load(tmp_path / "run" / "ckpt" / "gst_5.pth")
    assert state["classes"] == ["ants", "bees"]
    assert state["model"]["model.8.weight"].shape == (2, 64)
    acc = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", out)]
    assert acc[-1] == 1.0                             # red vs blue: easy


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

    assert p23.main(["--image-folder", str(other), "--fake-data", *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == ("error: --image-folder and --fake-data both choose the "
                                       "data: pass one\n")
    assert not (tmp_path / "run").exists()


def test_real_cifar10_files_are_used(real_cifar, tmp_path, capsys):
    rc = p23.main(["--data-root", str(real_cifar), "--epochs", "1",
                   "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "训练数据集的长度为：50" in out and "测试数据集的长度为：20" in out
    assert _ckpt_names(tmp_path / "ckpt") == ["gst_0.pth"]


def test_offline_without_cifar_is_one_line(tmp_path, offline, capsys):
    rc = p23.main(["--epochs", "1", *_paths(tmp_path)])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: CIFAR-10 is not in {tmp_path / 'data'} and the download failed")
    assert err.count("\n") == 1 and "--fake-data" in err
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_absent_device_is_one_line(tmp_path, capsys):
    if torch.backends.mps.is_available():
        pytest.skip("this machine has mps")
    assert p23.main(["--fake-data", "--device", "mps", *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("error: device 'mps' is not available on this machine")


@pytest.mark.parametrize("flag, value", [("--batch-size", "0"), ("--epochs", "0"), ("--lr", "-1")])
def test_bad_numbers_are_one_line(tmp_path, capsys, flag, value):
    assert p23.main(["--fake-data", flag, value, *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == ("error: --batch-size and --epochs must be 1 or more, "
                                       "--lr and --momentum 0 or more\n")
