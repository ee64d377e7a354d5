"""p17_linear: a batch of 64 CIFAR-10 images flattened to 196608 values -> Linear(196608, 10)."""
import pytest
import torch

from conftest import after_note, load_script, write_cifar10

from common import data

SCRIPT = "p17_linear"
SHAPES = ["imgs.shape: torch.Size([64, 3, 32, 32])", "torch.flatten(imgs).shape: torch.Size([196608])",
          "gst(output).shape: torch.Size([10])"]


@pytest.fixture(scope="module")
def p17():
    return load_script(SCRIPT)


def test_help_exits_0(p17, capsys):
    with pytest.raises(SystemExit) as e:
        p17.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "--print-every-batch" in out and "--max-batches" in out


def test_linear_layer_is_w_x_plus_b(p17):
    """Independent oracle: y_j = sum_i W_ji x_i + b_j, written out by hand."""
    gst = p17.FlatLinear()
    assert (gst.linear1.in_features, gst.linear1.out_features) == (64 * 3 * 32 * 32, 10)
    x = torch.rand(196608)
    expected = (gst.linear1.weight * x).sum(dim=1) + gst.linear1.bias
    assert torch.allclose(gst(x), expected, atol=1e-4)


def test_fake_data_shapes_and_drop_last(p17, capsys):
    assert p17.main(["--fake-data", "--device", "cpu"]) == 0
    out = after_note(capsys.readouterr().out)
    # the course's three shapes, labelled, for the first batch only by default
    assert out[:3] == SHAPES
    assert out[3].startswith("reshape(imgs, (1, 1, 1, -1)): torch.Size([1, 1, 1, 196608]) "
                             "-> linear1 -> torch.Size([1, 1, 1, 10])")
    # 500 fake test images = 7 x 64 + 52; the 52 left over (52 * 3072 = 159744 values) dropped
    assert data.FAKE_TEST_SIZE == 500
    assert out[4] == "7 batches of 64"                  # the default is all: every whole batch
    assert "500 images = 7 x 64 + 52" in out[5] and "52 images are 159744 values" in out[5]
    assert out[6] == ("  RuntimeError: mat1 and mat2 shapes cannot be multiplied "
                      "(1x159744 and 196608x10)")
    assert out.count(SHAPES[1]) == 1                    # only the first batch's shapes


def test_real_cifar_format_last_batch_of_16(p17, real_cifar, capsys):
    """80 test images = 64 + 16, the real test set's remainder (10000 = 156 x 64 + 16)."""
    write_cifar10(real_cifar, n_test=80)
    assert p17.main(["--data-root", str(real_cifar), "--device", "cpu",
                     "--print-every-batch"]) == 0
    out = capsys.readouterr().out
    assert "1 batch of 64" in out
    assert "80 images = 1 x 64 + 16; flattened, 16 images are 49152 values" in out
    assert "(1x49152 and 196608x10)" in out


def test_print_every_batch_and_max_batches(p17, capsys):
    assert p17.main(["--fake-data", "--device", "cpu", "--print-every-batch",
                     "--max-batches", "3"]) == 0
    out = after_note(capsys.readouterr().out)
    assert all(out.count(line) == 3 for line in SHAPES)
    assert "3 batches of 64" in out


def test_max_batches_all_runs_every_whole_batch(p17, monkeypatch, capsys):
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 200)      # 200 = 3 x 64 + 8: 3 whole batches
    assert p17.main(["--fake-data", "--device", "cpu", "--print-every-batch",
                     "--max-batches", "all"]) == 0
    out = after_note(capsys.readouterr().out)
    assert all(out.count(line) == 200 // 64 for line in SHAPES)
    assert "3 batches of 64" in out
    assert any("200 images = 3 x 64 + 8" in line for line in out)


def test_offline_without_cifar_is_one_error_line(p17, tmp_path, offline, capsys):
    assert p17.main(["--data-root", str(tmp_path / "none"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: CIFAR-10 is not in ") and err.count("\n") == 1
    assert "--fake-data" in err
