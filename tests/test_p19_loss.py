"""p19_loss: L1Loss, MSELoss, CrossEntropyLoss values, and backward() filling .grad."""
import math
import re

import pytest
import torch

from conftest import after_note, load_script

from common import data

SCRIPT = "p19_loss"


@pytest.fixture(scope="module")
def p19():
    return load_script(SCRIPT)


def test_help_exits_0(p19, capsys):
    with pytest.raises(SystemExit) as e:
        p19.main(["--help"])
    assert e.value.code == 0
    assert "--max-batches" in capsys.readouterr().out


def test_prints_the_course_losses_and_a_gradient(p19, capsys):
    assert p19.main(["--fake-data", "--device", "cpu"]) == 0
    lines = after_note(capsys.readouterr().out)
    # the course's values (held against the hand formulas below), each after its loss
    assert lines[:4] == ["L1Loss(): tensor(0.6667)", "L1Loss(reduction='sum'): tensor(2.)",
                         "MSELoss(): tensor(1.3333)", "CrossEntropyLoss(): tensor(1.1019)"]
    assert lines[4].endswith("= 1.1019")
    assert lines[5] == "before backward(): model[0].weight.grad = None"
    assert lines[6] == ("after backward():  model[0].weight.grad is a tensor of shape "
                        "torch.Size([32, 3, 5, 5]) (weight: torch.Size([32, 3, 5, 5]))")
    # one batch by default: one loss, near ln(10) for an untrained 10-class network
    assert len(lines) == 8
    loss = re.fullmatch(r"result_loss, batch 1: tensor\((\d\.\d{4}), "
                        r"grad_fn=<NllLossBackward0>\)", lines[7])
    assert loss and abs(float(loss[1]) - math.log(10)) < 0.3


def test_printed_values_match_the_formulas(p19, capsys):
    """The script's own printed losses, held against the hand formulas the course explains
    (independent of torch.nn's losses) on the course's inputs."""
    assert p19.main(["--fake-data", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    printed = {name: float(v) for name, v in
               re.findall(r"^(L1Loss\(\)|L1Loss\(reduction='sum'\)|MSELoss\(\)|"
                          r"CrossEntropyLoss\(\)): tensor\(([\d.]+)\)$", out, re.M)}
    inputs, targets = [1.0, 2.0, 3.0], [1.0, 2.0, 5.0]
    diffs = [a - b for a, b in zip(inputs, targets)]
    x, y = [0.1, 0.2, 0.3], 1           # three classes' scores, the true class is 1
    by_hand = {"L1Loss()": sum(abs(d) for d in diffs) / 3,
               "L1Loss(reduction='sum')": sum(abs(d) for d in diffs),
               "MSELoss()": sum(d * d for d in diffs) / 3,
               "CrossEntropyLoss()": -x[y] + math.log(sum(math.exp(v) for v in x))}
    assert printed.keys() == by_hand.keys()
    for name, value in by_hand.items():       # print() shows 4 decimals
        assert printed[name] == pytest.approx(value, abs=5e-5), name
    # and the "by hand" line computes the same number from the same scores
    (line,) = [l for l in out.splitlines() if l.startswith("by hand:")]
    assert float(line.rsplit("= ", 1)[1]) == pytest.approx(by_hand["CrossEntropyLoss()"], abs=5e-5)
    assert f"-{x[y]:g} + ln(" in line


def test_more_batches_print_more_losses(p19, capsys):
    assert p19.main(["--fake-data", "--device", "cpu", "--max-batches", "2"]) == 0
    lines = after_note(capsys.readouterr().out)
    assert batch_numbers(lines) == [1, 2]


def batch_numbers(lines):
    return [int(m[1]) for l in lines
            if (m := re.fullmatch(r"result_loss, batch (\d+): tensor\(\S+, "
                                  r"grad_fn=<NllLossBackward0>\)", l))]


def test_max_batches_all_runs_the_whole_test_set(p19, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 200)      # 200 = 3 x 64 + 8 (dropped)
    assert p19.main(["--fake-data", "--device", "cpu", "--max-batches", "all"]) == 0
    lines = after_note(capsys.readouterr().out)
    assert batch_numbers(lines) == list(range(1, 200 // 64 + 1))


def test_offline_without_cifar_is_one_error_line(p19, tmp_path, offline, capsys):
    assert p19.main(["--data-root", str(tmp_path), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: CIFAR-10 is not in ") and err.count("\n") == 1
