"""P23 完整的模型训练套路 — The full training recipe

The whole job the course builds in lesson 23: CIFAR-10, the GST network, CrossEntropyLoss,
SGD (lr 0.01), batches of 64, 10 epochs. Each epoch trains on the training set (the loss is
printed and logged every 100 steps), then measures the loss and accuracy on the test set and
saves a checkpoint.

What to look at:
  - the printed "训练次数：..., Loss: ..." falling, and "整体测试集上的正确率" (test accuracy)
    rising from ~0.1 (chance) over the run: on the whole, not at every epoch (SGD is noisy,
    and an epoch can end a little worse than the one before);
  - TensorBoard (tensorboard --logdir logs): run logs/p23_train/<run-id>/ with the course's
    tags train_loss, test_loss and test_accuracy (every epoch); and beyond the course, what
    the model learned: test_accuracy_per_class/<class> (which class lags), the confusion
    matrix test_confusion_matrix (which classes it mixes up) and test_predictions (16 fixed
    test images with what it says they are, the wrong ones in red) every epoch; the command,
    data and settings in the Text tab, and one row per run in the HParams tab;
  - checkpoints/p23_train/<run-id>/gst_0.pth ... gst_9.pth, the same <run-id> as the
    TensorBoard run: plain dicts (model and optimizer state_dicts, "epoch", "classes", the
    data it was trained on, the run's settings) that lesson 25 (p25_test.py) loads.

Beyond the course: the training set is shuffled each epoch; a progress bar per epoch;
--seed makes a run repeatable; Ctrl-C stops cleanly and prints the command that goes on
(every finished epoch's checkpoint is intact: they are written atomically); --resume
continues a run where it stopped, with its own settings, in its own folders; a loss that
turns nan or inf stops the run with one line; --metrics writes a JSON summary;
--image-folder trains on your own pictures (centred to [-1, 1]: see IMAGE_FOLDER_NORMALIZE);
--amp trains in bfloat16 autocast; --cuda-graph replays each step as one CUDA graph.

Several GPUs or machines: the same script, launched by torchrun, trains with
DistributedDataParallel, one process per GPU (gloo on the CPU). Rank 0 alone prints, logs and
saves; each process trains on its share of every epoch (common/data.shard); with torchrun
--max-restarts a restarted launch goes on from its last checkpoint (README: "More than one
GPU or machine").

Speed: the course converts every image with PIL + ToTensor inside the DataLoader, one by one.
Here the dataset is held as one uint8 tensor on the training device and each batch is one
gather + divide there; the network runs in channels_last on CPU and CUDA. Same model, same
maths: about 1.3x the course's loop on a 2-core CPU, where the convolutions themselves are
the bound (benchmarks/train_throughput.py measures it; benchmarks/README.md has the rows).
On a fast GPU the eager loop waits on Python to launch each step's dozens of small kernels:
--cuda-graph records the step once and replays it with one launch (common/step.py; its GPU
figures are still to be measured).

Examples:
  python scripts/p23_train.py --device mps              # the course's run (downloads CIFAR-10)
  python scripts/p23_train.py --fake-data --epochs 5    # offline, synthetic data, seconds
  python scripts/p23_train.py --resume last             # go on with the newest run
  python scripts/p23_train.py --resume last --epochs 20 # ... up to 20 epochs in all
  python scripts/p23_train.py --image-folder dataset/hymenoptera_sample --epochs 50 --momentum 0.9
  python scripts/p23_train.py --device cuda --cuda-graph --amp  # opt-in speed-ups for a fast GPU
  torchrun --standalone --nproc-per-node 4 scripts/p23_train.py --device cuda  # 4 GPUs, DDP
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from common import checkpoint, cli, data, disk, distributed, figures, runs
from common import step as common_step
from common.device import choose_kernels, fast_bf16, get_device, need_bf16, synchronize
from common.model import GST
from common.writer import (LOG_EVERY, LOG_EVERY_FROM, LOG_POINTS_PER_EPOCH, add_hparams,
                           close, end_hparams, log_interval, need_tensorboard, open_writer)

SCRIPT = "p23_train"
# What --resume takes from the checkpoint: the run's data and training settings. Where the
# files go (--logdir, --checkpoint-dir, --metrics) and --device belong to this command.
RESUMED_FLAGS = {"fake_data": "--fake-data", "image_folder": "--image-folder",
                 "data_root": "--data-root", "epochs": "--epochs", "batch_size": "--batch-size",
                 "lr": "--lr", "momentum": "--momentum", "seed": "--seed",
                 "log_every": "--log-every", "amp": "--amp"}
RESUMED = tuple(RESUMED_FLAGS)
DATA_SOURCE = ("fake_data", "image_folder")
# Flags of this command that a resume command must repeat (they are not in the checkpoint):
# where it runs and how, where its files go. --cuda-graph is how, like --device: same maths.
OWN_FLAGS = {"device": "--device", "logdir": "--logdir", "checkpoint_dir": "--checkpoint-dir",
             "metrics": "--metrics", "cuda_graph": "--cuda-graph",
             "dist_timeout": "--dist-timeout"}
# Your own pictures are centred, (x - 0.5) / 0.5 = Normalize([0.5] * 3, [0.5] * 3), as
# torchvision's examples do. GST has no activation between its layers: on a few dozen
# all-positive images it sits at chance for a hundred steps or more and then often falls back
# to it, while centred ones are learnt in a few epochs. CIFAR-10 keeps the course's ToTensor.
IMAGE_FOLDER_NORMALIZE = (0.5, 0.5)
# TensorBoard's picture of what the model predicts: this many test images, the same ones every
# epoch (and in every run on the same test set), drawn with this seed.
PREDICTION_IMAGES = 16
PREDICTION_SEED = 0
# The HParams tab's metrics: these tags' last values, the final test loss and accuracy.
HPARAMS_METRICS = ("test_accuracy", "test_loss")


def get_args_parser():
    parser = cli.parser(__doc__, cli.device_flags(), cli.data_flags(num_workers=False),
                        cli.image_folder_flags(default=None), cli.logdir_flags(),
                        cli.checkpoint_flags(
                            "the checkpoints root: a run writes CHECKPOINT_DIR/p23_train/"
                            "<run-id>/gst_<epoch>.pth, the <run-id> of its TensorBoard run "
                            "(default: checkpoints/ in the repository)"),
                        cli.train_flags(kernels=True))
    parser.add_argument("--momentum", type=cli.momentum_float, default=0.0,
                        help="SGD momentum, 0 or more and below 1; the course uses none "
                             "(default: 0.0)")
    parser.add_argument("--log-every", type=cli.positive_int, default=None, metavar="N",
                        help=f"print and log train_loss every N steps (default: {LOG_EVERY}, the "
                             f"course's, when an epoch has {LOG_EVERY_FROM} steps or more, as "
                             "CIFAR-10 has at batch 64; for a smaller set, an epoch's steps / "
                             f"{LOG_POINTS_PER_EPOCH}, so its curve has points from the first run)")
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue the run of a checkpoint written by this script "
                             "(checkpoints/p23_train/<run-id>/gst_<epoch>.pth), or 'last' for the "
                             "newest run: the same data, epochs, batch size, lr, momentum and "
                             "shuffling, in the same folders; a flag given here overrides its "
                             "setting (--epochs 20 extends a finished run) (default: start afresh)")
    parser.add_argument("--metrics", type=Path, default=None, metavar="PATH",
                        help="when training ends, write a JSON object here: test_accuracy, "
                             "test_loss, confusion_matrix, test_accuracy_per_class, epochs, "
                             "train_images_per_s (and by epoch), device, amp, cuda_graph, "
                             "checkpoint (default: none)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                        help="train in bfloat16 autocast: the forward pass and the loss in bf16, "
                             "the weights and the SGD step in fp32. It pays only on hardware "
                             "that computes in bf16 (CUDA GPUs from Ampere on, CPUs with "
                             "AVX-512 BF16 or AMX) and is slower elsewhere; the course trains "
                             "in fp32. A resumed run keeps its setting; --no-amp turns it off "
                             "(default: off)")
    parser.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=False,
                        help="on CUDA, record the training step once and replay it as one CUDA "
                             "graph: the same maths without Python launching every kernel, "
                             "which is what bounds GST on a fast GPU (common/step.py); CPU and "
                             "MPS train eagerly either way, and so does DDP (torchrun). Not yet "
                             "run on a GPU, so off by default: see benchmarks/README.md "
                             "(default: off)")
    parser.add_argument("--dist-timeout", type=cli.timeout_seconds, default=distributed.TIMEOUT_S,
                        metavar="SECONDS",
                        help="under torchrun: how long a process waits for the others at a "
                             "step before the run stops with an error (a process that hangs "
                             "or loses the network; one that dies stops the run at once) "
                             f"(default: {distributed.TIMEOUT_S})")
    return parser


class Diverged(Exception):
    """The training loss became nan or inf: the weights have run away."""

    def __init__(self, step: int, value: float):
        super().__init__(f"the loss is {value} at step {step}")
        self.step, self.value = step, value


def use_channels_last(device: torch.device) -> bool:
    """channels_last (NHWC) speeds GST's convolutions up on CPU (oneDNN) and CUDA (cuDNN)."""
    return device.type in ("cpu", "cuda")


def make_model(num_classes: int, device: torch.device) -> GST:
    """GST on ``device``, in the memory format that is fastest there."""
    gst = GST(num_classes)
    if use_channels_last(device):
        return gst.to(device, memory_format=torch.channels_last)
    return gst.to(device)


def train_step(gst, loss_fn, optimizer, imgs, targets, amp=False):
    """One step of the course's training loop on one batch; returns the loss (a tensor).

    With ``amp`` the forward pass and the loss run in bfloat16 autocast (the weights, their
    gradients and the SGD step stay fp32). ``cache_enabled=False``: autocast would otherwise
    keep each weight's bf16 copy for the rest of the region, to reuse it; GST uses each weight
    once per step, so the cache saves nothing (and torch.cuda.make_graphed_callables, the other
    way to graph a step, refuses it).
    """
    with torch.autocast(imgs.device.type, dtype=torch.bfloat16, enabled=amp,
                        cache_enabled=False):
        outputs = gst(imgs)
        loss = loss_fn(outputs, targets)
    # 优化器优化模型 / the optimizer updates the model
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def make_train_step(gst, loss_fn, optimizer, train_dataloader, *, amp=False, cuda_graph=False):
    """:func:`train_step` on this model, ready to call as ``step(imgs, targets)``.

    Warmed up before the first epoch (and with ``cuda_graph``, recorded as one CUDA graph) on
    a batch of each size the loader yields; the weights and the optimizer state are then put
    back exactly, so this changes the speed of the first epoch, never what is learnt.
    """
    step = functools.partial(train_step, gst, loss_fn, optimizer, amp=amp)
    return common_step.prepare(step, gst, optimizer, train_dataloader.sample_batches(),
                               cuda_graph=cuda_graph)


def train(gst, step, train_dataloader, total_train_step=0, writer=None,
          desc="train", log_every=LOG_EVERY, show_progress=True):
    """One epoch of training (the course's inner loop); returns the new ``total_train_step``.

    ``train_dataloader`` yields ``(imgs, targets)`` already on the model's device, and
    ``step(imgs, targets)`` trains on them (:func:`make_train_step` makes it). The loss is
    read back (``loss.item()``, which waits for the device) only every ``log_every`` steps,
    where it is printed: between those prints the device never waits for the host. A nan or
    inf loss there raises :class:`Diverged`. Under torchrun the loss printed is the mean over
    the processes' batches: the loss of the step's whole batch.
    """
    gst.train()   # 训练模式 / training mode (matters for Dropout/BatchNorm; GST has none)
    with tqdm(train_dataloader, desc=desc, unit="batch", dynamic_ncols=True,
              disable=not show_progress) as bar:
        # The course writes `for data in train_dataloader: imgs, targets = data`; here `data`
        # is common.data, so the batch is unpacked where it is taken.
        for imgs, targets in bar:
            loss = step(imgs, targets)   # forward, loss, backward, optimizer step: train_step()

            total_train_step += 1
            if total_train_step % log_every == 0:
                loss_value = distributed.mean(loss).item()
                if not math.isfinite(loss_value):
                    raise Diverged(total_train_step, loss_value)
                tqdm.write("训练次数：{}, Loss: {}".format(total_train_step, loss_value))
                bar.set_postfix(loss=f"{loss_value:.4f}")
                if writer is not None:
                    writer.add_scalar("train_loss", loss_value, total_train_step)
    return total_train_step


def test(gst, test_dataloader, loss_fn, test_data_size, num_classes):
    """The course's test step: returns ``(total_test_loss, accuracy, confusion)``.

    ``total_test_loss`` is the course's number: the sum of every batch's mean loss.
    ``confusion[t, p]`` (beyond the course) counts the test images of class ``t`` predicted as
    ``p``: its diagonal holds what ``accuracy`` counts, each class on its own. Under torchrun
    each process tests its share of the batches, and all three are summed over all of them.
    """
    gst.eval()    # 测试模式 / evaluation mode
    total_test_loss = 0
    total_accuracy = 0
    confusion = torch.zeros(num_classes ** 2, dtype=torch.int64,
                            device=next(gst.parameters()).device)
    with torch.no_grad():
        for imgs, targets in test_dataloader:      # the course: for data in ...: imgs, targets = data
            outputs = gst(imgs)
            loss = loss_fn(outputs, targets)
            # The course adds loss.item() here, which waits for the device every batch;
            # summing tensors on the device and reading once at the end gives the same total
            # up to float rounding (362.18597 against 362.18587 over 10,000 images).
            total_test_loss = total_test_loss + loss
            accuracy = (outputs.argmax(1) == targets).sum()
            total_accuracy = total_accuracy + accuracy
            # each (true, predicted) pair as one number, t * classes + p, counted on the device
            pairs = targets * num_classes + outputs.argmax(1)
            confusion += torch.bincount(pairs, minlength=num_classes ** 2)
    total_test_loss, total_accuracy = distributed.sum_all([total_test_loss, total_accuracy])
    confusion = distributed.sum_counts(confusion).view(num_classes, num_classes)
    return total_test_loss, total_accuracy / test_data_size, confusion


def per_class_accuracy(confusion: torch.Tensor, classes: list[str]) -> dict[str, float]:
    """Each class's accuracy: the share of its test images predicted as it (a class with no
    test images has none)."""
    right, images = confusion.diagonal(), confusion.sum(1)
    return {name: int(r) / int(n) for name, r, n in zip(classes, right, images) if n > 0}


def load_data(args):
    """``(train images, train targets, test images, test targets, class names)``, uint8 on the CPU."""
    if args.image_folder is not None:
        # Your own pictures: <folder>/train/<class>/*, <folder>/val/<class>/*, resized to 32x32.
        train_images, train_targets, classes = data.image_folder_uint8(args.image_folder, "train")
        test_images, test_targets, _ = data.image_folder_uint8(args.image_folder, "val",
                                                               classes=classes)
        if len(classes) < 2:       # one class: loss 0 and accuracy 1.0 from the first step
            raise cli.UserError(f"{args.image_folder}/train has one class folder ({classes[0]}): a "
                                "classifier learns to tell classes apart, so it needs two or more")
        print(f"your pictures: {args.image_folder} (train/ and val/), "
              f"{cli.counted(len(classes), 'class', 'classes')}: {', '.join(classes)}; "
              "each resized to 32x32")
        return train_images, train_targets, test_images, test_targets, classes
    # The course passes transform=ToTensor() so the DataLoader converts each PIL image; here
    # the raw uint8 array becomes one tensor, converted a whole batch at a time on the device.
    train_data = data.cifar10_or_fake(args.data_root, train=True, fake=args.fake_data,
                                      mirrors=args.mirror)
    test_data = data.cifar10_or_fake(args.data_root, train=False, fake=args.fake_data,
                                     mirrors=args.mirror)
    return (*data.cifar_uint8(train_data), *data.cifar_uint8(test_data), list(train_data.classes))


def data_source(args, train_data_size: int, test_data_size: int) -> dict:
    """What the run trains on, as the checkpoint records it (p25 prints it)."""
    if args.image_folder is not None:
        source, path = "image-folder", Path(args.image_folder).absolute()
    elif args.fake_data:
        source, path = "fake-data", None
    else:
        source, path = "cifar10", Path(args.data_root).absolute()
    return {"source": source, "path": None if path is None else str(path),
            "train_images": train_data_size, "test_images": test_data_size}


def prediction_sample(test_data_size: int) -> torch.Tensor:
    """The indices of the test images TensorBoard shows each epoch, in order: drawn with
    :data:`PREDICTION_SEED`, so every epoch, and every run on this test set, shows the same."""
    generator = torch.Generator().manual_seed(PREDICTION_SEED)
    return torch.randperm(test_data_size, generator=generator)[:PREDICTION_IMAGES].sort().values


def describe_run(writer, args, argv, source: dict, device, world, first_epoch: int,
                 resumed: dict | None = None) -> None:
    """Say in TensorBoard what this run is, so that runs named by their start time can be told
    apart: the command, the data and the settings as text (Text tab, tag ``run``), and one row
    of the HParams tab: lr, batch size, epochs, momentum, data, device... against the final
    test accuracy and loss.

    ``resumed``: ``{"from": checkpoint, "args": the settings it was trained with}`` when this
    goes on in the run's own folder. Its text is added at the epoch it goes on from; its
    HParams row stays the one the run started with (TensorBoard keeps a run's first), so the
    text says which settings changed.
    """
    where = {"cifar10": f"CIFAR-10 in {source['path']}",
             "fake-data": "synthetic --fake-data images (not CIFAR-10)",
             "image-folder": f"the image folder {source['path']}"}[source["source"]]
    command = cli.command_line(Path(__file__), *argv, launcher=distributed.launcher(world))
    processes = f" ({world.world_size} processes, torchrun)" if world.launched else ""
    lines = [f"**command**: `{command}`  ",
             f"**data**: {where}: {source['train_images']} training and "
             f"{source['test_images']} test images  ",
             f"**device**: {device}{processes}  "]
    hparams = {"lr": args.lr, "batch_size": args.batch_size, "epochs": args.epochs,
               "momentum": args.momentum,
               "data": source["source"] + (f" {Path(source['path']).name}"
                                           if source["source"] == "image-folder" else ""),
               "device": device.type, "amp": args.amp, "seed": args.seed,
               "processes": world.world_size}
    if resumed is not None:
        lines.append(f"**resumed** from `{resumed['from']}`, at epoch {first_epoch + 1}  ")
        changed = [f"{key} {resumed['args'][key]} → {getattr(args, key)}" for key in RESUMED
                   if key in hparams and key in resumed["args"]
                   and resumed["args"][key] != getattr(args, key)]
        if changed:
            lines.append(f"**changed** from here on: {', '.join(changed)} (the HParams tab "
                         "shows the settings the run started with)  ")
    lines += ["", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in sorted(vars(args).items())]
    writer.add_text("run", "\n".join(lines), first_epoch)
    if resumed is None:
        add_hparams(writer, hparams, HPARAMS_METRICS)


def log_what_it_learned(writer, epoch: int, confusion, classes, gst, test_dataloader,
                        test_images, shown) -> None:
    """After a test pass: each class's accuracy (``test_accuracy_per_class/<class>``), the
    confusion matrix (``test_confusion_matrix``) and the fixed test images ``shown`` with
    what the model predicts for them (``test_predictions``)."""
    for name, accuracy in per_class_accuracy(confusion, classes).items():
        writer.add_scalar(f"test_accuracy_per_class/{name}", accuracy, epoch)
    writer.add_figure("test_confusion_matrix",
                      figures.confusion_figure(confusion, classes, f"epoch {epoch + 1}"), epoch)
    gst.eval()
    with torch.no_grad():
        imgs, targets = test_dataloader.batch(shown.to(test_dataloader.images.device))
        predicted = gst(imgs).argmax(1)
    writer.add_figure("test_predictions", figures.prediction_grid(
        test_images[shown], predicted.tolist(), targets.tolist(), classes, f"epoch {epoch + 1}"),
        epoch)


def load_resume(path: Path) -> dict:
    not_ours = (f"{path} is not a training checkpoint of {SCRIPT}.py (it needs model, optimizer "
                "and epoch): --resume takes a gst_<epoch>.pth written by it")
    try:
        state = checkpoint.load(path)
    except checkpoint.PickleRefused:                  # a whole pickled model: never unpickled
        raise cli.UserError(not_ours) from None
    if not (isinstance(state, dict) and {"model", "optimizer", "epoch"} <= state.keys()):
        raise cli.UserError(not_ours)
    checkpoint.need_run_fields(state, path)        # each field of the kind this file writes
    # and the settings it goes on with, each one this command's own flag would take
    for action in get_args_parser()._actions:
        value = (state.get("args") or {}).get(action.dest)
        if action.dest not in RESUMED or value is None or not callable(action.type):
            continue
        try:
            parsed = action.type(str(value))
            if not isinstance(parsed, Path) and (parsed != value or isinstance(value, bool)):
                raise ValueError(f"saved as {type(value).__name__} {value!r}")   # "3", True
        except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
            raise cli.UserError(f"{path} holds a setting this script would not take: "
                                f"{RESUMED_FLAGS[action.dest]} {value} ({e})") from None
    return state


def resumed_args(args: argparse.Namespace, saved: dict, given: set[str]) -> argparse.Namespace:
    """``args`` with the run's own settings from its checkpoint, except the flags ``given`` here.

    A data source given here (``--fake-data``, ``--image-folder``) replaces the saved one whole.
    """
    keep = set(given)
    if keep & set(DATA_SOURCE):
        keep |= set(DATA_SOURCE)
    merged = vars(args).copy()
    for key in RESUMED:
        if key in saved and key not in keep:
            value = saved[key]
            merged[key] = Path(value) if key in ("image_folder", "data_root") and value else value
    return argparse.Namespace(**merged)


def run_folders(args, resume: Path | None, state: dict | None):
    """``(run id, checkpoint folder, log folder, purge step)`` of this run.

    A resumed run goes on in its own folders when the checkpoint is its run's last one and
    sits in ``<checkpoint-dir>/p23_train/<run-id>/``; otherwise (an older epoch, a copied file,
    another --checkpoint-dir) it goes on as a new run, so no run's files are ever overwritten.
    """
    logs_root, ckpt_root = Path(args.logdir) / SCRIPT, Path(args.checkpoint_dir) / SCRIPT
    if state is not None and state.get("run_id"):
        run_id = state["run_id"]
        run_ckpt = ckpt_root / run_id
        if resume.resolve().parent != run_ckpt.resolve():
            why = f"{resume} is not in {run_ckpt}"
        elif (last := runs.checkpoints_of(run_ckpt)[-1]).resolve() != resume.resolve():
            why = f"{resume.name} is not its run's last checkpoint ({last.name} is)"
        else:
            # it writes into the run's own folders: can it, before an epoch is spent?
            disk.need_writable(run_ckpt, "--checkpoint-dir DIR")
            disk.make_dir(logs_root / run_id, "--logdir DIR")
            disk.need_writable(logs_root / run_id, "--logdir DIR")
            # TensorBoard hides what the interrupted run logged after this checkpoint.
            return run_id, run_ckpt, logs_root / run_id, state.get("total_train_step", 0) + 1
        print(f"{why}: it goes on as a new run")
    run_id, (run_ckpt, run_logs) = runs.new_run(SCRIPT, args.checkpoint_dir, args.logdir)
    return run_id, run_ckpt, run_logs, None


def need_output_folders(args) -> None:
    """Make and try every folder the run will write, before the data is read or a step is
    taken: a mistyped --checkpoint-dir (a path through a file, a folder not ours) costs a
    second, not an epoch."""
    disk.need_writable(Path(args.checkpoint_dir) / SCRIPT, "--checkpoint-dir DIR")
    disk.need_writable(Path(args.logdir) / SCRIPT, "--logdir DIR")
    if args.metrics is not None:
        disk.need_writable_file(args.metrics, "--metrics PATH")


def launch_checkpoint(checkpoint_dir: Path, launch_id: str) -> Path | None:
    """The newest checkpoint this torchrun launch wrote, if any: where a restarted process
    goes on from (torchrun's "snapshot" pattern). A launch is one torchrun command, with its
    restarts: ``TORCHELASTIC_RUN_ID``, a fresh id with ``--standalone``, else ``--rdzv-id``."""
    root = Path(checkpoint_dir) / SCRIPT
    lasts = [files[-1] for d in root.glob("*/") if d.is_dir() and (files := runs.checkpoints_of(d))]
    for last in sorted(lasts, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            state = checkpoint.load(last)
        except cli.UserError:           # not a checkpoint of ours: not this launch's either
            continue
        if isinstance(state, dict) and state.get("torchrun_launch") == launch_id:
            return last
    return None


def weights_digest(model: nn.Module) -> bytes:
    """SHA-256 of the model's state_dict: equal on every process when DDP kept them equal."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()


def check_agreement(world, **facts) -> None:
    """Stop unless every process sees the same run: the same start, data and settings. They
    read the same files (data, --resume): on several machines those must be the same copies."""
    if not world.launched:
        return
    mine = [int(v) for v in facts.values()]
    for rank, theirs in enumerate(distributed.gather(mine)):
        if theirs != mine:
            ours = ", ".join(f"{k} {v}" for k, v in facts.items())
            other = ", ".join(f"{k} {v}" for k, v in zip(facts, theirs))
            raise cli.UserError(
                f"the processes do not see the same run: rank {world.rank} has {ours}; rank "
                f"{rank} has {other}. Every process must read the same data and checkpoints "
                "(on several machines: --data-root and --checkpoint-dir on a shared filesystem)")


def resume_command(last_checkpoint: Path, args, given: set[str],
                   world=distributed.World(), saved: dict | None = None) -> str:
    """The line that continues this run, to paste as it is.

    ``saved`` is the settings ``last_checkpoint`` holds (its ``"args"``): a setting this run
    changed from them (``--resume last --epochs 4`` before this run saved anything) is
    repeated, since the checkpoint alone would go back to the old one.
    """
    flags = []
    for dest in RESUMED if saved is not None else ():
        value = getattr(args, dest)
        # (no flag gives None, or says "not --fake-data": the other data source's flag does)
        if dest in saved and saved_form(value) != saved[dest] and value is not None \
                and not (dest == "fake_data" and not value):
            flags += _flag(RESUMED_FLAGS[dest], value)
    for dest, flag in OWN_FLAGS.items():
        if dest in given:
            flags += _flag(flag, getattr(args, dest))
    return cli.command_line(Path(__file__), "--resume", last_checkpoint, *flags,
                            launcher=distributed.launcher(world))


def _flag(flag: str, value) -> list:
    """``flag`` set to ``value`` on a command line: ``--lr 0.02``, ``--amp`` / ``--no-amp``."""
    if isinstance(value, bool):        # --cuda-graph / --no-cuda-graph; --fake-data
        return [flag] if value else ["--no-" + flag[2:]]
    return [flag, format(value, "g") if isinstance(value, float) else value]


def saved_form(value):
    """A setting as a checkpoint holds it: paths absolute, as strings, so that
    ``weights_only=True`` loads them and they mean the same from any folder."""
    return str(Path(value).absolute()) if isinstance(value, Path) else value


def smaller_lr_command(argv: list[str], lr: float, world=distributed.World()) -> str:
    """This command again with a smaller --lr: the course's 0.01, or a tenth of an lr below it."""
    return cli.command_line(Path(__file__), *cli.without(argv, "--lr"),
                            "--lr", f"{0.01 if lr > 0.01 else lr / 10:g}",
                            launcher=distributed.launcher(world))


@cli.entrypoint
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = get_args_parser()
    args = parser.parse_args(argv)
    given = cli.given(parser, argv)
    # Started by torchrun? Then this is one of its processes: rank 0 alone prints, logs and
    # saves, and DDP keeps the models equal. Without torchrun: one process, as in the course.
    world = distributed.world()
    with distributed.rank0_prints(world):
        device = distributed.device_for(get_device(args.device), world)
        with distributed.process_group(world, device, args.dist_timeout):
            return run(args, argv, given, world, device)


def resumed_run(args, argv, given, world):
    """``(args, resume, state)``: with --resume (or when torchrun restarts a launch), the
    checkpoint this run goes on from, what it holds, and ``args`` with the settings it was
    trained with; without, ``(args, None, None)``. ``args`` is None when a restarted launch
    had already trained every epoch: nothing is left to do."""
    # (before --resume's "start one with" repeats the command: a resumed run's own data
    # settings give way, as a whole, to either flag)
    if args.image_folder is not None and args.fake_data:
        raise cli.UserError("--image-folder and --fake-data both choose the data: pass one")
    resume, state, snapshot = None, None, None
    # A restart, of a launch with an id of its own (torchrun's --standalone, or --rdzv-id):
    # a static launch (--master-port) has the id "none", shared by every such launch.
    if world.restart > 0 and world.launch_id not in (None, "none") \
            and (snapshot := launch_checkpoint(args.checkpoint_dir, world.launch_id)):
        # torchrun restarted the processes (one had died): go on from this launch's last
        # checkpoint, whatever --resume said when it started.
        print(f"torchrun launch {world.launch_id} (restart {world.restart}): going on from "
              f"{snapshot}, the last checkpoint it wrote")
        args.resume = str(snapshot)
    if args.resume is not None:
        # nothing to go on from: the same command less --resume starts the run (with the
        # --fake-data, --checkpoint-dir... it was given, so the run lands where this looked)
        start_one = cli.command_line(Path(__file__), *cli.without(argv, "--resume"),
                                     launcher=distributed.launcher(world))
        resume = (runs.need_latest_checkpoint(args.checkpoint_dir, SCRIPT,
                                              f"start one with {start_one}")
                  if args.resume == "last" else Path(args.resume))
        state = load_resume(resume)
        args = resumed_args(args, state.get("args") or {}, given)
        if snapshot and state["epoch"] + 1 >= args.epochs:
            # killed after its last checkpoint (or a new launch reusing an old --rdzv-id)
            print(f"this launch's run has trained all {args.epochs} epochs: nothing left to "
                  "do (a new run under torchrun needs a new --rdzv-id)")
            return None, resume, state
        if state["epoch"] + 1 >= args.epochs:
            raise cli.UserError(
                f"{resume} has trained {cli.counted(state['epoch'] + 1, 'epoch')}, and "
                f"--epochs {args.epochs} asks for no more: nothing to train (add --epochs N, "
                f"more than {state['epoch'] + 1}, to go on)")
    return args, resume, state


def speed_flags(args, given, device, world) -> bool:
    """Whether the step is recorded as a CUDA graph (--cuda-graph, on CUDA in one process);
    a note for --cuda-graph or --amp asked for where it cannot pay."""
    cuda_graph = args.cuda_graph and device.type == "cuda" and not world.launched
    if args.cuda_graph and not cuda_graph and "cuda_graph" in given:
        where = device.type + (" under torchrun" if world.launched else "")
        print(f"note: --cuda-graph records CUDA graphs only on CUDA without torchrun: on "
              f"{where} the steps run eagerly, as without it")
    if args.amp:
        need_bf16(device)
    if args.amp and not fast_bf16(device):
        why = ("Apple GPUs are reported to train no faster in bfloat16 (M1 and M2 emulate it)"
               if device.type == "mps" else
               f"this {device.type} does not compute in bfloat16 natively")
        print(f"note: --amp: {why}, so bf16 autocast will be slower here than without --amp")
    return cuda_graph


def run(args, argv, given, world, device) -> int:
    """The course's training run (``main`` parses the command and joins torchrun's group)."""
    args, resume, state = resumed_run(args, argv, given, world)     # --resume: go on
    if args is None:
        return 0
    need_tensorboard()            # before any work: it logs every epoch
    if world.is_main:
        need_output_folders(args)
    data.announce_synthetic(args)
    cuda_graph = speed_flags(args, given, device, world)
    if args.seed is not None:
        torch.manual_seed(args.seed)          # the model's initial weights
    # cuDNN's fastest kernels, or with --seed deterministic ones, so the run repeats
    choose_kernels(device, repeatable=args.seed is not None)

    # 1. 准备数据集 / prepare the dataset
    train_images, train_targets, test_images, test_targets, classes = load_data(args)
    if state is not None and state.get("classes") is not None \
            and list(state["classes"]) != list(classes):
        raise cli.UserError(f"{resume} was trained on classes {list(state['classes'])}, "
                            f"but this data has {classes}")

    # length 长度
    train_data_size = len(train_targets)
    test_data_size = len(test_targets)
    print("训练数据集的长度为：{}".format(train_data_size))
    print("测试数据集的长度为：{}".format(test_data_size))

    # 2. 加载数据集 / load it: the course's DataLoader(train_data, batch_size=64), but from
    # memory on the device, and shuffled (the course doesn't shuffle: every epoch in the same order).
    # Under torchrun each process takes its share of every epoch's order (common/data.shard).
    generator = torch.Generator()
    if args.seed is not None:
        generator.manual_seed(args.seed)
    else:
        generator.seed()
    channels_last = use_channels_last(device)
    normalize = IMAGE_FOLDER_NORMALIZE if args.image_folder is not None else None
    share = {"device": device, "channels_last": channels_last, "normalize": normalize,
             "rank": world.rank, "world_size": world.world_size}
    if train_data_size < world.world_size:
        raise cli.UserError(f"{train_data_size} training images cannot give each of "
                            f"{world.world_size} processes a batch")
    train_dataloader = data.InMemoryLoader(train_images, train_targets, args.batch_size,
                                           shuffle=True, generator=generator, **share)
    test_dataloader = data.InMemoryLoader(test_images, test_targets, args.batch_size,
                                          even_steps=False, **share)
    shown = prediction_sample(test_data_size)    # the test images TensorBoard shows
    log_every = log_interval(len(train_dataloader), args.log_every)
    print(f"train_loss every {cli.counted(log_every, 'step')} "
          f"({cli.counted(len(train_dataloader), 'step')} an epoch)")
    if world.launched:
        print(f"torchrun: {world.world_size} processes on {world.machines} machine(s), each "
              f"training on batches of {args.batch_size}: {world.world_size * args.batch_size} "
              "images a step in all")

    # 3. 创建网络模型 / create the model
    gst = make_model(len(classes), device)

    # 4. 损失函数 / the loss function
    loss_fn = nn.CrossEntropyLoss()

    # 5. 优化器 / the optimizer
    learning_rate = args.lr
    optimizer = torch.optim.SGD(gst.parameters(), lr=learning_rate, momentum=args.momentum)

    # 6. 设置训练网络的一些参数 / training counters
    total_train_step = 0   # 记录训练的次数 / optimizer steps so far (x axis of train_loss)
    total_test_step = 0    # 记录测试的次数 / test passes so far (x axis of test_loss)
    # 训练的轮数 / the number of epochs, in all. The course calls it `epoch`; here `epochs`,
    # since the checkpoint's "epoch" is the index of one epoch (the N of gst_N.pth).
    epochs = args.epochs
    start = 0
    if state is not None:
        start = state["epoch"] + 1          # checked above: start < epoch
        checkpoint.load_weights(gst, state["model"], resume)
        try:
            optimizer.load_state_dict(state["optimizer"])   # its momentum buffers...
        except (KeyError, ValueError) as e:
            raise cli.UserError(f"{resume}: its optimizer state does not fit SGD on GST "
                                f"({e})") from None
        for group in optimizer.param_groups:                 # ...with this run's lr, momentum
            group.update(lr=learning_rate, momentum=args.momentum)
        # the shuffle goes on where it was; another --seed given here shuffles by it from now
        reseeded = "seed" in given and args.seed != (state.get("args") or {}).get("seed")
        if "rng" in state and not reseeded:
            try:
                generator.set_state(state["rng"])
            except RuntimeError as e:     # a uint8 tensor, but not a CPU generator's state
                raise cli.UserError(f"{resume}: its shuffle state (rng) does not fit torch's "
                                    f"generator ({cli.reason(e)})") from None
        total_train_step = state.get("total_train_step", 0)
        total_test_step = state.get("total_test_step", start)

    # Under torchrun: all processes must be at the same point of the same run; then DDP
    # starts every one from rank 0's weights, and every one draws rank 0's shuffles.
    check_agreement(world, first_epoch=start + 1, steps=total_train_step,
                    train_images=train_data_size,
                    test_images=test_data_size, classes=len(classes), epochs=epochs,
                    batch_size=args.batch_size)
    train_gst = distributed.wrap(gst, world, device)
    distributed.share_generator(generator)

    # Beyond the course: warm the step up (and record it as a CUDA graph with --cuda-graph)
    # before the first epoch, leaving the weights and the optimizer exactly as they are.
    step = make_train_step(train_gst, loss_fn, optimizer, train_dataloader, amp=args.amp,
                           cuda_graph=cuda_graph)

    # 7. 添加tensorboard / TensorBoard: logs/p23_train/<run-id>/, beside the run's checkpoints
    # in checkpoints/p23_train/<run-id>/; a resumed run goes on in the same two folders.
    # Under torchrun, rank 0 alone writes them.
    writer = run_ckpt = last_checkpoint = kept_args = None
    if world.is_main:
        run_id, run_ckpt, run_logs, purge_step = run_folders(args, resume, state)
        if state is not None:
            print(f"接着训练 / resuming run {run_id} from {resume}: epoch {start + 1} of {epochs}")
        last_checkpoint = resume if purge_step is not None else None
        kept_args = (state.get("args") or {}) if purge_step is not None else None
    epoch_seconds = []     # each epoch's training time, for --metrics
    total_test_loss = test_accuracy = confusion = None
    i = start
    unfinished = False     # stopped (Ctrl-C, a failed write, a lost process), not diverged
    training = False       # an epoch has started (before it, a failed write has no epoch to name)
    try:
        if world.is_main:
            writer = open_writer(run_logs, args.logdir, purge_step=purge_step)
            describe_run(writer, args, argv, data_source(args, train_data_size, test_data_size),
                         device, world, start, resumed=None if purge_step is None else
                         {"from": resume, "args": state.get("args") or {}})
        training = True
        for i in range(start, epochs):
            tqdm.write("-------第 {} 轮训练开始-------".format(i + 1))

            # 训练步骤开始 / training
            synchronize(device)
            t0 = time.perf_counter()
            total_train_step = train(train_gst, step, train_dataloader, total_train_step,
                                     writer, desc=f"epoch {i + 1}/{epochs}", log_every=log_every,
                                     show_progress=world.is_main)
            synchronize(device)
            epoch_seconds.append(time.perf_counter() - t0)

            # 测试步骤开始 / testing
            total_test_loss, test_accuracy, confusion = test(gst, test_dataloader, loss_fn,
                                                             test_data_size, len(classes))
            if not math.isfinite(total_test_loss):
                raise Diverged(total_train_step, total_test_loss)
            print("整体测试集上的Loss: {}".format(total_test_loss))
            print("整体测试集上的正确率: {}".format(test_accuracy))
            total_test_step += 1
            if not world.is_main:
                continue
            # Beyond the course: a Ctrl-C (or kill) from here to the checkpoint waits until it
            # is saved, so that no TensorBoard point is left which no checkpoint goes on from.
            with cli.finishing(f"epoch {i + 1}'s TensorBoard points and checkpoint"):
                # The course wrote add_scalar("test_loss", total_test_loss, total_test_loss,
                # total_test_step): the step was the loss and total_test_step landed in walltime.
                writer.add_scalar("test_loss", total_test_loss, total_test_step - 1)
                writer.add_scalar("test_accuracy", test_accuracy, total_test_step - 1)
                # Beyond the course: which classes it gets wrong, and what it says for pictures
                log_what_it_learned(writer, total_test_step - 1, confusion, classes, gst,
                                    test_dataloader, test_images, shown)

                # this epoch's points on disk before its checkpoint says the epoch is done: an
                # event file that cannot grow stops the run here, and the resume logs it again
                writer.flush()

                # The course saves the whole model, torch.save(gst, "gst_{}.pth".format(i)): a
                # pickle that needs the class to load and can run code. Here: a plain dict of
                # state_dicts, written to a temporary file and renamed (never half-written).
                saved = {k: saved_form(v) for k, v in vars(args).items()}
                last_checkpoint = checkpoint.save({
                    "arch": "GST",
                    "model": gst.state_dict(),          # gst, not DDP's wrapper: the same keys
                    "optimizer": optimizer.state_dict(),
                    "epoch": i,   # 0-based index of the epoch just finished = the N in gst_N.pth
                    "total_train_step": total_train_step,
                    "total_test_step": total_test_step,
                    "classes": list(classes),
                    "normalize": normalize,   # (mean, std) after ToTensor, or None: p25 applies it
                    "rng": generator.get_state(),
                    "test_loss": total_test_loss,
                    "test_accuracy": test_accuracy,
                    "run_id": run_id,
                    "data": data_source(args, train_data_size, test_data_size),
                    "world_size": world.world_size,
                    "torchrun_launch": world.launch_id,
                    # vars(args), not the Namespace: plain data that weights_only=True loads
                    "args": saved,
                }, run_ckpt / "gst_{}.pth".format(i), option="--checkpoint-dir DIR")
                kept_args = saved
                print("模型已保存 / saved {}".format(last_checkpoint))
        if world.is_main:
            end_hparams(writer)     # every epoch trained: "success" in the HParams table
        digests = distributed.gather(weights_digest(gst))
    except Diverged as e:
        # What was saved before is intact, but the weights were already running away: the way
        # out is a smaller learning rate from the start, not a resume.
        raise cli.UserError(f"training diverged: {e} (--lr {args.lr}, --momentum "
                            f"{args.momentum}). Start again with a smaller --lr: "
                            f"{smaller_lr_command(argv, args.lr, world)}") from None
    except BrokenPipeError as e:
        # The printed output goes into a pipe whose reader has stopped (`... | head -20`): the
        # run stops as Ctrl-C stops it, and says so on stderr, which is still open.
        unfinished = True
        kept = stop_kept(last_checkpoint, kept_args, args, given, world)
        if last_checkpoint is None:      # "run the same command again" would stop here again
            kept = "no checkpoint was saved, nothing to resume"
        e.stopped = (f"stopped {stopped_when(last_checkpoint, i)} epoch {i + 1} of {epochs}: "
                     "the program reading its output (a `| head`?) stopped reading, and a run "
                     "prints to its end (to keep its output, send it to a file: > train.log); "
                     f"{kept}")
        raise
    except (disk.WriteError, OSError) as e:
        # A checkpoint, TensorBoard's event file or the printed output (redirected to a file)
        # could not be written (a full disk...): the checkpoints before it are whole, and
        # the run goes on from the last one.
        if isinstance(e, OSError):
            if not disk.is_write_failure(e):
                raise
            e = disk.failed(None, e)      # the file it names, or the printed output
        unfinished = True
        if not training:        # the TensorBoard run could not be started: nothing was trained
            raise e from None
        kept = what_was_kept(last_checkpoint, kept_args, args, given, world)
        raise e.with_hint(f"Stopped in epoch {i + 1} of {epochs}: {kept}") from None
    except KeyboardInterrupt:
        unfinished = True
        # one line, printed by cli.entrypoint (by rank 0 alone under torchrun), exit 130
        if world.is_main and last_checkpoint is not None and \
                runs.epoch_of(last_checkpoint) == epochs - 1:
            # held until the last epoch's checkpoint was saved: nothing is left to go on with
            end_hparams(writer)
            unwritten = f" (--metrics {args.metrics} was not written)" if args.metrics else ""
            raise KeyboardInterrupt(f"stopped after the last epoch, {epochs} of {epochs}: the "
                                    f"training is complete, {last_checkpoint} holds it"
                                    f"{unwritten}") from None
        kept = stop_kept(last_checkpoint, kept_args, args, given, world)
        raise KeyboardInterrupt(f"stopped {stopped_when(last_checkpoint, i)} epoch {i + 1} of "
                                f"{epochs}: {kept}") from None
    except RuntimeError as e:
        if (why := distributed.peer_failure(e)) is None:
            raise
        unfinished = True
        kept = stop_kept(last_checkpoint, kept_args, args, given, world)
        raise cli.UserError(f"lost contact with the other processes in epoch {i + 1} of "
                            f"{epochs} ({why}): {kept}") from None
    finally:
        if world.is_main:
            close(writer)         # (a failed write while another error is shown says nothing)
            if not any(run_ckpt.iterdir()):
                # stopped before its first checkpoint: no empty run left, and no curves that
                # no checkpoint goes on from (the same command again starts a new run). A run
                # that diverged keeps its curves: they show where the loss ran away.
                run_ckpt.rmdir()
                if unfinished and purge_step is None:
                    shutil.rmtree(run_logs, ignore_errors=True)

    if len(set(map(tuple, digests))) != 1:
        raise cli.UserError("the processes' weights differ after training: DDP did not keep "
                            "them equal")
    if args.metrics is not None and world.is_main:
        metrics = {
            "test_accuracy": test_accuracy,
            "test_loss": total_test_loss,
            "epochs": epochs,
            "train_images_per_s": (train_data_size * len(epoch_seconds) / sum(epoch_seconds)
                                   if epoch_seconds else None),
            "train_images_per_s_by_epoch": [train_data_size / t for t in epoch_seconds],
            "device": str(device),
            "amp": args.amp,
            "cuda_graph": cuda_graph,
            "world_size": world.world_size,
            "confusion_matrix": None if confusion is None else confusion.tolist(),
            "test_accuracy_per_class": (None if confusion is None
                                        else per_class_accuracy(confusion, classes)),
            "weights_sha256_by_rank": [bytes(d).hex() for d in digests],
            "checkpoint": str(last_checkpoint),
        }
        # written atomically too: a reader never sees half a JSON object
        try:
            disk.atomic_write(args.metrics, lambda f: f.write(
                (json.dumps(metrics, indent=2) + "\n").encode()), option="--metrics PATH")
        except disk.WriteError as e:
            raise e.with_hint(f"The training itself finished: every checkpoint is saved, the "
                              f"last {last_checkpoint}") from None
        print(f"metrics: {args.metrics}")
    return 0


def stopped_when(last_checkpoint: Path | None, i: int) -> str:
    """``"after"`` epoch ``i`` (0-based) when its checkpoint was saved before the stop, else
    ``"during"``."""
    saved = last_checkpoint is not None and runs.epoch_of(last_checkpoint) == i
    return "after" if saved else "during"


def stop_kept(last_checkpoint: Path | None, kept_args: dict | None, args, given, world) -> str:
    """:func:`what_was_kept`, said by rank 0 alone: it alone writes the files."""
    return (what_was_kept(last_checkpoint, kept_args, args, given, world)
            if world.is_main else "rank 0 says what was saved")


def what_was_kept(last_checkpoint: Path | None, kept_args: dict | None, args, given,
                  world) -> str:
    """What an interrupted run leaves to go on from, and the command that does
    (``kept_args``: the settings ``last_checkpoint`` holds)."""
    if last_checkpoint is None:
        return ("no checkpoint was saved, nothing to resume (its TensorBoard run is removed "
                "too): run the same command again")
    return (f"{last_checkpoint.name} holds epoch {runs.epoch_of(last_checkpoint) + 1}; "
            f"go on with: {resume_command(last_checkpoint, args, given, world, kept_args)}")


if __name__ == "__main__":
    raise SystemExit(main())
