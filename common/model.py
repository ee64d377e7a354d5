"""GST: the course's CIFAR-10 network (lessons 18 and 23), defined here once; and
torchvision's classification models by name (lessons 21-22), built without weights."""
import torchvision
from torch import nn

from common.cli import UserError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


def check_arch(arch: str) -> None:
    """``arch`` must name a torchvision classification model (vgg16, squeezenet1_1, ...)."""
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise UserError(f"unknown --arch '{arch}': not a torchvision classification model "
                        "(e.g. vgg16, squeezenet1_1; all: torchvision.models.list_models())")


def torchvision_model(arch: str) -> nn.Module:
    """``torchvision.models.<arch>(weights=None)``: random weights, nothing downloaded."""
    check_arch(arch)
    return torchvision.models.get_model(arch, weights=None)


class GST(nn.Module):
    """The CIFAR10-quick model: 3 x (5x5 conv + 2x2 max-pool), flatten, 2 linear layers.

    Input ``[N, 3, 32, 32]``, output ``[N, num_classes]`` logits. The attribute is called
    ``model`` as in lesson 23, so state_dict keys are ``model.0.weight`` ... ``model.8.bias``.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(3, 32, 5, 1, 2),   # padding 2 keeps 32x32 (lesson 18's formula)
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 5, 1, 2),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, 1, 2),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 64),
            nn.Linear(64, num_classes),
        )

    def forward(self, x):
        x = self.model(x)
        return x
