"""P08 Transforms的使用 — Transforms: ToTensor

``torchvision.transforms`` is a toolbox: each tool (a class such as ``ToTensor`` or
``Resize``) is made once, then called on a picture: picture -> tool -> result. The lesson's
two questions:

1. how to use a transform: ``tensor_trans = transforms.ToTensor()``, then
   ``tensor_img = tensor_trans(img)``;
2. why a tensor: it is what networks take, a ``torch.Tensor`` of shape [C, H, W] with
   values scaled to 0..1, which carries what training needs (device, gradients...).

Then OpenCV: ``cv2.imread`` gives a numpy ``ndarray`` [H, W, C] of 0..255, in BGR order.

Look at: the labelled types and shapes: ``type(tensor_img): <class 'torch.Tensor'>``,
``tensor_img.shape: torch.Size([3, 150, 200])  tensor_img.dtype: torch.float32`` (PIL ->
Tensor [C, H, W], float); ``type(cv_img): <class 'numpy.ndarray'>``, ``cv_img.shape: (150,
200, 3)  cv_img.dtype: uint8`` (cv2 -> ndarray [H, W, C]); the top-left pixel in RGB vs BGR;
and in TensorBoard IMAGES -> ``Tensor_img``.

    python scripts/p08_transforms.py
    tensorboard --logdir logs
"""
from __future__ import annotations

from pathlib import Path

import cv2
from torchvision import transforms

from common import cli, writer as tb
from common.cli import UserError
from common.data import open_image

SCRIPT = Path(__file__).stem


def get_args_parser():
    parser = cli.parser(__doc__, cli.image_folder_flags(), cli.image_flags(), cli.logdir_flags())
    return parser


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    img_path = cli.image_path(args.image, args.image_folder)   # from here, or in the folder
    img = open_image(img_path)
    print(f"img: {img}")

    # 1. transforms 该如何使用 / how to use a transform: make the tool, then call it
    tensor_trans = transforms.ToTensor()
    tensor_img = tensor_trans(img)
    print(f"type(tensor_img): {type(tensor_img)}")
    print(f"tensor_img.shape: {tensor_img.shape}  tensor_img.dtype: {tensor_img.dtype}")
    print(f"tensor_img values: {tensor_img.min().item():.4f} .. {tensor_img.max().item():.4f} "
          "(ToTensor divides 0..255 by 255)")

    # 2. OpenCV: cv2.imread gives a numpy.ndarray
    cv_img = cv2.imread(str(img_path))
    if cv_img is None:            # cv2.imread returns None instead of raising
        raise UserError(f"cv2.imread cannot read {img_path}")
    print(f"type(cv_img): {type(cv_img)}")
    print(f"cv_img.shape: {cv_img.shape}  cv_img.dtype: {cv_img.dtype}")
    # OpenCV stores channels as B, G, R; PIL and ToTensor use R, G, B.
    # (cv2.cvtColor(cv_img, cv2.COLOR_BGR2RGB) gives RGB before ToTensor.)
    rgb = list(img.convert("RGB").getpixel((0, 0)))
    print("top-left pixel, PIL RGB:", rgb, " cv2 BGR:", cv_img[0, 0].tolist())

    # 3. 写进 TensorBoard / into TensorBoard: a [C, H, W] tensor is add_image's default format
    writer = tb.make_writer(args.logdir, SCRIPT)
    writer.add_image("Tensor_img", tensor_img)
    writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
