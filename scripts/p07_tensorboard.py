"""P07 TensorBoard的使用 — TensorBoard: add_scalar and add_image

``SummaryWriter`` writes event files that TensorBoard draws. Two calls:

- ``writer.add_scalar(tag, scalar_value, global_step)``: one point of a curve; the value is
  the y axis, the step the x axis. The loop draws ``y=2x`` for x = 0..99.
- ``writer.add_image(tag, img_tensor, global_step, dataformats=...)``: a picture. It takes a
  torch.Tensor or numpy.ndarray, not a PIL image, so the picture goes through
  ``np.array(img_PIL)``, which is height x width x channels: ``dataformats='HWC'``.
  Tag ``test``: an ant at step 1, then a bee at step 2 (drag the slider above the image).

Look at: ``tensorboard --logdir logs``, then SCALARS -> ``y=2x`` (a straight line to 198 at
step 99) and IMAGES -> ``test``. For each picture the script prints its ``image_path``,
``type(img_array): <class 'numpy.ndarray'>`` and ``img_array.shape: (150, 200, 3)`` (the
sample's height, width, channels).

    python scripts/p07_tensorboard.py
    tensorboard --logdir logs
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common import cli, writer as tb
from common.cli import UserError
from common.data import open_image

SCRIPT = Path(__file__).stem
# The two pictures the video logs, as <image-folder>/train/<class>/<name>: the course reads
# them from its practice layout (train/ants_image/...); the sample holds the same pictures here.
IMAGES = [("ants", "0013035.jpg"), ("bees", "16838648_415acd9e3f.jpg")]


def get_args_parser():
    return cli.parser(__doc__, cli.image_folder_flags(), cli.logdir_flags())


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if not args.image_folder.is_dir():
        raise UserError(f"image folder not found: {args.image_folder}")
    image_paths = [args.image_folder / "train" / cls / name for cls, name in IMAGES]
    imgs_PIL = [open_image(p) for p in image_paths]      # read all before writing anything

    # The course writes to SummaryWriter("logs") and, after changing what a tag plots,
    # deletes the old event files so the curves don't mix. make_writer gives each run its
    # own folder, logs/p07_tensorboard/<run-id>/, so there is nothing to delete.
    writer = tb.make_writer(args.logdir, SCRIPT)

    # 1. add_scalar: y = 2x
    # The notes write add_scalar("y = x", (scalar_value)i, (global_value)i): the words in
    # brackets are PyCharm's parameter hints, not code (and the parameter is global_step).
    # The video then changes it to y = 2x with a new tag, which is what is drawn here.
    for i in range(100):
        writer.add_scalar("y=2x", 2 * i, i)
    print("add_scalar: tag 'y=2x', 100 points, y = 2 * step for step 0..99")

    # 2. add_image: a PIL image -> numpy array (H, W, C) -> dataformats='HWC'
    for step, (image_path, img_PIL) in enumerate(zip(image_paths, imgs_PIL), start=1):
        img_array = np.array(img_PIL)
        print(f"image_path: {image_path}")
        print(f"type(img_array): {type(img_array)}")
        print(f"img_array.shape: {img_array.shape}")      # (H, W, C): dataformats='HWC'
        writer.add_image("test", img_array, step, dataformats='HWC')

    writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
