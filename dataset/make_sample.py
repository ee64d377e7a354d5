"""Make the embedded ants/bees sample: small synthetic pictures in the course's two layouts.

The course's lessons 05-09 use the ants/bees photos of PyTorch's transfer-learning tutorial
(hymenoptera_data), which cannot be shipped here, so this script draws stand-ins with PIL:

- ants: a dark three-part body (head, thorax, gaster) with six legs and elbowed antennae,
  on sand, soil or grass;
- bees: a yellow body with black stripes, a furry thorax and pale see-through wings,
  among flowers;

each at its own position, size, angle, colour and background. It writes two layouts:

    hymenoptera_sample/{train,val}/{ants,bees}/*.jpg   folder name = label (lesson 06, first layout)
    practice_sample/train/{ants,bees}_image/*.jpg      images here, label .txt files in the twin
                                                       *_label/ folders, which p06_dataset.py
                                                       writes (lesson 06, second layout)

The practice images are the hymenoptera train images, as in the course's 练手数据集. The file
names follow the real set's style and include the two the course opens by name:
train/ants/0013035.jpg and train/bees/16838648_415acd9e3f.jpg.

Deterministic: a fixed seed per image, so every run writes the same bytes (a test checks the
committed files against a fresh run). Regenerate the committed copy with:

    python dataset/make_sample.py
"""
from __future__ import annotations

import argparse
import io
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SEED = 20240605
WIDTH, HEIGHT = 200, 150          # the saved size (the real photos are larger, e.g. 500x375)
SS = 2                            # drawn at 2x, then downsampled: smooth edges
JPEG_QUALITY = 85
COUNTS = {"train": 10, "val": 5}  # images per class and split
CLASSES = ("ants", "bees")
# File names the course opens by name (lessons 06-09 and the video of lesson 07).
FIXED_NAMES = {("train", "ants"): "0013035.jpg", ("train", "bees"): "16838648_415acd9e3f.jpg"}

Point = tuple[float, float]


# --- geometry helpers --------------------------------------------------------------------

def ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0,
            n: int = 40) -> list[Point]:
    """A polygon approximating an ellipse rotated by ``angle`` radians."""
    ca, sa = math.cos(angle), math.sin(angle)
    pts = []
    for k in range(n):
        t = 2 * math.pi * k / n
        x, y = rx * math.cos(t), ry * math.sin(t)
        pts.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
    return pts


def shade(rgb, delta: int) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c + delta))) for c in rgb)


def smooth_noise(rng: np.random.Generator, w: int, h: int, cells: tuple[int, int],
                 amplitude: float) -> np.ndarray:
    """Low-frequency noise in [-amplitude, amplitude], shape (h, w): a coarse grid, upscaled."""
    grid = rng.uniform(0, 255, (cells[1], cells[0])).astype(np.uint8)
    big = Image.fromarray(grid, "L").resize((w, h), Image.Resampling.BICUBIC)
    return (np.asarray(big, dtype=np.int16) - 128) * (amplitude / 128)


def base_image(rng, w, h, colour, cells=(6, 5), amplitude=28.0, grain=10) -> Image.Image:
    """A colour field with soft patches and fine grain."""
    arr = np.empty((h, w, 3), dtype=np.float32)
    patches = smooth_noise(rng, w, h, cells, amplitude)
    for c in range(3):
        arr[..., c] = colour[c] + patches
    arr += rng.integers(-grain, grain + 1, (h, w, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


# --- backgrounds -------------------------------------------------------------------------

def ant_background(rng: np.random.Generator, w: int, h: int, sand: bool = False) -> Image.Image:
    kind = int(rng.integers(0, 5))                  # sand 2/5, soil 2/5, grass 1/5
    if sand:
        kind = 0
    if kind <= 1:                                   # sand, with pebbles
        colour = (int(rng.integers(190, 225)), int(rng.integers(160, 190)), int(rng.integers(105, 135)))
        img = base_image(rng, w, h, colour, grain=14)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(10, 25))):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(2, 7) * SS
            draw.polygon(ellipse(x, y, r, r * rng.uniform(0.6, 1.0), rng.uniform(0, math.pi), 12),
                         fill=shade(colour, int(rng.integers(-50, 25))))
    elif kind <= 3:                                 # dark soil
        colour = (int(rng.integers(105, 135)), int(rng.integers(80, 100)), int(rng.integers(55, 70)))
        img = base_image(rng, w, h, colour, amplitude=22, grain=12)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(6, 14))):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(3, 9) * SS
            draw.polygon(ellipse(x, y, r, r * 0.7, rng.uniform(0, math.pi), 12),
                         fill=shade(colour, int(rng.integers(-30, 40))))
    else:                                           # grass: blades over green
        colour = (int(rng.integers(70, 105)), int(rng.integers(125, 160)), int(rng.integers(45, 70)))
        img = base_image(rng, w, h, colour, amplitude=30, grain=8)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(40, 70))):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            length, a = rng.uniform(15, 45) * SS, rng.uniform(-0.5, 0.5) - math.pi / 2
            draw.line([(x, y), (x + length * math.cos(a), y + length * math.sin(a))],
                      fill=shade(colour, int(rng.integers(-45, 45))), width=int(rng.integers(2, 5)) * SS)
    return img.filter(ImageFilter.GaussianBlur(1.5 * SS))   # a little out of focus


FLOWER_COLOURS = [(232, 120, 170), (190, 120, 215), (245, 245, 240), (250, 170, 60),
                  (215, 70, 110), (150, 150, 235), (250, 200, 215)]


def bee_background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Leaves and blurred blossoms, with one or two sharp flowers in front."""
    colour = (int(rng.integers(60, 110)), int(rng.integers(120, 160)), int(rng.integers(60, 100)))
    img = base_image(rng, w, h, colour, cells=(5, 4), amplitude=35, grain=6)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(10, 18))):     # far blossoms
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(15, 35) * SS
        c = FLOWER_COLOURS[int(rng.integers(0, len(FLOWER_COLOURS)))]
        draw.polygon(ellipse(x, y, r, r * rng.uniform(0.6, 1.0), rng.uniform(0, math.pi)), fill=c)
    img = img.filter(ImageFilter.GaussianBlur(6 * SS))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):       # near flowers
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        petal = rng.uniform(22, 40) * SS
        c = FLOWER_COLOURS[int(rng.integers(0, len(FLOWER_COLOURS)))]
        n = int(rng.integers(5, 9))
        turn = rng.uniform(0, math.pi)
        for k in range(n):
            a = turn + 2 * math.pi * k / n
            draw.polygon(ellipse(cx + 0.6 * petal * math.cos(a), cy + 0.6 * petal * math.sin(a),
                                 0.65 * petal, 0.3 * petal, a), fill=shade(c, int(rng.integers(-20, 10))))
        draw.polygon(ellipse(cx, cy, 0.28 * petal, 0.28 * petal), fill=(235, 190, 40))
        draw.polygon(ellipse(cx, cy, 0.16 * petal, 0.16 * petal), fill=(200, 140, 30))
    return img.filter(ImageFilter.GaussianBlur(0.8 * SS))


# --- insects, drawn facing right on a transparent sprite ----------------------------------

def ant_sprite(rng: np.random.Generator) -> Image.Image:
    sprite = Image.new("RGBA", (240, 170), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sprite)
    body = (int(rng.integers(15, 80)), int(rng.integers(10, 40)), int(rng.integers(5, 25)))
    leg = shade(body, -5)
    # six legs from the thorax, three each side, two segments each
    for i, x in enumerate((128, 141, 154)):
        for side in (-1, 1):
            forward = (-38, -8, 30)[i] + rng.uniform(-6, 6)
            knee = (x + forward * 0.4, 80 + side * rng.uniform(24, 30))
            foot = (x + forward, 80 + side * rng.uniform(44, 56))
            draw.line([(x, 80), knee, foot], fill=leg + (255,), width=4, joint="curve")
    # elbowed antennae
    for side in (-1, 1):
        elbow = (207, 80 + side * rng.uniform(22, 30))
        tip = (232, 80 + side * rng.uniform(30, 45))
        draw.line([(196, 80 + side * 8), elbow, tip], fill=leg + (255,), width=3, joint="curve")
    draw.polygon(ellipse(78, 80, 40, 27), fill=body + (255,))                 # gaster
    draw.polygon(ellipse(116, 80, 7, 8), fill=body + (255,))                  # petiole
    draw.polygon(ellipse(141, 80, 24, 10), fill=body + (255,))                # thorax
    draw.polygon(ellipse(186, 80, 18, 16), fill=body + (255,))                # head
    draw.polygon(ellipse(205, 80 - 6, 7, 3, 0.5), fill=body + (255,))         # mandibles
    draw.polygon(ellipse(205, 80 + 6, 7, 3, -0.5), fill=body + (255,))
    shine = shade(body, 60) + (90,)                                           # highlights
    draw.polygon(ellipse(74, 66, 20, 4, -0.15), fill=shine)
    draw.polygon(ellipse(190, 72, 6, 3), fill=shine)
    return sprite


def bee_sprite(rng: np.random.Generator) -> Image.Image:
    w, h = 240, 200
    sprite = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sprite)
    black = (25, 20, 15, 255)
    yellow = (int(rng.integers(220, 250)), int(rng.integers(165, 205)), int(rng.integers(20, 60)))
    cy = 100
    for i, x in enumerate((135, 150, 165)):                                   # legs
        for side in (-1, 1):
            knee = (x - 10 + 8 * i, cy + side * 32)
            foot = (x - 20 + 12 * i, cy + side * 50)
            draw.line([(x, cy), knee, foot], fill=black, width=4, joint="curve")
    # abdomen: yellow with black stripes, clipped to the abdomen's outline
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).polygon(ellipse(85, cy, 58, 36), fill=255)
    stripes = Image.new("RGBA", (w, h), yellow + (255,))
    sd = ImageDraw.Draw(stripes)
    phase = rng.uniform(-4, 4)
    for x0 in (45, 75, 105):
        sd.rectangle([x0 + phase, 0, x0 + phase + 14, h], fill=black)
    sd.rectangle([0, 0, 36 + phase, h], fill=black)                           # dark tail tip
    sprite.paste(stripes, (0, 0), mask)
    draw.polygon([(29, cy - 4), (14, cy), (29, cy + 4)], fill=black)          # sting
    fuzz = (int(rng.integers(120, 170)), int(rng.integers(85, 120)), 35, 255)
    draw.polygon(ellipse(152, cy, 27, 27), fill=fuzz)                         # furry thorax
    draw.polygon(ellipse(152, cy, 17, 17), fill=(60, 45, 25, 255))
    draw.polygon(ellipse(190, cy, 17, 19), fill=black)                        # head
    draw.polygon(ellipse(194, cy - 9, 7, 6), fill=(70, 60, 55, 255))         # eyes
    draw.polygon(ellipse(194, cy + 9, 7, 6), fill=(70, 60, 55, 255))
    for side in (-1, 1):                                                      # antennae
        draw.line([(202, cy + side * 8), (220, cy + side * 22), (232, cy + side * 20)],
                  fill=black, width=3, joint="curve")
    # pale, see-through wings over the back
    wings = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    wd = ImageDraw.Draw(wings)
    spread = rng.uniform(0.35, 0.7)
    for side in (-1, 1):
        a = math.pi + side * spread
        wx, wy = 148 + 45 * math.cos(a), cy + 45 * math.sin(a)
        wd.polygon(ellipse(wx, wy, 48, 20, a), fill=(225, 238, 250, 120))
        wd.line(ellipse(wx, wy, 48, 20, a) + [ellipse(wx, wy, 48, 20, a)[0]],
                fill=(160, 170, 185, 200), width=2)
    return Image.alpha_composite(sprite, wings)


def picture(kind: str, rng: np.random.Generator, sand: bool = False) -> Image.Image:
    """One ``kind`` ("ants" or "bees") picture, WIDTH x HEIGHT RGB; an ant on sand if ``sand``."""
    w, h = WIDTH * SS, HEIGHT * SS
    background = (ant_background(rng, w, h, sand) if kind == "ants"
                  else bee_background(rng, w, h))
    sprite = ant_sprite(rng) if kind == "ants" else bee_sprite(rng)
    scale = rng.uniform(0.9, 1.5) * SS * 0.55
    sprite = sprite.resize((round(sprite.width * scale), round(sprite.height * scale)),
                           Image.Resampling.BICUBIC)
    sprite = sprite.rotate(rng.uniform(0, 360), resample=Image.Resampling.BICUBIC, expand=True)
    # a soft shadow under the insect, then the insect, anywhere with its middle in the frame
    x = int(rng.integers(int(0.2 * w), int(0.8 * w))) - sprite.width // 2
    y = int(rng.integers(int(0.2 * h), int(0.8 * h))) - sprite.height // 2
    alpha = sprite.getchannel("A")
    shadow = alpha.point(lambda a: a * 90 // 255).filter(ImageFilter.GaussianBlur(4 * SS))
    background.paste((0, 0, 0), (x + 3 * SS, y + 4 * SS), shadow)
    background.paste(sprite, (x, y), sprite)
    return background.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)


# --- the two layouts ---------------------------------------------------------------------

def file_name(split: str, kind: str, i: int, rng: np.random.Generator) -> str:
    """A name in the real set's style, e.g. 5650366_e22b7e1065.jpg; the course's names first."""
    if i == 0 and (split, kind) in FIXED_NAMES:
        return FIXED_NAMES[(split, kind)]
    number = int(rng.integers(1_000_000, 3_000_000_000))
    return f"{number}_{int(rng.integers(0, 16 ** 10)):010x}.jpg"


def jpeg_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make(out: Path) -> list[Path]:
    """Write both layouts under ``out``; return the files written, in order."""
    written = []
    for s, split in enumerate(COUNTS):
        for k, kind in enumerate(CLASSES):
            for i in range(COUNTS[split]):
                # one generator per picture: each image depends only on its own seed
                rng = np.random.default_rng([SEED, s, k, i])
                name = file_name(split, kind, i, rng)
                # the course's ant, which lessons 07-09 show, on light sand: lesson 09's
                # Normalize((x - 0.5) / 0.5) turns a dark picture (most pixels below 0.5) black
                course_ant = kind == "ants" and name == FIXED_NAMES.get((split, kind))
                data = jpeg_bytes(picture(kind, rng, sand=course_ant))
                targets = [out / "hymenoptera_sample" / split / kind / name]
                if split == "train":
                    targets.append(out / "practice_sample" / split / f"{kind}_image" / name)
                for path in targets:
                    write_atomic(path, data)
                    written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder to write hymenoptera_sample/ and practice_sample/ into "
                             "(default: this script's folder, dataset/)")
    args = parser.parse_args(argv)
    written = make(args.out)
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} images ({total / 1024:.0f} KiB) under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
