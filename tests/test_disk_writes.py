"""A full disk, a file-size limit, a folder that is a file: one ``error:`` line, nothing lost.

Writes are made to fail for real: with a lowered file-size limit (``RLIMIT_FSIZE``, what
``ulimit -f`` sets; a write past it fails with EFBIG, as one on a full disk fails with ENOSPC),
and, where this runs as root, on a small tmpfs that fills up (a real ENOSPC).
"""
from __future__ import annotations

import errno
import os
import re
import resource
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common import checkpoint, data, disk
from conftest import (REPO, SCRIPTS, events, file_size_limit, load_script, only_run,
                      printed_run, run_dirs)

p23 = load_script("p23_train")
LIMIT_WORDS = "the file is larger than this system allows (a file-size limit, ulimit -f)"
LIMIT_HINT = "raise the limit (ulimit -f unlimited), or write elsewhere with"


def limited(n: int):
    """A ``preexec_fn`` that sets the file-size limit of the child process."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))


def error_lines(stderr: str) -> list[str]:
    """stderr less tqdm's progress bars (its lines and carriage-return updates), which must
    be all there is besides: no traceback, no warning."""
    lines = [line for line in re.split(r"[\r\n]", stderr) if line.strip()]
    return [line for line in lines if not re.match(r"epoch \d+/\d+: ", line)]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


@pytest.fixture
def small_sets(monkeypatch):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)


# --- common/disk ---------------------------------------------------------------------------

@pytest.mark.parametrize("code, words, hint", [
    (errno.ENOSPC, "no space left on the device", "free some space, or write elsewhere with --x DIR"),
    (errno.EFBIG, LIMIT_WORDS, "raise the limit (ulimit -f unlimited), or write elsewhere with --x DIR"),
    (errno.EROFS, "the file system is read-only", "choose a folder you can write to with --x DIR"),
    (errno.EACCES, "permission denied", "choose a folder you can write to with --x DIR"),
    (errno.ENOTDIR, "a part of the path is a file, not a folder", "name a folder, not a file, with --x DIR"),
    (errno.EISDIR, "it is a folder", "move that folder out of the way, or write elsewhere with --x DIR"),
])
def test_a_failed_write_in_words(code, words, hint):
    e = OSError(code, os.strerror(code))
    assert str(disk.failed(Path("out/f.pth"), e, "--x DIR")) == f"cannot write out/f.pth: {words}; {hint}"
    if code == errno.EISDIR:      # with no flag to name, no "elsewhere" either
        assert str(disk.failed(Path("out/f.pth"), e)) == ("cannot write out/f.pth: it is a folder; "
                                                          "move that folder out of the way")
    assert disk.is_write_failure(e)
    assert not disk.is_write_failure(OSError(errno.ECONNREFUSED, "refused"))


def test_need_writable_leaves_the_disk_as_it_was(tmp_path):
    assert disk.need_writable(tmp_path / "a" / "b" / "c", "--x DIR") == tmp_path / "a" / "b" / "c"
    assert list(tmp_path.iterdir()) == []            # the folders it made are gone again
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(disk.WriteError) as caught:
        disk.need_writable(tmp_path / "afile" / "logs", "--logdir DIR")
    assert str(caught.value) == (f"cannot write {tmp_path / 'afile' / 'logs'}: a part of the path "
                                 "is a file, not a folder; name a folder, not a file, with --logdir DIR")
    assert files_under(tmp_path) == ["afile"]


def test_peak_bytes_counted_by_hand(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    # nothing there: both files at once, 100 + 50
    assert disk.peak_bytes([(a, 100), (b, 50)]) == 150
    # a replaced by a file of the same size: its temporary copy (100) is the peak, then
    # b's 50 comes on top of a's net 0
    a.write_bytes(bytes(100))
    assert disk.peak_bytes([(a, 100), (b, 50)]) == 100
    # both there: the larger temporary copy
    b.write_bytes(bytes(50))
    assert disk.peak_bytes([(a, 100), (b, 50)]) == 100
    assert disk.peak_bytes([(b, 50), (a, 100)]) == 100
    # a shrinks from 100 to 10, then b grows from 50 to 200: 10, then -90 + 200 = 110
    assert disk.peak_bytes([(a, 10), (b, 200)]) == 110


def test_need_space_says_how_much(tmp_path, monkeypatch):
    monkeypatch.setattr(disk, "free_bytes", lambda folder: 2_500_000)
    disk.need_space(tmp_path, 2_500_000, "it")          # just enough
    with pytest.raises(cli_error()) as caught:
        disk.need_space(tmp_path, 3_000_000, "the files", "--x DIR")
    assert str(caught.value) == (f"not enough space in {tmp_path} for the files: it needs 2.9 MB, "
                                 "and 2.4 MB is free; free some space, or write elsewhere with --x DIR")


def cli_error():
    from common.cli import UserError
    return UserError


def test_atomic_save_past_a_file_size_limit_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt" / "w.pth"
    checkpoint.save({"w": torch.zeros(10)}, path)
    before = path.read_bytes()
    with file_size_limit(100_000), pytest.raises(disk.WriteError) as caught:
        checkpoint.save({"w": torch.zeros(100_000)}, path, option="--checkpoint-dir DIR")
    assert str(caught.value) == (f"cannot write {path}: {LIMIT_WORDS}; {LIMIT_HINT} "
                                 "--checkpoint-dir DIR")
    assert path.read_bytes() == before                  # the old file, whole
    assert files_under(tmp_path) == ["ckpt/w.pth"]      # no temporary file left
    assert torch.equal(checkpoint.load(path)["w"], torch.zeros(10))


def test_ctrl_c_inside_torch_save_is_ctrl_c_and_leaves_the_old_file(tmp_path, monkeypatch):
    """Ctrl-C lands in a write that torch.save makes from C++ (a 528 MB VGG16 takes seconds):
    C++ turned the KeyboardInterrupt into RuntimeError "unexpected pos ...", two tracebacks
    instead of the one word "interrupted"."""
    path = tmp_path / "w.pth"
    checkpoint.save({"w": torch.zeros(10)}, path)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class Pressed:                            # the file, with Ctrl-C pressed at the third write
        def __init__(self, f):
            self.f, self.writes = f, 0

        def write(self, b):
            self.writes += 1
            if self.writes == 3:
                raise KeyboardInterrupt
            return self.f.write(b)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(disk.os, "fdopen", lambda *a, **k: Pressed(real_fdopen(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"a": torch.ones(1000), "b": torch.ones(1000)}, path)
    assert path.read_bytes() == before and files_under(tmp_path) == ["w.pth"]


# --- p23: a checkpoint that can't be written, an event file that can't grow ------------------

RESUME = re.compile(r"go on with: (.+)$")


def test_p23_past_a_file_size_limit_is_one_line_and_leaves_no_checkpoint(tmp_path, small_sets,
                                                                          capsys):
    """The issue's run: `ulimit -f 400; p23_train.py --fake-data --epochs 1`. The first
    checkpoint (592 kB: GST's weights) can't be written; the event file (~170 kB) can."""
    argv = ["--fake-data", "--epochs", "1", "--device", "cpu",
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--logdir", str(tmp_path / "logs")]
    with file_size_limit(400_000):
        assert p23.main(argv) == 1
    out, err = capsys.readouterr()
    assert files_under(tmp_path / "ckpt") == []        # no checkpoint, no temporary file
    assert [p.name for p in (tmp_path / "ckpt" / "p23_train").iterdir()] == []   # no empty run
    # nor its curves, which no checkpoint goes on from
    assert run_dirs(tmp_path / "logs", "p23_train") == []
    gst_0 = tmp_path / "ckpt" / "p23_train" / printed_run(out).name / "gst_0.pth"
    assert error_lines(err) == [
        f"error: cannot write {gst_0}: {LIMIT_WORDS}; {LIMIT_HINT} "
        "--checkpoint-dir DIR. Stopped in epoch 1 of 1: no checkpoint was saved, nothing to resume "
        "(its TensorBoard run is removed too): run the same command again"]
    assert "整体测试集上的正确率" in out                # it trained and tested the epoch first


def test_p23_on_a_full_disk_stops_with_the_command_that_goes_on(tmp_path, small_disk,
                                                                small_sets, capsys):
    """Two checkpoints (592 kB each) fit on a 1.5 MB disk, the third doesn't: the line names
    it, the two load, and the command it prints, once there is room, finishes the run."""
    full = small_disk("1500k")
    argv = ["--fake-data", "--epochs", "3", "--seed", "0", "--device", "cpu",
            "--checkpoint-dir", str(full), "--logdir", str(tmp_path / "logs")]
    assert p23.main(argv) == 1
    (err,) = error_lines(capsys.readouterr().err)
    run = only_run(full, "p23_train")
    assert err.startswith(f"error: cannot write {run / 'gst_2.pth'}: no space left on the device; "
                          "free some space, or write elsewhere with --checkpoint-dir DIR. Stopped "
                          "in epoch 3 of 3: gst_1.pth holds epoch 2; go on with: ")
    assert files_under(run) == ["gst_0.pth", "gst_1.pth"]        # no temporary file
    for epoch in (0, 1):
        assert checkpoint.load(run / f"gst_{epoch}.pth")["epoch"] == epoch
    command = shlex.split(RESUME.search(err).group(1))
    assert command[command.index("--resume") + 1] == str(run / "gst_1.pth")
    (run / "gst_0.pth").unlink()                                 # room for one more
    assert p23.main(command[2:]) == 0
    assert checkpoint.load(run / "gst_2.pth")["epoch"] == 2


# pytest 8.0 (the floors) sets threading.excepthook back after each test, dropping the one
# common.writer installs once a process, so TensorBoard's failing thread shows up here as a
# warning; that a real process prints nothing from it is test_common_writer's subprocess test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_p23_stops_when_tensorboard_cannot_write(tmp_path, small_sets, capsys):
    """TensorBoard's event file outgrows the limit (its pictures, every epoch) while the
    checkpoints still fit: the run stops at that epoch instead of losing curves."""
    argv = ["--fake-data", "--epochs", "20", "--seed", "0", "--device", "cpu",
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--logdir", str(tmp_path / "logs")]
    with file_size_limit(EVENTS_LIMIT):
        assert p23.main(argv) == 1
    (err,) = error_lines(capsys.readouterr().err)
    logs = only_run(tmp_path / "logs", "p23_train")
    (event_file,) = logs.glob("events.out.tfevents.*")
    m = re.fullmatch(rf"error: cannot write {re.escape(str(event_file))}: {re.escape(LIMIT_WORDS)}; "
                     rf"{re.escape(LIMIT_HINT)} --logdir DIR\. Stopped in epoch "
                     r"(\d+) of 20: gst_(\d+)\.pth holds epoch (\d+); go on with: .+", err)
    assert m, err
    stopped, last, held = map(int, m.groups())
    assert 1 < stopped < 20 and held == last + 1 and last in (stopped - 1, stopped - 2)
    ckpt = only_run(tmp_path / "ckpt", "p23_train")
    for path in ckpt.iterdir():
        assert checkpoint.load(path)["run_id"] == ckpt.name       # each one loads
    assert max(int(p.stem.split("_")[1]) for p in ckpt.iterdir()) == last
    assert event_file.stat().st_size <= EVENTS_LIMIT
    assert events(logs).Scalars("test_accuracy")                  # what was written reads


EVENTS_LIMIT = 700_000     # a checkpoint (592 kB) fits; the event file grows ~170 kB an epoch


@pytest.mark.parametrize("flag", ["--checkpoint-dir", "--logdir", "--metrics", "--data-root"])
def test_p23_an_output_path_through_a_file_stops_before_any_work(tmp_path, flag, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    extra = ["--data-root", str(afile / "data")] if flag == "--data-root" else \
        ["--fake-data", flag, str(afile / ("m.json" if flag == "--metrics" else "out"))]
    argv = [*extra, "--epochs", "1", "--device", "cpu"]
    if flag != "--checkpoint-dir":
        argv += ["--checkpoint-dir", str(tmp_path / "ckpt")]
    if flag != "--logdir":
        argv += ["--logdir", str(tmp_path / "logs")]
    assert p23.main(argv) == 1
    out, err = capsys.readouterr()
    where = {"--checkpoint-dir": afile / "out" / "p23_train", "--logdir": afile / "out" / "p23_train",
             "--metrics": afile / "m.json", "--data-root": afile / "data"}[flag]
    hint = "give another path with --metrics PATH" if flag == "--metrics" else \
        f"name a folder, not a file, with {flag} DIR"
    assert err == f"error: cannot write {where}: a part of the path is a file, not a folder; {hint}\n"
    assert "训练数据集的长度" not in out                  # stopped before reading any data
    assert files_under(tmp_path) == ["afile"]


def test_p23_metrics_naming_a_folder_stops_before_any_work(tmp_path, capsys):
    argv = ["--fake-data", "--epochs", "1", "--device", "cpu", "--metrics", str(tmp_path),
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--logdir", str(tmp_path / "logs")]
    assert p23.main(argv) == 1
    out, err = capsys.readouterr()
    assert err == (f"error: cannot write {tmp_path}: it is a folder; give a file's path, not a "
                   "folder's, with --metrics PATH\n")
    assert "训练数据集的长度" not in out
    assert files_under(tmp_path) == []


def test_p23_metrics_that_cannot_be_written_says_the_checkpoints_are_whole(
        tmp_path, small_disk, small_sets, monkeypatch, capsys):
    """The last write of a run, the JSON file, fails: its disk fills up while the run trains.
    The line says that the training and its checkpoints are complete."""
    metrics = small_disk("64k") / "m.json"
    real_train = p23.train

    def train_and_fill_the_disk(*args, **kwargs):
        fd = os.open(metrics.parent / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, bytes(4096))
        except OSError as e:
            assert e.errno == errno.ENOSPC
        finally:
            os.close(fd)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(p23, "train", train_and_fill_the_disk)
    argv = ["--fake-data", "--epochs", "1", "--device", "cpu", "--metrics", str(metrics),
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--logdir", str(tmp_path / "logs")]
    assert p23.main(argv) == 1
    (err,) = error_lines(capsys.readouterr().err)
    run_id = only_run(tmp_path / "logs", "p23_train").name
    gst_0 = tmp_path / "ckpt" / "p23_train" / run_id / "gst_0.pth"
    assert err == (f"error: cannot write {metrics}: no space left on the device; free some space, "
                   "or write elsewhere with --metrics PATH. The training itself finished: every "
                   f"checkpoint is saved, the last {gst_0}")
    assert checkpoint.load(gst_0)["epoch"] == 0
    assert files_under(metrics.parent) == ["filler"]        # no half-written JSON


def test_need_writable_on_a_full_disk_leaves_nothing(small_disk):
    full = small_disk("64k")
    (full / "filler").write_bytes(bytes(64 * 1024))
    with pytest.raises(disk.WriteError) as caught:
        disk.need_writable(full / "a" / "b", "--x DIR")
    assert str(caught.value).startswith(f"cannot write {full / 'a' / 'b'}: no space left on "
                                        "the device; free some space")
    assert files_under(full) == ["filler"] and list(full.iterdir()) == [full / "filler"]


@pytest.mark.parametrize("script", ["p10_dataset_transform", "p11_dataloader", "p14_conv2d",
                                    "p15_maxpool", "p16_nonlinear", "p18_sequential",
                                    "p24_train_gpu", "p25_test"])
def test_a_lesson_with_a_logdir_through_a_file_stops_before_reading_data(tmp_path, script, capsys,
                                                                       offline):
    """No CIFAR-10 under --data-root and no network: a lesson that read its data first would
    stop with the download's line instead."""
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    argv = ["--logdir", str(afile / "logs")]
    if script not in ("p10_dataset_transform", "p11_dataloader"):     # they have no --device
        argv += ["--device", "cpu"]
    if script != "p18_sequential":
        argv += [str(REPO / "README.md")] if script == "p25_test" else \
            ["--data-root", str(tmp_path / "data")]
    assert load_script(script).main(argv) == 1
    out, err = capsys.readouterr()
    assert err == (f"error: cannot write {afile / 'logs' / script}: a part of the path is a file, "
                   "not a folder; name a folder, not a file, with --logdir DIR\n")
    assert files_under(tmp_path) == ["afile"]


# --- p22: 1.1 GB of VGG16 --------------------------------------------------------------------

def test_p22_past_a_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    """The issue's own run, as a learner types it (`ulimit -f`, then the script): the whole
    process's stderr is one line, with no traceback from a thread or at exit."""
    done = subprocess.run([sys.executable, str(SCRIPTS / "p22_model_save.py"), "--arch",
                           "squeezenet1_1", "--device", "cpu", "--checkpoint-dir", tmp_path],
                          capture_output=True, text=True, preexec_fn=limited(1_000_000),
                          cwd=REPO, timeout=300)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: cannot write {tmp_path / 'p22_model_save' / 'squeezenet1_1_method1.pth'}: "
        f"{LIMIT_WORDS}; {LIMIT_HINT} --checkpoint-dir DIR"]
    assert files_under(tmp_path) == []


def test_p22_checks_the_space_its_files_need_before_writing(tmp_path, monkeypatch, capsys):
    # loaded here: its trap model is pickled by the class of the module that sys.modules
    # holds under that name, which another test file's load may have replaced
    p22 = load_script("p22_model_save")
    # What the two files really take, saved with room to spare: the oracle for the check.
    assert p22.main(["--arch", "squeezenet1_1", "--device", "cpu", "--checkpoint-dir",
                     str(tmp_path / "room")]) == 0
    capsys.readouterr()
    saved = sum((tmp_path / "room" / "p22_model_save" / f"squeezenet1_1_method{n}.pth").stat().st_size
                for n in (1, 2))
    asked = []
    monkeypatch.setattr(disk, "free_bytes", lambda folder: asked.append(folder) or saved - 1)
    assert p22.main(["--arch", "squeezenet1_1", "--device", "cpu", "--checkpoint-dir",
                     str(tmp_path / "tight")]) == 1
    err = capsys.readouterr().err
    m = re.fullmatch(rf"error: not enough space in {re.escape(str(tmp_path / 'tight' / 'p22_model_save'))} "
                     r"for the two squeezenet1_1 files \(at most (\d+\.\d) MB each\): it needs (\d+\.\d) MB, "
                     rf"and {(saved - 1) / 2**20:.1f} MB is free; free some space, or write elsewhere "
                     r"with --checkpoint-dir DIR\n", err)
    assert m, err
    each, needed = float(m.group(1)), float(m.group(2))
    saved_mb = saved / 2**20                                        # MB as the line counts
    assert saved_mb - 0.05 <= needed <= saved_mb + 0.25             # enough, and not much more
    assert each == pytest.approx(needed / 2, abs=0.1)
    assert not (tmp_path / "tight").exists()          # nothing written, not even a folder
    # a rerun over the files it wrote before needs only what they do not already take, and
    # says so
    monkeypatch.setattr(disk, "free_bytes", lambda folder: 0)
    assert p22.main(["--arch", "squeezenet1_1", "--device", "cpu", "--checkpoint-dir",
                     str(tmp_path / "room")]) == 1
    err = capsys.readouterr().err
    assert re.search(r"files \(at most \d+\.\d MB each, less the old ones they replace\): it "
                     r"needs (\d+\.\d) MB", err), err


class FillsUp:
    """Standard output redirected to a file on a disk that fills up once ``after`` is
    printed: every write from then on fails as a full disk's does."""

    def __init__(self, after: str):
        self.after, self.full, self.text = after, False, []

    def write(self, s: str) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.full = self.after in s
        self.text.append(s)
        return len(s)

    def flush(self):
        pass


def test_p23_printing_to_a_full_disk_stops_with_the_command_that_goes_on(tmp_path, small_sets,
                                                                         monkeypatch, capsys):
    out = FillsUp(after="-------第 2 轮训练开始-------")
    monkeypatch.setattr(sys, "stdout", out)
    argv = ["--fake-data", "--epochs", "3", "--seed", "0", "--device", "cpu",
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--logdir", str(tmp_path / "logs")]
    assert p23.main(argv) == 1
    (err,) = error_lines(capsys.readouterr().err)
    run = only_run(tmp_path / "ckpt", "p23_train")
    assert err.startswith("error: cannot write the printed output (standard output): no space "
                          "left on the device; free some space, or write elsewhere. Stopped in "
                          "epoch 2 of 3: gst_0.pth holds epoch 1; go on with: ")
    monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    command = shlex.split(RESUME.search(err).group(1))
    assert command[command.index("--resume") + 1] == str(run / "gst_0.pth")
    assert p23.main(command[2:]) == 0
    assert checkpoint.load(run / "gst_2.pth")["epoch"] == 2


def test_a_lesson_printing_to_a_full_file_names_the_output(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        done = subprocess.run([sys.executable, str(SCRIPTS / "p13_conv.py")], stdout=f,
                              stderr=subprocess.PIPE, text=True, preexec_fn=limited(10))
    assert done.returncode == 1
    assert done.stderr == (f"error: cannot write the printed output (standard output, {log}): "
                           f"{LIMIT_WORDS}; raise the limit (ulimit -f unlimited), or write "
                           "elsewhere\n")


def test_resuming_into_a_run_folder_it_cannot_write_stops_before_training(tmp_path, small_sets,
                                                                          capsys):
    argv = ["--fake-data", "--epochs", "1", "--seed", "0", "--device", "cpu",
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--logdir", str(tmp_path / "logs")]
    assert p23.main(argv) == 0
    run = only_run(tmp_path / "ckpt", "p23_train")
    capsys.readouterr()
    # only the run's own folder read-only (a bind mount: root writes through chmod 555)
    done = subprocess.run(f"mount --bind {run} {run} && mount -o remount,bind,ro {run}",
                          shell=True, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")
    try:
        assert p23.main(["--resume", str(run / "gst_0.pth"), "--epochs", "2",
                         *argv[argv.index("--checkpoint-dir"):]]) == 1
    finally:
        subprocess.run(["umount", str(run)], check=True)
    captured = capsys.readouterr()
    assert captured.err == (f"error: cannot write {run}: the file system is read-only; choose a "
                            "folder you can write to with --checkpoint-dir DIR\n")
    assert "第 2 轮" not in captured.out and files_under(run) == ["gst_0.pth"]
