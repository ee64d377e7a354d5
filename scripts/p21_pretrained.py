"""P21 现有网络模型的使用和修改 — Using and modifying an existing model (VGG16)

torchvision.models has ready-made networks. VGG16 classifies ImageNet's 1000 classes; to use
it for CIFAR-10's 10 classes, the course changes its last layers in two ways:
  - add a layer:     vgg16_true.classifier.add_module('add_linear', nn.Linear(1000, 10))
  - replace a layer: vgg16_false.classifier[6] = nn.Linear(4096, 10)

vgg16_false has random weights (weights=None). vgg16_true has the weights trained on ImageNet
only with --pretrained, which downloads them (528 MB, once, into torch's cache:
$TORCH_HOME/hub/checkpoints, ~/.cache/torch/hub/checkpoints by default) with a progress bar.
Without --pretrained nothing is downloaded and vgg16_true is random too: the structure, which
is what this lesson changes, is the same.

What to look at (each model or part printed once, under a line saying what it is):
  - vgg16_true: features (13 conv layers), avgpool, classifier ending in
    (6): Linear(in_features=4096, out_features=1000, bias=True);
  - vgg16_true.classifier after add_module: a new last line,
    (add_linear): Linear(in_features=1000, out_features=10, bias=True);
  - vgg16_false has the same structure as vgg16_true (only the weights differ with
    --pretrained), so it is not printed again; vgg16_false.classifier after
    classifier[6] = ...: (6): Linear(in_features=4096, out_features=10, bias=True);
  - both modified models now give 10 scores per image: vgg16_true(input).shape and
    vgg16_false(input).shape are torch.Size([1, 10]).

Example:
  python scripts/p21_pretrained.py              # offline: random weights
  python scripts/p21_pretrained.py --pretrained # downloads the ImageNet weights once
"""
from __future__ import annotations

import argparse
import os
import pickle

import torch
import torchvision
from torch import nn
from torchvision.models import VGG16_Weights

from common import cli, disk
from common.cli import UserError
from common.device import get_device


def get_args_parser() -> argparse.ArgumentParser:
    p = cli.parser(__doc__, cli.device_flags())
    p.add_argument("--pretrained", action="store_true",
                   help="give vgg16_true the ImageNet weights (VGG16_Weights.DEFAULT): a 528 MB "
                        "download the first time, cached in $TORCH_HOME/hub/checkpoints "
                        "(default: off, random weights, no download)")
    return p


def fetch_pretrained_weights() -> dict:
    """VGG16_Weights.DEFAULT's state_dict, downloaded once with torchvision's progress bar.

    Announced before any download; a failure is one error line. It runs before any model is
    built, so a failed download stops at once.
    """
    weights = VGG16_Weights.DEFAULT
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    was_cached = os.path.exists(cached)
    if was_cached:
        print(f"--pretrained: using the cached ImageNet weights {cached}")
    else:
        # torch.hub's own next line says from where to where: 'Downloading: "<url>" to <file>'
        print(f"--pretrained: the ImageNet weights of VGG16 ({weights.meta['_file_size']:.0f} "
              "MB) are not cached yet; torch.hub downloads them once (set TORCH_HOME to "
              "cache them elsewhere)", flush=True)
        # _file_size is in MB of 2**20 bytes; a disk without room stops here, not at 90%
        disk.need_space(os.path.dirname(cached), int(weights.meta["_file_size"] * 2**20),
                        "the VGG16 weights", "TORCH_HOME=DIR")
    try:
        # progress=True: the progress bar on stderr. A download that fails leaves only a
        # *.partial file, which torch.hub removes: the cache never holds half a file.
        # check_hash: the file's sha256 must start with the 397923af in its name.
        return weights.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        if disk.is_write_failure(e) and not was_cached:
            e.filename = None           # (torch.hub's temporary file, which it removed)
            raise disk.failed(cached, e, "TORCH_HOME=DIR") from None
        why = cli.reason(e)
        if was_cached:
            raise UserError(f"the cached VGG16 weights {cached} cannot be read ({why}); "
                            "delete that file and run again") from None
        raise UserError(f"could not download the VGG16 weights from {weights.url} ({why}); "
                        "run without --pretrained for random weights, or place "
                        f"{os.path.basename(cached)} in {os.path.dirname(cached)}") from None


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = get_device(args.device)
    state_dict = fetch_pretrained_weights() if args.pretrained else None

    # 1. 加载现有网络 / load the existing network
    # The course wrote vgg16(pretrained=False/True): `pretrained` is deprecated since
    # torchvision 0.13 (it warns and may be removed); `weights` is the argument now.
    vgg16_false = torchvision.models.vgg16(weights=None)
    # The course's vgg16_true is vgg16(weights=VGG16_Weights.DEFAULT, progress=True) today;
    # here the same in two steps (weights fetched above, then loaded) so a failed download
    # stops before anything is built.
    vgg16_true = torchvision.models.vgg16(weights=None)
    if state_dict is not None:
        vgg16_true.load_state_dict(state_dict)
        print("vgg16_true, with the ImageNet weights:")
    else:
        print("vgg16_true, with random weights (add --pretrained for the ImageNet ones):")
    print(vgg16_true)

    # 2. 添加一层 / add a layer at the end of the classifier: 1000 ImageNet scores -> 10
    vgg16_true.classifier.add_module('add_linear', nn.Linear(1000, 10))
    # Only the classifier changed: it alone is printed again, not the whole model.
    print("vgg16_true.classifier after add_module('add_linear', nn.Linear(1000, 10)):")
    print(vgg16_true.classifier)

    # 3. 修改一层 / replace the classifier's last layer: 4096 features -> 10 scores
    # The course prints vgg16_false here: before any change it is vgg16_true's structure,
    # printed above, so it is not printed again.
    same = ("vgg16_false: the same structure as vgg16_true printed above, before add_module "
            "(not printed again)")
    if state_dict is not None:
        print(f"{same}; only the weights differ: vgg16_false's are random, "
              "vgg16_true's ImageNet's")
    else:
        print(f"{same}; random weights too")
    vgg16_false.classifier[6] = nn.Linear(4096, 10)
    print("vgg16_false.classifier after vgg16_false.classifier[6] = nn.Linear(4096, 10):")
    print(vgg16_false.classifier)

    # 4. 检查输出 / check: one CIFAR-10-sized image in, 10 scores out (avgpool makes any
    # image size 7x7 before the classifier)
    input = torch.ones(1, 3, 32, 32, device=device)
    with torch.no_grad():
        for name, model in [("vgg16_true", vgg16_true), ("vgg16_false", vgg16_false)]:
            output = model.to(device).eval()(input)
            print(f"{name}(input).shape: {output.shape}")      # torch.Size([1, 10])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
