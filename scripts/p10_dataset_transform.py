"""P10 torchvision中的数据集使用 — torchvision datasets: CIFAR-10 with a transform

torchvision ships ready-made datasets. CIFAR10(root, train, transform, download) gives the
training split (50000 images) or the test split (10000), each item an (image, target) pair;
transform=ToTensor() turns every PIL image into a [3, 32, 32] float tensor as it is read.

What to look at:
  - len(train_set): 50000 and len(test_set): 10000 (2000 and 500 with --fake-data);
  - test_set[0]: img.shape: torch.Size([3, 32, 32]) and target: 3. The target is a number,
    an index into test_set.classes: test_set.classes[target] is the class name, cat (with
    --fake-data too: its first test image is a cat's stripes);
  - TensorBoard, tag "test_set": the first 10 test images, steps 0-9.

Example:
  python scripts/p10_dataset_transform.py                 # downloads CIFAR-10 into dataset/ if missing
  python scripts/p10_dataset_transform.py --fake-data     # offline, synthetic CIFAR-shaped images
  tensorboard --logdir logs
"""
from __future__ import annotations

from torchvision import transforms

from common import cli
from common.data import announce_synthetic, cifar10_or_fake
from common.writer import make_writer, need_logdir

SCRIPT = "p10_dataset_transform"


def get_args_parser():
    # No --device: nothing is computed here, images are only read and logged; no
    # --num-workers either: no DataLoader (lesson 11 brings it).
    return cli.parser(__doc__, cli.data_flags(num_workers=False), cli.logdir_flags())


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    need_logdir(args.logdir, SCRIPT)     # a wrong --logdir: now, not after the data
    announce_synthetic(args)

    # 1. 准备数据集 / prepare the datasets, with a transform applied to every image
    dataset_transform = transforms.Compose([
        transforms.ToTensor(),
    ])
    # train_set and test_set come from the same download; train= picks the split.
    # The course calls torchvision.datasets.CIFAR10(root='./dataset', ..., download=True);
    # cifar10_or_fake does that under --data-root (or builds the synthetic set for --fake-data).
    train_set = cifar10_or_fake(args.data_root, train=True, transform=dataset_transform,
                                fake=args.fake_data, mirrors=args.mirror)
    test_set = cifar10_or_fake(args.data_root, train=False, transform=dataset_transform,
                               fake=args.fake_data, mirrors=args.mirror)

    # 2. 查看数据集 / look inside: sizes, one item, the class names
    print(f"len(train_set): {len(train_set)}")
    print(f"len(test_set): {len(test_set)}")
    img, target = test_set[0]          # __getitem__ returns (image, target)
    print(f"img.shape: {img.shape}")   # the transformed image: a tensor [3, 32, 32]
    print(f"target: {target}")         # an index into test_set.classes, not a name
    print(f"test_set.classes: {test_set.classes}")
    print(f"test_set.classes[target]: {test_set.classes[target]}")   # the first test image's class

    # 3. 写入TensorBoard / the first 10 test images, one step each
    writer = make_writer(args.logdir, SCRIPT)
    for i in range(10):
        img, target = test_set[i]
        writer.add_image("test_set", img, i)
    writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
