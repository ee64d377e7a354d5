"""A learner's walk: every command of the README's lesson table, in the table's order, in a
fresh copy of the repository, then p25 with no --checkpoint.

The commands are read from README.md (the "quick:" variant where a row offers one), so the
table and this test can't drift apart. They run in one Python process started in the copy
(each script as __main__, with its own argv, as `python scripts/...` runs it), so torch is
imported once; the copy's own `common/` is the one imported, and every default path (logs/,
checkpoints/, dataset/) is the copy's.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from common import data
from conftest import REPO, events

DRIVER = r"""
import contextlib, io, json, runpy, shlex, sys, time, traceback
commands, report = json.loads(sys.argv[1]), sys.argv[2]
results = []
for command in commands:
    argv = shlex.split(command)
    assert argv[0] == "python", command
    out, err = io.StringIO(), io.StringIO()
    sys.argv = argv[1:]
    code, start = 0, time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(argv[1], run_name="__main__")
        except SystemExit as e:
            code = e.code
        except BaseException:
            code, _ = "traceback", traceback.print_exc()
    results.append({"command": command, "code": code, "out": out.getvalue(), "err": err.getvalue(),
                    "seconds": time.perf_counter() - start})
import common
json.dump({"common": common.__file__, "results": results}, open(report, "w"))
"""


def readme_lesson_commands():
    """``[(P, command), ...]`` from the README's lesson table, in its order."""
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Lessons"):readme.index("## TensorBoard")]
    rows = re.findall(r"^\| (\d\d) \| [^|]+ \| [^|]+ \| (.+?) \| .+ \|$", table, re.M)
    commands = []
    for lesson, cell in rows:
        quick = re.search(r"quick: `([^`]+)`", cell)
        commands.append((lesson, quick.group(1) if quick else re.search(r"`([^`]+)`", cell).group(1)))
    return commands


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    copy = tmp_path_factory.mktemp("walk") / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "cifar-10-*", "*.tar.gz", "*_label")
    for part in ("common", "scripts", "dataset"):
        shutil.copytree(REPO / part, copy / part, ignore=ignore)
    commands = readme_lesson_commands()
    report = copy.parent / "report.json"
    env = dict(os.environ, PYTHONPATH=str(copy))
    done = subprocess.run([sys.executable, "-c", DRIVER,
                           json.dumps([c for _, c in commands] + ["python scripts/p25_test.py "
                                      "dataset/hymenoptera_sample/val/ants/761110181_9019c647dc.jpg"]),
                           str(report)], cwd=copy, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(report.read_text())
    for r in result["results"]:        # shown with -s, or when a test fails
        print(f"{r['seconds']:6.1f} s  {r['command']}")
    return copy, commands, result


def test_the_table_lists_every_lesson_in_order():
    lessons = [p for p, _ in readme_lesson_commands()]
    assert lessons == ["06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "16", "17",
                       "18", "19", "20", "21", "22", "22", "23", "24", "25"]
    scripts = [shlex.split(c)[1] for _, c in readme_lesson_commands()]
    assert sorted(scripts) == sorted(f"scripts/{p.name}" for p in (REPO / "scripts").glob("p*.py"))


def test_every_command_runs_in_a_fresh_copy(walk):
    copy, commands, result = walk
    assert result["common"] == str(copy / "common" / "__init__.py")   # the copy's, not ours
    for r in result["results"]:
        assert r["code"] == 0, f"{r['command']} exited {r['code']}:\n{r['err'][-2000:]}"
        assert "Traceback" not in r["err"], r["command"]


def test_each_fake_data_lesson_says_so_first_and_once(walk):
    _, _, result = walk
    for r in result["results"]:
        said = r["out"].count(data.synthetic_note())
        if "--fake-data" in r["command"]:
            assert said == 1 and r["out"].splitlines()[0] == data.synthetic_note(), r["command"]
        else:
            assert said == 0, r["command"]


def test_files_land_in_their_own_folders(walk):
    copy, _, _ = walk
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == ["p22_model_save", "p23_train"]
    assert sorted(p.name for p in (copy / "checkpoints" / "p22_model_save").iterdir()) == [
        "gst_method1.pth", "gst_method2.pth", "squeezenet1_1_method1.pth",
        "squeezenet1_1_method2.pth"]
    (run,) = (copy / "checkpoints" / "p23_train").iterdir()
    assert sorted(p.name for p in run.iterdir()) == [f"gst_{i}.pth" for i in range(10)]
    assert (copy / "logs" / "p23_train" / run.name).is_dir()      # the same run id
    logged = {p.name for p in (copy / "logs").iterdir()}
    assert {"p07_tensorboard", "p08_transforms", "p09_common_transforms", "p10_dataset_transform",
            "p11_dataloader", "p14_conv2d", "p15_maxpool", "p16_nonlinear", "p18_sequential",
            "p23_train", "p24_train_gpu", "p25_test"} == logged


def test_the_quick_start_curve_and_accuracy(walk):
    copy, _, result = walk
    (p23,) = [r for r in result["results"] if "p23_train.py" in r["command"]]
    accuracy = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", p23["out"])]
    assert len(accuracy) == 10 and accuracy[0] < 0.5 and accuracy[-1] >= 0.9, accuracy
    (run,) = (copy / "logs" / "p23_train").iterdir()
    acc = events(run)
    steps = [e.step for e in acc.Scalars("train_loss")]
    assert steps == list(range(3, 10 * 32 + 1, 3))                  # ~10 points an epoch
    assert [e.step for e in acc.Scalars("test_accuracy")] == list(range(10))
    assert [e.step for e in acc.Scalars("test_loss")] == list(range(10))


def test_p25_loads_the_p23_model_not_a_p22_file(walk):
    copy, _, result = walk
    p25 = result["results"][-2:]                                    # the table's, then ours
    (run,) = (copy / "checkpoints" / "p23_train").iterdir()
    for r in p25:
        lines = r["out"].splitlines()
        assert lines[0] == f"checkpoint: {run / 'gst_9.pth'}"
        assert lines[1].startswith("trained on: synthetic --fake-data pictures (2000 images, "
                                   "no photographs), 10 epochs; test accuracy ")
        assert lines[2].startswith("note: this model has only ever seen --fake-data's")
        assert re.fullmatch(r"  1\. \w+ +[\d.]+%", lines[4])
