"""P09 常见的Transforms — Common transforms: ToTensor, Normalize, Resize, Compose, RandomCrop

Each transform has an input type, an output type and a job; watch the types:

- ``ToTensor``: PIL image -> tensor [C, H, W] in 0..1.
- ``Normalize(mean, std)``: tensor -> tensor, ``output[channel] = (input[channel] -
  mean[channel]) / std[channel]``; with mean 0.5 and std 0.5, 0..1 becomes -1..1.
- ``Resize((h, w))``: PIL -> PIL of exactly h x w; ``Resize(n)``: the shorter side becomes n,
  the aspect ratio is kept.
- ``Compose([...])``: transforms applied in order; each one's output is the next one's input.
- ``RandomCrop(n)``: a random n x n piece; a new piece at every call.

Look at: the pixel before and after Normalize, ``img_tensor[0][0][0]`` and
``img_norm[0][0][0]`` (and the formula checked by hand); the sizes: ``img.size`` (width,
height), ``img_resize`` 512x512, ``img_resize_2.shape`` (shorter side 512),
``img_crop.shape``; and in TensorBoard IMAGES: ``ToTensor``, ``Normalize`` (negative values
show as black), ``Resize``, ``Resize_2`` and ``RandomCrop`` (10 crops: drag the slider).

    python scripts/p09_common_transforms.py
    python scripts/p09_common_transforms.py --seed 0      # the same crops every run
    tensorboard --logdir logs
"""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision import transforms

from common import cli, writer as tb
from common.cli import UserError
from common.data import open_image

SCRIPT = Path(__file__).stem


def get_args_parser():
    parser = cli.parser(__doc__, cli.image_folder_flags(), cli.image_flags(), cli.logdir_flags(),
                        cli.seed_flags())
    parser.add_argument("--crop-size", type=cli.positive_int, default=128,
                        help="RandomCrop's size; at most the picture's shorter side "
                             "(default: 128; the video crops 512 from a 768x512 photo)")
    return parser


@cli.entrypoint
def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    img_path = cli.image_path(args.image, args.image_folder)   # from here, or in the folder
    img = open_image(img_path)
    if img.mode != "RGB":         # Normalize below has one mean per R, G, B channel
        img = img.convert("RGB")
    if args.crop_size > min(img.size):
        raise UserError(f"--crop-size {args.crop_size} does not fit in the picture "
                        f"({img.size[0]}x{img.size[1]}); use 1..{min(img.size)}")
    if args.seed is not None:
        torch.manual_seed(args.seed)                 # RandomCrop draws from torch's generator
    print(f"img: {img}")

    writer = tb.make_writer(args.logdir, SCRIPT)

    # 1. ToTensor: PIL -> tensor
    trans_totensor = transforms.ToTensor()
    img_tensor = trans_totensor(img)
    writer.add_image("ToTensor", img_tensor)

    # 2. Normalize: (input - mean) / std, per channel
    print(f"img_tensor[0][0][0]: {img_tensor[0][0][0]!r}")      # channel 0 (R), row 0, column 0
    trans_norm = transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    img_norm = trans_norm(img_tensor)
    print(f"img_norm[0][0][0]: {img_norm[0][0][0]!r}")
    x = img_tensor[0][0][0].item()
    print(f"by hand: ({x:.4f} - 0.5) / 0.5 = {(x - 0.5) / 0.5:.4f}")
    print("every value follows the formula:",
          torch.allclose(img_norm, (img_tensor - 0.5) / 0.5))
    print(f"range: img_tensor {img_tensor.min().item():.4f}..{img_tensor.max().item():.4f} -> "
          f"img_norm {img_norm.min().item():.4f}..{img_norm.max().item():.4f}")
    # add_image expects 0..1 and clips the rest: a dark photo (most pixels below 0.5) turns
    # mostly black in TensorBoard; nothing is wrong with the tensor.
    print(f"TensorBoard shows 0..1: {(img_norm < 0).float().mean().item():.0%} of img_norm "
          "is below 0 and shows as black")
    writer.add_image("Normalize", img_norm)

    # 3. Resize((512, 512)): PIL -> PIL of exactly 512 x 512, then ToTensor for TensorBoard
    print(f"img.size: {img.size}")                          # PIL: (width, height)
    trans_resize = transforms.Resize((512, 512))
    img_resize = trans_resize(img)
    print(f"img_resize: {img_resize}")
    img_resize = trans_totensor(img_resize)
    print(f"img_resize.shape (after ToTensor): {img_resize.shape}")
    writer.add_image("Resize", img_resize, 0)

    # 4. Compose: Resize(512) keeps the aspect ratio (shorter side -> 512), then ToTensor
    trans_resize_2 = transforms.Resize(512)
    trans_compose = transforms.Compose([trans_resize_2, trans_totensor])  # PIL -> PIL -> tensor
    img_resize_2 = trans_compose(img)
    print(f"img_resize_2.shape: {img_resize_2.shape}")
    writer.add_image("Resize_2", img_resize_2, 0)

    # 5. RandomCrop: a different piece each call
    trans_random = transforms.RandomCrop(args.crop_size)
    trans_compose_2 = transforms.Compose([trans_random, trans_totensor])
    for i in range(10):
        img_crop = trans_compose_2(img)
        writer.add_image("RandomCrop", img_crop, i)
    print(f"RandomCrop: 10 crops, img_crop.shape: {img_crop.shape}")

    writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
