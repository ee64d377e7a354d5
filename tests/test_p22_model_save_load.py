"""p22_model_save / p22_model_load: the course's two formats, the trap, and every refusal.

Most tests use --arch squeezenet1_1 (5 MB per file, built in a blink); one test runs the
course's default, VGG16 (two ~528 MB files), end to end. The save script runs as __main__
(runpy), as `python scripts/p22_model_save.py` does, so its trap model is pickled as
__main__.OneConv exactly as in the course.
"""
import contextlib
import io
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import REPO, SCRIPTS, load_script

from common import checkpoint, paths

SMALL = "squeezenet1_1"
FILES = {f"{SMALL}_method1.pth", f"{SMALL}_method2.pth", "gst_method1.pth", "gst_method2.pth"}
CPU = torch.device("cpu")
OWN = "p22_model_save"        # the lesson's own folder under --checkpoint-dir


# The interpreter as a printed command names it: by its name, since the fixture below puts it
# first on PATH (as an activated virtual environment does).
PY = Path(sys.executable).name


@pytest.fixture(autouse=True)
def at_the_repository_root(monkeypatch):
    """Run from the repository root, as the README does: the printed commands are relative."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(sys.executable),
                                                os.environ.get("PATH", "")]))


@pytest.fixture(scope="module")
def load():
    return load_script("p22_model_load")


def run_save_as_main(argv):
    """Run p22_model_save.py as __main__; return (exit code, stdout, {file name: saved object})."""
    saved, real_save = {}, checkpoint.save

    def spy(obj, path, **options):
        saved[path.name] = obj
        return real_save(obj, path, **options)

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setattr(checkpoint, "save", spy)
        mp.setattr(sys, "argv", ["p22_model_save.py", *argv])
        with pytest.raises(SystemExit) as e:
            runpy.run_path(str(SCRIPTS / "p22_model_save.py"), run_name="__main__")
    return e.value.code, out.getvalue(), saved


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(the --checkpoint-dir root, stdout, {file name: saved object}) of one save run."""
    folder = tmp_path_factory.mktemp("checkpoints")
    code, out, saved = run_save_as_main(["--arch", SMALL, "--checkpoint-dir", str(folder),
                                         "--device", "cpu"])
    assert code == 0
    return folder, out, saved


@pytest.fixture
def copy_of_small(small, tmp_path):
    folder = tmp_path / "ck"
    shutil.copytree(small[0], folder)
    return folder


@pytest.fixture
def loaded(monkeypatch):
    """{file name: the model main() loaded the weights of that file into}, spied on the way."""
    models, real = {}, checkpoint.load_weights

    def spy(model, state_dict, path):
        models[path.name] = real(model, state_dict, path)
        return models[path.name]

    monkeypatch.setattr(checkpoint, "load_weights", spy)
    return models


def assert_same_tensors(a: dict, b: dict):
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k].cpu(), b[k].cpu()), k


@pytest.mark.parametrize("name", ["p22_model_save", "p22_model_load"])
def test_help_exits_0(name, capsys):
    with pytest.raises(SystemExit) as e:
        load_script(name).main(["--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--arch" in out and "--checkpoint-dir" in out and "(default: vgg16)" in out
    assert ("--trust-pickle" in out) == (name == "p22_model_load")
    # where the files go (save) or are read (load), in the docstring and in the flags' help
    flat = "".join(out.split())              # argparse may wrap a path at its hyphen
    assert "<checkpoint-dir>/p22_model_save/" in flat and "checkpoints/p22_model_save/" in flat
    assert "--checkpoint-dirCHECKPOINT_DIRthecheckpointsroot:thisscript" in flat
    assert flat.count("CHECKPOINT_DIR/p22_model_save/<arch>_method1.pth") == 1   # --arch's help


def test_save_writes_the_course_formats_atomically(small):
    root, out, saved = small
    assert [p.name for p in root.iterdir()] == [OWN]              # the lesson's own folder only
    folder = root / OWN
    assert {p.name for p in folder.iterdir()} == FILES            # no temp files left
    assert set(saved) == FILES
    assert isinstance(saved[f"{SMALL}_method1.pth"], nn.Module)   # 方式1: the whole model
    assert isinstance(saved["gst_method1.pth"], nn.Module)
    # 方式2: a plain state_dict, readable with weights_only=True (no code runs)
    on_disk = torch.load(folder / f"{SMALL}_method2.pth", weights_only=True)
    assert_same_tensors(on_disk, saved[f"{SMALL}_method1.pth"].state_dict())
    # the whole-model files name their classes: importable for torchvision, __main__ for the trap
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint
    assert "torchvision.models.squeezenet.SqueezeNet" in unsafe(str(folder / f"{SMALL}_method1.pth"))
    assert sorted(unsafe(str(folder / "gst_method1.pth"))) == [
        "__main__.OneConv", "torch.nn.modules.conv.Conv2d"]
    assert unsafe(str(folder / "gst_method2.pth")) == []
    assert saved["gst_method2.pth"]["conv1.weight"].shape == (64, 3, 3, 3)
    lines = out.splitlines()
    assert lines[0].startswith(f"saved {folder / f'{SMALL}_method1.pth'}  (")
    assert lines[1] == "  the pickle names the model's class: torchvision.models.squeezenet.SqueezeNet"
    assert "  the pickle names the model's class: __main__.OneConv" in lines


def test_save_by_default_writes_into_checkpoints_p22_model_save(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CHECKPOINT_DIR", tmp_path / "checkpoints")   # the default root
    code, out, _ = run_save_as_main(["--arch", SMALL, "--device", "cpu"])
    assert code == 0
    assert [p.relative_to(tmp_path).as_posix() for p in sorted(tmp_path.rglob("*"))] == [
        "checkpoints", f"checkpoints/{OWN}", *sorted(f"checkpoints/{OWN}/{f}" for f in FILES)]
    assert out.splitlines()[0].startswith(
        f"saved {tmp_path / 'checkpoints' / OWN / f'{SMALL}_method1.pth'}  (")


def test_load_without_trust_refuses_method1_and_loads_method2(load, small, loaded, capsys):
    root, _, saved = small
    folder = root / OWN
    assert load.main(["--arch", SMALL, "--checkpoint-dir", str(root), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"方式1 / method 1 not loaded: {folder / f'{SMALL}_method1.pth'} holds a "
                        "pickled Python object (a whole model saved with torch.save(model)), and "
                        "unpickling can run any code in it. Load the state_dict format instead, "
                        "or, if you made this file yourself, re-run with --trust-pickle")
    assert lines[1] == (f"torch.load({SMALL}_method2.pth) gives a dict (OrderedDict) of 52 "
                        "tensors, not a model: features.0.weight [64, 3, 3, 3], "
                        "features.0.bias [64], ...")
    assert lines[2] == (f"方式2 / method 2, {SMALL} = torchvision.models.{SMALL}(weights=None) "
                        "with the state_dict loaded:")
    assert lines[3] == "SqueezeNet("
    assert lines.count("SqueezeNet(") == 1                      # method 1 not unpickled
    trap = lines.index("陷阱 / the trap: gst_method1.pth names the classes __main__.OneConv, "
                       "torch.nn.modules.conv.Conv2d")
    assert lines[trap + 1].startswith("  __main__.OneConv: a class of the script that was "
                                      "__main__ when the file was saved")
    assert lines[trap + 2] == "  (add --trust-pickle to watch torch.load fail on it)"
    assert lines[-4:] == ["gst = OneConvCopy() with gst_method2.pth's state_dict loaded:",
                          "OneConvCopy(",
                          "  (conv1): Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1))", ")"]
    # the loaded weights are the saved ones, tensor by tensor
    assert set(loaded) == {f"{SMALL}_method2.pth", "gst_method2.pth"}
    assert_same_tensors(loaded[f"{SMALL}_method2.pth"].state_dict(), saved[f"{SMALL}_method2.pth"])
    assert_same_tensors(loaded["gst_method2.pth"].state_dict(), saved["gst_method2.pth"])
    assert type(loaded["gst_method2.pth"]).__name__ == "OneConvCopy"


def test_load_with_trust_pickle_and_the_trap(load, small, capsys):
    root, _, saved = small
    folder = root / OWN
    assert load.main(["--arch", SMALL, "--checkpoint-dir", str(root), "--device", "cpu",
                      "--trust-pickle"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[:2] == [f"方式1 / method 1, model = torch.load({SMALL}_method1.pth), the whole model:",
                         "SqueezeNet("]
    # method 2 gives the same model: said, not printed a second time
    assert lines.count("SqueezeNet(") == 1
    assert (f"方式2 / method 2, {SMALL} rebuilt from code with the state_dict loaded: the same "
            "structure as method 1's model above (not printed again), and the same weights, "
            "tensor for tensor") in lines
    assert "not loaded" not in out
    # the course's trap: the class lived in the saving script's __main__, not in this one
    fails = [l for l in lines if l.startswith("  torch.load fails: ")]
    assert fails == [f"  torch.load fails: {folder / 'gst_method1.pth'} is a whole pickled model "
                     "whose class cannot be found here (Can't get attribute 'OneConv' on "
                     f"{sys.modules['__main__']!r}); import or "
                     "define that class first, or save a state_dict"]
    whole = load.load_whole_model(folder / f"{SMALL}_method1.pth", CPU)
    assert_same_tensors(whole.state_dict(), saved[f"{SMALL}_method1.pth"].state_dict())


def test_the_fix_rebuilds_the_trap_model_from_its_state_dict(load, small):
    folder = small[0] / OWN
    saved = small[2]
    gst = load.OneConvCopy()
    path = folder / "gst_method2.pth"
    checkpoint.load_weights(gst, checkpoint.state_dict_of(checkpoint.load(path), path), path)
    assert_same_tensors(gst.state_dict(), saved["gst_method1.pth"].state_dict())
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(gst(x), saved["gst_method1.pth"](x))


def run_load(load, root, capsys, *extra, arch=SMALL):
    """p22_model_load.main with --checkpoint-dir ``root``; returns (exit code, stderr)."""
    code = load.main(["--arch", arch, "--checkpoint-dir", str(root), "--device", "cpu", *extra])
    out, err = capsys.readouterr()
    return code, err


def test_load_before_save_names_the_command_that_saves(load, tmp_path, monkeypatch, capsys):
    """Run first, p22_model_load says which command writes what it needs; nothing is written."""
    monkeypatch.setattr(paths, "CHECKPOINT_DIR", tmp_path / "checkpoints")   # the default root
    assert load.main([]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"error: no such checkpoint: {tmp_path}/checkpoints/{OWN}/vgg16_method1.pth: "
                   f"run {PY} scripts/p22_model_save.py first\n")
    assert list(tmp_path.iterdir()) == []


def test_missing_file_names_a_command_that_works_when_pasted(load, tmp_path, copy_of_small,
                                                             capsys):
    root = tmp_path / "my checkpoints"              # a space: the command must quote it
    code, err = run_load(load, root, capsys)
    command = f"{PY} scripts/p22_model_save.py --arch {SMALL} --checkpoint-dir '{root}'"
    assert code == 1
    assert err == (f"error: no such checkpoint: {root / OWN / f'{SMALL}_method1.pth'}: "
                   f"run {command} first\n")
    assert not root.exists()                         # nothing written
    # pasted into a shell at the repository root: it writes the files, and the load then works
    done = subprocess.run(command, shell=True, cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in (root / OWN).iterdir()} == FILES
    assert run_load(load, root, capsys) == (0, "")

    # any of the four files missing stops before anything is loaded or printed
    (copy_of_small / OWN / "gst_method2.pth").unlink()
    assert load.main(["--arch", SMALL, "--checkpoint-dir", str(copy_of_small)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"error: no such checkpoint: {copy_of_small / OWN / 'gst_method2.pth'}: run "
                   f"{PY} scripts/p22_model_save.py --arch {SMALL} --checkpoint-dir "
                   f"{copy_of_small} first\n")


def test_relative_checkpoint_dir_stays_relative(load, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert load.main(["--checkpoint-dir", "ck"]) == 1
    assert capsys.readouterr().err == (
        f"error: no such checkpoint: ck/{OWN}/vgg16_method1.pth: run {PY} "
        f"{SCRIPTS / 'p22_model_save.py'} --checkpoint-dir ck first\n")


def test_not_a_checkpoint(load, copy_of_small, capsys):
    path = copy_of_small / OWN / f"{SMALL}_method1.pth"
    path.write_text("these are my notes, not a model\n")
    code, err = run_load(load, copy_of_small, capsys, "--trust-pickle")
    assert code == 1
    assert err.startswith(f"error: {path} is not a PyTorch checkpoint") and err.count("\n") == 1


def test_truncated_file(load, copy_of_small, capsys):
    path = copy_of_small / OWN / f"{SMALL}_method2.pth"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    code, err = run_load(load, copy_of_small, capsys)
    assert code == 1
    assert err.startswith(f"error: {path} is not a PyTorch checkpoint, or it is truncated (")
    assert err.count("\n") == 1


def test_different_architecture(load, copy_of_small, capsys):
    other = "mobilenet_v3_small"
    folder = copy_of_small / OWN
    for method in (1, 2):
        shutil.copy(folder / f"{SMALL}_method{method}.pth", folder / f"{other}_method{method}.pth")
    code, err = run_load(load, copy_of_small, capsys, arch=other)
    assert code == 1
    assert err.startswith(f"error: {folder / f'{other}_method2.pth'} is a checkpoint for "
                          "a different architecture than MobileNetV3 (the file lacks ")
    assert err.count("\n") == 1


def test_state_dict_given_as_a_whole_model(load, copy_of_small, capsys):
    folder = copy_of_small / OWN
    shutil.copy(folder / f"{SMALL}_method2.pth", folder / f"{SMALL}_method1.pth")
    code, err = run_load(load, copy_of_small, capsys, "--trust-pickle")
    assert (code, err) == (1, f"error: {folder / f'{SMALL}_method1.pth'} holds no whole "
                              "model (it holds a OrderedDict); is it a state_dict? those load "
                              "with method 2\n")


def test_a_whole_model_given_as_the_state_dict_says_trust_does_not_apply(load, copy_of_small,
                                                                         capsys):
    """Method 2's file holds a pickled model: the line said "re-run with --trust-pickle", and
    with it printed the same line (method 2 never unpickles code, rightly)."""
    folder = copy_of_small / OWN
    shutil.copy(folder / f"{SMALL}_method1.pth", folder / f"{SMALL}_method2.pth")
    for trust in ([], ["--trust-pickle"]):
        code, err = run_load(load, copy_of_small, capsys, *trust)
        assert code == 1 and err.count("\n") == 1, err
        assert err.startswith(f"error: {folder / f'{SMALL}_method2.pth'} holds a whole pickled "
                              f"model, not the state_dict of method 2 (torch.save({SMALL}."
                              "state_dict(), ...)), so --trust-pickle does not apply to it: "
                              "write it again with "), err
        assert err.rstrip().endswith(f"p22_model_save.py --arch {SMALL} --checkpoint-dir "
                                     f"{copy_of_small}"), err


def test_unknown_arch(load, copy_of_small, capsys):
    code, err = run_load(load, copy_of_small, capsys, arch="vgg17")
    assert (code, err) == (1, "error: unknown --arch 'vgg17': not a torchvision classification "
                              "model (e.g. vgg16, squeezenet1_1; all: "
                              "torchvision.models.list_models())\n")
    code, out, saved = run_save_as_main(["--arch", "vgg17", "--checkpoint-dir",
                                         str(copy_of_small / "new")])
    assert code == 1 and saved == {} and not (copy_of_small / "new").exists()


def test_the_course_default_vgg16_saves_and_loads(load, tmp_path, loaded, capsys):
    """One run of the default: VGG16, two ~528 MB files, loaded back the safe way."""
    root = tmp_path / "vgg"
    folder = root / OWN
    try:
        code, out, saved = run_save_as_main(["--checkpoint-dir", str(root), "--device", "cpu"])
        assert code == 0
        assert [p.name for p in root.iterdir()] == [OWN]
        assert {p.name for p in folder.iterdir()} == {"vgg16_method1.pth", "vgg16_method2.pth",
                                                      "gst_method1.pth", "gst_method2.pth"}
        for name in ("vgg16_method1.pth", "vgg16_method2.pth"):
            assert 527 * 2**20 < (folder / name).stat().st_size < 529 * 2**20   # 528 MB
        assert "  the pickle names the model's class: torchvision.models.vgg.VGG" in out
        assert load.main(["--checkpoint-dir", str(root), "--device", "cpu"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith(f"方式1 / method 1 not loaded: {folder / 'vgg16_method1.pth'}")
        assert lines[1].startswith("torch.load(vgg16_method2.pth) gives a dict (OrderedDict) of "
                                   "32 tensors, not a model: features.0.weight [64, 3, 3, 3]")
        assert lines[2] == ("方式2 / method 2, vgg16 = torchvision.models.vgg16(weights=None) "
                            "with the state_dict loaded:")
        assert lines[3] == "VGG("
        assert lines.count("VGG(") == 1
        assert "    (6): Linear(in_features=4096, out_features=1000, bias=True)" in lines
        assert type(loaded["vgg16_method2.pth"]).__name__ == "VGG"
        assert_same_tensors(loaded["vgg16_method2.pth"].state_dict(), saved["vgg16_method2.pth"])
    finally:
        shutil.rmtree(root, ignore_errors=True)          # don't keep 1 GB in pytest's tmp
