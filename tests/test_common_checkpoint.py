import errno
import os
import pickle
import re
import zipfile

import pytest
import torch
from torch import nn

from common import checkpoint, disk
from common.cli import UserError
from common.model import GST


def _ckpt(model):
    return {"arch": "GST", "model": model.state_dict(), "epoch": 3, "classes": ["a", "b"],
            "args": {"lr": 0.01, "device": "cpu"}}


def test_save_then_load_roundtrip_with_weights_only(tmp_path):
    gst = GST()
    path = checkpoint.save(_ckpt(gst), tmp_path / "sub" / "gst_3.pth")
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["gst_3.pth"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask    # not mkstemp's 0600
    loaded = checkpoint.load(path)
    assert loaded["epoch"] == 3 and loaded["classes"] == ["a", "b"]
    fresh = checkpoint.load_weights(GST(), checkpoint.state_dict_of(loaded, path), path)
    for k, v in gst.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def test_the_umask_is_read_without_being_changed(tmp_path, umask_027, monkeypatch):
    def no_umask(mask):
        raise AssertionError("os.umask changes the process's umask: /proc says it unchanged")

    with monkeypatch.context() as m:
        m.setattr(os, "umask", no_umask)
        assert disk._umask() == 0o027
        path = checkpoint.save({"epoch": 1}, tmp_path / "gst_1.pth")
    assert path.stat().st_mode & 0o777 == 0o640
    # where /proc/self/status is not there (macOS, Windows): os.umask, set back at once
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: (_ for _ in ()).throw(OSError())
                        if f == "/proc/self/status" else real_open(f, *a, **k))
    assert disk._umask() == 0o027 and disk._umask() == 0o027


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "gst_1.pth"
    checkpoint.save({"epoch": 1}, path)
    before = path.read_bytes()

    def dies(obj, f, *a, **k):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"epoch": 2}, path)
    assert path.read_bytes() == before              # the old file is intact
    assert os.listdir(tmp_path) == ["gst_1.pth"]   # and no temp file is left


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"^no such checkpoint: .*nope\.pth$"):
        checkpoint.load(tmp_path / "nope.pth")
    with pytest.raises(UserError) as caught:        # there, but not a file: not "no such"
        checkpoint.load(tmp_path)
    assert str(caught.value) == f"{tmp_path} is a folder, not a checkpoint: name a .pth file in it"


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "notes.pth"
    p.write_text("hello, this is text")
    with pytest.raises(UserError) as e:
        checkpoint.load(p)
    assert str(e.value) == f"{p} is not a PyTorch checkpoint, or it is truncated"


def test_truncated_checkpoint(tmp_path):
    p = checkpoint.save(_ckpt(GST()), tmp_path / "gst.pth")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(UserError, match=r"is not a PyTorch checkpoint, or it is truncated"):
        checkpoint.load(p)


def test_whole_model_pickle_refused_unless_trusted(tmp_path):
    p = tmp_path / "whole.pth"
    torch.save(nn.Linear(2, 3), p)
    with pytest.raises(checkpoint.PickleRefused) as e:
        checkpoint.load(p)
    assert "unpickling can run any code" in str(e.value) and "--trust-pickle" in str(e.value)
    model = checkpoint.load(p, trust_pickle=True)
    assert isinstance(model, nn.Linear) and model.out_features == 3
    assert checkpoint.state_dict_of(model, p)["weight"].shape == (3, 2)


def test_bare_state_dict_is_accepted(tmp_path):
    gst = GST()
    p = tmp_path / "method2.pth"
    torch.save(gst.state_dict(), p)
    sd = checkpoint.state_dict_of(checkpoint.load(p), p)
    assert torch.equal(sd["model.0.weight"], gst.state_dict()["model.0.weight"])


def test_different_architecture(tmp_path):
    p = checkpoint.save({"model": nn.Linear(4, 2).state_dict()}, tmp_path / "lin.pth")
    with pytest.raises(UserError) as e:
        checkpoint.load_weights(GST(), checkpoint.state_dict_of(checkpoint.load(p), p), p)
    assert str(e.value).startswith(f"{p} is a checkpoint for a different architecture than GST")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="no state_dict in it"):
        checkpoint.state_dict_of([1, 2, 3], p)
    for not_named in ({"model": {3: torch.zeros(1)}}, {3: torch.zeros(1)}):   # keys: names
        with pytest.raises(UserError, match="no state_dict in it"):
            checkpoint.state_dict_of(not_named, p)
    # the same names and shapes, a value that is no tensor: PyTorch's words, less its prefix
    sd = GST().state_dict()
    sd["model.0.weight"] = 5
    with pytest.raises(UserError) as e:
        checkpoint.load_weights(GST(), sd, p)
    assert str(e.value).startswith(f"{p} is a checkpoint for a different architecture than GST "
                                   '(While copying the parameter named "model.0.weight"')


def test_an_architecture_mismatch_says_what_differs_in_a_few_words(tmp_path):
    # a state_dict of another network: PyTorch's message lists every missing and unexpected
    # key (hundreds for a VGG); the line counts them and names two of each
    other = {f"layer{i}.weight": torch.zeros(1) for i in range(40)}
    with pytest.raises(UserError) as caught:
        checkpoint.load_weights(GST(), other, tmp_path / "other.pth")
    assert str(caught.value) == (
        f"{tmp_path / 'other.pth'} is a checkpoint for a different architecture than GST (the "
        'file lacks 10 of GST\'s 10 tensors: "model.0.weight", "model.0.bias", ...; 40 of its 40 '
        'are not GST\'s: "layer0.weight", "layer1.weight", ...)')
    # the same keys, another shape: a GST for 2 classes into one for 10
    with pytest.raises(UserError) as caught:
        checkpoint.load_weights(GST(), GST(num_classes=2).state_dict(), tmp_path / "two.pth")
    assert str(caught.value) == (
        f"{tmp_path / 'two.pth'} is a checkpoint for a different architecture than GST (2 "
        "differ in shape: model.8.weight is [2, 64] in the file, [10, 64] in GST)")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_checkpoint_saved_on_the_gpu_loads_onto_the_cpu(tmp_path):
    path = checkpoint.save({"model": GST().cuda().state_dict()}, tmp_path / "gpu.pth")
    loaded = checkpoint.load(path)
    assert {t.device.type for t in loaded["model"].values()} == {"cpu"}


def test_a_file_that_does_not_unpickle_is_one_line(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_bytes(b"garbage bytes here")          # not a zip, not a pickle
    with pytest.raises(UserError) as caught:
        checkpoint.load(path)
    assert str(caught.value) == f"{path} is not a PyTorch checkpoint (cannot unpickle it)"


def test_a_truncated_checkpoint_is_one_line_with_the_zip_readers_words(tmp_path):
    path = checkpoint.save({"model": GST().state_dict()}, tmp_path / "cut.pth")
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    with pytest.raises(RuntimeError) as raw:                   # what torch itself says
        torch.load(path, weights_only=True)
    with pytest.raises(UserError) as caught:
        checkpoint.load(path)
    words = str(raw.value).splitlines()[0]      # then, in newer torch, miniz's advice: left out
    assert str(caught.value) == (f"{path} is not a PyTorch checkpoint, or it is truncated "
                                 f"({words.split('. ')[0]})")
    assert str(caught.value).endswith("failed finding central directory)")


class _TensorOfAnInt:
    """Pickles as an allowed call (``torch._utils._rebuild_tensor_v2``) with an int where the
    storage goes: weights_only's unpickler makes the call, which raises AttributeError."""

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (5, 0, (1,), (1,), False, {})


def test_a_malformed_checkpoint_that_raises_attribute_error_is_one_line(tmp_path):
    good = checkpoint.save({"model": GST().state_dict()}, tmp_path / "good.pth")
    path = tmp_path / "malformed.pth"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(path, "w") as zout:
        for name in zin.namelist():      # the same archive, but its pickle
            zout.writestr(name, pickle.dumps({"model": _TensorOfAnInt()}, protocol=2)
                          if name.endswith("/data.pkl") else zin.read(name))
    with pytest.raises(AttributeError) as raw:                 # what torch itself says
        torch.load(path, weights_only=True)
    with pytest.raises(UserError) as caught:
        checkpoint.load(path)
    assert str(caught.value) == f"{path} is not a PyTorch checkpoint ({raw.value})"
    assert str(raw.value) == "'int' object has no attribute 'dtype'"


def test_the_file_being_written_is_hidden_and_named_for_what_it_becomes(tmp_path):
    """While written, the file is .<name>.<random>.tmp beside its final name: hidden from ls
    and from the scripts' gst_*.pth, and plain to see for what it is if a crash leaves it."""
    seen = []

    def write(f):
        seen.extend(os.listdir(tmp_path))
        f.write(b"x")

    disk.atomic_write(tmp_path / "gst_0.pth", write)
    assert len(seen) == 1 and re.fullmatch(r"\.gst_0\.pth\.\w{8}\.tmp", seen[0]), seen
    assert os.listdir(tmp_path) == ["gst_0.pth"]


def test_a_folder_that_cannot_be_made_names_the_option(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(disk.WriteError) as caught:
        disk.atomic_write(tmp_path / "file" / "ck" / "gst_0.pth", lambda f: f.write(b"x"),
                                option="--checkpoint-dir DIR")
    assert str(caught.value) == (f"cannot write {tmp_path / 'file' / 'ck'}: a part of the path "
                                 "is a file, not a folder; name a folder, not a file, with "
                                 "--checkpoint-dir DIR")


def test_ctrl_c_just_after_the_rename_is_still_ctrl_c(tmp_path, monkeypatch):
    """Ctrl-C landing as os.replace returns: the temporary file is gone already (it is the
    new file), and removing it again must not turn the interrupt into FileNotFoundError."""
    real_replace = os.replace

    def replace_then_ctrl_c(src, dst):
        real_replace(src, dst)
        raise KeyboardInterrupt

    monkeypatch.setattr(disk.os, "replace", replace_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        disk.atomic_write(tmp_path / "gst_0.pth", lambda f: f.write(b"whole"))
    assert os.listdir(tmp_path) == ["gst_0.pth"]
    assert (tmp_path / "gst_0.pth").read_bytes() == b"whole"


def test_errors_that_are_no_failed_write_come_out_as_themselves(tmp_path):
    """Only a write failure (a full disk, a refused folder) becomes a WriteError line: an I/O
    error of the disk, or a name Python refuses before any file is open, is raised as it is."""
    def disk_error(f):
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError) as caught:
        disk.atomic_write(tmp_path / "a.pth", disk_error)
    assert type(caught.value) is OSError and caught.value.errno == errno.EIO
    with pytest.raises(ValueError, match="null"):       # before any file was opened
        disk.atomic_write(tmp_path / "a\0b.pth", lambda f: f.write(b"x"))
    assert os.listdir(tmp_path) == []


def test_a_reader_error_without_words_adds_none(tmp_path, monkeypatch):
    """The zip reader's own words are added in brackets; a RuntimeError with none adds no
    "(RuntimeError)", which would say nothing to a learner."""
    path = checkpoint.save({"model": GST().state_dict()}, tmp_path / "gst.pth")

    def fails(*args, **kwargs):
        raise RuntimeError()

    monkeypatch.setattr(checkpoint.torch, "load", fails)
    with pytest.raises(UserError) as caught:
        checkpoint.load(path)
    assert str(caught.value) == f"{path} is not a PyTorch checkpoint, or it is truncated"
