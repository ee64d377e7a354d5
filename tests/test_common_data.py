import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from common import data
from common.cli import UserError
from common.model import CIFAR10_CLASSES
from conftest import sideways_photo


def test_fake_cifar_is_shaped_like_cifar():
    ds = data.FakeCIFAR10(train=False, transform=transforms.ToTensor())
    assert len(ds) == data.FAKE_TEST_SIZE
    assert len(data.FakeCIFAR10(train=True)) == data.FAKE_TRAIN_SIZE
    assert len(data.FakeCIFAR10()) == data.FAKE_TRAIN_SIZE             # train, unless told
    img, target = ds[0]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert isinstance(target, int) and 0 <= target < 10
    assert ds.classes == list(CIFAR10_CLASSES)
    assert ds.class_to_idx == {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    assert ds.class_to_idx["airplane"] == 0 and ds.class_to_idx["truck"] == 9
    assert ds.data.shape == (data.FAKE_TEST_SIZE, 32, 32, 3) and ds.data.dtype == np.uint8
    assert isinstance(data.FakeCIFAR10(train=False)[0][0], Image.Image)   # as CIFAR10 gives


def test_fake_cifar_is_repeatable_and_train_differs_from_test():
    a, b = data.FakeCIFAR10(train=True, size=50), data.FakeCIFAR10(train=True, size=50)
    assert np.array_equal(a.data, b.data) and a.targets == b.targets
    assert not np.array_equal(a.data, data.FakeCIFAR10(train=False, size=50).data)


def test_fake_cifar_classes_are_separable():
    """Nearest class-mean on the training set classifies the test set far above chance."""
    train, test = data.FakeCIFAR10(train=True), data.FakeCIFAR10(train=False)
    x = train.data.reshape(len(train), -1).astype(np.float32)
    t = np.array(train.targets)
    means = np.stack([x[t == k].mean(0) for k in range(10)])
    xt = test.data.reshape(len(test), -1).astype(np.float32)
    pred = ((xt[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == np.array(test.targets)).mean() > 0.8


# What --fake-data draws, as the lesson's README describes it, worked out a pixel at a time
# in float64 with the math module: class k's colour, times 0.3 + 0.7 x its stripes (angle
# k*pi/10, 1 + k % 3 periods across the image), plus noise of sd 40, clipped to 0..255.
FAKE_PALETTE = [(230, 60, 60), (60, 200, 60), (60, 90, 230), (230, 210, 50), (200, 60, 200),
                (50, 200, 210), (240, 140, 40), (140, 80, 40), (150, 150, 150), (250, 250, 250)]


def _fake_pixel(k: int, y: int, x: int, channel: int, noise: float) -> int:
    angle, freq = k * math.pi / 10, 1 + k % 3
    stripes = 0.5 + 0.5 * math.sin(2 * math.pi * freq * (x / 32 * math.cos(angle)
                                                        + y / 32 * math.sin(angle)))
    return int(min(max(FAKE_PALETTE[k][channel] * (0.3 + 0.7 * stripes) + noise, 0), 255))


@pytest.mark.parametrize("train, seed", [(True, 0), (False, 0), (False, 3)])
def test_fake_cifar_draws_each_class_as_its_colour_and_stripes(train, seed):
    """Against the rule, pixel by pixel: the targets and noise are the seeded generator's
    draws in order (targets, then the noise), the rest is the formula; the test split's first
    image is a cat (3), as the real test set's is. float32 arithmetic may round a value across
    an integer: at most one step, and rarely."""
    n = 40
    ds = data.FakeCIFAR10(train=train, size=n, seed=seed)
    rng = np.random.default_rng(seed * 2 + (0 if train else 1))
    targets = rng.integers(0, 10, n)
    if not train:
        targets[0] = 3
    noise = rng.normal(0, 40, (n, 32, 32, 3))
    assert ds.targets == targets.tolist()
    want = np.array([[[[_fake_pixel(int(targets[i]), y, x, c, noise[i, y, x, c])
                        for c in range(3)] for x in range(32)] for y in range(32)]
                     for i in range(n)])
    diff = np.abs(ds.data.astype(int) - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_real_cifar_path_reads_torchvision_format(real_cifar):
    ds = data.cifar10(real_cifar, train=True, transform=transforms.ToTensor())
    assert len(ds) == 50 and ds.classes == list(CIFAR10_CLASSES)
    assert ds[0][0].shape == (3, 32, 32)
    assert len(data.cifar10(real_cifar, train=False)) == 20


# The download itself (sources, resume, timeouts, md5, offline): test_common_download.py


def test_cifar10_or_fake_never_touches_disk_for_fake(tmp_path):
    ds = data.cifar10_or_fake(tmp_path / "nowhere", train=True, fake=True)
    assert isinstance(ds, data.FakeCIFAR10) and len(ds) == data.FAKE_TRAIN_SIZE
    assert not (tmp_path / "nowhere").exists()
    seeded = data.cifar10_or_fake(tmp_path, train=False, fake=True, seed=3,
                                  transform=transforms.ToTensor())
    assert seeded.targets == data.FakeCIFAR10(train=False, seed=3).targets
    assert seeded.targets != data.FakeCIFAR10(train=False).targets
    assert seeded[0][0].shape == (3, 32, 32)


def test_cifar10_or_fake_reads_the_real_set_through_the_transform(real_cifar):
    ds = data.cifar10_or_fake(real_cifar, train=False, transform=transforms.ToTensor(),
                              fake=False)
    assert len(ds) == 20 and isinstance(ds[0][0], torch.Tensor) and ds[0][0].shape == (3, 32, 32)
    assert len(data.cifar10_or_fake(real_cifar, train=True, fake=False)) == 50


def _make_folder(root, classes=("ants", "bees"), n=3, size=(40, 30), mode="RGB"):
    for split in ("train", "val"):
        for k, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.new(mode, size, color=(200 * k, 50, 30 * i) if mode == "RGB" else 128).save(d / f"{i}.png")
    return root


def test_image_folder_uint8_resizes_and_labels_by_folder(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    images, targets, classes = data.image_folder_uint8(root, "train")
    assert images.shape == (6, 3, 32, 32) and images.dtype == torch.uint8
    assert targets.tolist() == [0, 0, 0, 1, 1, 1] and classes == ["ants", "bees"]
    # the bees images are red (200) in the first channel, the ants black
    assert images[3:, 0].float().mean() == pytest.approx(200, abs=1)
    assert images[:3, 0].float().mean() == pytest.approx(0, abs=1)


def test_image_folder_turns_a_phone_photo_upright(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split / "bees").mkdir(parents=True)
        sideways_photo(tmp_path / split / "bees" / "phone.jpg")
    images, targets, classes = data.image_folder_uint8(tmp_path, "train")
    red, blue = images[0, 0].float(), images[0, 2].float()       # [32, 32] each
    # upright: red above, blue below (sideways it would be red left, blue right)
    assert red[:14].mean() > 200 and blue[:14].mean() < 50
    assert red[18:].mean() < 50 and blue[18:].mean() > 200
    assert classes == ["bees"] and targets.tolist() == [0]


def test_image_folder_errors(tmp_path):
    with pytest.raises(UserError, match=r"^image folder not found: "):
        data.image_folder(tmp_path / "missing", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"has no train/ folder"):
        data.image_folder(tmp_path / "empty", "train")
    (tmp_path / "empty" / "train").mkdir()
    with pytest.raises(UserError, match=r"Couldn't find any class folder"):
        data.image_folder(tmp_path / "empty", "train")


def test_image_folder_corrupt_image_and_class_mismatch(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    bad = root / "train" / "bees" / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(UserError) as caught:
        data.image_folder_uint8(root, "train")
    assert str(caught.value) == f"cannot read image {bad}: cannot identify image file '{bad}'"
    with pytest.raises(UserError, match=r"has classes \['ants', 'bees'\], but train/ has"):
        data.image_folder_uint8(root, "val", classes=["ants", "bees", "wasps"])


def test_in_memory_loader_matches_dataloader_with_totensor():
    ds = data.FakeCIFAR10(train=False, size=130, transform=transforms.ToTensor())
    images, targets = data.cifar_uint8(ds)
    fast = list(data.InMemoryLoader(images, targets, batch_size=64))
    slow = list(DataLoader(ds, batch_size=64))
    assert len(fast) == len(slow) == 3
    for (fi, ft), (si, st) in zip(fast, slow):
        assert fi.shape == si.shape and fi.dtype == si.dtype == torch.float32
        assert fi.is_contiguous()                 # the usual layout, unless channels_last
        assert torch.equal(ft, st)
        assert torch.allclose(fi, si, atol=1e-6)


def test_in_memory_loader_refuses_what_it_cannot_batch():
    images = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError) as caught:
        data.InMemoryLoader(images.float(), torch.arange(4), 2)
    assert str(caught.value) == "images must be a uint8 tensor [N, C, H, W]"
    with pytest.raises(ValueError) as caught:
        data.InMemoryLoader(images[0], torch.arange(4), 2)
    assert str(caught.value) == "images must be a uint8 tensor [N, C, H, W]"
    with pytest.raises(ValueError) as caught:
        data.InMemoryLoader(images, torch.arange(5), 2)
    assert str(caught.value) == "images and targets differ in length"


def test_in_memory_loader_keeps_set_and_batches_on_its_device():
    """On PyTorch's ``meta`` device (shapes, no data) as a stand-in for a GPU: the set, the
    shuffled order and every batch are there."""
    images, targets = torch.zeros(10, 3, 2, 2, dtype=torch.uint8), torch.arange(10)
    loader = data.InMemoryLoader(images, targets, 4, shuffle=True, device="meta",
                                 generator=torch.Generator().manual_seed(0))
    assert loader.images.device.type == loader.targets.device.type == "meta"
    batches = list(loader)
    assert [tuple(imgs.shape) for imgs, _ in batches] == [(4, 3, 2, 2), (4, 3, 2, 2), (2, 3, 2, 2)]
    assert {imgs.device.type for imgs, _ in batches} == {t.device.type for _, t in batches} == {"meta"}


def test_in_memory_loader_deals_test_batches_without_even_steps():
    images, targets = torch.zeros(300, 3, 1, 1, dtype=torch.uint8), torch.arange(300)
    loader = data.InMemoryLoader(images, targets, 64, rank=1, world_size=2, even_steps=False)
    assert [t.tolist() for _, t in loader] == [list(range(64, 128)), list(range(192, 256))]


def test_in_memory_loader_normalize_is_transforms_normalize():
    ds = data.FakeCIFAR10(train=False, size=10, transform=transforms.Compose([
        transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]))
    images, targets = data.cifar_uint8(ds)
    (fast,) = [imgs for imgs, _ in data.InMemoryLoader(images, targets, 10, normalize=(0.5, 0.5))]
    slow = torch.stack([ds[i][0] for i in range(10)])
    assert torch.allclose(fast, slow, atol=1e-6)
    assert fast.min() < -0.5 and fast.max() > 0.5           # centred: -1 .. 1, not 0 .. 1


def test_in_memory_loader_shuffles_repeatably_and_covers_every_image():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2).contiguous()
    targets = torch.arange(10)

    def epoch(seed):
        g = torch.Generator().manual_seed(seed)
        loader = data.InMemoryLoader(images, targets, 4, shuffle=True, generator=g,
                                     channels_last=True)
        batches = list(loader)
        assert [len(t) for _, t in batches] == [4, 4, 2]
        for imgs, t in batches:   # images stay paired with their targets
            assert torch.equal((imgs[:, 0, 0, 0] * 255).round().long(), t)
            assert imgs.is_contiguous(memory_format=torch.channels_last)
        return torch.cat([t for _, t in batches]).tolist()

    order = epoch(1)
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert epoch(1) == order and epoch(2) != order


def test_one_loader_draws_a_new_order_every_epoch():
    # what p23 does: one loader, iterated once per epoch; each epoch's order is the next
    # permutation the generator draws (the oracle: torch.randperm from the same seed)
    n = 23
    images = torch.zeros(n, 3, 2, 2, dtype=torch.uint8)
    targets = torch.arange(n)
    loader = data.InMemoryLoader(images, targets, 5, shuffle=True,
                                 generator=torch.Generator().manual_seed(7))
    epochs = [torch.cat([t for _, t in loader]).tolist() for _ in range(3)]
    oracle = torch.Generator().manual_seed(7)
    assert epochs == [torch.randperm(n, generator=oracle).tolist() for _ in range(3)]
    assert all(sorted(order) == list(range(n)) for order in epochs)
    assert len({tuple(order) for order in epochs}) == 3
    # without shuffle: the course's DataLoader order, every epoch the same
    plain = data.InMemoryLoader(images, targets, 5)
    assert [torch.cat([t for _, t in plain]).tolist() for _ in range(2)] == [list(range(n))] * 2


@pytest.mark.parametrize("n, batch_size, world_size", [
    (10, 4, 1), (2000, 64, 2), (2000, 64, 3), (129, 64, 2), (130, 64, 2), (257, 64, 2),
    (255, 64, 2), (7, 3, 4), (5, 64, 5), (1001, 10, 7)])
def test_shard_gives_each_image_to_one_process_in_equal_steps(n, batch_size, world_size):
    shards = [data.shard(n, batch_size, rank, world_size) for rank in range(world_size)]
    # every process makes the same number of steps, none of them empty...
    steps = {len(s) for s in shards}
    assert len(steps) == 1 and all(sl.stop > sl.start for s in shards for sl in s)
    # ...and in step k the processes take consecutive parts of the same stretch of the order,
    # together every position of the epoch exactly once
    taken = [i for k in range(steps.pop()) for s in shards for i in range(s[k].start, s[k].stop)]
    assert taken == list(range(n))
    # near-equal parts: a step's batches differ by one image at most, none above batch + 1
    for k in range(len(shards[0])):
        sizes = [s[k].stop - s[k].start for s in shards]
        assert max(sizes) - min(sizes) <= 1 and max(sizes) <= batch_size + 1


def test_shard_of_one_process_is_plain_batching_and_testing_deals_the_batches():
    assert data.shard(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    # a last step of exactly one image per process stays a step; one image fewer joins the last
    assert data.shard(130, 64, 0, 2) == [slice(0, 64), slice(128, 129)]
    assert data.shard(130, 64, 1, 2) == [slice(64, 128), slice(129, 130)]
    assert data.shard(129, 64, 0, 2) == [slice(0, 65)]
    # testing: the one-process batches of 64, dealt out in turn (so the course's sum of the
    # batches' mean losses is the same number with any number of processes)
    dealt = [data.shard(300, 64, rank, 2, even_steps=False) for rank in range(2)]
    assert dealt == [[slice(0, 64), slice(128, 192), slice(256, 300)],
                     [slice(64, 128), slice(192, 256)]]
    assert data.shard(3, 64, 1, 2, even_steps=False) == []       # nothing left for rank 1
    with pytest.raises(ValueError, match="3 images cannot give each of 4 processes a batch"):
        data.shard(3, 64, 0, 4)


def test_ranks_of_a_loader_draw_one_order_and_split_it():
    images = torch.arange(200, dtype=torch.int32).view(200, 1, 1, 1)
    images = (images % 256).to(torch.uint8).expand(200, 3, 1, 1).contiguous()
    targets = torch.arange(200)
    loaders = [data.InMemoryLoader(images, targets, 16, shuffle=True, rank=rank, world_size=3,
                                   generator=torch.Generator().manual_seed(5)) for rank in range(3)]
    epochs = [[t for _, t in loader] for loader in loaders]
    assert len({len(e) for e in epochs}) == 1 == len({len(loader) for loader in loaders})
    seen = torch.cat([t for e in epochs for t in e]).tolist()
    assert sorted(seen) == list(range(200))                    # each image once, across ranks
    one = torch.cat([t for _, t in data.InMemoryLoader(
        images, targets, 48, shuffle=True, generator=torch.Generator().manual_seed(5))])
    by_step = torch.cat([t for step in zip(*epochs) for t in step])
    assert torch.equal(by_step, one)    # step k of the 3 ranks = batch k of one at 3 x 16
    # warm-up batches: as many on every rank, whatever size its last batch has
    assert len({len(loader.sample_batches()) for loader in loaders}) == 1


def test_a_grey_image_in_a_folder_comes_as_three_equal_channels(tmp_path):
    root = _make_folder(tmp_path / "imgs", mode="L")           # every pixel 128
    images, targets, classes = data.image_folder_uint8(root, "val")
    assert images.shape == (6, 3, 32, 32) and bool((images == 128).all())


def test_open_image_reads_the_pixels_and_names_a_bad_file(tmp_path):
    Image.new("RGB", (5, 4), (1, 2, 3)).save(tmp_path / "a.png")
    img = data.open_image(tmp_path / "a.png")
    assert img.size == (5, 4) and img.getpixel((4, 3)) == (1, 2, 3)
    with pytest.raises(UserError) as caught:
        data.open_image(tmp_path / "b.png")
    assert str(caught.value) == f"image not found: {tmp_path / 'b.png'}"
    (tmp_path / "d.png").mkdir()
    with pytest.raises(UserError) as caught:
        data.open_image(tmp_path / "d.png")
    assert str(caught.value) == f"{tmp_path / 'd.png'} is a folder, not an image: name a picture file"
    (tmp_path / "c.png").write_text("not a picture")
    with pytest.raises(UserError) as caught:
        data.open_image(tmp_path / "c.png")
    assert str(caught.value) == (f"cannot read image {tmp_path / 'c.png'}: cannot identify "
                                 f"image file '{tmp_path / 'c.png'}'")


def test_a_picture_past_a_gigapixel_is_one_line(tmp_path, monkeypatch):
    """PIL's DecompressionBombError is no OSError: it came out of p08/p09 as a traceback.
    Scaled down: the gigapixel is 1500 pixels here, the picture 60 x 40 (the others 1200)."""
    monkeypatch.setattr(data, "OWN_PICTURE_MAX_PIXELS", 1500)
    root = _make_folder(tmp_path / "imgs")
    big = root / "train" / "bees" / "big.png"
    Image.new("RGB", (60, 40)).save(big)
    with pytest.raises(UserError) as caught:
        data.open_image(big)
    assert str(caught.value).startswith(f"cannot read image {big}: Image size (2400 pixels) "
                                        "exceeds limit of 1500 pixels")
    with pytest.raises(UserError) as caught:
        data.image_folder_uint8(root, "train")
    assert str(caught.value).startswith(f"cannot read image {big}: Image size (2400 pixels)")


def test_fake_cifar_says_what_it_is_in_its_repr():
    text = repr(data.FakeCIFAR10(train=False, size=3))
    assert text.splitlines() == ["Dataset FakeCIFAR10", "    Number of datapoints: 3",
                                 "    Split: Test (synthetic, --fake-data)"]
    assert "Split: Train (synthetic" in repr(data.FakeCIFAR10(train=True, size=3))


@pytest.mark.parametrize("drop_last, sizes", [(False, [64] * 7 + [52]), (True, [64] * 7)])
def test_the_layer_lessons_test_loader_is_the_test_set_in_order(tmp_path, drop_last, sizes):
    import argparse
    args = argparse.Namespace(data_root=tmp_path, fake_data=True, mirror=[], num_workers=0)
    batches = list(data.cifar10_test_loader(args, batch_size=64, drop_last=drop_last))
    assert [len(targets) for _, targets in batches] == sizes
    test_set = data.FakeCIFAR10(train=False)                   # 500 images
    imgs, targets = batches[0]
    assert targets.tolist() == test_set.targets[:64]
    assert torch.equal(imgs, torch.from_numpy(test_set.data[:64]).permute(0, 3, 1, 2) / 255)
    assert list(tmp_path.iterdir()) == []                      # nothing read or written there


def test_the_layer_lessons_test_loader_reads_the_real_set_with_its_flags(real_cifar):
    import argparse
    args = argparse.Namespace(data_root=real_cifar, fake_data=False, mirror=[],
                              num_workers=1)
    loader = data.cifar10_test_loader(args)
    assert loader.num_workers == 1 and loader.batch_size == 64 and not loader.drop_last
    (imgs, targets), = list(loader)                            # the 20 test images, one batch
    assert imgs.shape == (20, 3, 32, 32)
    assert targets.tolist() == data.cifar10(real_cifar, train=False).targets


def test_the_fake_data_note_says_what_it_is_and_how_big():
    assert data.synthetic_note() == (
        "--fake-data: synthetic CIFAR-shaped images, not CIFAR-10: 2000 to train and 500 to "
        "test (CIFAR-10 has 50000 and 10000), 10 classes drawn as coloured stripes; nothing "
        "is downloaded")


def test_the_fake_data_note_is_printed_for_fake_data_only(capsys):
    import argparse
    data.announce_synthetic(argparse.Namespace(fake_data=True))
    assert capsys.readouterr().out == data.synthetic_note() + "\n"
    data.announce_synthetic(argparse.Namespace(fake_data=False))
    data.announce_synthetic(argparse.Namespace())               # a lesson with no such flag
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("n, batch_size, world_size, rank, sizes", [
    (10, 4, 1, 0, [4, 2]), (6, 4, 1, 0, [4, 2]), (8, 4, 1, 0, [4]), (3, 4, 1, 0, [3]),
    (10, 2, 2, 0, [2, 1]),
    (10, 2, 2, 1, [2, 1]), (8, 2, 2, 1, [2])])
def test_warm_up_batches_are_each_size_an_epoch_yields(n, batch_size, world_size, rank, sizes):
    """One batch of each size this process's epoch has, from the first images, and without
    drawing from the shuffle generator (so a seeded run's first order is the same)."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 1, 1).contiguous()
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    loader = data.InMemoryLoader(images, torch.arange(n), batch_size, shuffle=True, generator=g,
                                 rank=rank, world_size=world_size)
    batches = loader.sample_batches()
    assert torch.equal(g.get_state(), state)                   # nothing drawn
    assert [len(t) for _, t in batches] == sizes
    assert {len(t) for _, t in loader} == set(sizes)           # the sizes an epoch has
    for imgs, targets in batches:
        assert targets.tolist() == list(range(len(targets)))
        assert torch.equal(imgs, images[:len(targets)].float() / 255)
