"""p14_conv2d: nn.Conv2d(3, 6, 3) over CIFAR-10 test batches; input/output in TensorBoard."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms

from conftest import after_note, decoded, events, load_script, only_run, run_dirs, write_cifar10

from common.data import FakeCIFAR10

SCRIPT = "p14_conv2d"


@pytest.fixture(scope="module")
def p14():
    return load_script(SCRIPT)


def as_logged(chw):
    """What TensorBoard stores for a float image in [0, 1]: x * 255, clipped, truncated."""
    return (chw.permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)


def test_layer_is_f_conv2d_with_its_own_weights(p14):
    conv3to6 = p14.Conv3to6()
    imgs = torch.rand(4, 3, 32, 32)
    output = conv3to6(imgs)
    assert output.shape == (4, 6, 30, 30)
    expected = F.conv2d(imgs, conv3to6.conv1.weight, conv3to6.conv1.bias, stride=1, padding=0)
    assert torch.allclose(output, expected, atol=1e-6)


def test_fake_data_shapes_tags_and_the_doubled_batch(p14, tmp_path, capsys):
    logs = tmp_path / "logs"
    torch.manual_seed(0)          # the layer's random weights, reproduced below as the oracle
    assert p14.main(["--fake-data", "--device", "cpu", "--logdir", str(logs)]) == 0
    out = after_note(capsys.readouterr().out)
    assert out[0].startswith("TensorBoard run: ")
    # first batch only; then the number of batches, ceil(500 / 64) = 8
    assert out[1:] == ["imgs.shape: torch.Size([64, 3, 32, 32])",
                       "output.shape: torch.Size([64, 6, 30, 30])", "batches: 8"]

    acc = events(only_run(logs, SCRIPT))
    assert set(acc.Tags()["images"]) == {"input", "output"}
    inputs, outputs = decoded(acc, "input"), decoded(acc, "output")
    assert sorted(inputs) == sorted(outputs) == list(range(8))
    # add_images lays out 8 images per row: 64 inputs of 32x32 -> 8 x 8 tiles
    assert inputs[0].shape == (8 * 32, 8 * 32, 3)
    # 64 x 6 channels reshaped to 3 channels: 128 images of 30x30 -> 16 rows of 8 tiles
    assert outputs[0].shape == (16 * 30, 8 * 30, 3)
    assert outputs[7].shape == (13 * 30, 8 * 30, 3)   # last batch: 52 images -> 104 -> 13 rows

    # the oracle: the same weights (same seed) through F.conv2d on the first test images
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 3)
    test_set = FakeCIFAR10(train=False, transform=transforms.ToTensor())
    imgs = torch.stack([test_set[i][0] for i in range(2)])
    expected = F.conv2d(imgs, conv.weight, conv.bias).detach()       # [2, 6, 30, 30]
    first_row = [outputs[0][:30, k * 30:(k + 1) * 30] for k in range(4)]
    # image 0's channels 0-2 and 3-5, then image 1's: one image became two
    for tile, chw in zip(first_row, [expected[0, :3], expected[0, 3:], expected[1, :3], expected[1, 3:]]):
        assert np.abs(tile.astype(int) - as_logged(chw).astype(int)).max() <= 1
    assert np.abs(inputs[0][:32, :32].astype(int) - as_logged(imgs[0]).astype(int)).max() <= 1


def test_print_every_batch(p14, real_cifar, tmp_path, capsys):
    root = write_cifar10(tmp_path / "data130", n_train=5, n_test=130)   # 64 + 64 + 2
    assert p14.main(["--data-root", str(root), "--device", "cpu", "--print-every-batch",
                     "--logdir", str(tmp_path / "logs")]) == 0
    out = capsys.readouterr().out.splitlines()[1:]      # after the TensorBoard line
    assert out == ["imgs.shape: torch.Size([64, 3, 32, 32])",
                   "output.shape: torch.Size([64, 6, 30, 30])"] * 2 + [
        "imgs.shape: torch.Size([2, 3, 32, 32])", "output.shape: torch.Size([2, 6, 30, 30])",
        "batches: 3"]


def test_real_cifar_layout(p14, real_cifar, tmp_path, capsys):
    logs = tmp_path / "logs"
    assert p14.main(["--data-root", str(real_cifar), "--device", "cpu",
                     "--logdir", str(logs)]) == 0
    out = capsys.readouterr().out.splitlines()          # real data: no --fake-data note
    assert not any(line.startswith("--fake-data") for line in out)
    assert out[0].startswith("TensorBoard run: ")
    assert out[1:] == ["imgs.shape: torch.Size([20, 3, 32, 32])",
                       "output.shape: torch.Size([20, 6, 30, 30])", "batches: 1"]
    acc = events(only_run(logs, SCRIPT))
    assert [(e.step, e.height) for e in acc.Images("output")] == [(0, 5 * 30)]   # 40 images


def test_offline_without_files_is_one_line_and_writes_nothing(p14, tmp_path, offline, capsys):
    logs = tmp_path / "logs"
    assert p14.main(["--data-root", str(tmp_path / "data"), "--logdir", str(logs)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: CIFAR-10 is not in")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert run_dirs(logs, SCRIPT) == []


def test_help(p14, capsys):
    with pytest.raises(SystemExit) as e:
        p14.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--print-every-batch" in out and "--device" in out and "--fake-data" in out
