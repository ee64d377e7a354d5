import re

import pytest
import torch
from torch import nn

from common import data
from common.device import available_devices
from common.model import GST
from conftest import load_script, only_run, scalar_tags, scalars

p24 = load_script("p24_train_gpu")


@pytest.fixture
def small_fake(monkeypatch):
    # 400 images in batches of 4: 100 steps per epoch, so a print every 10 steps.
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 400)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 40)


def _paths(tmp_path):
    return ["--logdir", str(tmp_path / "logs"), "--data-root", str(tmp_path / "data")]


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as e:
        p24.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "P24 利用GPU训练" in out and "--method {cuda,to-device}" in out


def test_to_device_trains_and_times_each_epoch(tmp_path, small_fake, capsys):
    rc = p24.main(["--fake-data", "--epochs", "2", "--batch-size", "4", "--seed", "0",
                   "--device", "cpu", *_paths(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "method: to-device, device: cpu" in out
    assert "训练数据集的长度为：400" in out and "测试数据集的长度为：40" in out
    assert out.splitlines()[0] == data.synthetic_note()
    assert [int(s) for s in re.findall(r"训练次数：(\d+), Loss: [\d.]+", out)] == list(range(10, 201, 10))
    elapsed = [float(t) for t in re.findall(r"用时 / elapsed: ([\d.]+)s", out)]
    assert len(elapsed) == 20 and elapsed[0] <= elapsed[-1]
    assert re.findall(r"第 (\d) 轮训练用时 / epoch time: [\d.]+s", out) == ["1", "2"]
    acc = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", out)]
    assert len(acc) == 2 and all(round(a * 40) == pytest.approx(a * 40) for a in acc)

    run = only_run(tmp_path / "logs", "p24_train_gpu")
    assert {"train_loss", "test_loss", "test_accuracy"} <= scalar_tags(run)
    assert [s for s, _ in scalars(run, "train_loss")] == list(range(10, 201, 10))
    assert [s for s, _ in scalars(run, "test_accuracy")] == [0, 1]
    assert [v for _, v in scalars(run, "test_accuracy")] == pytest.approx(acc)


def test_method_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert p24.main(["--method", "cuda", "--fake-data", *_paths(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == ("error: --method cuda needs an NVIDIA GPU (torch.cuda.is_available() is False); "
                   f"available: {', '.join(available_devices())}. Use --method to-device --device auto\n")
    assert not (tmp_path / "logs").exists()


@pytest.fixture
def pretend_cuda(monkeypatch):
    """CUDA that isn't there: .cuda() on modules and tensors is recorded and leaves them on the
    CPU, so the lesson's first way runs its real code path on any machine."""
    moved = {"modules": [], "tensors": 0}

    def module_cuda(self, device=None):
        moved["modules"].append(type(self).__name__)
        return self

    def tensor_cuda(self, *args, **kwargs):
        moved["tensors"] += 1
        return self

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(nn.Module, "cuda", module_cuda)
    monkeypatch.setattr(torch.Tensor, "cuda", tensor_cuda)
    monkeypatch.setattr(p24, "synchronize", lambda device: None)
    return moved


def test_method_cuda_moves_model_loss_and_every_batch(tmp_path, small_fake, pretend_cuda, capsys):
    rc = p24.main(["--method", "cuda", "--fake-data", "--epochs", "1", "--batch-size", "8",
                   *_paths(tmp_path)])
    assert rc == 0
    assert "method: cuda, device: cuda" in capsys.readouterr().out
    assert pretend_cuda["modules"] == [GST.__name__, nn.CrossEntropyLoss.__name__]
    # imgs.cuda() and targets.cuda() for every batch: 400/8 training + 40/8 test batches.
    assert pretend_cuda["tensors"] == 2 * (50 + 5)


def test_method_cuda_with_another_device_is_one_line(tmp_path, pretend_cuda, capsys):
    assert p24.main(["--method", "cuda", "--device", "cpu", "--fake-data", *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == ("error: --method cuda always trains on the NVIDIA GPU; "
                                       "for --device cpu use --method to-device\n")


def test_offline_without_cifar_is_one_line(tmp_path, offline, capsys):
    assert p24.main(["--device", "cpu", *_paths(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: CIFAR-10 is not in") and err.count("\n") == 1
    assert not (tmp_path / "logs").exists()


def test_a_loss_that_runs_away_stops_with_one_line(tmp_path, small_fake, capsys):
    assert p24.main(["--fake-data", "--epochs", "2", "--lr", "100", "--device", "cpu",
                     *_paths(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "整体测试集上的Loss: nan" in captured.out and "第 2 轮" not in captured.out
    assert captured.err == ("error: training diverged: the test loss is nan in epoch 1 (--lr 100.0): "
                            "start again with a smaller --lr, such as the course's 0.01\n")
