"""Pictures of what a classifier learned, for TensorBoard's Images tab.

- :func:`confusion_figure`: the confusion matrix, true class per row, predicted per column,
  the count in every cell;
- :func:`prediction_grid`: a fixed set of test images, each captioned with the predicted and
  the true class, the wrong ones in red;
- :func:`topk_figure`: one picture, what the network saw of it, and its top-k classes.

Each returns a matplotlib ``Figure`` for ``SummaryWriter.add_figure``, which renders it (Agg,
no window) and closes it. They are built with ``matplotlib.figure.Figure``, not pyplot: no
global state, and no GUI backend needed on a server. Sizes are fixed (inches at :data:`DPI`)
so the images line up epoch after epoch.
"""
from __future__ import annotations

import functools
import math
import sys
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
CONFUSION_INCHES = (6.4, 6.4)      # 640 x 640 pixels
GRID_COLUMNS = 4
CELL_PIXELS = 128                  # each 32x32 test image shown 4x larger
FRAME_PIXELS, GAP_PIXELS, CAPTION_PIXELS = 4, 8, 40    # around, between and above each
TOPK_INCHES = (9.0, 3.0)           # 900 x 300 pixels
RIGHT, WRONG = "#1a7f37", "#cf222e"
# Class names are folder names: a learner of a Chinese course may well write them in Chinese,
# which matplotlib's default font (DejaVu Sans) cannot draw. These fonts can, where installed.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC",
             "Hiragino Sans GB", "Heiti SC", "Arial Unicode MS")


def _new_figure(inches: tuple[float, float]) -> Figure:
    # imported on first use: half a second that a process drawing nothing (a lesson, a
    # torchrun worker other than rank 0) does not spend
    from matplotlib.figure import Figure
    return Figure(figsize=inches, dpi=DPI)


@functools.cache
def _installed_cjk_fonts() -> tuple[str, ...]:
    from matplotlib import font_manager
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return tuple(name for name in CJK_FONTS if name in installed)


@functools.cache
def _default_font_draws() -> frozenset[int]:
    """The characters matplotlib's default font, DejaVu Sans, has glyphs for: Latin with its
    accents (café, guêpes, ü), Greek, Cyrillic..., but no Chinese."""
    from matplotlib import font_manager
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    return frozenset(font_manager.get_font(path).get_charmap())


def _undrawn(text: str) -> bool:
    return not text.isascii() and any(ord(c) not in _default_font_draws()
                                       for c in text if c.isprintable() and not c.isspace())


def _text_style(*texts: str) -> dict:
    """``fontfamily``: the default font, then an installed CJK font for the glyphs it lacks,
    when ``texts`` (class names, file names) hold any; else nothing (the default, faster)."""
    undrawn = tuple(text for text in texts if _undrawn(text))
    if not undrawn:
        return {}
    if not _installed_cjk_fonts():
        _no_font_note(undrawn)
    return {"fontfamily": ["DejaVu Sans", *_installed_cjk_fonts()]}


@functools.cache
def _no_font_note(texts: tuple[str, ...]) -> None:
    """Say once, instead of matplotlib's warning for every missing glyph of every picture,
    that the pictures will show boxes for these names, and how to get a font that draws them."""
    warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
    print(f"note: no font installed here draws {', '.join(texts[:3])}: TensorBoard's pictures "
          "show boxes for them. Install a CJK font (Debian/Ubuntu: apt install fonts-noto-cjk; "
          "then rm -rf ~/.cache/matplotlib) to see the names", file=sys.stderr)


def confusion_figure(matrix: torch.Tensor, classes: list[str], title: str = "") -> Figure:
    """The confusion matrix ``matrix[true, predicted]`` (counts) as a figure.

    Each cell shows its count; its colour is the count's share of its row (of that class's
    test images), so a class with few images is as readable as one with many. The diagonal
    is what the model gets right.
    """
    counts = torch.as_tensor(matrix).to(torch.int64).cpu()
    n = len(classes)
    if counts.shape != (n, n):
        raise ValueError(f"a confusion matrix of {n} classes is {n}x{n}, not "
                         f"{tuple(counts.shape)}")
    rows = counts.sum(1, keepdim=True).clamp(min=1)
    share = (counts / rows).numpy()
    style = _text_style(title, *classes)
    fig = _new_figure(CONFUSION_INCHES)
    ax = fig.add_subplot()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", rotation_mode="anchor", **style)
    ax.set_yticks(range(n), classes, **style)
    ax.set_xlabel("predicted class", **style)
    ax.set_ylabel("true class", **style)
    size = 9 if n <= 10 else max(4, 90 // n)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=size,
                    color="white" if share[i, j] > 0.5 else "black")
    total, right = int(counts.sum()), int(counts.trace())
    heading = f"{right} of {total} test images right ({right / max(total, 1):.1%})"
    ax.set_title(f"{title}\n{heading}" if title else heading, **style)
    fig.subplots_adjust(left=0.2, right=0.95, bottom=0.2, top=0.88)   # room for the names
    return fig


def prediction_grid(images: torch.Tensor, predicted: list[int], true: list[int],
                    classes: list[str], title: str = "") -> Figure:
    """``images`` (uint8 ``[N, 3, H, W]``, as stored) in a grid of :data:`GRID_COLUMNS`,
    each captioned with the predicted class over the true one: green when right, red with a
    thick red frame when wrong.

    The grid is one picture (the images enlarged and framed in numpy) on one set of axes:
    drawing 16 small axes each epoch would cost a second, a tenth of a quick-start epoch.
    """
    k, _, h, w = images.shape
    cols = GRID_COLUMNS
    rows = math.ceil(k / cols)
    scale, frame, gap = CELL_PIXELS // max(h, w), FRAME_PIXELS, GAP_PIXELS
    cell_w, cell_h = w * scale + 2 * frame, h * scale + 2 * frame
    pitch_x, pitch_y = cell_w + gap, cell_h + gap + CAPTION_PIXELS
    mosaic = np.full((rows * pitch_y, cols * pitch_x - gap, 3), 255, dtype=np.uint8)
    style = _text_style(title, *classes)
    fig = _new_figure((mosaic.shape[1] / DPI, mosaic.shape[0] / DPI + 0.4))
    ax = fig.add_axes((0, 0, 1, mosaic.shape[0] / DPI / fig.get_figheight()))
    wrong = 0
    for n, (image, p, t) in enumerate(zip(images, predicted, true)):
        ok = p == t
        wrong += not ok
        colour = RIGHT if ok else WRONG
        y0, x0 = (n // cols) * pitch_y + CAPTION_PIXELS, (n % cols) * pitch_x
        cell = mosaic[y0:y0 + cell_h, x0:x0 + cell_w]
        cell[:] = _rgb(colour) if not ok else 255
        if ok:                                          # a thin frame: the cell's outline
            cell[[0, -1]] = cell[:, [0, -1]] = _rgb(colour)
        picture = image.permute(1, 2, 0).cpu().numpy()
        cell[frame:-frame, frame:-frame] = picture.repeat(scale, 0).repeat(scale, 1)
        ax.text(x0 + cell_w / 2, y0 - 4, f"{'right' if ok else 'WRONG'}: {classes[p]}\n"
                f"true: {classes[t]}", ha="center", va="bottom", color=colour, fontsize=10,
                **style)
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    heading = f"predicted / true class of {k} fixed test images: {wrong} wrong"
    fig.suptitle(f"{title}: {heading}" if title else heading, **style)
    return fig


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def topk_figure(picture, seen: torch.Tensor, probs: list[float], names: list[str],
                title: str, about: str = "") -> Figure:
    """One classified picture: the picture (a PIL image; ``about`` it, e.g. its size as read),
    what the network saw of it (``seen``: a float ``[3, H, W]`` in [0, 1]) and its top-k
    classes with their probabilities."""
    style = _text_style(title, *names)
    fig = _new_figure(TOPK_INCHES)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.6]})
    axes[0].imshow(picture)
    axes[0].set_title(f"the picture ({about})" if about else "the picture", fontsize=10, **style)
    axes[1].imshow(seen.clamp(0, 1).permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
    axes[1].set_title(f"what the network sees ({seen.shape[2]}x{seen.shape[1]})", fontsize=10,
                      **style)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    bars = axes[2]
    positions = list(range(len(names)))[::-1]          # the most likely on top
    bars.barh(positions, probs, color=[RIGHT] + ["#8c959f"] * (len(names) - 1))
    bars.set_yticks(positions, names, **style)
    bars.set_xlim(0, 1)
    bars.set_xlabel("probability (softmax)", **style)
    for y, p in zip(positions, probs):
        bars.text(min(p + 0.02, 0.8), y, f"{p:.1%}", va="center", fontsize=9)
    bars.set_title(f"top {len(names)} classes", fontsize=10, **style)
    fig.suptitle(title, **style)
    _layout(fig)
    return fig


def _layout(fig: Figure) -> None:
    """Tight layout, without the warning matplotlib gives when a long name cannot fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
