"""p16_nonlinear: ReLU on the course's 2x2 input (reshaped, as the lesson meant), then
Sigmoid on CIFAR-10 images into TensorBoard."""
import math

import numpy as np
import pytest
import torch

from conftest import after_note, decoded, events, load_script, only_run, run_dirs


SCRIPT = "p16_nonlinear"


@pytest.fixture(scope="module")
def p16():
    return load_script(SCRIPT)


def test_relu_on_the_reshaped_input_and_sigmoid_images(p16, tmp_path, capsys):
    logs = tmp_path / "logs"
    assert p16.main(["--fake-data", "--device", "cpu", "--logdir", str(logs)]) == 0
    relu_by_hand = [[max(v, 0.0) for v in row] for row in [[1, -0.5], [-1, 3]]]
    assert relu_by_hand == [[1, 0], [0, 3]]
    out = "\n".join(after_note(capsys.readouterr().out))
    # the reshaped [1, 1, 2, 2] batch went in (the course fed the 2-D tensor by mistake)
    assert out.startswith("input.shape: torch.Size([1, 1, 2, 2])\noutput = relu_net(input):\n"
                          + str(torch.tensor([[relu_by_hand]])) + "\n")
    assert "tensor([[[[1., 0.],\n          [0., 3.]]]])" in out

    acc = events(only_run(logs, SCRIPT))
    assert set(acc.Tags()["images"]) == {"input", "output"}
    inputs, outputs = decoded(acc, "input"), decoded(acc, "output")
    assert sorted(inputs) == sorted(outputs) == list(range(8))     # 500 images = 8 batches
    assert inputs[0].shape == outputs[0].shape == (256, 256, 3)    # Sigmoid keeps the shape
    assert inputs[7].shape == outputs[7].shape == (224, 256, 3)    # 52 images: 7 rows
    # the oracle: 1 / (1 + e^-x) of each logged input pixel (which is x to within 1/255)
    sigmoid = np.vectorize(lambda u: 1 / (1 + math.exp(-u / 255)))(np.arange(256))
    for step in (0, 7):
        full_rows = inputs[step][:6 * 32]          # 48 images (step 7's last row has empty slots)
        expected = (sigmoid[full_rows] * 255).astype(int)
        assert np.abs(outputs[step][:6 * 32].astype(int) - expected).max() <= 1
    # pixels in [0, 1] come out in [0.5, 0.73]: the washed-out look
    assert outputs[0].min() >= 127 and outputs[0].max() <= 187


def test_relu_net_keeps_its_input(p16):
    input = torch.tensor([[[[1, -0.5], [-1, 3]]]])
    output = p16.ReLUNet()(input)
    assert torch.equal(output, torch.tensor([[[[1.0, 0.0], [0.0, 3.0]]]]))
    assert torch.equal(input, torch.tensor([[[[1, -0.5], [-1, 3]]]]))   # inplace=False


def test_real_cifar_layout(p16, real_cifar, tmp_path, capsys):
    logs = tmp_path / "logs"
    assert p16.main(["--data-root", str(real_cifar), "--device", "cpu",
                     "--logdir", str(logs)]) == 0
    acc = events(only_run(logs, SCRIPT))
    for tag in ("input", "output"):                                # 20 images: 3 rows of 8
        assert [(e.step, e.width, e.height) for e in acc.Images(tag)] == [(0, 256, 96)]


def test_offline_without_files_is_one_line_and_writes_nothing(p16, tmp_path, offline, capsys):
    logs = tmp_path / "logs"
    assert p16.main(["--data-root", str(tmp_path / "data"), "--logdir", str(logs)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: CIFAR-10 is not in")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert run_dirs(logs, SCRIPT) == []


def test_help(p16, capsys):
    with pytest.raises(SystemExit) as e:
        p16.main(["--help"])
    assert e.value.code == 0
    assert "Sigmoid" in capsys.readouterr().out
