"""p18_sequential: the CIFAR-10 model as separate layers and as nn.Sequential (common.model.GST)."""
import re

import pytest
import torch
from torch import nn

from conftest import events, load_script, only_run

from common.model import GST

SCRIPT = "p18_sequential"
LAYERS = ["Conv2d(3, 32, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))",
          "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
          "Conv2d(32, 32, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))",
          "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
          "Conv2d(32, 64, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))",
          "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
          "Flatten(start_dim=1, end_dim=-1)",
          "Linear(in_features=1024, out_features=64, bias=True)",
          "Linear(in_features=64, out_features=10, bias=True)"]
NAMES = ["conv1", "maxpool1", "conv2", "maxpool2", "conv3", "maxpool3", "flatten",
         "linear1", "linear2"]


@pytest.fixture(scope="module")
def p18():
    return load_script(SCRIPT)


def test_help_exits_0(p18, capsys):
    with pytest.raises(SystemExit) as e:
        p18.main(["--help"])
    assert e.value.code == 0
    assert "--logdir" in capsys.readouterr().out


def test_the_sequential_form_is_common_gst_not_redefined(p18):
    assert p18.GST is GST
    source = open(p18.__file__, encoding="utf-8").read()
    assert not re.search(r"^class GST", source, re.MULTILINE)   # the project's grep


def test_both_forms_compute_the_same_function(p18):
    """Copy GST's weights into LayerwiseGST by position: the outputs must then be equal."""
    torch.manual_seed(0)
    gst, layers = GST(), p18.LayerwiseGST()
    assert [tuple(v.shape) for v in layers.state_dict().values()] == \
           [tuple(v.shape) for v in gst.state_dict().values()]
    layers.load_state_dict(dict(zip(layers.state_dict(), gst.state_dict().values())))
    x = torch.rand(5, 3, 32, 32)
    assert torch.allclose(layers(x), gst(x), atol=1e-6)
    # and an independent hand-built check of the layer order, with the same weights
    m = gst.model
    h = x
    for i in (0, 2, 4):
        h = nn.functional.max_pool2d(nn.functional.conv2d(h, m[i].weight, m[i].bias, padding=2), 2)
    h = h.reshape(5, 1024) @ m[7].weight.T + m[7].bias
    h = h @ m[8].weight.T + m[8].bias
    assert torch.allclose(gst(x), h, atol=1e-5)


def test_prints_both_models_shapes_and_writes_the_graph(p18, tmp_path, capsys):
    assert p18.main(["--device", "cpu", "--logdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # each model once, under a line saying which way it is
    assert lines[0] == "gst_layers = LayerwiseGST(), 第一种 / the first way (one attribute per layer):"
    assert lines[1] == "LayerwiseGST("
    for i, (name, layer) in enumerate(zip(NAMES, LAYERS)):
        assert lines[2 + i] == f"  ({name}): {layer}"
    assert lines[11] == ")"
    assert lines[12] == "gst = GST() from common.model, 第二种 / the second way (nn.Sequential):"
    assert lines[13:15] == ["GST(", "  (model): Sequential("]
    for i, layer in enumerate(LAYERS):
        assert lines[15 + i] == f"    ({i}): {layer}"
    assert lines[24:26] == ["  )", ")"]
    assert lines.count("LayerwiseGST(") == lines.count("GST(") == 1
    # 64 images in, 10 scores each out
    assert lines[26:28] == ["output.shape: torch.Size([64, 10])",
                            "gst_layers(input).shape: torch.Size([64, 10])  (the first way: the same)"]

    acc = events(only_run(tmp_path, SCRIPT))
    assert acc.Tags()["graph"] is True
    nodes = [n.name for n in acc.Graph().node]
    for i, kind in enumerate(["Conv2d", "MaxPool2d", "Conv2d", "MaxPool2d", "Conv2d",
                              "MaxPool2d", "Flatten", "Linear", "Linear"]):
        assert any(f"GST/Sequential[model]/{kind}[{i}]" in n for n in nodes), kind


def test_absent_device_is_one_error_line(p18, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("common.device.available_devices", lambda: ["cpu"])
    assert p18.main(["--device", "mps", "--logdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: device 'mps' is not available") and err.count("\n") == 1
