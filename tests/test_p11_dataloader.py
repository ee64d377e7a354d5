"""p11_dataloader: shuffled batches of the test set, one TensorBoard step per batch, 2 epochs."""
import pickle

import numpy as np
import pytest

from conftest import after_note, decoded, events, load_script, only_run, run_dirs, write_cifar10

from common.data import FakeCIFAR10
from common.model import CIFAR10_CLASSES

SCRIPT = "p11_dataloader"
TAGS = {"Epoch: 0", "Epoch: 1"}


@pytest.fixture(scope="module")
def p11():
    return load_script(SCRIPT)


def tiles(grid, n, size=32, ncols=8):
    """The n images of a TensorBoard grid (add_images lays out 8 per row)."""
    return [grid[(i // ncols) * size:(i // ncols + 1) * size,
                 (i % ncols) * size:(i % ncols + 1) * size] for i in range(n)]


def test_course_batches_of_10_shuffled_over_two_epochs(p11, tmp_path, capsys):
    logs = tmp_path / "logs"
    assert p11.main(["--fake-data", "--seed", "0", "--logdir", str(logs)]) == 0
    test_data = FakeCIFAR10(train=False)                 # the oracle: the same synthetic set
    target = test_data.targets[0]
    out = after_note(capsys.readouterr().out)
    assert out[:3] == ["img.shape: torch.Size([3, 32, 32])", f"target: {target}",
                       f"test_data.classes[target]: {CIFAR10_CLASSES[target]}"]

    acc = events(only_run(logs, SCRIPT))
    assert set(acc.Tags()["images"]) == TAGS
    epochs = {tag: decoded(acc, tag) for tag in TAGS}
    for grids in epochs.values():                       # 500 images / 10 = 50 steps
        assert sorted(grids) == list(range(50))
        assert all(g.shape == (64, 256, 3) for g in grids.values())   # 10 images: 8 + 2 per row
    # shuffle=True: each epoch deals a new order...
    assert not np.array_equal(epochs["Epoch: 0"][0], epochs["Epoch: 1"][0])
    # ...of the whole test set, every image once (compared by mean pixel value)
    for grids in epochs.values():
        logged = sorted(t.astype(float).mean() for g in grids.values() for t in tiles(g, 10))
        expected = sorted(test_data.data.astype(float).mean(axis=(1, 2, 3)))
        assert np.allclose(logged, expected, atol=1.0)


def test_seed_repeats_the_shuffle_and_drop_last_keeps_the_last_batch(p11, real_cifar, tmp_path,
                                                                     capsys):
    root = write_cifar10(tmp_path / "data130", n_train=5, n_test=130)   # 64 + 64 + 2

    def first_epoch(seed, name):
        logs = tmp_path / name
        assert p11.main(["--data-root", str(root), "--batch-size", "64", "--epochs", "1",
                         "--seed", str(seed), "--logdir", str(logs)]) == 0
        return {e.step: (e.height, e.encoded_image_string)
                for e in events(only_run(logs, SCRIPT)).Images("Epoch: 0")}

    a, again, other = first_epoch(1, "a"), first_epoch(1, "again"), first_epoch(2, "other")
    assert sorted(a) == [0, 1, 2]                     # drop_last=False: the 2 left over stay
    assert [a[s][0] for s in range(3)] == [8 * 32, 8 * 32, 32]
    assert a == again
    assert a[0] != other[0]


def test_real_cifar_layout(p11, real_cifar, tmp_path, capsys):
    logs = tmp_path / "logs"
    assert p11.main(["--data-root", str(real_cifar), "--logdir", str(logs)]) == 0
    with open(real_cifar / "cifar-10-batches-py" / "test_batch", "rb") as f:
        target = pickle.load(f)["labels"][0]
    out = capsys.readouterr().out.splitlines()          # real data: no --fake-data note
    assert not any(line.startswith("--fake-data") for line in out)
    assert out[:3] == ["img.shape: torch.Size([3, 32, 32])", f"target: {target}",
                       f"test_data.classes[target]: {CIFAR10_CLASSES[target]}"]
    acc = events(only_run(logs, SCRIPT))
    for tag in TAGS:                                     # 20 images / 10 = 2 steps
        assert [e.step for e in acc.Images(tag)] == [0, 1]


def test_offline_without_files_is_one_line_and_writes_nothing(p11, tmp_path, offline, capsys):
    logs = tmp_path / "logs"
    assert p11.main(["--data-root", str(tmp_path / "data"), "--logdir", str(logs)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: CIFAR-10 is not in")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert run_dirs(logs, SCRIPT) == []


def test_help_shows_the_course_defaults(p11, capsys):
    with pytest.raises(SystemExit) as e:
        p11.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--batch-size" in out and "(default: 10)" in out and "(default: 2)" in out
    assert "--seed" in out and "--num-workers" in out
