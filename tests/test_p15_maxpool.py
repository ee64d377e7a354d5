"""p15_maxpool: MaxPool2d(3) with ceil_mode True/False on the course's 5x5 input, held against
a hand-written max pooling; then CIFAR-10 images pooled into TensorBoard."""

import numpy as np
import pytest
import torch

from conftest import after_note, decoded, events, load_script, only_run, run_dirs


SCRIPT = "p15_maxpool"
INPUT = [[1, 2, 0, 3, 1],
         [0, 1, 2, 3, 1],
         [1, 2, 1, 0, 0],
         [5, 2, 3, 1, 1],
         [2, 1, 0, 1, 1]]


def maxpool_by_hand(image, k, ceil_mode):
    """Windows of k x k, stride k; ceil_mode keeps the windows that stick out of the image."""
    n = len(image)
    starts = range(0, n, k) if ceil_mode else range(0, n - k + 1, k)
    return [[float(max(image[i][j] for i in range(top, min(top + k, n))
                       for j in range(left, min(left + k, n))))
             for left in starts] for top in starts]


@pytest.fixture(scope="module")
def p15():
    return load_script(SCRIPT)


def test_ceil_mode_printed_and_images_pooled(p15, tmp_path, capsys):
    logs = tmp_path / "logs"
    assert p15.main(["--fake-data", "--device", "cpu", "--logdir", str(logs)]) == 0
    out = "\n".join(after_note(capsys.readouterr().out))
    expected = "\n".join([
        "input.shape: torch.Size([1, 1, 5, 5])",
        "output = maxpool3(input), ceil_mode=True:",
        str(torch.tensor([[maxpool_by_hand(INPUT, 3, ceil_mode=True)]])),
        "output = maxpool3(input), ceil_mode=False:",
        str(torch.tensor([[maxpool_by_hand(INPUT, 3, ceil_mode=False)]])),
    ]) + "\n"
    assert out.startswith(expected)
    # the course's own numbers, which the oracle gives too
    assert maxpool_by_hand(INPUT, 3, ceil_mode=True) == [[2, 3], [5, 1]]
    assert maxpool_by_hand(INPUT, 3, ceil_mode=False) == [[2]]
    assert "[[[[2., 3.],\n          [5., 1.]]]]" in out and "[[[[2.]]]]" in out

    acc = events(only_run(logs, SCRIPT))
    assert set(acc.Tags()["images"]) == {"input", "output"}
    inputs, outputs = decoded(acc, "input"), decoded(acc, "output")
    assert sorted(inputs) == sorted(outputs) == list(range(8))     # 500 images = 8 batches
    assert inputs[0].shape == (8 * 32, 8 * 32, 3)
    assert outputs[0].shape == (8 * 10, 8 * 10, 3)                 # 32 -> 10 (ceil_mode=False)
    # the oracle: pool the logged input tiles by hand. Taking the max commutes with the
    # x*255 -> uint8 conversion, so the logged output must match exactly.
    for step in (0, 7):
        for t in range(8):                                         # the first row of tiles
            tile = inputs[step][:32, t * 32:(t + 1) * 32][:30, :30]   # the last 2 px: no full window
            pooled = tile.reshape(10, 3, 10, 3, 3).max(axis=(1, 3))
            assert np.array_equal(outputs[step][:10, t * 10:(t + 1) * 10], pooled)


def test_real_cifar_layout(p15, real_cifar, tmp_path, capsys):
    logs = tmp_path / "logs"
    assert p15.main(["--data-root", str(real_cifar), "--device", "cpu",
                     "--logdir", str(logs)]) == 0
    acc = events(only_run(logs, SCRIPT))
    # 20 images: 3 rows of 8 tiles
    assert [(e.step, e.width, e.height) for e in acc.Images("output")] == [(0, 80, 30)]
    assert [(e.step, e.width, e.height) for e in acc.Images("input")] == [(0, 256, 96)]


def test_offline_without_files_is_one_line_and_writes_nothing(p15, tmp_path, offline, capsys):
    logs = tmp_path / "logs"
    assert p15.main(["--data-root", str(tmp_path / "data"), "--logdir", str(logs)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: CIFAR-10 is not in")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert run_dirs(logs, SCRIPT) == []


def test_help(p15, capsys):
    with pytest.raises(SystemExit) as e:
        p15.main(["--help"])
    assert e.value.code == 0
    assert "ceil_mode" in capsys.readouterr().out
