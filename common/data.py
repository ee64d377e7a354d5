"""Data for the lessons: CIFAR-10 (real or synthetic), the embedded image folders, and
the fast in-memory loader used for training.

- :func:`cifar10` — torchvision's CIFAR-10 under ``--data-root``, downloaded when missing
  from several sources (``--mirror``, ``$CIFAR10_MIRROR``, torchvision's URL, known mirrors),
  resumably, md5-checked; when every source fails it raises one clear :class:`UserError`.
- :class:`FakeCIFAR10` — a CIFAR-shaped synthetic set for ``--fake-data``: same type of
  items (PIL image, int), same ``data``/``targets``/``classes`` attributes, and learnable
  (each class has its own colour and stripe pattern), so training on it shows real progress.
- :func:`image_folder` — ``<folder>/<split>/<class>/*.jpg`` as a torchvision ``ImageFolder``.
- :class:`InMemoryLoader` — batches straight from one uint8 tensor on the training device:
  no per-image PIL work, no worker processes, one host-to-device copy in all.
"""
from __future__ import annotations

import contextlib
import errno
import math
import os
import shutil
import sys
import tarfile
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock, Timeout
from PIL import Image, ImageOps
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import CIFAR10, ImageFolder, VisionDataset
from torchvision.datasets.utils import check_integrity, extract_archive

from common.download import amount, fetch, partial_path
from common.cli import UserError, reason
from common import disk
from common.model import CIFAR10_CLASSES

# Sizes of the synthetic train and test sets: small enough for a laptop CPU in seconds.
FAKE_TRAIN_SIZE = 2000
FAKE_TEST_SIZE = 500


# Where cifar-10-python.tar.gz is fetched from, after --mirror and $CIFAR10_MIRROR: torchvision's
# own URL, then mirrors of the very same file (pytorch/vision#9536: the first can crawl for
# an hour). Whatever a source serves is used only if its md5 is torchvision's CIFAR10.tgz_md5.
CIFAR10_MIRRORS = ("https://dataset.bj.bcebos.com/cifar/cifar-10-python.tar.gz",)
MIRROR_ENV = "CIFAR10_MIRROR"
# Held while CIFAR-10 is fetched and unpacked into a --data-root (a hidden file left there).
DOWNLOAD_LOCK = ".cifar-10-download.lock"
# Disk space a download takes: the archive (torchvision's file, 170,498,071 bytes), and what
# it unpacks to: cifar-10-batches-py/'s eight files, six batches of 10000 pickled images and
# two small ones, 186,214,114 bytes in all, each taking up to a 4 KiB block more on disk.
# The archive stays beside the copy.
CIFAR10_ARCHIVE_BYTES = 170_498_071
CIFAR10_UNPACKED_BYTES = 186_214_114 + 8 * 4096
DATA_ROOT = "--data-root DIR"      # how to put CIFAR-10 elsewhere, in an error's hint


def cifar10_sources(mirrors=()) -> list[str]:
    """The URLs to try, in order: ``mirrors`` (``--mirror``), ``$CIFAR10_MIRROR`` (URLs
    separated by spaces or commas), torchvision's ``CIFAR10.url``, :data:`CIFAR10_MIRRORS`."""
    env = os.environ.get(MIRROR_ENV, "").replace(",", " ").split()
    sources = [*(mirrors or ()), *env, CIFAR10.url, *CIFAR10_MIRRORS]
    # a file on this machine may be named by its path: urllib reads it as a file:// URL
    return list(dict.fromkeys(u if "://" in u else Path(u).absolute().as_uri()
                              for u in sources))


def cifar10(root: Path, train: bool, transform=None, *, download: bool = True,
            mirrors=()) -> CIFAR10:
    """torchvision's CIFAR-10 in ``root``; downloads it when missing (``download=True``).

    The course calls ``CIFAR10(root, train, transform, download=True)``. This reads the same
    files with the same class, but fetches the archive itself (:func:`cifar10_sources`, with
    :func:`common.download.fetch`: resumable, with timeouts, md5-checked before it is used) and
    unpacks it into a temporary folder renamed into place, so neither the archive nor
    ``cifar-10-batches-py/`` ever exists half-written. An unpacked, complete copy is used with
    no network access at all; every failure is one :class:`UserError` line.
    """
    root = Path(root)
    try:
        return CIFAR10(root=str(root), train=train, transform=transform, download=False)
    except RuntimeError:                 # "Dataset not found or corrupted": fetch it
        pass
    except OSError as e:
        raise UserError(f"cannot read CIFAR-10 in {root}: {reason(e)}") from None
    if not download:
        raise UserError(f"{_not_there(root)} and download is off. Place "
                        f"{CIFAR10.filename} (from {CIFAR10.url}) in {root}, or run with "
                        "--fake-data")
    made = [d for d in (root, *root.absolute().parents) if not d.exists()]  # mkdir -p makes these
    try:
        with _download_lock(root, made):
            if not _cifar10_complete(root):     # another process may have fetched it meanwhile
                _fetch_cifar10(root, mirrors)
    except KeyboardInterrupt:
        archive, part = root / CIFAR10.filename, partial_path(root / CIFAR10.filename)
        if archive.exists():
            kept = f"{archive} is whole and the next run unpacks it"
        elif part.exists():
            kept = f"{part} keeps {amount(part.stat().st_size)} and the next run resumes it"
        else:
            kept = "nothing was kept"
        raise KeyboardInterrupt(f"interrupted: the CIFAR-10 download stopped; {kept}") from None
    return CIFAR10(root=str(root), train=train, transform=transform, download=False)


@contextlib.contextmanager
def _download_lock(root: Path, made: list[Path]):
    """Hold ``root``'s download lock (made with ``root``): one download at a time, since the
    processes of a torchrun launch, or two runs started together, share ``--data-root``.

    A download that brought nothing removes, before it lets go of the lock, the lock file and
    the folders in ``made`` that are still empty: done after, it could pull the root from under
    the next process, which would already hold the lock and be downloading into it.
    """
    lock = FileLock(root / DOWNLOAD_LOCK)
    for attempt in range(10):
        try:
            # Made first, so that the check below finds it there and leaves it: the check
            # removes the folders it made, and would pull the root from under another's lock.
            disk.make_dir(root, DATA_ROOT)
            disk.need_writable(root, DATA_ROOT)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                print(f"waiting for another process downloading CIFAR-10 into {root} ...")
                lock.acquire()
            if not (root / DOWNLOAD_LOCK).exists():   # the holder's failed download removed it
                lock.release()                         # (filelock 4 itself tries again then)
                continue
        except (FileNotFoundError, FileExistsError):
            continue     # another's download failed and removed the root it made: make it again
        except disk.WriteError as e:
            if e.errno != errno.ENOENT:
                raise
            continue     # the same, while the root was being checked
        break
    else:
        raise UserError(f"cannot lock {root / DOWNLOAD_LOCK}: its folder keeps disappearing")
    try:
        yield
    finally:
        try:
            if root.is_dir() and [p.name for p in root.iterdir()] == [DOWNLOAD_LOCK]:
                (root / DOWNLOAD_LOCK).unlink()  # nothing came: no lock left behind either
            for folder in made:                  # no empty folder left by a failed attempt
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
        finally:
            lock.release()


def _cifar10_complete(root: Path) -> bool:
    """Whether ``root/cifar-10-batches-py/`` holds every file, each with torchvision's md5."""
    return not _cifar10_damaged(root)


def _cifar10_damaged(root: Path) -> list[str]:
    """The files of ``root/cifar-10-batches-py/`` that are missing or fail their md5."""
    folder = root / CIFAR10.base_folder
    return [name for name, md5 in (*CIFAR10.train_list, *CIFAR10.test_list)
            if not check_integrity(str(folder / name), md5)]


def _not_there(root: Path) -> str:
    """"CIFAR-10 is not in root", or, where its folder is there, what of it is wrong."""
    folder = root / CIFAR10.base_folder
    damaged = _cifar10_damaged(root) if folder.is_dir() else []
    if not damaged:
        return f"CIFAR-10 is not in {root}"
    return (f"CIFAR-10 in {folder} is incomplete or damaged ({', '.join(damaged)}: missing, "
            "or failing torchvision's md5 check)")


def _fetch_cifar10(root: Path, mirrors) -> None:
    """``root/cifar-10-batches-py/``, from ``root/cifar-10-python.tar.gz`` (fetched if need be)."""
    archive = root / CIFAR10.filename
    md5 = CIFAR10.tgz_md5                  # the library's value, read now: never a copy
    if archive.exists() and not check_integrity(str(archive), md5):
        # Not the archive: most likely a download torchvision broke off under this name.
        # It becomes the partial file, resumed from its end (and deleted if that fails md5).
        part = partial_path(archive)
        print(f"note: {archive} fails torchvision's md5 check for CIFAR-10's archive: it is "
              "not used, only resumed from as a partial download", file=sys.stderr)
        if part.exists() and part.stat().st_size >= archive.stat().st_size:
            archive.unlink()               # keep the longer of the two
        else:
            os.replace(archive, part)
    part = partial_path(archive)
    have = part.stat().st_size if part.exists() else 0          # resumed, not fetched again
    needed = CIFAR10_UNPACKED_BYTES + (0 if archive.exists() else CIFAR10_ARCHIVE_BYTES - have)
    unpacked = f"its unpacked copy, about {disk.megabytes(CIFAR10_UNPACKED_BYTES)}"
    disk.need_space(root, needed, f"CIFAR-10 ({unpacked})" if archive.exists() else
                    f"CIFAR-10 (its archive, {disk.megabytes(CIFAR10_ARCHIVE_BYTES)}, and {unpacked})",
                    DATA_ROOT)
    if not archive.exists():
        sources = cifar10_sources(mirrors)
        got, failures = fetch(sources, archive, md5, option=DATA_ROOT)
        if got is None:
            tried = "; ".join(f"{url} ({why})" for url, why in failures)
            part = partial_path(archive)
            if part.exists():
                tried += f"; {part} keeps {amount(part.stat().st_size)} for the next run to resume"
            raise UserError(
                f"{_not_there(root)} and no source could give it: {tried}. Download "
                f"{CIFAR10.filename} from any of them yourself into {root}/ (it is checked "
                f"and unpacked on the next run), or name another copy with --mirror URL, or "
                "run with --fake-data")
    for left in root.glob(".unpacking-*"):  # what a killed run was unpacking
        shutil.rmtree(left, ignore_errors=True)
    unpacking = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root))
    try:
        extract_archive(str(archive), str(unpacking))
        folder = root / CIFAR10.base_folder
        if folder.exists():                 # an incomplete copy (the check above failed)
            shutil.rmtree(folder)
        os.replace(unpacking / CIFAR10.base_folder, folder)
    except (OSError, EOFError, zlib.error, tarfile.TarError) as e:   # a gzip cut short, or bad
        if disk.is_write_failure(e):      # a full disk: nothing half-unpacked is left
            e.filename = None             # (a file in the temporary folder, now gone)
            raise disk.failed(root / CIFAR10.base_folder, e, DATA_ROOT).with_hint(
                f"{archive.name} is whole and the next run unpacks it") from None
        raise UserError(f"cannot unpack {archive}: {reason(e)}") from None
    finally:
        shutil.rmtree(unpacking, ignore_errors=True)


class FakeCIFAR10(CIFAR10):
    """A CIFAR-10-shaped synthetic set: ``size`` 32x32 RGB images, 10 learnable classes.

    It *is* a ``CIFAR10`` (same ``__getitem__``: PIL image through ``transform``), built in
    memory from a seed instead of read from disk, so every lesson's code path is the real one.
    """

    def __init__(self, train: bool = True, size: int | None = None, transform=None,
                 seed: int = 0):
        VisionDataset.__init__(self, root=None, transform=transform)
        self.train = train
        size = size if size is not None else (FAKE_TRAIN_SIZE if train else FAKE_TEST_SIZE)
        rng = np.random.default_rng(seed * 2 + (0 if train else 1))
        targets = rng.integers(0, 10, size)
        if not train and size:
            targets[0] = 3        # a cat first, as in the real test set: lesson 10 prints 3, cat
        self.data = _class_images(targets, rng)          # uint8 [N, 32, 32, 3], as CIFAR10
        self.targets = targets.tolist()
        self.classes = list(CIFAR10_CLASSES)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train else 'Test'} (synthetic, --fake-data)"


def _class_images(targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One image per target: the class's colour, modulated by its own stripes, plus noise."""
    palette = np.array([[230, 60, 60], [60, 200, 60], [60, 90, 230], [230, 210, 50],
                        [200, 60, 200], [50, 200, 210], [240, 140, 40], [140, 80, 40],
                        [150, 150, 150], [250, 250, 250]], dtype=np.float32)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32) / 32
    k = np.arange(10, dtype=np.float32)[:, None, None]
    angle, freq = k * math.pi / 10, 1 + k % 3
    stripes = 0.5 + 0.5 * np.sin(2 * math.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    images = palette[targets][:, None, None, :] * (0.3 + 0.7 * stripes[targets][..., None])
    images += rng.normal(0, 40, images.shape).astype(np.float32)
    return np.clip(images, 0, 255).astype(np.uint8)


def synthetic_note() -> str:
    """The one line a ``--fake-data`` run prints first: what the data is, and how big."""
    return (f"--fake-data: synthetic CIFAR-shaped images, not CIFAR-10: {FAKE_TRAIN_SIZE} to "
            f"train and {FAKE_TEST_SIZE} to test (CIFAR-10 has 50000 and 10000), 10 classes "
            "drawn as coloured stripes; nothing is downloaded")


def announce_synthetic(args) -> None:
    """Say once, at the start, that a ``--fake-data`` run's numbers are not the video's."""
    if getattr(args, "fake_data", False):
        print(synthetic_note())


def cifar10_or_fake(root: Path, train: bool, transform=None, *, fake: bool,
                    seed: int = 0, mirrors=()) -> CIFAR10:
    """``--fake-data`` picks :class:`FakeCIFAR10`, otherwise the real set (downloaded if
    missing, trying ``mirrors`` first)."""
    if fake:
        return FakeCIFAR10(train=train, transform=transform, seed=seed)
    return cifar10(root, train=train, transform=transform, mirrors=mirrors)


def cifar10_test_loader(args, batch_size: int = 64, *, drop_last: bool = False) -> DataLoader:
    """The CIFAR-10 test set (``--data-root``/``--fake-data``) as ToTensor images, in order,
    in batches: the data of the layer lessons 14-20."""
    test_set = cifar10_or_fake(args.data_root, train=False, transform=transforms.ToTensor(),
                               fake=args.fake_data, mirrors=args.mirror)
    if drop_last and batch_size > len(test_set):      # not one batch: a loss of 0.0 for nothing
        raise UserError(f"--batch-size {batch_size} is more than the {len(test_set)} test "
                        "images, and drop_last=True drops a batch that is short, so no batch "
                        f"is left to train on: pass --batch-size {len(test_set)} or less")
    return DataLoader(test_set, batch_size=batch_size, drop_last=drop_last,
                      num_workers=args.num_workers)


# A picture you name is your own photo, not a stranger's upload: PIL's guard against
# "decompression bombs" (a warning above 89 megapixels, an error above 179) refused a
# 200-megapixel phone photo and printed a warning for a 108-megapixel one. Up to a gigapixel
# (3 GB once decoded) is read, quietly.
OWN_PICTURE_MAX_PIXELS = 1_000_000_000


def open_picture(path) -> Image.Image:
    """``Image.open`` + ``load`` for the user's own pictures (see
    :data:`OWN_PICTURE_MAX_PIXELS`): the pixels are read here, as a TIFF checks its size
    again when they are."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # PIL warns above MAX_IMAGE_PIXELS and refuses above twice it
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, OWN_PICTURE_MAX_PIXELS // 2
        try:
            image = Image.open(path)
            try:
                image.load()
            except BaseException:
                image.close()
                raise
            return image
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def open_image(path: Path) -> Image.Image:
    """``Image.open`` + ``load`` (reads the pixels, closes the file); a bad path is one
    :class:`UserError` line."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not an image: name a picture file")
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    try:
        with open_picture(path) as img:    # the course's Image.open, for your own pictures
            return img
    # PIL's UnidentifiedImageError is an OSError; a picture past a gigapixel is refused
    except (OSError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image {path}: {reason(e)}") from None


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned the way its EXIF orientation says. A phone stores a photo taken
    upright as the sensor saw it (often sideways) with a tag saying how to turn it; image
    viewers apply it, ``Image.open`` does not, so without this the network sees it sideways."""
    return ImageOps.exif_transpose(image)


def rgb(image: Image.Image) -> Image.Image:
    """``image`` upright (its EXIF orientation), as 3 channels of 8 bits: what the model takes.

    A PNG may be RGBA (4 channels), L (1) or P (palette), which ``convert("RGB")`` turns into
    RGB. A 16-bit grey PNG (mode I;16, or I in Pillow 10) or a float TIFF (F, most often 0 to
    1) it does not scale but cuts at 255: a 16-bit photo came out white, a 0-to-1 one black.
    Those are scaled to 8 bits first (a 32-bit integer TIFF, mode I, is taken as 16-bit
    unless all its values fit in 8).
    """
    sixteen = image.mode.startswith("I;16") or image.mode == "I" and image.format == "PNG"
    image = upright(image)
    if sixteen or image.mode == "I":
        values = np.asarray(image)
        if sixteen or values.max(initial=0) > 255:           # 0..65535 -> 0..255, rounded
            values = (np.clip(values, 0, 65535).astype(np.uint32) * 255 + 32767) // 65535
        image = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if values.max(initial=0) <= 1:
            values = values * 255
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


def upright_rgb_loader(path: str) -> Image.Image:
    """ImageFolder's loader (torchvision's ``pil_loader``: open, RGB), EXIF orientation applied
    and 16-bit pictures scaled (see :func:`rgb`). Opened by its path, not a file object as
    ``pil_loader`` does, so that PIL's error names the file rather than
    ``<_io.BufferedReader name=...>``."""
    with open_picture(path) as img:
        return rgb(img)


def image_folder(folder: Path, split: str, transform=None) -> ImageFolder:
    """``<folder>/<split>/<class>/<image>``: torchvision's ImageFolder, label = folder name."""
    folder = Path(folder)
    if folder.is_file():
        raise UserError(f"{folder} is a file: --image-folder takes the folder that holds "
                        f"train/<class>/<image> and val/<class>/<image>")
    if not folder.is_dir():
        raise UserError(f"image folder not found: {folder}")
    split_dir = folder / split
    if not split_dir.is_dir():
        inside = ""
        if folder.name in ("train", "val") and (folder.parent / split).is_dir():
            inside = f" ({folder} is one of them: name the folder above it, {folder.parent})"
        raise UserError(f"{folder} has no {split}/ folder; expected "
                        f"{folder}/{split}/<class>/<image>{inside}")
    try:
        return ImageFolder(str(split_dir), transform=transform, loader=upright_rgb_loader)
    except FileNotFoundError as e:     # no class folders, or no images in them
        raise UserError(f"{split_dir}: {e}") from None


def image_folder_uint8(folder: Path, split: str, size: int = 32,
                       classes: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """All images of ``<folder>/<split>`` resized to ``size`` x ``size``, as uint8 tensors.

    Returns ``(images [N, 3, size, size] uint8, targets [N] int64, class names)``. With
    ``classes`` given (the training split's), the split must have exactly those classes.
    """
    ds = image_folder(folder, split, transforms.Compose([
        transforms.Resize((size, size)), transforms.PILToTensor()]))
    if classes is not None and list(ds.classes) != list(classes):
        raise UserError(f"{folder}/{split} has classes {ds.classes}, but train/ has {list(classes)}")
    images = []
    for i, (path, _) in enumerate(ds.samples):
        try:
            images.append(ds[i][0])
        # PIL's UnidentifiedImageError is an OSError; a picture past a gigapixel is refused
        except (OSError, Image.DecompressionBombError) as e:
            raise UserError(f"cannot read image {path}: {reason(e)}") from None
    targets = torch.tensor(ds.targets, dtype=torch.int64)
    return torch.stack(images), targets, list(ds.classes)


def cifar_uint8(dataset: CIFAR10) -> tuple[torch.Tensor, torch.Tensor]:
    """A CIFAR10 (or FakeCIFAR10) as ``(images [N, 3, 32, 32] uint8, targets [N] int64)``."""
    images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2)
    return images.contiguous(), torch.tensor(dataset.targets, dtype=torch.int64)


class InMemoryLoader:
    """Batches ``(imgs, targets)`` from uint8 images held in one tensor on ``device``.

    It yields what ``DataLoader(dataset with ToTensor())`` yields — float images in [0, 1],
    ``[B, 3, H, W]``, and int64 targets — but the whole set is copied to the device once and
    each batch is one gather and one divide there, instead of 64 PIL images converted one by
    one on the CPU. ``shuffle`` draws a new order each epoch (from ``generator`` when given).
    ``normalize=(mean, std)`` then does what ``transforms.Normalize([mean] * 3, [std] * 3)``
    does: ``(x - mean) / std``.

    ``rank`` of ``world_size`` processes (torchrun) takes its share of each epoch's order
    (see :func:`shard`): with ``even_steps`` (training) every process makes the same number of
    steps; without it (testing) the single-process batches are dealt out in turn. Either way
    each image is used once per epoch, by one process. Every process must draw the same order:
    give each the same ``generator`` state.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, batch_size: int, *,
                 shuffle: bool = False, device: torch.device | str = "cpu",
                 channels_last: bool = False, generator: torch.Generator | None = None,
                 normalize: tuple[float, float] | None = None,
                 rank: int = 0, world_size: int = 1, even_steps: bool = True):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a uint8 tensor [N, C, H, W]")
        if len(images) != len(targets):
            raise ValueError("images and targets differ in length")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.images = images.to(device).contiguous(memory_format=self.memory_format)
        self.targets = targets.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.normalize = normalize
        self.world_size = world_size
        self.slices = shard(len(targets), batch_size, rank, world_size, even_steps=even_steps)

    def __len__(self) -> int:
        return len(self.slices)

    def __iter__(self):
        order = None
        if self.shuffle:
            order = torch.randperm(len(self.targets), generator=self.generator)
            order = order.to(self.images.device)
        for part in self.slices:
            yield self.batch(part if order is None else order[part])

    def batch(self, index: slice | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(imgs, targets)`` of the images at ``index`` (a slice, or indices on the device)."""
        imgs, targets = self.images[index], self.targets[index]
        # uint8 -> float in [0, 1]: exactly what ToTensor does, done for the whole batch
        imgs = imgs.float().div_(255).contiguous(memory_format=self.memory_format)
        if self.normalize is not None:
            mean, std = self.normalize
            imgs.sub_(mean).div_(std)
        return imgs, targets

    def sample_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A batch of each size an epoch yields here (the first batch's, and the last's when
        the set does not fill every batch), from the first images, without drawing from the
        shuffle generator: for warming up, so a seeded run's order stays the same. Every
        process gets as many as the others (DDP warms up in step)."""
        first, last = self.slices[0], self.slices[-1]
        n, batch_size = len(self.targets), self.batch_size
        sizes = [first.stop - first.start]
        if len(self.slices) > 1 and n % (batch_size * self.world_size):
            sizes.append(last.stop - last.start)
        return [self.batch(slice(0, size)) for size in sizes]


def shard(n: int, batch_size: int, rank: int = 0, world_size: int = 1, *,
          even_steps: bool = True) -> list[slice]:
    """The batches process ``rank`` of ``world_size`` takes from an epoch's order of ``n``
    images, as slices of positions in that order.

    One process: ``[0, b), [b, 2b), ...``, the last one partial. Several, ``even_steps``
    (training under DDP, where every step is a collective, so all must make the same number):
    each step takes the next ``world_size * batch_size`` images of the order and splits them
    into ``world_size`` near-equal parts, part ``rank`` being this process's batch; a last
    step too small to give every process an image joins the step before. Without
    ``even_steps`` (testing): the one-process batches, dealt out in turn, so the sum of the
    batches' mean losses over all processes is the one-process number.
    """
    if not even_steps:
        return [slice(s, min(s + batch_size, n))
                for s in range(rank * batch_size, n, world_size * batch_size)]
    if n < world_size:
        raise ValueError(f"{n} images cannot give each of {world_size} processes a batch")
    per_step = world_size * batch_size
    starts = list(range(0, n, per_step))
    if len(starts) > 1 and n - starts[-1] < world_size:
        starts.pop()                       # too few for every process: join the step before
    slices = []
    for start, stop in zip(starts, [*starts[1:], n]):
        size, extra = divmod(stop - start, world_size)     # as torch.tensor_split splits
        first = start + rank * size + min(rank, extra)
        slices.append(slice(first, first + size + (rank < extra)))
    return slices
