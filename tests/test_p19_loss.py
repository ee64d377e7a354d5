"""p19_loss: L1Loss, MSELoss, CrossEntropyLoss values, and backward() filling .grad."""
import math

import pytest
import torch

from conftest import load_script

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
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ["tensor(0.6667)", "tensor(2.)", "tensor(1.3333)", "tensor(1.1019)"]
    assert lines[4].endswith("= 1.1019")
    assert lines[5] == "before backward(): model[0].weight.grad = None"
    assert lines[6] == ("after backward():  model[0].weight.grad is a tensor of shape "
                        "torch.Size([32, 3, 5, 5]) (weight: torch.Size([32, 3, 5, 5]))")
    # one batch by default: one loss, near ln(10) for an untrained 10-class network
    losses = [l for l in lines[7:] if l.startswith("tensor(")]
    assert len(losses) == 1 and losses[0].endswith(", grad_fn=<NllLossBackward0>)")
    assert abs(float(losses[0][7:13]) - math.log(10)) < 0.3


def test_printed_values_match_the_formulas():
    """The hand formulas the course explains, independent of torch.nn's losses."""
    inputs, targets = [1.0, 2.0, 3.0], [1.0, 2.0, 5.0]
    diffs = [a - b for a, b in zip(inputs, targets)]
    assert f"{sum(abs(d) for d in diffs) / 3:.4f}" == "0.6667"
    assert sum(abs(d) for d in diffs) == 2.0
    assert f"{sum(d * d for d in diffs) / 3:.4f}" == "1.3333"
    x, y = [0.1, 0.2, 0.3], 1
    ce = -x[y] + math.log(sum(math.exp(v) for v in x))
    assert f"{ce:.4f}" == "1.1019"
    ce_torch = torch.nn.functional.cross_entropy(torch.tensor([x]), torch.tensor([y]))
    assert math.isclose(ce_torch.item(), ce, rel_tol=1e-6)


def test_more_batches_print_more_losses(p19, capsys):
    assert p19.main(["--fake-data", "--device", "cpu", "--max-batches", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(l.endswith("grad_fn=<NllLossBackward0>)") for l in lines) == 2


def test_offline_without_cifar_is_one_error_line(p19, tmp_path, offline, capsys):
    assert p19.main(["--data-root", str(tmp_path), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: CIFAR-10 is not in ") and err.count("\n") == 1
