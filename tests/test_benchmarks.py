"""benchmarks/train_throughput.py measures the real p23: the same kernel settings, p23's own
functions, and rows that say how close p23 comes to the bare step. (Its speed targets live in
benchmarks/README.md; nothing here is timed.)"""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as cifar
from torchvision.datasets import CIFAR10

from common import checkpoint, data
from common.model import CIFAR10_CLASSES
from conftest import load_script

bench = load_script("train_throughput", "benchmarks")
p23 = load_script("p23_train")


def test_the_benchmark_sets_what_p23_sets_and_prints_every_row(monkeypatch, capsys):
    chosen = []
    monkeypatch.setattr(bench, "choose_kernels", lambda device, repeatable: chosen.append(
        (device, repeatable)))
    monkeypatch.setattr(bench, "WARMUP_BATCHES", 1)
    assert bench.main(["--device", "cpu", "--images", "128", "--repeats", "1", "--no-amp"]) == 0
    # p23 without --seed: common.device.choose_kernels(device, repeatable=False)
    assert chosen == [(torch.device("cpu"), False)]
    assert bench.p23_train is p23           # the script itself, not a copy of its loop
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^ *(course|p23|step): +[\d,]+ images/s \(median\)(.*)$", out, re.M))
    assert rows.keys() == {"course", "p23", "step"}
    assert re.fullmatch(r" +[\d.]+x the course, [\d.]+ of the ceiling", rows["p23"])


@pytest.fixture
def small_cifar_sized(monkeypatch):
    """p23_cifar_sized at 128 + 32 images, and torchvision's md5 check put back afterwards."""
    sized = load_script("p23_cifar_sized", "benchmarks")
    monkeypatch.setattr(sized, "TRAIN_IMAGES", 128)
    monkeypatch.setattr(sized, "TEST_IMAGES", 32)
    monkeypatch.setattr(cifar, "check_integrity", cifar.check_integrity)
    return sized


def test_the_cifar_sized_job_is_p23_reading_cifar10_files(small_cifar_sized, tmp_path, capsys):
    """The GPU check's 10-epoch job (benchmarks/gpu_check.sh): CIFAR-10's file format, read
    back through torchvision's CIFAR10 by p23 itself, made once."""
    cache = tmp_path / "cache"
    argv = ["--cache", str(cache), "--epochs", "1", "--device", "cpu", "--seed", "0",
            "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt"),
            "--metrics", str(tmp_path / "m.json")]
    assert small_cifar_sized.main(argv) == 0
    out = capsys.readouterr().out
    assert f"writing 128 + 32 synthetic images to {cache}" in out
    assert "训练数据集的长度为：128" in out and "测试数据集的长度为：32" in out
    assert sorted(p.name for p in (cache / "cifar-10-batches-py").iterdir()) == [
        "batches.meta", *[f"data_batch_{i}" for i in range(1, 6)], "test_batch"]
    # as the real set is read: the same images FakeCIFAR10 makes, in CIFAR10's order
    read = CIFAR10(str(cache), train=True, download=False)
    assert read.classes == list(CIFAR10_CLASSES) and len(read) == 128
    assert np.array_equal(read.data, data.FakeCIFAR10(train=True, size=128).data)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["epochs"] == 1 and metrics["train_images_per_s"] > 0
    saved = checkpoint.load(Path(metrics["checkpoint"]))
    assert saved["data"]["source"] == "cifar10" and saved["data"]["train_images"] == 128
    assert small_cifar_sized.main([*argv, "--resume", metrics["checkpoint"], "--epochs", "2"]) == 0
    assert "writing" not in capsys.readouterr().out          # the cache is made once


def test_torchrun_processes_times_python_and_torchrun_on_the_same_job(small_cifar_sized,
                                                                     tmp_path, capsys):
    bench_runs = load_script("torchrun_processes", "benchmarks")
    assert bench_runs.main(["--device", "cpu", "--epochs", "1", "--nproc", "1",
                            "--cache", str(tmp_path / "cache")]) == 0
    table = re.findall(r"^\| (python|torchrun ×1) \| 1 \| (\d+) \| ([\d.]+)× \| \d+ \| "
                       r"([\d.]+) \|$", capsys.readouterr().out, re.M)
    assert [row[0] for row in table] == ["python", "torchrun ×1"]
    assert table[0][2] == "1.00" and all(int(row[1]) > 0 for row in table)
