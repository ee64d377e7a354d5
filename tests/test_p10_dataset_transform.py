"""p10_dataset_transform: CIFAR-10 with ToTensor, printed, first 10 test images in TensorBoard."""
import pickle

import numpy as np
import pytest

from conftest import after_note, decoded, load_script, only_run, run_dirs

from common import data
from common.data import FakeCIFAR10
from common.model import CIFAR10_CLASSES

SCRIPT = "p10_dataset_transform"


@pytest.fixture(scope="module")
def p10():
    return load_script(SCRIPT)


def test_fake_data_prints_the_set_and_logs_the_first_ten_images(p10, tmp_path, capsys):
    assert p10.main(["--fake-data", "--logdir", str(tmp_path / "logs")]) == 0
    test_set = FakeCIFAR10(train=False)          # the oracle: the same synthetic set
    target = test_set.targets[0]
    assert target == 3                           # a cat, as the video's first test image
    out = after_note(capsys.readouterr().out)
    assert out[:6] == [f"len(train_set): {data.FAKE_TRAIN_SIZE}",
                       f"len(test_set): {data.FAKE_TEST_SIZE}",
                       "img.shape: torch.Size([3, 32, 32])", f"target: {target}",
                       f"test_set.classes: {list(CIFAR10_CLASSES)}",
                       f"test_set.classes[target]: {CIFAR10_CLASSES[target]}"]

    images = decoded(only_run(tmp_path / "logs", SCRIPT), "test_set")
    assert sorted(images) == list(range(10))
    for i, img in images.items():    # image i is test image i (ToTensor and back: off by <= 1)
        assert img.shape == (32, 32, 3)
        assert np.abs(img.astype(int) - test_set.data[i].astype(int)).max() <= 1


def test_real_cifar_layout(p10, real_cifar, tmp_path, capsys):
    assert p10.main(["--data-root", str(real_cifar), "--logdir", str(tmp_path / "logs")]) == 0
    with open(real_cifar / "cifar-10-batches-py" / "test_batch", "rb") as f:
        batch = pickle.load(f)                   # the oracle: the file itself
    target = batch["labels"][0]
    out = capsys.readouterr().out.splitlines()          # real data: no --fake-data note
    assert not any(line.startswith("--fake-data") for line in out)
    assert out[:6] == ["len(train_set): 50", f"len(test_set): {len(batch['labels'])}",
                       "img.shape: torch.Size([3, 32, 32])", f"target: {target}",
                       f"test_set.classes: {list(CIFAR10_CLASSES)}",
                       f"test_set.classes[target]: {CIFAR10_CLASSES[target]}"]
    images = decoded(only_run(tmp_path / "logs", SCRIPT), "test_set")
    assert sorted(images) == list(range(10))
    # a row of the file is the R plane, then G, then B
    first = batch["data"][0].reshape(3, 32, 32).transpose(1, 2, 0).astype(int)
    assert np.abs(images[0].astype(int) - first).max() <= 1


def test_offline_without_files_is_one_line_and_writes_nothing(p10, tmp_path, offline, capsys):
    logs = tmp_path / "logs"
    assert p10.main(["--data-root", str(tmp_path / "data"), "--logdir", str(logs)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: CIFAR-10 is not in")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert run_dirs(logs, SCRIPT) == []


def test_help(p10, capsys):
    with pytest.raises(SystemExit) as e:
        p10.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "--fake-data" in out and "--data-root" in out


def test_no_num_workers_flag_without_a_dataloader(p10, capsys):
    """p10 reads the dataset item by item, no DataLoader: a --num-workers would do nothing."""
    with pytest.raises(SystemExit) as e:
        p10.main(["--fake-data", "--num-workers", "2"])
    assert e.value.code == 2
    assert "unrecognized arguments: --num-workers 2" in capsys.readouterr().err
