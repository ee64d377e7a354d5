import io
import re

import numpy as np
import pytest
from PIL import Image

from common import paths
from conftest import events, image_tags, load_script, only_run, run_dirs

p09 = load_script("p09_common_transforms")
ANT = paths.SAMPLE_IMAGE_FOLDER / "train/ants/0013035.jpg"


def decoded(event) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(event.encoded_image_string))).astype(int)


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        p09.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--seed" in out and "--crop-size" in out


def test_transforms_printed_and_logged(tmp_path, capsys):
    assert p09.main(["--logdir", str(tmp_path), "--seed", "0"]) == 0
    out = capsys.readouterr().out
    rgb = np.array(Image.open(ANT)).astype(int)          # [H, W, 3], 0..255
    w, h = 200, 150

    # Normalize: img_tensor[0][0][0] before and after, against (x - 0.5) / 0.5 by hand
    (before,) = re.findall(r"^img_tensor\[0\]\[0\]\[0\]: tensor\((-?[\d.]+)\)$", out, re.M)
    (after,) = re.findall(r"^img_norm\[0\]\[0\]\[0\]: tensor\((-?[\d.]+)\)$", out, re.M)
    before, after = float(before), float(after)
    x = rgb[0, 0, 0] / 255
    assert before == pytest.approx(x, abs=5e-5)
    assert after == pytest.approx((x - 0.5) / 0.5, abs=5e-5)
    assert "every value follows the formula: True" in out
    # below 0 after Normalize <=> below 0.5 before: the pixels of at most 127 of 255
    assert (f"TensorBoard shows 0..1: {(rgb <= 127).mean():.0%} of img_norm is below 0 "
            "and shows as black") in out.splitlines()

    # Resize((512, 512)) exactly; Resize(512): shorter side 512, aspect kept
    long_side = int(512 * w / h)
    lines = out.splitlines()
    assert f"img.size: ({w}, {h})" in lines
    assert any(l.startswith("img_resize: <PIL.Image.Image image mode=RGB size=512x512") for l in lines)
    assert "img_resize.shape (after ToTensor): torch.Size([3, 512, 512])" in lines
    assert f"img_resize_2.shape: torch.Size([3, 512, {long_side}])" in lines
    assert "RandomCrop: 10 crops, img_crop.shape: torch.Size([3, 128, 128])" in lines

    run = only_run(tmp_path, "p09_common_transforms")
    assert image_tags(run) == {"ToTensor", "Normalize", "Resize", "Resize_2", "RandomCrop"}
    acc = events(run)
    sizes = {tag: [(e.step, e.width, e.height) for e in acc.Images(tag)]
             for tag in ("ToTensor", "Normalize", "Resize", "Resize_2")}
    assert sizes == {"ToTensor": [(0, w, h)], "Normalize": [(0, w, h)],
                     "Resize": [(0, 512, 512)], "Resize_2": [(0, long_side, 512)]}
    assert np.abs(decoded(acc.Images("ToTensor")[0]) - rgb).max() <= 1
    # Normalize's -1..1 shown as TensorBoard does: value * 255, clipped to 0..255
    expected = np.clip((rgb / 255 - 0.5) / 0.5 * 255, 0, 255)
    assert np.abs(decoded(acc.Images("Normalize")[0]) - expected).max() <= 1

    # RandomCrop: 10 crops, steps 0..9, each a 128 x 128 window of the picture
    crops = acc.Images("RandomCrop")
    assert [(e.step, e.width, e.height) for e in crops] == [(i, 128, 128) for i in range(10)]
    for event in crops:
        crop = decoded(event)
        # where the picture's pixel matches the crop's top-left one, try the whole window
        tops_lefts = np.argwhere((np.abs(rgb[:h - 127, :w - 127] - crop[0, 0]) <= 1).all(-1))
        assert any(np.abs(rgb[i:i + 128, j:j + 128] - crop).max() <= 1 for i, j in tops_lefts)


def test_seed_repeats_the_crops(tmp_path, capsys):
    for _ in range(2):
        assert p09.main(["--logdir", str(tmp_path), "--seed", "3", "--crop-size", "100"]) == 0
    first, second = (events(r).Images("RandomCrop") for r in run_dirs(tmp_path, "p09_common_transforms"))
    assert [e.encoded_image_string for e in first] == [e.encoded_image_string for e in second]
    assert {(e.width, e.height) for e in first} == {(100, 100)}


def test_bad_input_is_one_line(tmp_path, capsys):
    logs = tmp_path / "logs"
    assert p09.main(["--crop-size", "151", "--logdir", str(logs)]) == 1
    assert capsys.readouterr().err == (
        "error: --crop-size 151 does not fit in the picture (200x150); use 1..150\n")
    missing = tmp_path / "missing.jpg"
    assert p09.main(["--image", str(missing), "--logdir", str(logs)]) == 1
    assert capsys.readouterr().err == f"error: image not found: {missing}\n"
    assert not logs.exists()
