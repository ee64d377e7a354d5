"""P06 Dataset类代码实战 — Writing a Dataset

A ``Dataset`` answers two questions (lesson 05): how to get each sample and its label
(``__getitem__``), and how many samples there are (``__len__``). This lesson writes one for
the ants/bees pictures in the course's two layouts:

1. folder name = label: ``<image-folder>/train/ants/*.jpg``. ``MyData(root_dir, label_dir)``
   returns ``(img, label)``; ``ants_dataset + bees_dataset`` concatenates them into
   ``train_dataset`` (a ``ConcatDataset``: the bees come after the ants).
2. images and labels apart: ``<practice-folder>/train/ants_image/*.jpg``, and for each image a
   ``.txt`` file in ``ants_label/`` holding its label. The course's loop writes those label
   files; then a second Dataset reads each image with its ``.txt`` label back.

Look at: the lengths (``len(ants_dataset): 10`` + ``len(bees_dataset): 10`` =
``len(train_dataset): 20``), the first ant and the first bee of ``train_dataset`` (index
``len(ants_dataset)``), the label files written, and, under the header ``second layout, read
back with MyLabelData``, the same lengths and pictures read back with their ``.txt`` labels.

    python scripts/p06_dataset.py
    python scripts/p06_dataset.py --image-folder dataset/hymenoptera_data   # the real photos
"""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from common import cli, disk, paths
from common.cli import UserError
from common.data import open_image


def list_images(folder) -> list[str]:
    """The course's os.listdir(folder), sorted, without hidden files.

    os.listdir's order is whatever the file system gives (the notes say so: it differed from
    the video's), so it is sorted to make index 0 the same picture on every machine. A name
    starting with "." is no picture: macOS leaves a .DS_Store in every folder it has shown,
    and sorted, it would be index 0.
    """
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def stem(img_name: str) -> str:
    """The image's name less its extension, the label file's name. The course wrote
    img_name.split('.jpg')[0], which keeps a .png's name whole (x.png -> x.png.txt)."""
    return os.path.splitext(img_name)[0]


class MyData(Dataset):  # MyData 继承 Dataset / MyData inherits from Dataset
    """Images in ``root_dir/label_dir/``; the folder's name is every image's label."""

    def __init__(self, root_dir, label_dir):
        self.root_dir = root_dir
        self.label_dir = label_dir
        self.path = os.path.join(self.root_dir, self.label_dir)
        self.img_path = list_images(self.path)    # the course: os.listdir(self.path)

    def __getitem__(self, idx):
        img_name = self.img_path[idx]
        img_item_path = os.path.join(self.root_dir, self.label_dir, img_name)
        # the course: Image.open(img_item_path), which reads lazily and keeps the file open.
        # open_image is that + load(): the pixels read now, the file closed, a bad file one line
        img = open_image(img_item_path)
        label = self.label_dir
        return img, label

    def __len__(self):
        return len(self.img_path)


class MyLabelData(Dataset):
    """Images in ``root_dir/image_dir/``, each label in ``root_dir/label_dir/<name>.txt``.

    The course stops after writing the label files; this reads them back, the way a
    dataset in this layout is used.
    """

    def __init__(self, root_dir, image_dir, label_dir):
        self.root_dir = root_dir
        self.image_dir = image_dir
        self.label_dir = label_dir
        self.img_path = list_images(os.path.join(self.root_dir, self.image_dir))

    def __getitem__(self, idx):
        img_name = self.img_path[idx]
        img = open_image(os.path.join(self.root_dir, self.image_dir, img_name))
        file_name = stem(img_name)
        label_path = os.path.join(self.root_dir, self.label_dir, "{}.txt".format(file_name))
        try:
            with open(label_path) as f:
                label = f.read()
        except OSError:
            raise UserError(f"no label file {label_path} for image {img_name}") from None
        return img, label

    def __len__(self):
        return len(self.img_path)


def write_label_files(root_dir: str, target_dir: str, option: str) -> tuple[str, list[str]]:
    """The course's loop: for each image in ``target_dir`` write ``<label>_label/<name>.txt``
    (``option``: how to write elsewhere, named in the line a failed write gives)."""
    img_path = list_images(os.path.join(root_dir, target_dir))
    label = target_dir.split('_')[0]                  # "ants_image" -> "ants"
    out_dir = "_".join([label, "label"])              # -> "ants_label"
    # The course's loop assumes ants_label/ exists (open(..., 'w') fails otherwise).
    disk.make_dir(os.path.join(root_dir, out_dir), option)
    for i in img_path:
        file_name = stem(i)                           # the course: i.split('.jpg')[0]
        label_path = os.path.join(root_dir, out_dir, "{}.txt".format(file_name))
        # The course: with open(label_path, 'w') as f: f.write(label). That empties the file
        # first, so a write that fails (a full disk) loses the label a rerun was rewriting;
        # here it is written beside it and renamed over it once whole (a failure is one line).
        disk.atomic_write(Path(label_path), lambda f: f.write(label.encode()), option=option)
    return out_dir, img_path


def describe(img: Image.Image, label: str) -> str:
    name = os.path.basename(getattr(img, "filename", "") or "")
    return f"{name}  size={img.size}  mode={img.mode}  label={label!r}"


def need_dir(path: Path, what: str, *, pictures: bool = False) -> None:
    """``path`` is a folder (and, with ``pictures``, one that holds a picture), or one line."""
    if not path.is_dir():
        raise UserError(f"{what} not found: {path}")
    if pictures and not list_images(path):     # the lesson opens its first picture
        raise UserError(f"{what} {path} is empty: put the pictures of its class in it")


def get_args_parser():
    parser = cli.parser(__doc__, cli.image_folder_flags())
    parser.add_argument("--practice-folder", type=Path, default=paths.SAMPLE_PRACTICE_FOLDER,
                        help="the second layout: a folder holding train/ants_image/ and "
                             "train/bees_image/; the label files are written into "
                             "train/ants_label/ and train/bees_label/ "
                             "(default: dataset/practice_sample/)")
    return parser


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    # Check every folder first, so a wrong path stops before anything is written.
    need_dir(args.image_folder, "image folder")
    for label_dir in ("ants", "bees"):
        need_dir(args.image_folder / "train" / label_dir, "class folder", pictures=True)
    need_dir(args.practice_folder, "practice folder")
    for target_dir in ("ants_image", "bees_image"):
        need_dir(args.practice_folder / "train" / target_dir, "practice image folder",
                 pictures=True)
    # The label files go beside the practice images: writing elsewhere means a copy of the
    # whole folder, images too, and the line a failed write gives says so.
    elsewhere = f"--practice-folder DIR (a copy of {args.practice_folder}, images and all)"
    disk.need_writable(args.practice_folder / "train", elsewhere)

    # 1. 读取一张图片 / open one picture: its address is all Image.open needs
    root_dir = os.path.join(args.image_folder, "train")
    img_path_list = list_images(os.path.join(root_dir, "ants"))
    print("img_path_list[0]:", img_path_list[0])
    img = open_image(os.path.join(root_dir, "ants", img_path_list[0]))
    print(f"img: size={img.size} mode={img.mode}")
    # The course calls img.show() here; it opens a window, which a terminal run may not have.

    # 2. 第一种组织形式：文件夹名就是 label / first layout: the folder name is the label
    ants_label_dir = "ants"
    bees_label_dir = "bees"
    ants_dataset = MyData(root_dir, ants_label_dir)
    bees_dataset = MyData(root_dir, bees_label_dir)
    img, label = ants_dataset[0]
    print("ants_dataset[0]:", describe(img, label))
    print("len(ants_dataset):", len(ants_dataset))
    print("len(bees_dataset):", len(bees_dataset))

    # 3. 两个数据集相加 / ants + bees: a ConcatDataset, the bees after the ants
    train_dataset = ants_dataset + bees_dataset
    print("len(train_dataset):", len(train_dataset), f"({type(train_dataset).__name__})")
    img, label = train_dataset[len(ants_dataset)]          # the first bee
    print(f"train_dataset[{len(ants_dataset)}]:", describe(img, label))

    # 4. 第二种组织形式：图片和 label 分开 / second layout: write a .txt label per image
    root_dir = os.path.join(args.practice_folder, "train")
    for target_dir in ("ants_image", "bees_image"):
        out_dir, img_path = write_label_files(root_dir, target_dir, elsewhere)
        print(f"wrote {len(img_path)} label files to {os.path.join(root_dir, out_dir)}")

    # 5. 读回图片和 label / read each image with its .txt label back
    # Step 2's variable names again, now for the second layout: a header says which.
    print("second layout, read back with MyLabelData (each image with its .txt label):")
    ants_dataset = MyLabelData(root_dir, "ants_image", "ants_label")
    bees_dataset = MyLabelData(root_dir, "bees_image", "bees_label")
    train_dataset = ants_dataset + bees_dataset
    print("len(ants_dataset):", len(ants_dataset))
    print("len(bees_dataset):", len(bees_dataset))
    print("len(train_dataset):", len(train_dataset))
    img, label = train_dataset[0]
    print("train_dataset[0]:", describe(img, label))
    img, label = train_dataset[len(ants_dataset)]
    print(f"train_dataset[{len(ants_dataset)}]:", describe(img, label))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
