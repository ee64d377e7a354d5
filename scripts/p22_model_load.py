"""P22 网络模型的保存与读取 — Loading a model (run p22_model_save.py first)

Loads back what p22_model_save.py wrote to <checkpoint-dir>/p22_model_save/
(checkpoints/p22_model_save/ by default), each the safe way:
  方式1 / method 1  vgg16_method1.pth is a whole pickled model. Unpickling can run any code
                    the file names, so it is loaded only with --trust-pickle (for a file you
                    made yourself); without it this says why and goes on.
  方式2 / method 2  vgg16_method2.pth is a state_dict: torch.load gives a dict of tensors, not a
                    model. Build the model from code, torchvision.models.vgg16(weights=None),
                    then vgg16.load_state_dict(...). Read with weights_only=True: no code runs.
  陷阱 / the trap   gst_method1.pth is a whole OneConv, a class defined in p22_model_save.py.
                    The pickle names it __main__.OneConv; here __main__ is this script, which has
                    no OneConv, so loading it fails (--trust-pickle shows the error). The course's
                    fix: define the class in the loading script too (or import it from the saving
                    script); the better one: save a state_dict and rebuild the model from code.

Every load goes through common.checkpoint: a missing file, a file that is not a checkpoint, a
truncated one, or weights for a different model stop with one line `error: ...`. A missing
file is found before anything is loaded, and the line gives the p22_model_save.py command
that writes it.

What to look at (each model printed once, under a line saying which it is):
  - method 2: the state_dict's first keys and shapes, then the VGG16 rebuilt from code;
    with --trust-pickle, method 1's whole model is printed instead, and method 2's is said
    to be the same (same structure, same weights) rather than printed again;
  - the trap: the class names the file needs, and why __main__.OneConv is not found here;
    then the fix, OneConvCopy rebuilt from code with gst_method2.pth's weights.

Example:
  python scripts/p22_model_save.py && python scripts/p22_model_load.py
  python scripts/p22_model_load.py --trust-pickle      # also unpickle the whole models
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from common import checkpoint, cli, paths
from common.cli import UserError
from common.device import get_device
from common.model import check_arch, torchvision_model


class OneConvCopy(nn.Module):
    """p22_model_save.py's OneConv, written again here from code (the course's GST of the trap).

    A state_dict holds only parameter names and tensors (conv1.weight, conv1.bias), so any
    class with the same layers takes it, whatever it is called or wherever it lives. It is not
    called OneConv, so that this script's __main__ still lacks the class the pickle asks for
    and the trap shows, as in the course.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3)

    def forward(self, x):
        x = self.conv1(x)
        return x


SAVE_SCRIPT = Path(__file__).with_name("p22_model_save.py")
SAVED = "p22_model_save"     # the folder under --checkpoint-dir that p22_model_save.py writes
DEFAULT_ARCH = "vgg16"


def get_args_parser() -> argparse.ArgumentParser:
    p = cli.parser(__doc__, cli.device_flags(), cli.checkpoint_flags(
        f"the checkpoints root: this script reads CHECKPOINT_DIR/{SAVED}/, where "
        f"p22_model_save.py writes (default: checkpoints/ in the repository, so "
        f"checkpoints/{SAVED}/)"), cli.trust_flags())
    p.add_argument("--arch", default=DEFAULT_ARCH,
                   help=f"the model p22_model_save.py saved, read from CHECKPOINT_DIR/{SAVED}/"
                        f"<arch>_method1.pth and <arch>_method2.pth (default: {DEFAULT_ARCH})")
    return p


def need_saved_files(args, files: list[Path]) -> None:
    """Every file p22_model_save.py writes must be there before anything is loaded; a missing
    one is one line naming the command that writes it (with this run's --arch and
    --checkpoint-dir where they are not the defaults, so it works when pasted)."""
    for path in files:
        if not path.is_file():
            raise UserError(f"no such checkpoint: {cli.shown(path)}: run {save_command(args)} first")


def save_command(args) -> str:
    """The p22_model_save.py command that writes the files this run reads."""
    own: list[str | Path] = []
    if args.arch != DEFAULT_ARCH:
        own += ["--arch", args.arch]
    if Path(args.checkpoint_dir).resolve() != Path(paths.CHECKPOINT_DIR).resolve():
        own += ["--checkpoint-dir", Path(args.checkpoint_dir)]
    return cli.command_line(SAVE_SCRIPT, *own)


def whole_model_refusal(path: Path) -> str | None:
    """Check a method-1 file without running anything from it (weights_only=True).

    Returns why it is refused (it holds a pickled class: --trust-pickle needed), or None when
    it loads safely; a missing, non-checkpoint or truncated file raises its one-line UserError.
    """
    try:
        checkpoint.load(path)
    except checkpoint.PickleRefused as e:
        return str(e)
    return None


def load_whole_model(path: Path, device: torch.device) -> nn.Module:
    """Unpickle a whole model (only after --trust-pickle): the course's torch.load(path)."""
    model = checkpoint.load(path, trust_pickle=True)
    if not isinstance(model, nn.Module):
        raise UserError(f"{path} holds no whole model (it holds a {type(model).__name__}); "
                        "is it a state_dict? those load with method 2")
    return model.to(device)


def load_method2(path: Path, arch: str, device: torch.device, save: str) -> nn.Module:
    """方式2: build the model from code, then load the saved state_dict into it (``save``: the
    command that writes the file again)."""
    try:
        state_dict = checkpoint.load(path)     # weights_only=True, even with --trust-pickle:
    except checkpoint.PickleRefused:           # a state_dict is tensors, never code
        raise UserError(f"{path} holds a whole pickled model, not the state_dict of method 2 "
                        f"(torch.save({arch}.state_dict(), ...)), so --trust-pickle does not "
                        f"apply to it: write it again with {save}") from None
    # The course first printed torch.load("vgg16_method2.pth") itself: not a model, a dict.
    if isinstance(state_dict, dict):
        first = ", ".join(f"{k} {list(v.shape)}" for k, v in list(state_dict.items())[:2]
                          if isinstance(v, torch.Tensor))
        print(f"torch.load({path.name}) gives a dict ({type(state_dict).__name__}) of "
              f"{len(state_dict)} tensors, not a model: {first}, ...")
    vgg16 = torchvision_model(arch)                          # torchvision.models.vgg16(weights=None)
    # the course: vgg16.load_state_dict(torch.load("vgg16_method2.pth")); a mismatch: one line
    checkpoint.load_weights(vgg16, checkpoint.state_dict_of(state_dict, path), path)
    return vgg16.to(device)


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = get_device(args.device)
    checkpoint_dir = Path(args.checkpoint_dir) / SAVED     # where p22_model_save.py wrote
    check_arch(args.arch)
    path = checkpoint_dir / f"{args.arch}_method1.pth"
    trap = checkpoint_dir / "gst_method1.pth"
    gst_path = checkpoint_dir / "gst_method2.pth"
    need_saved_files(args, [path, checkpoint_dir / f"{args.arch}_method2.pth", trap, gst_path])

    # 1. 方式1 -> 保存方式1，加载模型 / method 1: the whole model, pickled
    # The course's torch.load("vgg16_method1.pth") unpickled it; since torch 2.6, torch.load
    # reads weights only by default and that line fails (UnpicklingError). Hence --trust-pickle.
    model = None
    refused = whole_model_refusal(path)
    if refused and not args.trust_pickle:
        print(f"方式1 / method 1 not loaded: {refused}")
    else:
        model = load_whole_model(path, device)      # the course: torch.load("vgg16_method1.pth")
        print(f"方式1 / method 1, model = torch.load({path.name}), the whole model:")
        print(model)

    # 2. 方式2，加载模型 / method 2: build the model, then load the state_dict
    vgg16 = load_method2(checkpoint_dir / f"{args.arch}_method2.pth", args.arch, device,
                         save_command(args))
    if model is not None and str(model) == str(vgg16):
        # The course prints both; they are one structure, so it is printed once, above.
        same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                     vgg16.state_dict().values()))
        print(f"方式2 / method 2, {args.arch} rebuilt from code with the state_dict loaded: "
              "the same structure as method 1's model above (not printed again)"
              + (", and the same weights, tensor for tensor" if same else ""))
    else:
        print(f"方式2 / method 2, {args.arch} = torchvision.models.{args.arch}(weights=None) with "
              "the state_dict loaded:")
        print(vgg16)

    # 3. 陷阱 / the trap: a whole model whose class lived in the saving script
    whole_model_refusal(trap)                         # a bad file stops here, safely
    names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(trap)))
    print(f"陷阱 / the trap: {trap.name} names the classes {', '.join(names)}")
    in_main = [n for n in names if n.startswith("__main__.")]
    if in_main:
        print(f"  {in_main[0]}: a class of the script that was __main__ when the file was saved "
              "(p22_model_save.py). Here __main__ is this script, which has no such class.")
    if args.trust_pickle:
        try:
            gst = load_whole_model(trap, device)     # the course: torch.load("gst_method1.pth")
            print(f"gst = torch.load({trap.name}):")
            print(gst)
        except UserError as e:
            print(f"  torch.load fails: {e}")
    else:
        print("  (add --trust-pickle to watch torch.load fail on it)")
    print("  the course's fix: define the same class in the loading script (or import it from "
          "the saving one) before torch.load; the better fix: save gst.state_dict() and "
          "rebuild the model from code, as here with gst_method2.pth:")
    gst = OneConvCopy()
    checkpoint.load_weights(gst, checkpoint.state_dict_of(checkpoint.load(gst_path), gst_path),
                            gst_path)
    print(f"gst = OneConvCopy() with {gst_path.name}'s state_dict loaded:")
    print(gst.to(device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
