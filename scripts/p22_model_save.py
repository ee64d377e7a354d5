"""P22 网络模型的保存与读取 — Saving a model (run p22_model_load.py next)

The course's two ways to save a model, into this lesson's own folder,
<checkpoint-dir>/p22_model_save/ (checkpoints/p22_model_save/ by default):
  方式1 / method 1  torch.save(vgg16, "vgg16_method1.pth")               structure + weights
  方式2 / method 2  torch.save(vgg16.state_dict(), "vgg16_method2.pth")  weights only (官方推荐,
                    the recommended way)
and the lesson's trap: a small model of this script's own class, saved whole as
gst_method1.pth. Method 1 pickles the model object, and a pickle does not store a class's
code, only where to find it — here __main__.OneConv, "the class OneConv of the script that
was running". p22_model_load.py shows what that does to loading. This also writes
gst_method2.pth, the same small model's state_dict, for the fix shown there.

The four files go there and nowhere else: p23_train.py's runs live apart, in
checkpoints/p23_train/<run-id>/, where p25_test.py looks, so a file of this lesson is never
taken for a trained model. Every file is written atomically (to a temporary file, then
renamed), so an interrupted run never leaves half a checkpoint behind.

What to look at:
  - the files written, with their paths and sizes: the two VGG16 files are ~528 MB each
    (138 million float32 weights); --arch squeezenet1_1 saves a 5 MB model instead, for a
    quick run;
  - the classes each whole-model file names: torchvision.models.vgg.VGG (importable
    anywhere) vs __main__.OneConv (found only while this script is __main__).

Example:
  python scripts/p22_model_save.py
  python scripts/p22_model_load.py
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from common import checkpoint, cli, disk
from common.device import get_device
from common.model import torchvision_model


class OneConv(nn.Module):
    """The trap model: one Conv2d(3, 64, 3). The course calls it GST; it is named after what it
    does here, because GST is the CIFAR-10 network of common/model.py."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3)

    def forward(self, x):
        x = self.conv1(x)
        return x


SCRIPT = "p22_model_save"     # the folder under --checkpoint-dir that holds this lesson's files
WHERE = "--checkpoint-dir DIR"     # how to put them elsewhere, in an error's hint
# A saved file is its tensors' bytes and a little more: per tensor its zip record and name
# (measured: 290 to 370 bytes each for vgg16, resnet18, squeezenet1_1), the pickle once
# (19 kB for a whole VGG16). These bounds are above both; VGG16's file is 0.003% over its weights.
SAVE_OVERHEAD_PER_TENSOR = 1024
SAVE_OVERHEAD_PER_FILE = 64 * 1024


def get_args_parser() -> argparse.ArgumentParser:
    p = cli.parser(__doc__, cli.device_flags(), cli.checkpoint_flags(
        f"the checkpoints root: this script writes into CHECKPOINT_DIR/{SCRIPT}/ "
        f"(default: checkpoints/ in the repository, so checkpoints/{SCRIPT}/)"))
    p.add_argument("--arch", default="vgg16",
                   help=f"the torchvision model to save, as CHECKPOINT_DIR/{SCRIPT}/"
                        "<arch>_method1.pth and <arch>_method2.pth: vgg16 is the course's "
                        "(~528 MB per file), squeezenet1_1 a 5 MB one for a quick run "
                        "(default: vgg16)")
    return p


def report(path: Path) -> None:
    size = path.stat().st_size                # in MB of 2**20 bytes, as torchvision and ls -h count
    shown = f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.1f} kB"
    print(f"saved {path}  ({shown})")


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = get_device(args.device)
    checkpoint_dir = Path(args.checkpoint_dir) / SCRIPT    # this lesson's own folder
    disk.need_writable(checkpoint_dir, WHERE)              # a wrong folder: now, not after VGG16

    # The course: vgg16 = torchvision.models.vgg16(pretrained=False) (see p21 for `weights`).
    vgg16 = torchvision_model(args.arch).to(device)
    # Beyond the course: VGG16's two files take 1.1 GB. Is there room for them, before
    # anything is written? (Each file is about its weights' size: 4 bytes a float32.)
    state = vgg16.state_dict()
    weights = sum(t.numel() * t.element_size() for t in state.values())
    size = weights + SAVE_OVERHEAD_PER_TENSOR * len(state) + SAVE_OVERHEAD_PER_FILE
    files = [(checkpoint_dir / f"{args.arch}_method{n}.pth", size) for n in (1, 2)]
    replaced = ", less the old ones they replace" if any(p.exists() for p, _ in files) else ""
    disk.need_space(checkpoint_dir, disk.peak_bytes(files),
                    f"the two {args.arch} files (at most {disk.megabytes(size)} each{replaced})",
                    WHERE)

    # 1. 保存方式1: 模型结构+参数 / method 1: the whole model (structure + weights), pickled.
    # The course: torch.save(vgg16, "vgg16_method1.pth"), a path relative to where you run it;
    # here <checkpoint-dir>/p22_model_save/, wherever you run it from.
    method1 = checkpoint.save(vgg16, checkpoint_dir / f"{args.arch}_method1.pth", option=WHERE)
    report(method1)
    print(f"  the pickle names the model's class: {class_named(method1, vgg16)}")

    # 2. 保存方式2: 模型参数(官方推荐) / method 2: only the parameters, a dict name -> tensor
    method2 = checkpoint.save(vgg16.state_dict(), checkpoint_dir / f"{args.arch}_method2.pth",
                              option=WHERE)
    report(method2)

    # 3. 陷阱 / the trap: a model of a class defined in this script, saved whole
    gst = OneConv().to(device)
    trap = checkpoint.save(gst, checkpoint_dir / "gst_method1.pth", option=WHERE)
    report(trap)
    print(f"  the pickle names the model's class: {class_named(trap, gst)}")
    # ... and the way around it, used by p22_model_load.py: save its state_dict instead
    report(checkpoint.save(gst.state_dict(), checkpoint_dir / "gst_method2.pth", option=WHERE))
    return 0


def class_named(path: Path, model: nn.Module) -> str:
    """How the file at ``path`` refers to ``model``'s class (module.name), read without
    unpickling it: unpickling will import that module and look that name up in it."""
    names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    found = [n for n in names if n.rsplit(".", 1)[-1] == type(model).__qualname__]
    return found[0] if found else f"{type(model).__module__}.{type(model).__qualname__}"


if __name__ == "__main__":
    raise SystemExit(main())
