import torch
from torch import nn

from common.model import CIFAR10_CLASSES, GST


def test_gst_shape_and_layers():
    gst = GST()
    assert gst(torch.ones(64, 3, 32, 32)).shape == (64, 10)
    layers = [type(m) for m in gst.model]
    assert layers == [nn.Conv2d, nn.MaxPool2d, nn.Conv2d, nn.MaxPool2d, nn.Conv2d,
                      nn.MaxPool2d, nn.Flatten, nn.Linear, nn.Linear]
    # the course's parameter count: 3 convs + 2 linears
    expected = (3*32*25 + 32) + (32*32*25 + 32) + (32*64*25 + 64) + (1024*64 + 64) + (64*10 + 10)
    assert sum(p.numel() for p in gst.parameters()) == expected == 145578


def test_gst_state_dict_keys_match_lesson_23():
    keys = list(GST().state_dict())
    assert keys[0] == "model.0.weight" and keys[-1] == "model.8.bias"


def test_gst_num_classes_and_class_names():
    assert GST(num_classes=2)(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
    assert len(CIFAR10_CLASSES) == 10 and CIFAR10_CLASSES[3] == "cat"
