"""GST: the course's CIFAR-10 network (lessons 18 and 23), defined here once."""
from torch import nn

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


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
