import os

import pytest

from common import disk, runs
from common.cli import UserError


def test_new_run_takes_one_id_in_every_root(tmp_path):
    logs, ckpt = tmp_path / "logs", tmp_path / "ckpt"
    ids = [runs.new_run("p23_train", logs, ckpt, run_id="20260101-000000")[0] for _ in range(3)]
    assert ids == ["20260101-000000", "20260101-000000-2", "20260101-000000-3"]
    for root in (logs, ckpt):
        assert sorted(p.name for p in (root / "p23_train").iterdir()) == ids


def test_new_run_skips_an_id_taken_in_any_root(tmp_path):
    logs, ckpt = tmp_path / "logs", tmp_path / "ckpt"
    (ckpt / "p23_train" / "20260101-000000").mkdir(parents=True)   # left by a deleted log folder
    run_id, folders = runs.new_run("p23_train", logs, ckpt, run_id="20260101-000000")
    assert run_id == "20260101-000000-2"
    assert folders == [logs / "p23_train" / run_id, ckpt / "p23_train" / run_id]
    assert sorted(p.name for p in (logs / "p23_train").iterdir()) == [run_id]


def test_default_run_id_is_the_start_time(tmp_path):
    run_id, _ = runs.new_run("demo", tmp_path)
    assert len(run_id) == 15 and run_id[:8].isdigit() and run_id[8] == "-" and run_id[9:].isdigit()


def _touch(path, when):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, ns=(when, when))


def test_latest_checkpoint_is_the_last_epoch_of_the_newest_run(tmp_path):
    base = tmp_path / "p23_train"
    t = 10**18
    _touch(base / "old" / "gst_0.pth", t)
    _touch(base / "old" / "gst_1.pth", t + 1)
    _touch(base / "new" / "gst_2.pth", t + 4)        # epochs in number order, not name order:
    _touch(base / "new" / "gst_10.pth", t + 3)       # gst_10 is the last epoch of "new"
    _touch(base / "new" / "notes.pth", t + 9)        # not <name>_<N>.pth: ignored
    _touch(tmp_path / "p22_model_save" / "gst_method2.pth", t + 9)   # another lesson's folder
    (base / "empty").mkdir()                          # a run stopped before its first epoch
    assert runs.latest_checkpoint(tmp_path, "p23_train") == base / "new" / "gst_10.pth"
    _touch(base / "old" / "gst_2.pth", t + 5)         # the old run resumed: now it is the newest
    assert runs.latest_checkpoint(tmp_path, "p23_train") == base / "old" / "gst_2.pth"
    assert runs.checkpoints_of(base / "new") == [base / "new" / "gst_2.pth", base / "new" / "gst_10.pth"]


def test_no_run_is_none_or_one_line(tmp_path):
    assert runs.latest_checkpoint(tmp_path / "nothing", "p23_train") is None
    with pytest.raises(UserError) as e:
        runs.need_latest_checkpoint(tmp_path, "p23_train", "train one first")
    assert str(e.value) == f"no p23_train run in {tmp_path / 'p23_train'}: train one first"


@pytest.mark.parametrize("checkpoint_dir", ["afile", "afile/deeper"])
def test_a_checkpoint_dir_through_a_file_says_so_not_how_to_start_a_run_there(tmp_path,
                                                                               checkpoint_dir):
    (tmp_path / "afile").write_text("not a folder")
    root = tmp_path / checkpoint_dir
    assert disk.file_in_the_way(root / "p23_train") == tmp_path / "afile"
    assert disk.file_in_the_way(tmp_path / "new" / "p23_train") is None      # none there yet
    with pytest.raises(UserError) as e:
        runs.need_latest_checkpoint(root, "p23_train", "train one first")
    assert str(e.value) == (f"no p23_train run in {root / 'p23_train'}: {tmp_path / 'afile'} is "
                            "a file, not a folder; name the folder that holds the runs with "
                            "--checkpoint-dir DIR")
