"""p23_train.py's whole job on 50,000 + 10,000 images, offline: the size of CIFAR-10, so a
machine without the download (the GPU machine has no internet) can time the course's
10-epoch run as a learner runs it.

The images are --fake-data's (common.data.FakeCIFAR10), made once and written in CIFAR-10's
own file format to --cache; p23 then reads them through torchvision's CIFAR10 as it reads the
real set. Their md5 sums can't be the official ones, so for files under --cache alone that
check is skipped. Every other argument is passed on to p23_train.py. Time the whole process
from outside, as a learner feels it, and read --metrics for each epoch's training speed:

  python benchmarks/p23_cifar_sized.py --epochs 1 --device cuda      # makes the cache
  time python benchmarks/p23_cifar_sized.py --epochs 10 --device cuda --metrics m.json
"""
from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np
import torchvision.datasets.cifar as cifar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))        # run as a file: the repository's scripts/ (p23) importable

from common import data, disk  # noqa: E402
from common.model import CIFAR10_CLASSES  # noqa: E402
from scripts import p23_train  # noqa: E402  (importing it runs nothing)

TRAIN_IMAGES, TEST_IMAGES = 50000, 10000   # CIFAR-10's
FOLDER = "cifar-10-batches-py"


def write_cifar_format(root: Path) -> None:
    """FakeCIFAR10 at CIFAR-10's size as ``root/cifar-10-batches-py/``: five training batches,
    ``test_batch`` and ``batches.meta``, each image 3072 uint8 values (R, G, B planes)."""
    folder = root / FOLDER
    files = {}
    splits = ((True, [f"data_batch_{i}" for i in range(1, 6)]), (False, ["test_batch"]))
    for train, names in splits:
        fake = data.FakeCIFAR10(train=train, size=TRAIN_IMAGES if train else TEST_IMAGES)
        planes = fake.data.transpose(0, 3, 1, 2).reshape(len(fake.data), 3072)
        for name, rows, labels in zip(names, np.array_split(planes, len(names)),
                                      np.array_split(np.array(fake.targets), len(names))):
            files[name] = {"data": rows, "labels": labels.tolist()}
    files["batches.meta"] = {"label_names": list(CIFAR10_CLASSES)}   # last: marks it whole
    for name, content in files.items():        # each atomically: a cache is whole or absent
        disk.atomic_write(folder / name, lambda f, c=content: pickle.dump(c, f))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, epilog="p23_train.py --help lists "
                                     "the rest", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "p23-cifar-sized",
                        help="where the CIFAR-sized files are kept (default: %(default)s)")
    args, p23_argv = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    root = args.cache.absolute()
    if not (root / FOLDER / "batches.meta").is_file():
        print(f"writing {TRAIN_IMAGES} + {TEST_IMAGES} synthetic images to {root}", flush=True)
        write_cifar_format(root)
    official = cifar.check_integrity
    cifar.check_integrity = lambda fpath, md5=None: (
        Path(fpath).is_file() if Path(fpath).absolute().is_relative_to(root)
        else official(fpath, md5))
    return p23_train.main(["--data-root", str(root), *p23_argv])


if __name__ == "__main__":
    raise SystemExit(main())
