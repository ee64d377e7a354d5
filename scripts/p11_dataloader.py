"""P11 Dataloader的使用 — DataLoader: batches from a dataset

A Dataset hands out one (img, target) at a time; a DataLoader deals them out in batches:
batch_size images stacked into one tensor [batch_size, 3, 32, 32] and their targets into
one tensor [batch_size]. shuffle=True deals the cards in a new order every epoch;
drop_last=False keeps the last, smaller batch when the set doesn't divide evenly.

What to look at:
  - the first test image: img.shape: torch.Size([3, 32, 32]), target: 3 (an index into
    test_data.classes) and test_data.classes[target]: cat (--fake-data's first test image is a cat too);
  - TensorBoard, tags "Epoch: 0" and "Epoch: 1": one grid of batch_size images per step.
    Step 0 of the two epochs shows different images: shuffle=True reshuffles each epoch.
    With --seed the shuffling repeats from run to run.

Example:
  python scripts/p11_dataloader.py --fake-data --seed 0
  python scripts/p11_dataloader.py --batch-size 64    # bigger grids: 64 images per step
  tensorboard --logdir logs
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from torchvision import transforms

from common import cli
from common.data import announce_synthetic, cifar10_or_fake
from common.writer import make_writer, need_logdir

SCRIPT = "p11_dataloader"


def get_args_parser():
    # No --device: a DataLoader only reads and stacks images; no --lr: nothing is trained.
    return cli.parser(__doc__, cli.data_flags(), cli.logdir_flags(),
                      cli.train_flags(batch_size=10, epochs=2, lr=None,
                                      epochs_are="passes over the test set, each in a new "
                                                 "shuffled order (nothing is trained)"))


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    need_logdir(args.logdir, SCRIPT)     # a wrong --logdir: now, not after the data
    announce_synthetic(args)

    # 1. 准备测试数据集 / prepare the test set
    test_data = cifar10_or_fake(args.data_root, train=False, transform=transforms.ToTensor(),
                                fake=args.fake_data, mirrors=args.mirror)

    # 2. 加载数据 / the DataLoader; num_workers=0 loads in the main process
    # --seed: the shuffled order comes from this generator, so a run can be repeated.
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    test_loader = DataLoader(dataset=test_data, batch_size=args.batch_size, shuffle=True,
                             num_workers=args.num_workers, drop_last=False, generator=generator)

    # 3. 测试数据集中第一张图片及target / the first test image and its target
    img, target = test_data[0]
    print(f"img.shape: {img.shape}")
    print(f"target: {target}")          # an index: the label itself is test_data.classes[target]
    print(f"test_data.classes[target]: {test_data.classes[target]}")

    # 4. 每个epoch按batch写入TensorBoard / every batch of every epoch into TensorBoard
    writer = make_writer(args.logdir, SCRIPT)
    for epoch in range(args.epochs):
        step = 0
        for data in test_loader:
            imgs, targets = data        # imgs [batch_size, 3, 32, 32], targets [batch_size]
            # print(imgs.shape)
            # print(targets)
            writer.add_images("Epoch: {}".format(epoch), imgs, step)   # add_images: a batch
            step += 1
    writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
