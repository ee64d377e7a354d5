"""P24 利用GPU训练 — Training on a GPU: .cuda() and .to(device)

Lesson 24 runs lesson 23's training on a GPU. Three things must live on the GPU: the
network (网络模型), the data — inputs and targets (数据：输入，标注) — and the loss function
(损失函数). The lesson shows two ways to move them:

  1. --method cuda: call .cuda() on each (gst = gst.cuda(), imgs = imgs.cuda(), ...).
     NVIDIA GPUs only.
  2. --method to-device (default): device = torch.device("cuda") once, then .to(device)
     on each. The same code runs on cpu, cuda or mps: only --device changes.

The model and the loss function move once; the data is copied to the GPU batch after
batch (其实只有数据要重新复制 / only the data has to be copied again each time).

What to look at: the elapsed time printed every 100 steps (as in the video; a small set such
as --fake-data's prints about ten times an epoch instead, as p23_train.py does) and the time
per epoch — run it with --device cpu and then on your GPU and compare. TensorBoard:
logs/p24_train_gpu/<run-id>/ with train_loss, test_loss and test_accuracy, as in lesson 23.
This script keeps the course's data path (DataLoader + ToTensor, image by image) so the
per-batch copies are visible; p23_train.py is the faster, complete job (checkpoints, resume).

Examples:
  python scripts/p24_train_gpu.py --method cuda --fake-data --epochs 3
  python scripts/p24_train_gpu.py --method to-device --device mps --fake-data --epochs 3
"""
from __future__ import annotations

import math
import time

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader

from common import cli
from common.data import announce_synthetic, cifar10_or_fake
from common.device import available_devices, choose_kernels, get_device, synchronize
from common.model import GST
from common.writer import log_interval, make_writer, need_logdir

SCRIPT = "p24_train_gpu"


def get_args_parser():
    parser = cli.parser(__doc__, cli.device_flags(), cli.data_flags(), cli.logdir_flags(),
                        cli.train_flags(kernels=True))
    parser.add_argument("--method", choices=["cuda", "to-device"], default="to-device",
                        help="how to move model, loss and data to the GPU: 'cuda' calls .cuda() "
                             "(the lesson's first way, NVIDIA only); 'to-device' calls "
                             ".to(device) with --device (the second way) (default: to-device)")
    return parser


def to_gpu(x, method, device):
    """The lesson's two ways of moving the model, the loss function or a batch to the GPU."""
    if method == "cuda":
        return x.cuda()          # 1. .cuda(): NVIDIA GPUs only
    return x.to(device)          # 2. .to(device): any device --device names


def train(gst, loss_fn, optimizer, train_dataloader, method, device, total_train_step,
          writer, log_every, start_time):
    """One epoch of lesson 23's training, each batch moved to the GPU the lesson's way
    (``method`` "cuda": ``.cuda()``; "to-device": ``.to(device)``); prints the time since
    ``start_time`` and the loss every ``log_every`` steps. Returns ``total_train_step``."""
    gst.train()
    for data in train_dataloader:
        imgs, targets = data
        # 其实只有数据要重新复制 / each batch is copied to the GPU
        imgs = to_gpu(imgs, method, device)
        targets = to_gpu(targets, method, device)
        outputs = gst(imgs)
        loss = loss_fn(outputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        total_train_step += 1
        if total_train_step % log_every == 0:
            end_time = time.time()
            loss_value = loss.item()       # the course calls loss.item() twice: one GPU wait
            print("用时 / elapsed: {:.2f}s".format(end_time - start_time))
            print("训练次数：{}, Loss: {}".format(total_train_step, loss_value))
            writer.add_scalar("train_loss", loss_value, total_train_step)
            # Beyond the course: a nan or inf loss never comes back, so stop here rather than
            # train the rest of the epoch on it
            if not math.isfinite(loss_value):
                raise cli.UserError(
                    f"training diverged: the loss is {loss_value} at step {total_train_step} "
                    f"(--lr {optimizer.param_groups[0]['lr']}): start again with a smaller "
                    "--lr, such as the course's 0.01")
    return total_train_step


def test(gst, loss_fn, test_dataloader, method, device):
    """Lesson 23's test pass, each batch moved the lesson's way: ``(total_test_loss,
    total_accuracy)``, the sum of the batches' mean losses and the number of test images
    classified right."""
    gst.eval()
    total_test_loss = 0
    total_accuracy = 0
    with torch.no_grad():
        for data in test_dataloader:
            imgs, targets = data
            imgs = to_gpu(imgs, method, device)
            targets = to_gpu(targets, method, device)
            outputs = gst(imgs)
            loss = loss_fn(outputs, targets)
            total_test_loss = total_test_loss + loss.item()
            accuracy = (outputs.argmax(1) == targets).sum()
            total_accuracy = total_accuracy + accuracy.item()
    return total_test_loss, total_accuracy


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    need_logdir(args.logdir, SCRIPT)     # a wrong --logdir: now, not later

    # 0. 定义训练的设备 / the device to train on
    if args.method == "cuda":
        # The video guards each .cuda() with `if torch.cuda.is_available():`, silently
        # training on the CPU without a GPU; here asking for the GPU without one is an error.
        if not torch.cuda.is_available():
            raise cli.UserError("--method cuda needs an NVIDIA GPU (torch.cuda.is_available() is "
                                f"False); available: {', '.join(available_devices())}. "
                                "Use --method to-device --device auto")
        if args.device not in ("auto", "cuda"):
            raise cli.UserError(f"--method cuda always trains on the NVIDIA GPU; for --device "
                                f"{args.device} use --method to-device")
        device = torch.device("cuda")
    else:
        # The video: device = torch.device("cuda" if torch.cuda.is_available() else "cpu");
        # --device auto does the same for any accelerator (cuda, mps, ...).
        device = get_device(args.device)
    announce_synthetic(args)
    print(f"method: {args.method}, device: {device}")
    if args.seed is not None:
        torch.manual_seed(args.seed)
    choose_kernels(device, repeatable=args.seed is not None)   # as p23 does

    # 1. 准备数据集 / prepare the dataset (the course's way: ToTensor, image by image)
    train_data = cifar10_or_fake(args.data_root, train=True,
                                 transform=torchvision.transforms.ToTensor(), fake=args.fake_data,
                                 mirrors=args.mirror)
    test_data = cifar10_or_fake(args.data_root, train=False,
                                transform=torchvision.transforms.ToTensor(), fake=args.fake_data,
                                mirrors=args.mirror)
    train_data_size = len(train_data)
    test_data_size = len(test_data)
    print("训练数据集的长度为：{}".format(train_data_size))
    print("测试数据集的长度为：{}".format(test_data_size))

    # 2. 利用DataLoader来加载数据集 / load it with DataLoader
    train_dataloader = DataLoader(train_data, batch_size=args.batch_size, num_workers=args.num_workers)
    test_dataloader = DataLoader(test_data, batch_size=args.batch_size, num_workers=args.num_workers)

    # 3. 创建网络模型 / create the model, and move it (once)
    gst = GST()
    gst = to_gpu(gst, args.method, device)

    # 4. 损失函数 / the loss function, moved too (it holds no tensors, but the lesson moves it)
    loss_fn = nn.CrossEntropyLoss()
    loss_fn = to_gpu(loss_fn, args.method, device)

    # 5. 优化器 / the optimizer (created after the model moved, so it holds the GPU parameters)
    learning_rate = args.lr
    optimizer = torch.optim.SGD(gst.parameters(), lr=learning_rate)

    # 6. 设置训练网络的一些参数 / training counters
    total_train_step = 0
    total_test_step = 0
    # 训练的轮数: the course calls this count `epoch`; `epochs` here, as in p23_train.py
    epochs = args.epochs
    log_every = log_interval(len(train_dataloader))   # 100, the course's, for CIFAR-10

    # 7. 添加tensorboard / TensorBoard
    writer = make_writer(args.logdir, SCRIPT)
    start_time = time.time()
    try:
        for i in range(epochs):
            print("-------第 {} 轮训练开始-------".format(i + 1))
            epoch_start = time.time()

            # 训练步骤开始 / training
            total_train_step = train(gst, loss_fn, optimizer, train_dataloader, args.method,
                                     device, total_train_step, writer, log_every, start_time)
            synchronize(device)   # GPU work is queued: wait for it before reading the clock
            print("第 {} 轮训练用时 / epoch time: {:.2f}s".format(i + 1, time.time() - epoch_start))

            # 测试步骤开始 / testing
            total_test_loss, total_accuracy = test(gst, loss_fn, test_dataloader, args.method,
                                                   device)
            print("整体测试集上的Loss: {}".format(total_test_loss))
            if not math.isfinite(total_test_loss):  # nan or inf: the weights have run away
                raise cli.UserError(f"training diverged: the test loss is {total_test_loss} in "
                                    f"epoch {i + 1} (--lr {args.lr}): start again with a smaller "
                                    "--lr, such as the course's 0.01")
            print("整体测试集上的正确率: {}".format(total_accuracy / test_data_size))
            # The course wrote add_scalar("test_loss", total_test_loss, total_test_loss,
            # total_test_step): the step was the loss and total_test_step landed in walltime.
            writer.add_scalar("test_loss", total_test_loss, total_test_step)
            writer.add_scalar("test_accuracy", total_accuracy / test_data_size, total_test_step)
            total_test_step += 1
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
