"""benchmarks/train_throughput.py measures the real p23: the same kernel settings, p23's own
functions, and rows that say how close p23 comes to the bare step. (Its speed targets live in
benchmarks/README.md; nothing here is timed.)"""
import re

import torch

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
