"""P23 完整的模型训练套路 — The full training recipe

The whole job the course builds in lesson 23: CIFAR-10, the GST network, CrossEntropyLoss,
SGD (lr 0.01), batches of 64, 10 epochs. Each epoch trains on the training set (the loss is
printed and logged every 100 steps), then measures the loss and accuracy on the test set and
saves a checkpoint.

What to look at:
  - the printed "训练次数：..., Loss: ..." falling, and "整体测试集上的正确率" (test accuracy)
    rising from ~0.1 (chance) epoch after epoch;
  - TensorBoard (tensorboard --logdir logs): run logs/p23_train/<run-id>/ with the course's
    tags train_loss (every 100 steps), test_loss and test_accuracy (every epoch);
  - checkpoints/gst_0.pth ... gst_9.pth: plain dicts (model and optimizer state_dicts,
    "epoch", "classes", ...) that lesson 25 (p25_test.py) loads.

Beyond the course: the training set is shuffled each epoch; a progress bar per epoch;
--seed makes a run repeatable; Ctrl-C stops cleanly (every finished epoch's checkpoint is
intact, and checkpoints are written atomically, so even a kill never leaves a corrupt one);
--resume continues from the epoch after a checkpoint with its optimizer state;
--metrics writes a JSON summary; --image-folder trains on your own pictures.

Speed: the course converts every image with PIL + ToTensor inside the DataLoader, one by one.
Here the dataset is held as one uint8 tensor on the training device and each batch is one
gather + divide there; the network runs in channels_last on CPU and CUDA. Same model, same
maths, several times faster on a GPU (benchmarks/train_throughput.py measures it).

Examples:
  python scripts/p23_train.py --device mps              # the course's run (downloads CIFAR-10)
  python scripts/p23_train.py --fake-data --epochs 2    # offline, synthetic data, seconds
  python scripts/p23_train.py --resume checkpoints/gst_4.pth
  python scripts/p23_train.py --image-folder dataset/hymenoptera_data --epochs 30
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from common import checkpoint, cli, data
from common.device import get_device, synchronize
from common.model import GST
from common.writer import make_writer

SCRIPT = "p23_train"


def get_args_parser():
    parser = cli.parser(__doc__, cli.device_flags(), cli.data_flags(num_workers=False),
                        cli.image_folder_flags(default=None), cli.logdir_flags(),
                        cli.checkpoint_flags(), cli.train_flags())
    parser.add_argument("--momentum", type=cli.momentum_float, default=0.0,
                        help="SGD momentum; the course uses none (default: 0.0)")
    parser.add_argument("--resume", type=Path, default=None, metavar="PATH",
                        help="continue from a checkpoint written by this script (gst_<epoch>.pth): "
                             "training goes on at the next epoch with the saved model, optimizer "
                             "and shuffling state, up to --epochs in all (default: start afresh)")
    parser.add_argument("--metrics", type=Path, default=None, metavar="PATH",
                        help="when training ends, write a JSON object here: test_accuracy, "
                             "test_loss, epochs, train_images_per_s, device, checkpoint "
                             "(default: none)")
    return parser


def use_channels_last(device: torch.device) -> bool:
    """channels_last (NHWC) speeds GST's convolutions up on CPU (oneDNN) and CUDA (cuDNN)."""
    return device.type in ("cpu", "cuda")


def make_model(num_classes: int, device: torch.device) -> GST:
    """GST on ``device``, in the memory format that is fastest there."""
    gst = GST(num_classes)
    if use_channels_last(device):
        return gst.to(device, memory_format=torch.channels_last)
    return gst.to(device)


def train(gst, train_dataloader, loss_fn, optimizer, total_train_step=0, writer=None,
          desc="train"):
    """One epoch of training (the course's inner loop); returns the new ``total_train_step``.

    ``train_dataloader`` yields ``(imgs, targets)`` already on the model's device. The loss
    is read back (``loss.item()``, which waits for the device) only every 100 steps, where
    the course prints it: between those prints the device never waits for the host.
    """
    gst.train()   # 训练模式 / training mode (matters for Dropout/BatchNorm; GST has none)
    with tqdm(train_dataloader, desc=desc, unit="batch", dynamic_ncols=True) as bar:
        for data in bar:
            imgs, targets = data
            outputs = gst(imgs)
            loss = loss_fn(outputs, targets)
            # 优化器优化模型 / the optimizer updates the model
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            total_train_step += 1
            if total_train_step % 100 == 0:
                loss_value = loss.item()
                tqdm.write("训练次数：{}, Loss: {}".format(total_train_step, loss_value))
                bar.set_postfix(loss=f"{loss_value:.4f}")
                if writer is not None:
                    writer.add_scalar("train_loss", loss_value, total_train_step)
    return total_train_step


def test(gst, test_dataloader, loss_fn, test_data_size):
    """The course's test step: returns ``(total_test_loss, accuracy)``.

    ``total_test_loss`` is the course's number: the sum of every batch's mean loss.
    """
    gst.eval()    # 测试模式 / evaluation mode
    total_test_loss = 0
    total_accuracy = 0
    with torch.no_grad():
        for data in test_dataloader:
            imgs, targets = data
            outputs = gst(imgs)
            loss = loss_fn(outputs, targets)
            # The course adds loss.item() here, which waits for the device every batch;
            # summing tensors on the device and reading once at the end gives the same total.
            total_test_loss = total_test_loss + loss
            accuracy = (outputs.argmax(1) == targets).sum()
            total_accuracy = total_accuracy + accuracy
    return float(total_test_loss), float(total_accuracy) / test_data_size


def load_data(args):
    """``(train images, train targets, test images, test targets, class names)``, uint8 on the CPU."""
    if args.image_folder is not None:
        if args.fake_data:
            raise cli.UserError("--image-folder and --fake-data both choose the data: pass one")
        # Your own pictures: <folder>/train/<class>/*, <folder>/val/<class>/*, resized to 32x32.
        train_images, train_targets, classes = data.image_folder_uint8(args.image_folder, "train")
        test_images, test_targets, _ = data.image_folder_uint8(args.image_folder, "val",
                                                               classes=classes)
        return train_images, train_targets, test_images, test_targets, classes
    # The course passes transform=ToTensor() so the DataLoader converts each PIL image; here
    # the raw uint8 array becomes one tensor, converted a whole batch at a time on the device.
    train_data = data.cifar10_or_fake(args.data_root, train=True, fake=args.fake_data)
    test_data = data.cifar10_or_fake(args.data_root, train=False, fake=args.fake_data)
    return (*data.cifar_uint8(train_data), *data.cifar_uint8(test_data), list(train_data.classes))


def load_resume(path: Path, classes: list[str]) -> dict:
    state = checkpoint.load(path)
    if not (isinstance(state, dict) and {"model", "optimizer", "epoch"} <= state.keys()):
        raise cli.UserError(f"{path} is not a training checkpoint of {SCRIPT}.py (it needs model, "
                            "optimizer and epoch): --resume takes a gst_<epoch>.pth written by it")
    if state.get("classes") is not None and list(state["classes"]) != list(classes):
        raise cli.UserError(f"{path} was trained on classes {list(state['classes'])}, "
                            f"but this data has {classes}")
    return state


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = get_device(args.device)
    if args.resume is not None and not args.resume.is_file():
        raise cli.UserError(f"no such checkpoint: {args.resume}")
    if args.seed is not None:
        torch.manual_seed(args.seed)          # the model's initial weights
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # pick the fastest conv kernels for these shapes

    # 1. 准备数据集 / prepare the dataset
    train_images, train_targets, test_images, test_targets, classes = load_data(args)

    # length 长度
    train_data_size = len(train_targets)
    test_data_size = len(test_targets)
    print("训练数据集的长度为：{}".format(train_data_size))
    print("测试数据集的长度为：{}".format(test_data_size))

    # 2. 加载数据集 / load it: the course's DataLoader(train_data, batch_size=64), but from
    # memory on the device, and shuffled (the course doesn't shuffle: every epoch in the same order).
    generator = torch.Generator()
    if args.seed is not None:
        generator.manual_seed(args.seed)
    else:
        generator.seed()
    channels_last = use_channels_last(device)
    train_dataloader = data.InMemoryLoader(train_images, train_targets, args.batch_size,
                                           shuffle=True, device=device,
                                           channels_last=channels_last, generator=generator)
    test_dataloader = data.InMemoryLoader(test_images, test_targets, args.batch_size,
                                          device=device, channels_last=channels_last)

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
    epoch = args.epochs    # 训练的轮数 / number of epochs, in all
    start = 0
    if args.resume is not None:
        state = load_resume(args.resume, classes)
        start = state["epoch"] + 1
        if start >= epoch:
            raise cli.UserError(f"{args.resume} already finished epoch {start} of --epochs "
                                f"{epoch}: nothing to train (raise --epochs to go on)")
        checkpoint.load_weights(gst, state["model"], args.resume)
        try:
            optimizer.load_state_dict(state["optimizer"])   # lr, momentum buffers...
        except (KeyError, ValueError) as e:
            raise cli.UserError(f"{args.resume}: its optimizer state does not fit SGD on GST "
                                f"({e})") from None
        if "rng" in state:
            generator.set_state(state["rng"])               # the shuffle goes on where it was
        total_train_step = state.get("total_train_step", 0)
        total_test_step = state.get("total_test_step", start)
        print(f"接着训练 / resuming from {args.resume}: epoch {start + 1} of {epoch}")

    # 7. 添加tensorboard / TensorBoard: a new run folder each time (a resumed run too, its
    # steps continuing where the checkpoint's run stopped)
    writer = make_writer(args.logdir, SCRIPT)
    last_checkpoint = args.resume
    trained_images, train_seconds = 0, 0.0
    total_test_loss = test_accuracy = None
    i = start
    try:
        for i in range(start, epoch):
            tqdm.write("-------第 {} 轮训练开始-------".format(i + 1))

            # 训练步骤开始 / training
            synchronize(device)
            t0 = time.perf_counter()
            total_train_step = train(gst, train_dataloader, loss_fn, optimizer, total_train_step,
                                     writer, desc=f"epoch {i + 1}/{epoch}")
            synchronize(device)
            train_seconds += time.perf_counter() - t0
            trained_images += train_data_size

            # 测试步骤开始 / testing
            total_test_loss, test_accuracy = test(gst, test_dataloader, loss_fn, test_data_size)
            print("整体测试集上的Loss: {}".format(total_test_loss))
            print("整体测试集上的正确率: {}".format(test_accuracy))
            # The course wrote add_scalar("test_loss", total_test_loss, total_test_loss,
            # total_test_step): the step was the loss and total_test_step landed in walltime.
            writer.add_scalar("test_loss", total_test_loss, total_test_step)
            writer.add_scalar("test_accuracy", test_accuracy, total_test_step)
            total_test_step += 1

            # The course saves the whole model, torch.save(gst, "gst_{}.pth".format(i)): a
            # pickle that needs the class to load and can run code. Here: a plain dict of
            # state_dicts, written to a temporary file and renamed (never half-written).
            last_checkpoint = checkpoint.save({
                "arch": "GST",
                "model": gst.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": i,   # 0-based index of the epoch just finished = the N in gst_N.pth
                "total_train_step": total_train_step,
                "total_test_step": total_test_step,
                "classes": list(classes),
                "rng": generator.get_state(),
                "test_loss": total_test_loss,
                "test_accuracy": test_accuracy,
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            }, args.checkpoint_dir / "gst_{}.pth".format(i))
            print("模型已保存 / saved {}".format(last_checkpoint))
    except KeyboardInterrupt:
        done = (f"{last_checkpoint} holds the last finished epoch; continue with "
                f"--resume {last_checkpoint}" if last_checkpoint else "no epoch finished")
        print(f"stopped during epoch {i + 1}: {done}", file=sys.stderr)
        raise
    finally:
        writer.close()

    if args.metrics is not None:
        metrics = {
            "test_accuracy": test_accuracy,
            "test_loss": total_test_loss,
            "epochs": epoch,
            "train_images_per_s": trained_images / train_seconds if train_seconds else None,
            "device": str(device),
            "checkpoint": str(last_checkpoint),
        }
        # written atomically too: a reader never sees half a JSON object
        checkpoint.atomic_write(args.metrics, lambda f: f.write(
            (json.dumps(metrics, indent=2) + "\n").encode()))
        print(f"metrics: {args.metrics}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
