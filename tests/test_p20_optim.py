"""p20_optim: SGD (lr 0.01) on CIFAR-10 test batches; the running loss falls every epoch."""
import math
import re

import pytest

from conftest import after_note, load_script

from common import data

SCRIPT = "p20_optim"


@pytest.fixture(scope="module")
def p20():
    return load_script(SCRIPT)


@pytest.fixture
def small_fake(monkeypatch):
    """--fake-data with 128 test images (2 batches of 64) to keep the test quick on a CPU."""
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 128)


def running_losses(out):
    return [float(m) for m in re.findall(r"^epoch \d+/\d+  running_loss: (\S+)$", out, re.M)]


def test_help_shows_the_course_defaults(p20, capsys):
    with pytest.raises(SystemExit) as e:
        p20.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "(default: 20)" in out and "(default: 0.01)" in out and "(default: 64)" in out
    assert "--print-steps" in out


def test_running_loss_falls_every_epoch_and_is_repeatable(p20, small_fake, capsys):
    argv = ["--fake-data", "--device", "cpu", "--epochs", "3", "--seed", "0", "--print-steps"]
    assert p20.main(argv) == 0
    out = capsys.readouterr().out
    after_note(out)
    losses = running_losses(out)
    assert len(losses) == 3
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    # --print-steps: the course's print(result_loss), labelled, 128 / 64 = 2 steps per epoch
    found = re.findall(r"^epoch (\d) step (\d)  result_loss: tensor\((\S+), "
                       r"grad_fn=<NllLossBackward0>\)$", out, re.M)
    assert [(int(e), int(s)) for e, s, _ in found] == [(e, s) for e in (1, 2, 3) for s in (1, 2)]
    steps = [loss for _, _, loss in found]
    # running_loss is a plain number (the fix: .item()), the sum of the epoch's step losses
    for epoch in range(3):
        assert losses[epoch] == pytest.approx(sum(float(s) for s in steps[2 * epoch:2 * epoch + 2]),
                                              abs=2e-3)
    argv[argv.index("--epochs") + 1] = "1"          # --seed: the same first epoch again
    assert p20.main(argv) == 0
    out = capsys.readouterr().out
    after_note(out)
    assert running_losses(out) == losses[:1]


def test_offline_without_cifar_is_one_error_line(p20, tmp_path, offline, capsys):
    assert p20.main(["--data-root", str(tmp_path), "--device", "cpu", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: CIFAR-10 is not in ") and err.count("\n") == 1


def test_a_loss_that_runs_away_stops_with_one_line(p20, small_fake, capsys):
    assert p20.main(["--fake-data", "--device", "cpu", "--epochs", "3", "--lr", "100"]) == 1
    captured = capsys.readouterr()
    losses = running_losses(captured.out)           # up to the first nan, and no further
    assert math.isnan(losses[-1]) and all(math.isfinite(v) for v in losses[:-1]) and len(losses) < 3
    assert captured.err == (f"error: training diverged: running_loss is nan in epoch {len(losses)} "
                            "(--lr 100.0): start again with a smaller --lr, such as the course's "
                            "0.01\n")


def test_a_batch_bigger_than_the_data_is_refused_not_a_loss_of_0(p20, small_fake, capsys):
    """drop_last=True with 129 > 128 images leaves no batch: once it printed running_loss
    0.0000, a perfect loss from training on nothing."""
    assert p20.main(["--fake-data", "--device", "cpu", "--epochs", "1", "--batch-size", "129"]) == 1
    captured = capsys.readouterr()
    assert running_losses(captured.out) == []
    assert captured.err == ("error: --batch-size 129 is more than the 128 test images, and "
                            "drop_last=True drops a batch that is short, so no batch is left to "
                            "train on: pass --batch-size 128 or less\n")
    assert p20.main(["--fake-data", "--device", "cpu", "--epochs", "1", "--batch-size", "128"]) == 0
    assert len(running_losses(capsys.readouterr().out)) == 1      # one batch, the whole set
