"""p21_pretrained: VGG16 printed, a layer added, a layer replaced; --pretrained offline fails cleanly.

Building a VGG16 (138M parameters) takes seconds, so only two tests build models (two VGG16s
each); the --pretrained failures stop before any model is built.
"""
import io
import urllib.error

import pytest
import torch
import torchvision

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


# The classifier as the course's notes print it (print(vgg16_true)), one line per layer.
COURSE_CLASSIFIER = ["(0): Linear(in_features=25088, out_features=4096, bias=True)",
                     "(1): ReLU(inplace=True)", "(2): Dropout(p=0.5, inplace=False)",
                     "(3): Linear(in_features=4096, out_features=4096, bias=True)",
                     "(4): ReLU(inplace=True)", "(5): Dropout(p=0.5, inplace=False)",
                     "(6): Linear(in_features=4096, out_features=1000, bias=True)"]
ADDED = "vgg16_true.classifier after add_module('add_linear', nn.Linear(1000, 10)):"
REPLACED = "vgg16_false.classifier after vgg16_false.classifier[6] = nn.Linear(4096, 10):"
SAME = ("vgg16_false: the same structure as vgg16_true printed above, before add_module "
        "(not printed again)")


def sequential(layers, indent=""):
    """How print() shows an nn.Sequential holding these layer lines."""
    return [f"{indent}Sequential("] + [f"{indent}  {l}" for l in layers] + [f"{indent})"]


def check_the_course_structures(out: str, header: str, false_line: str) -> None:
    """vgg16_true in full once, then only what changed, each under its header."""
    lines = out.splitlines()
    start = lines.index(header)
    assert lines[start + 1] == "VGG("
    end = lines.index(")", start)                       # the VGG's closing line
    vgg = lines[start + 1:end + 1]
    # the features part as the notes print it: 31 layers, 13 of them Conv2d
    assert sum("Conv2d(" in l for l in vgg) == 13
    assert ("    (30): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, "
            "ceil_mode=False)") in vgg
    assert "  (avgpool): AdaptiveAvgPool2d(output_size=(7, 7))" in vgg
    assert vgg[-10:] == ["  (classifier): Sequential("] + [
        f"    {l}" for l in COURSE_CLASSIFIER] + ["  )", ")"]
    assert lines[end + 1:] == [
        ADDED, *sequential(COURSE_CLASSIFIER + [
            "(add_linear): Linear(in_features=1000, out_features=10, bias=True)"]),
        false_line,
        REPLACED, *sequential(COURSE_CLASSIFIER[:6] + [
            "(6): Linear(in_features=4096, out_features=10, bias=True)"]),
        "vgg16_true(input).shape: torch.Size([1, 10])",
        "vgg16_false(input).shape: torch.Size([1, 10])"]
    assert out.count("VGG(") == 1                      # no model printed twice


def test_offline_default_prints_the_course_structures(p21, torch_home, monkeypatch, capsys):
    def no_download(*a, **k):
        raise AssertionError("nothing may be downloaded without --pretrained")

    monkeypatch.setattr(torch.hub, "urlopen", no_download)
    assert p21.main(["--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert not torch_home.exists()
    assert out.startswith("vgg16_true, with random weights (add --pretrained for the ImageNet "
                          "ones):\nVGG(\n")
    check_the_course_structures(
        out, "vgg16_true, with random weights (add --pretrained for the ImageNet ones):",
        f"{SAME}; random weights too")


def test_pretrained_says_only_the_weights_differ(p21, monkeypatch, capsys):
    """--pretrained, with the download replaced by a state_dict of zeros of VGG16's shapes."""
    with torch.device("meta"):                         # shapes only: nothing allocated
        shapes = {k: v.shape for k, v in torchvision.models.vgg16().state_dict().items()}
    monkeypatch.setattr(p21, "fetch_pretrained_weights",
                        lambda: {k: torch.zeros(s) for k, s in shapes.items()})
    loaded = []
    real = torch.nn.Module.load_state_dict
    monkeypatch.setattr(torch.nn.Module, "load_state_dict",
                        lambda self, sd, *a, **k: loaded.append(self) or real(self, sd, *a, **k))
    assert p21.main(["--pretrained", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    check_the_course_structures(
        out, "vgg16_true, with the ImageNet weights:",
        f"{SAME}; only the weights differ: vgg16_false's are random, vgg16_true's ImageNet's")
    # the given weights went into vgg16_true (one VGG16), which is why they differ
    (vgg16_true,) = loaded
    assert all(not p.any() for name, p in vgg16_true.named_parameters()
               if not name.startswith("classifier.add_linear"))


def test_pretrained_offline_is_one_error_line_and_leaves_no_file(p21, torch_home, monkeypatch,
                                                                 capsys):
    def no_network(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    assert p21.main(["--pretrained", "--device", "cpu"]) == 1
    out, err = capsys.readouterr()
    cache = torch_home / "hub" / "checkpoints"
    # announced before anything is downloaded: what and how big; then torch.hub's own line
    # says from where to where, once (on stderr before torch 2.7 or so, on stdout since)
    assert out.startswith("--pretrained: the ImageNet weights of VGG16 (528 MB) are not cached "
                          "yet; torch.hub downloads them once (set TORCH_HOME to cache them "
                          "elsewhere)\n")
    torch_line = f'Downloading: "{URL}" to {cache / "vgg16-397923af.pth"}\n'
    assert (out + err).count(torch_line) == 1 and (out + err).count(URL) == 2   # + the error
    # ours is the one error line, and the last
    *_, last = err.splitlines(keepends=True)
    assert last == (f"error: could not download the VGG16 weights from {URL} ([Errno -3] "
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
