"""P25 完整的模型验证套路 — The full inference recipe: a trained model on your own images

Lesson 25 takes the network trained in lesson 23 and gives it a new picture: open the
image, convert it to RGB, resize it to 32x32, ToTensor, add the batch dimension
(reshape to [1, 3, 32, 32]), model.eval(), and under torch.no_grad() read the output's argmax.

What to look at: first the checkpoint loaded and what it was trained on (the data, epochs,
test accuracy); then for each image, its original mode and size, and the top-k classes with
their probabilities (softmax of the output). A PNG with transparency (RGBA), a grayscale
(L) or palette (P) image is converted to RGB first, as the course does with
image.convert('RGB'); a 16-bit or float one is scaled to 8 bits before (convert would cut it
at 255: white). The images are read first, then the model is loaded, as in the course.
An image that is missing or unreadable gets one "error: ..." line, the others are still
predicted, and the exit status is 1 (with no readable image, no model is loaded).
TensorBoard (beyond the course): run logs/p25_test/<run-id>/ holds one image per picture
classified (tag predictions/<n>_<file name>): the picture, the 32x32 the network saw, its
top-k classes.

The model is the last epoch of the newest p23_train.py run
(checkpoints/p23_train/<run-id>/gst_<N>.pth) unless --checkpoint names a file: the plain dict
p23_train.py writes (its class names are used, and what it was trained on is printed), or a
bare state_dict. A course-style whole-model file (torch.save(model)) is a pickle that can run
code when loaded: it is refused unless you pass --trust-pickle for a file you made yourself.
A model trained on --fake-data has only seen synthetic stripes: p25 says so.

Examples:
  python scripts/p23_train.py --fake-data --epochs 5      # a model, offline, in a minute
  python scripts/p25_test.py dog.png airplane.jpg
  python scripts/p25_test.py dog.png --checkpoint checkpoints/p23_train/<run-id>/gst_9.pth --topk 5
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torch import nn

from common import checkpoint, cli, figures, paths, runs
from common.data import open_picture, rgb
from common.device import get_device
from common.writer import make_writer, need_logdir
# GST is imported by name so that a course-style whole-model pickle made by a script that
# defined GST itself (pickled as __main__.GST) can find its class here (lesson 22's trap).
from common.model import CIFAR10_CLASSES, GST

SCRIPT = "p25_test"
TRAINER = "p23_train"
TRAINER_SCRIPT = Path(__file__).with_name(f"{TRAINER}.py")   # named in the hints that train one
THUMBNAIL = 256     # the largest side of a picture as TensorBoard shows it


def get_args_parser():
    parser = cli.parser(__doc__, cli.device_flags(), cli.logdir_flags(), cli.checkpoint_flags(
                            "the checkpoints root: with no --checkpoint, the last epoch of the "
                            "newest run in CHECKPOINT_DIR/p23_train/ is loaded "
                            "(default: checkpoints/ in the repository)"), cli.trust_flags(),
                        cli.verbose_flags("also print what the course prints: the model (its "
                                          "layers), and for each image image.shape, output "
                                          "and output.argmax(1)"))
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                        help="PNG or JPEG files to classify (any mode: RGB, RGBA, L, P...)")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                        help="the checkpoint to load (default: the last epoch of the newest "
                             "p23_train.py run, in <checkpoint-dir>/p23_train/<run-id>/)")
    parser.add_argument("--topk", type=cli.positive_int, default=3, metavar="K",
                        help="how many of the most likely classes to print per image (default: 3)")
    return parser


def load_model(path: Path, trust_pickle: bool
               ) -> tuple[nn.Module, list[str], list[str], tuple[float, float] | None]:
    """``(GST with the checkpoint's weights on the CPU, class names, training record, normalize)``.

    ``normalize`` is the ``(mean, std)`` the model was trained with after ToTensor (p23 centres
    image-folder pictures), or None.
    """
    obj = checkpoint.load(path, trust_pickle=trust_pickle)     # onto the CPU, whatever it was saved on
    if isinstance(obj, dict) and obj.get("arch", "GST") != "GST":
        raise cli.UserError(f"{path} holds a {obj['arch']} model, not GST")
    if isinstance(obj, dict):
        checkpoint.need_run_fields(obj, path)     # a field of another kind: one line, here
    state_dict = checkpoint.state_dict_of(obj, path)
    last = state_dict.get("model.8.weight")
    if not isinstance(last, torch.Tensor) or last.dim() != 2:
        raise cli.UserError(f"{path} is not a GST checkpoint (no model.8.weight in its state_dict)")
    num_classes = last.shape[0]
    if num_classes == 0:
        raise cli.UserError(f"{path} is not a GST checkpoint (its model has no outputs)")
    classes = obj.get("classes") if isinstance(obj, dict) else None
    if classes is None:
        classes = CIFAR10_CLASSES if num_classes == 10 else [f"class {k}" for k in range(num_classes)]
    if len(classes) != num_classes:
        raise cli.UserError(f"{path} names {len(classes)} classes but its model has {num_classes} outputs")
    model = checkpoint.load_weights(GST(num_classes), state_dict, path)
    normalize = obj.get("normalize") if isinstance(obj, dict) else None
    return model, list(classes), training_record(obj, path), normalize


def training_record(obj, path: Path) -> list[str]:
    """What the checkpoint at ``path`` says of its training: data, epochs, test accuracy, and
    whether its run stopped before the epochs it was started for (lines to print)."""
    if not (isinstance(obj, dict) and "epoch" in obj):
        return ["trained on: not recorded (a bare state_dict or a whole model says nothing of "
                "its training)"]
    source = obj.get("data") or {}
    args = obj.get("args") or {}
    kind = source.get("source") or ("image-folder" if args.get("image_folder")
                                    else "fake-data" if args.get("fake_data") else "cifar10")
    images = f"{source['train_images']} images, " if "train_images" in source else ""
    if kind == "fake-data":
        what = f"synthetic --fake-data pictures ({images}no photographs)"
    elif kind == "image-folder":
        folder = source.get("path") or args.get("image_folder")
        what = f"the image folder {folder} ({images}classes: {', '.join(obj.get('classes') or [])})"
    else:
        what = f"CIFAR-10 ({images.rstrip(', ') or 'size not recorded'})"
    accuracy = obj.get("test_accuracy")
    tested = f" of {source['test_images']} test images" if "test_images" in source else ""
    epochs = obj["epoch"] + 1
    planned = args.get("epochs")
    early = isinstance(planned, int) and epochs < planned
    trained = f"{epochs} of {planned} epochs" if early else cli.counted(epochs, "epoch")
    lines = [f"trained on: {what}, {trained}; test accuracy "
             + (f"{accuracy:.4f}{tested}" if accuracy is not None else "not recorded")]
    # The last checkpoint of its run, short of the epochs asked for: that run was stopped
    # (Ctrl-C), or it is still training. (An earlier epoch of any run is simply that epoch.)
    run = runs.checkpoints_of(path.parent)
    if early and run and run[-1].resolve() == path.resolve():
        lines.append(f"note: its run ended after epoch {epochs} of {planned}, or is still "
                     f"training. If it was stopped, {resume_command(path, args)} finishes it; "
                     "or name another model with --checkpoint")
    if kind == "fake-data":
        lines.append("note: this model has only ever seen --fake-data's coloured stripes, never a "
                     "photograph: for a real picture its answer is a guess. Train on CIFAR-10 "
                     f"({cli.command_line(TRAINER_SCRIPT)}) for real predictions")
    return lines


def read_image(path: Path, transform) -> tuple[torch.Tensor, str, Image.Image]:
    """``(tensor [3, 32, 32], description, the RGB picture at most THUMBNAIL pixels wide and
    high)``; OSError/ValueError if the file is not an image."""
    # The course's Image.open, for your own photos: a 200-megapixel one is no "decompression
    # bomb" (see common.data.open_picture)
    with open_picture(path) as image:
        # (PIL names the format of every file it can open)
        original = f"{image.format} {image.mode} {image.width}x{image.height}"
        # A phone photo is stored sideways with an EXIF tag saying how to turn it, which the
        # course's Image.open ignores: turned upright first, as image folders are in training.
        # A PNG may be RGBA (4 channels), L (1), P (palette) or 16-bit: the model wants 3 of 8.
        image = rgb(image)
    picture = image.copy()
    picture.thumbnail((THUMBNAIL, THUMBNAIL))       # for TensorBoard: a phone photo is huge
    image = transform(image)
    return image, original, picture


def resume_command(path: Path, args: dict) -> str:
    """The p23 command that goes on with the run of checkpoint ``path``, trained with
    ``args``: its folders and device too, where they were not p23's defaults."""
    own = []
    for flag, key, default in [("--checkpoint-dir", "checkpoint_dir", paths.CHECKPOINT_DIR),
                               ("--logdir", "logdir", paths.LOGS_DIR)]:
        if args.get(key) and Path(args[key]).resolve() != default.resolve():
            own += [flag, Path(args[key])]
    if args.get("device") not in (None, "auto"):
        own += ["--device", args["device"]]
    return cli.command_line(TRAINER_SCRIPT, "--resume", path, *own)


def folder_hint(folder: Path) -> str:
    """What to say when a folder is named instead of an image: a shell pattern that names its
    pictures (``folder/*.jpg``, or ``folder/*/*.jpg`` for the class folders of
    ``val/ants/``, ``val/bees/``), in the suffix most of them have."""
    known = Image.registered_extensions()            # the suffixes PIL can open: .jpg, .png...
    for pattern in ("*", "*/*"):
        suffixes = [p.suffix for p in folder.glob(pattern)
                    if p.suffix.lower() in known and p.is_file()]
        if suffixes:
            common = max(sorted(set(suffixes)), key=suffixes.count)
            return (f"{folder} is a folder, not an image: name its pictures "
                    f"({folder / pattern}{common})")
    return f"{folder} is a folder with no pictures in it (nor in its subfolders): name image files"


def predict(model: nn.Module, image: torch.Tensor, device: torch.device, k: int):
    """The course's prediction for one picture ``[3, 32, 32]``: ``(the batch of one it ran,
    the model's output [1, classes], torch.topk of the class probabilities)``."""
    image = torch.reshape(image, (1, 3, 32, 32))   # 记住需要batch_size / a batch of one
    # The course moves the image to a hard-coded torch.device("mps") (Apple only), and the
    # model stays where torch.load put it: on the device it was saved from, the CPU for
    # lesson 23's gst_9.pth. Two devices, so the forward fails. Both go to --device here.
    image = image.to(device)
    with torch.no_grad():
        output = model(image)
    probs = torch.softmax(output, dim=1)[0]      # beyond the course: scores as probabilities
    return image, output, torch.topk(probs, k)


def log_predictions(logdir: Path, seen: list, classes: list[str], checkpoint_path: Path,
                    record: list[str], normalize) -> None:
    """One TensorBoard run, ``<logdir>/p25_test/<run-id>/``: each classified picture as one
    image (tag ``predictions/<n>_<file name>``): the picture, the 32x32 the network saw, its
    top-k classes with their probabilities; and the checkpoint used, as text."""
    with make_writer(logdir, SCRIPT) as writer:
        writer.add_text("checkpoint", f"`{checkpoint_path}`  \n" + "  \n".join(record))
        width = len(str(len(seen)))
        for n, (image_path, original, picture, image, top) in enumerate(seen, 1):
            if normalize is not None:           # back to [0, 1], to show what the network saw
                mean, std = normalize
                image = image * std + mean
            names = [classes[i] for i in top.indices.tolist()]
            probs = top.values.tolist()
            figure = figures.topk_figure(picture, image, probs, names,
                                         f"{image_path}: {names[0]} ({probs[0]:.1%})",
                                         about=original)
            writer.add_figure(f"predictions/{n:0{width}d}_{image_path.name}", figure)


@cli.entrypoint
def main(argv=None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    device = get_device(args.device)
    # a wrong --logdir stops now, not after every picture is classified
    need_logdir(args.logdir, SCRIPT)

    # 1. 读取图片 / read the images, first, as the course does: a typo in a file name is
    # reported before any model is loaded. The course's transform, made once for every image.
    transform = torchvision.transforms.Compose([torchvision.transforms.Resize((32, 32)),
                                                torchvision.transforms.ToTensor()])
    failed = 0
    pictures = []     # (path, as read, picture, the 32x32 tensor)
    for image_path in args.images:
        try:
            image, original, picture = read_image(image_path, transform)
        except FileNotFoundError:
            print(f"error: {image_path}: no such file", file=sys.stderr)
            failed += 1
            continue
        except IsADirectoryError:      # a folder of pictures: name them (folder/*.jpg)
            print(f"error: {folder_hint(image_path)}", file=sys.stderr)
            failed += 1
            continue
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            # PIL's UnidentifiedImageError and "image file is truncated" are OSErrors.
            print(f"error: {image_path}: not a readable image ({cli.reason(e)})",
                  file=sys.stderr)
            failed += 1
            continue
        pictures.append((image_path, original, picture, image))
    if not pictures:
        return cli.EXIT_ERROR          # nothing to classify: no model to load

    # 2. 加载模型 / load the trained model
    if args.checkpoint is not None:
        path = args.checkpoint
    else:
        # the command that makes one where this looks: the same --checkpoint-dir
        own = (["--checkpoint-dir", args.checkpoint_dir]
               if "checkpoint_dir" in cli.given(parser, argv) else [])
        path = runs.need_latest_checkpoint(
            args.checkpoint_dir, TRAINER,
            f"train a model first: {cli.command_line(TRAINER_SCRIPT, *own)} (CIFAR-10), or "
            f"offline {cli.command_line(TRAINER_SCRIPT, '--fake-data', *own)}; or pass "
            "--checkpoint PATH")
    model, classes, record, normalize = load_model(path, args.trust_pickle)
    model = model.to(device)
    print(f"checkpoint: {path}")
    print(*record, sep="\n")
    if args.verbose:
        print("model:")
        print(model)
    model.eval()
    k = min(args.topk, len(classes))
    if k < args.topk and "topk" in cli.given(parser, argv):
        print(f"note: --topk {args.topk}, but the model knows {cli.counted(len(classes), 'class', 'classes')}:"
              f" all {len(classes)} are listed")
    # the Normalize the model was trained with, if any (p23 centres image-folder pictures)
    centre = (torchvision.transforms.Normalize([normalize[0]] * 3, [normalize[1]] * 3)
              if normalize is not None else None)

    seen = []     # (path, as read, picture, what the network saw, top k): for TensorBoard
    for image_path, original, picture, image in pictures:
        # 3. 预测 / predict
        if centre is not None:
            image = centre(image)
        print(f"{image_path}  ({original} -> RGB 32x32)")
        if args.verbose:          # the course's own prints: the transformed image's shape...
            print(f"  image.shape: {image.shape}")
        image, output, top = predict(model, image, device, k)
        if args.verbose:          # ...and the model's scores, one a class, and the best one
            print(f"  output: {output.cpu()}")
            print(f"  output.argmax(1): {output.argmax(1).cpu()} ({classes[output.argmax(1).item()]})")
        for rank, (p, idx) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
            print(f"  {rank:>{len(str(k))}}. {classes[idx]:<12} {p:7.2%}")
        seen.append((image_path, original, picture, image[0].cpu(), top))

    # 4. 写入 TensorBoard / beyond the course: what it saw and said, as pictures
    log_predictions(args.logdir, seen, classes, path, record, normalize)
    return cli.EXIT_ERROR if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
