"""A learner's walk: every command of the README's lesson table, in the table's order, in a
fresh copy of the repository, then p25 with no --checkpoint.

The commands are read from README.md (the "quick:" variant where a row offers one), so the
table and this test can't drift apart. They run in two Python processes started in the copy,
each on one thread (each script as __main__, with its own argv, as `python scripts/...` runs
it), so torch is imported twice, not once a lesson; the copy's own `common/` is the one
imported, and every default path (logs/, checkpoints/, dataset/) is the copy's.
"""
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from PIL import Image

from common import data, figures
from common.model import CIFAR10_CLASSES
from conftest import REPO, events, free_port

DRIVER = r"""
import contextlib, io, json, runpy, shlex, sys, time, traceback
import torch
torch.set_num_threads(1)        # one core a lane: two lanes of two threads each fight
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
    every = [c for _, c in commands] + ["python scripts/p25_test.py "
                                        "dataset/hymenoptera_sample/val/ants/761110181_9019c647dc.jpg"]
    # Two lanes at once, one a core: p23's training and the p25 runs that read its checkpoint,
    # in their order; and every other lesson, in the table's order. No lesson of one lane
    # reads what the other writes.
    lanes = [[i for i, c in enumerate(every) if re.search(r"scripts/p2(3_train|5_test)\.py", c)]]
    lanes.append([i for i in range(len(every)) if i not in lanes[0]])
    env = dict(os.environ, PYTHONPATH=str(copy))
    drivers = [subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps([every[i] for i in lane]),
                                 str(copy.parent / f"report{n}.json")], cwd=copy, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for n, lane in enumerate(lanes)]
    results, commons = [None] * len(every), set()
    for n, (lane, driver) in enumerate(zip(lanes, drivers)):
        _, stderr = driver.communicate(timeout=600)
        assert driver.returncode == 0, stderr[-3000:]
        report = json.loads((copy.parent / f"report{n}.json").read_text())
        commons.add(report["common"])
        for i, r in zip(lane, report["results"]):
            results[i] = r
    (common_file,) = commons
    result = {"common": common_file, "results": results}
    for r in result["results"]:        # shown with -s, or when a test fails
        print(f"{r['seconds']:6.1f} s  {r['command']}")
    return copy, commands, result


def test_the_table_lists_every_lesson_in_order():
    lessons = [p for p, _ in readme_lesson_commands()]
    assert lessons == ["06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "16", "17",
                       "18", "19", "20", "21", "22", "22", "23", "23", "24", "25"]
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


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git clone's .gitignore")
def test_what_the_lessons_write_is_left_out_of_git(walk):
    """`git status` stays clean after the walk, and after an offline CIFAR-10 run (its lock)."""
    copy, _, _ = walk
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    written = sorted(str(p.relative_to(copy)) for p in copy.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)
    written = [p for p in written if p not in tracked]
    assert any(p.startswith("logs/p23_train/") for p in written)          # the walk's own files
    written.append(f"dataset/{data.DOWNLOAD_LOCK}")
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=REPO,
                             input="\n".join(written), capture_output=True, text=True).stdout
    assert sorted(set(written) - set(ignored.splitlines())) == []


def test_the_quick_start_curve_and_accuracy(walk):
    copy, _, result = walk
    (p23,) = [r for r in result["results"] if "p23_train.py" in r["command"]]
    accuracy = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", p23["out"])]
    # rises (an unseeded first epoch: 0.1 to 0.5), above 0.9 in the last epochs: most runs
    # end at 1.0, a slow one may still mix up one class at the end (0.914 then 0.896, seen)
    assert len(accuracy) == 10 and max(accuracy[-5:]) >= 0.9 \
        and accuracy[0] < accuracy[-1] - 0.3, accuracy
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


# --- the third command a learner runs: `tensorboard --logdir logs`, for real -----------------

TENSORBOARD = shutil.which("tensorboard", path=os.path.dirname(sys.executable))


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    return json.loads(body) if response.headers.get_content_type() == "application/json" else body


def _post(url: str, body: dict):
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def served(walk, tmp_path_factory):
    """TensorBoard started as the README says, `tensorboard --logdir logs` in the copy's root,
    on a free 127.0.0.1 port, after the walk and one more lesson run from another working
    directory (which writes into the repository's logs/ all the same). Stopped afterwards."""
    if TENSORBOARD is None:
        pytest.skip("no tensorboard executable beside this Python (pip install -r requirements.txt)")
    copy, _, _ = walk
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    done = subprocess.run([sys.executable, str(copy / "scripts" / "p07_tensorboard.py")],
                          cwd=elsewhere, env=dict(os.environ, PYTHONPATH=str(copy)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list(elsewhere.iterdir()) == []
    port = free_port()
    server = subprocess.Popen([TENSORBOARD, "--logdir", "logs", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=copy, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    runs = sum(1 for script in (copy / "logs").iterdir() for _ in script.iterdir())

    def loaded() -> bool:      # every run listed, and the last one's last points read
        if len(_get(f"{base}/data/runs")) < runs:
            return False
        tags = _get(f"{base}/data/plugin/scalars/tags")
        p23 = [r for r in tags if r.startswith("p23_train/")]
        query = urllib.parse.urlencode({"run": p23[0], "tag": "test_accuracy"}) if p23 else ""
        return bool(p23) and len(_get(f"{base}/data/plugin/scalars/scalars?{query}")) == 10

    try:
        end = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"tensorboard stopped: {server.stderr.read()}"
            try:
                if loaded():
                    break
            except (OSError, ValueError):
                pass
            assert time.monotonic() < end, "tensorboard did not serve the runs in 60 s"
            time.sleep(0.5)
        yield copy, base
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_tensorboard_serves_every_lessons_run_by_its_script_and_run_id(served):
    copy, base = served
    runs = _get(f"{base}/data/runs")
    on_disk = sorted(f"{script.name}/{run.name}" for script in (copy / "logs").iterdir()
                     for run in script.iterdir())
    assert sorted(runs) == on_disk
    assert sum(r.startswith("p07_tensorboard/") for r in runs) == 2     # the walk's, and ours
    assert {r.split("/")[0] for r in runs} >= {"p07_tensorboard", "p23_train", "p25_test"}


def test_tensorboard_serves_the_course_tags_with_the_values_written(served, walk):
    copy, base = served
    _, _, result = walk
    scalars_tags = _get(f"{base}/data/plugin/scalars/tags")
    images_tags = _get(f"{base}/data/plugin/images/tags")
    (p23,) = [r for r in scalars_tags if r.startswith("p23_train/")]
    assert {"train_loss", "test_loss", "test_accuracy"} <= set(scalars_tags[p23])
    assert {f"test_accuracy_per_class/{c}" for c in CIFAR10_CLASSES} <= set(scalars_tags[p23])
    assert set(images_tags[p23]) == {"test_confusion_matrix", "test_predictions"}
    # the values: what p23 printed, epoch by epoch
    (out,) = [r["out"] for r in result["results"] if "p23_train.py" in r["command"]]
    printed = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", out)]
    query = urllib.parse.urlencode({"run": p23, "tag": "test_accuracy"})
    served_points = _get(f"{base}/data/plugin/scalars/scalars?{query}")
    assert [step for _, step, _ in served_points] == list(range(10))
    assert [value for _, _, value in served_points] == pytest.approx(printed)
    # lesson 07's line y = 2x and its image, as the course draws them
    for run in (r for r in scalars_tags if r.startswith("p07_tensorboard/")):
        query = urllib.parse.urlencode({"run": run, "tag": "y=2x"})
        assert [(s, v) for _, s, v in _get(f"{base}/data/plugin/scalars/scalars?{query}")] == \
            [(i, 2 * i) for i in range(100)]
        assert "test" in images_tags[run]
    # the confusion matrix of the last epoch, as a PNG of the figure's size
    query = urllib.parse.urlencode({"run": p23, "tag": "test_confusion_matrix", "sample": 0})
    entries = _get(f"{base}/data/plugin/images/images?{query}")
    assert [e["step"] for e in entries] == list(range(10))
    png = _get(f"{base}/data/plugin/images/individualImage?{entries[-1]['query']}")
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == tuple(round(x * figures.DPI) for x in figures.CONFUSION_INCHES)


def test_tensorboard_hparams_tab_has_one_row_per_training_run(served):
    _, base = served
    groups = _post(f"{base}/data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS",
                                                  "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [], "startIndex": 0, "sliceSize": 100})["sessionGroups"]
    (row,) = groups
    assert row["name"].startswith("p23_train/")
    assert row["hparams"]["data"] == "fake-data" and row["hparams"]["lr"] == 0.01
    assert row["hparams"]["epochs"] == 10 and row["hparams"]["batch_size"] == 64
    metrics = {m["name"]["tag"]: m for m in row["metricValues"]}
    assert set(metrics) == {"test_accuracy", "test_loss"}
    assert metrics["test_accuracy"]["trainingStep"] == 9        # the last epoch's value
