import importlib.metadata
import importlib.util
import subprocess
import sys
import threading
import time

import pytest

from common import writer
from conftest import REPO, events, load_script, only_run, scalars


def test_make_writer_never_reuses_a_run_folder(tmp_path, capsys):
    for _ in range(3):
        writer.make_writer(tmp_path, "p07_tensorboard", run_id="20260101-000000").close()
    assert sorted(p.name for p in (tmp_path / "p07_tensorboard").iterdir()) == [
        "20260101-000000", "20260101-000000-2", "20260101-000000-3"]


def test_a_lost_wake_up_in_tensorboards_queue_costs_at_most_flush_secs(tmp_path, capsys,
                                                                       monkeypatch):
    """Seen once: a kill that landed inside TensorBoard's queue left its writer thread
    unwoken, and close() waited out the thread's flush timer (120 s by default) before the
    run could stop. The thread looks at its queue at least every FLUSH_SECS: here every
    wake-up is lost, and close() still returns within it."""
    monkeypatch.setattr(writer, "FLUSH_SECS", 0.5)
    w = writer.make_writer(tmp_path, "lesson")
    w.add_scalar("loss", 0.5, 0)
    time.sleep(0.2)                       # the thread is waiting on its queue now
    queue = w.file_writer.event_writer._async_writer._byte_queue
    monkeypatch.setattr(queue.not_empty, "notify", lambda n=1: None)     # no wake-up at all
    closing = threading.Thread(target=w.close, daemon=True)
    closing.start()
    closing.join(timeout=5)
    assert not closing.is_alive()         # with TensorBoard's 120 s: still waiting here
    assert scalars(only_run(tmp_path, "lesson"), "loss") == [(0, 0.5)]


def test_open_writer_with_purge_step_continues_one_curve(tmp_path, capsys):
    run = tmp_path / "demo" / "r"
    w = writer.open_writer(run, tmp_path)
    for step in range(1, 11):                  # an interrupted run: logged up to step 10...
        w.add_scalar("train_loss", 1.0, step)
    w.close()
    w = writer.open_writer(run, tmp_path, purge_step=7)   # ...but its checkpoint was at step 6
    for step in range(7, 13):
        w.add_scalar("train_loss", 2.0, step)
    w.close()
    assert scalars(run, "train_loss") == [(s, 1.0) for s in range(1, 7)] + [(s, 2.0) for s in range(7, 13)]


def test_default_run_id_is_a_timestamp_and_runs_do_not_mix(tmp_path, capsys):
    for value in (1.0, 2.0):
        w = writer.make_writer(tmp_path, "demo")
        w.add_scalar("y", value, 0)
        w.close()
    runs = sorted((tmp_path / "demo").iterdir())
    assert len(runs) == 2
    assert runs[0].name[:8].isdigit() and runs[0].name[8] == "-"
    # each run holds only its own point: a rerun never mixes into an earlier curve
    assert sorted(scalars(r, "y")[0][1] for r in runs) == [1.0, 2.0]
    assert all(len(scalars(r, "y")) == 1 for r in runs)
    assert f"tensorboard --logdir {tmp_path}" in capsys.readouterr().out
    assert "y" in events(runs[0]).Tags()["scalars"]


@pytest.mark.parametrize("version, has_pkg_resources, broken", [
    ("2.20.0", False, True),        # the 2026 break: tensorboard 2.20 with setuptools >= 81
    ("2.19.1", False, True),
    ("2.20.0", True, False),        # an older setuptools still has pkg_resources
    ("2.21.0", False, False),       # fixed: no pkg_resources import
    ("2.22.0rc1", False, False),
])
def test_viewer_problem_names_the_pkg_resources_break_and_its_fix(monkeypatch, version,
                                                                   has_pkg_resources, broken):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: version)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        (object() if has_pkg_resources else None) if name == "pkg_resources"
        else real_find_spec(name, *a)))
    problem = writer.viewer_problem()
    if not broken:
        assert problem is None
    else:
        assert problem == (f"the tensorboard command will stop with \"No module named "
                           f"'pkg_resources'\": tensorboard {version} needs it and this "
                           "environment's setuptools no longer has it. Fix: pip install -U "
                           "\"tensorboard>=2.21\"")


def test_a_lesson_still_writes_and_says_how_to_fix_the_viewer(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(writer, "viewer_problem", lambda: "the tensorboard command will stop")
    p07 = load_script("p07_tensorboard")
    assert p07.main(["--logdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("TensorBoard run: ") and out[1] == "note: the tensorboard command will stop"
    assert scalars(only_run(tmp_path, "p07_tensorboard"), "y=2x")[-1] == (99, 198)


def test_without_the_tensorboard_package_a_lesson_is_one_error_line(tmp_path):
    # tensorboard blocked from importing, as in an environment without it
    code = ("import runpy, sys; sys.modules['tensorboard'] = None; "
            f"sys.argv = ['p07_tensorboard.py', '--logdir', {str(tmp_path)!r}]; "
            f"runpy.run_path({str(REPO / 'scripts' / 'p07_tensorboard.py')!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("error: TensorBoard is not installed in this Python (")
    assert done.stderr.endswith("): pip install -r requirements.txt\n")
    assert done.stderr.count("\n") == 1 and list(tmp_path.iterdir()) == []


WRITER_THREAD_FAILS = """
import resource, sys, threading
from pathlib import Path
import numpy as np
from common import disk, writer
logdir = Path(sys.argv[1])
w = writer.open_writer(logdir / "run", logdir)
w.flush()                                    # the event file's header is written
resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))
noise = np.random.default_rng(0).integers(0, 256, (3, 200, 200), dtype=np.uint8)
w.add_image("noise", noise)                  # a 120 kB PNG: the writer thread's write fails
try:
    w.flush()
except disk.WriteError as e:
    for thread in threading.enumerate():     # the thread's end (and its excepthook) comes first
        if thread is not threading.current_thread():
            thread.join(10)
    sys.exit(f"error: {e}")
"""


def test_a_write_that_fails_in_tensorboards_thread_is_one_line_in_a_real_process(tmp_path):
    """The event file is written by a thread of TensorBoard's: its failure comes back in the
    main thread as one line, and the thread itself prints no traceback (Python's default
    ``threading.excepthook`` would). In a process of its own: pytest puts its own excepthook
    around each test."""
    done = subprocess.run([sys.executable, "-c", WRITER_THREAD_FAILS, str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    (event_file,) = (tmp_path / "run").glob("events.out.tfevents.*")
    assert done.returncode == 1
    assert done.stderr == (f"error: cannot write {event_file}: the file is larger than this "
                           "system allows (a file-size limit, ulimit -f); raise the limit "
                           "(ulimit -f unlimited), or write elsewhere with --logdir DIR\n")
