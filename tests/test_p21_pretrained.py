"""p21_pretrained: VGG16 printed, a layer added, a layer replaced; --pretrained offline fails cleanly.

Building a VGG16 (138M parameters) takes seconds, so only one test builds models (two VGG16s);
the --pretrained failures stop before any model is built.
"""
import io
import urllib.error

import pytest
import torch

from conftest import load_script

SCRIPT = "p21_pretrained"
URL = "https://download.pytorch.org/models/vgg16-397923af.pth"


@pytest.fixture(scope="module")
def p21():
    return load_script(SCRIPT)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_help_exits_0(p21, capsys):
    with pytest.raises(SystemExit) as e:
        p21.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--pretrained" in out and "528 MB" in out


def classifier_of(block):
    """The lines of the (classifier) Sequential inside one printed VGG."""
    lines = block.splitlines()
    start = lines.index("  (classifier): Sequential(")
    end = lines.index("  )", start)
    return [l.strip() for l in lines[start + 1:end]]


def test_offline_default_prints_the_course_structures(p21, torch_home, monkeypatch, capsys):
    def no_download(*a, **k):
        raise AssertionError("nothing may be downloaded without --pretrained")

    monkeypatch.setattr(torch.hub, "urlopen", no_download)
    assert p21.main(["--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert not torch_home.exists()
    blocks = out.split("VGG(\n")[1:]
    assert len(blocks) == 4                # vgg16_true, + add_linear, vgg16_false, [6] replaced
    course = ["(0): Linear(in_features=25088, out_features=4096, bias=True)",
              "(1): ReLU(inplace=True)", "(2): Dropout(p=0.5, inplace=False)",
              "(3): Linear(in_features=4096, out_features=4096, bias=True)",
              "(4): ReLU(inplace=True)", "(5): Dropout(p=0.5, inplace=False)",
              "(6): Linear(in_features=4096, out_features=1000, bias=True)"]
    assert classifier_of(blocks[0]) == course
    assert classifier_of(blocks[1]) == course + [
        "(add_linear): Linear(in_features=1000, out_features=10, bias=True)"]
    assert classifier_of(blocks[2]) == course
    assert classifier_of(blocks[3]) == course[:6] + [
        "(6): Linear(in_features=4096, out_features=10, bias=True)"]
    # the features part as the notes print it: 31 layers, 13 of them Conv2d
    assert blocks[0].count("Conv2d(") == 13 and "(30): MaxPool2d" in blocks[0]
    assert "(avgpool): AdaptiveAvgPool2d(output_size=(7, 7))" in blocks[0]
    assert "vgg16_true: torch.Size([1, 10])" in out and "vgg16_false: torch.Size([1, 10])" in out


def test_pretrained_offline_is_one_error_line_and_leaves_no_file(p21, torch_home, monkeypatch,
                                                                 capsys):
    def no_network(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    assert p21.main(["--pretrained", "--device", "cpu"]) == 1
    out, err = capsys.readouterr()
    cache = torch_home / "hub" / "checkpoints"
    # announced before anything is downloaded: what, how big, where it goes
    assert out.startswith(f"--pretrained: downloading the ImageNet weights of VGG16 (528 MB) "
                          f"from {URL} to {cache / 'vgg16-397923af.pth'}")
    assert err == (f"error: could not download the VGG16 weights from {URL} ([Errno -3] "
                   "Temporary failure in name resolution); run without --pretrained for random "
                   f"weights, or place vgg16-397923af.pth in {cache}\n")
    assert files_under(torch_home) == []
    assert "VGG(" not in out                   # stopped before building anything


class BrokenDownload(io.RawIOBase):
    """A response that sends 1 MiB of the 528 MB file, then loses the connection."""

    def __init__(self):
        self.sent = 0

    def info(self):
        return self

    def get_all(self, name):                   # the Content-Length header
        return ["553433881"] if name == "Content-Length" else None

    def read(self, n=-1):
        if self.sent >= 1 << 20:
            raise ConnectionResetError(104, "Connection reset by peer")
        self.sent += 8192
        return b"\0" * 8192


def test_download_cut_midway_leaves_no_partial_file(p21, torch_home, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "urlopen", lambda *a, **k: BrokenDownload())
    assert p21.main(["--pretrained", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    progress, error_line = err.rsplit("\n", 2)[:2]
    assert "1.00M/528M" in progress             # torchvision's progress bar, on stderr
    assert error_line.startswith(f"error: could not download the VGG16 weights from {URL} "
                                 "([Errno 104] Connection reset by peer)")
    assert err.count("error:") == 1 and "Traceback" not in err
    assert files_under(torch_home) == []       # the .partial file was removed


def test_damaged_cached_weights_are_named(p21, torch_home, monkeypatch, capsys):
    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "vgg16-397923af.pth").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(torch.hub, "urlopen", lambda *a, **k: pytest.fail("no download"))
    assert p21.main(["--pretrained", "--device", "cpu"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"--pretrained: using the cached ImageNet weights {cache}")
    assert err.startswith(f"error: the cached VGG16 weights {cache / 'vgg16-397923af.pth'} "
                          "cannot be read (")
    assert err.endswith("); delete that file and run again\n") and err.count("\n") == 1
