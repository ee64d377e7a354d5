"""docs/screenshot.py, the script that makes the README's TensorBoard picture, and the picture."""
import io
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from common import data
from conftest import REPO, load_script

screenshot = load_script("screenshot", "docs")


def test_the_readme_shows_the_picture_and_it_is_small():
    readme = (REPO / "README.md").read_text()
    (path,) = re.findall(r"!\[[^\]]*TensorBoard[^\]]*\]\(([^)]+)\)", readme)
    picture = REPO / path
    assert picture == screenshot.OUTPUT
    assert picture.stat().st_size < screenshot.MAX_BYTES
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.size == (screenshot.WIDTH, screenshot.HEIGHT)


def test_a_large_screenshot_is_made_a_palette_png_under_the_limit(monkeypatch):
    # flat blocks of 64 colours, each pixel's grey level off by one at random: 128 colours
    # in all, exact as a palette, and smaller so
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 4, (100, 163, 3)) * 80
    picture = np.kron(blocks, np.ones((8, 8, 1)))[:800, :1300]
    picture = (picture + rng.integers(0, 2, (800, 1300, 1))).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(picture).save(out, format="PNG")
    monkeypatch.setattr(screenshot, "MAX_BYTES", len(out.getvalue()) - 1)   # just over it
    small = screenshot.small_png(out.getvalue())
    assert len(small) <= screenshot.MAX_BYTES
    with Image.open(io.BytesIO(small)) as image:
        assert image.mode == "P" and image.size == (1300, 800)
        assert np.array_equal(np.asarray(image.convert("RGB")), picture)
    # too big even so: one error line
    monkeypatch.setattr(screenshot, "MAX_BYTES", 100_000)
    with pytest.raises(SystemExit, match=r"^error: the screenshot is \d+ bytes, over 100000$"):
        screenshot.small_png(out.getvalue())


def test_a_logdir_without_a_training_run_is_one_error_line(tmp_path):
    with pytest.raises(SystemExit) as e:
        screenshot.main(["--logdir", str(tmp_path), "--output", str(tmp_path / "out.png")])
    assert str(e.value) == (f"error: no p23_train run under {tmp_path}: train one (python "
                            "scripts/p23_train.py --fake-data), or leave out --logdir")
    assert not (tmp_path / "out.png").exists()


def test_no_chromium_is_one_error_line(tmp_path):
    (tmp_path / "p23_train" / "run").mkdir(parents=True)
    (tmp_path / "p23_train" / "run" / "events.out.tfevents.1").touch()
    with pytest.raises(SystemExit) as e:
        screenshot.main(["--chromium", str(tmp_path / "no-chromium"), "--logdir", str(tmp_path),
                         "--output", str(tmp_path / "out.png")])
    assert str(e.value).startswith("error: no Chromium at ")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (apt install chromium)")
def test_it_photographs_a_real_tensorboard(tmp_path, monkeypatch, capsys):
    # a one-epoch run on a small synthetic set, then the real server and the real browser
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 20)
    p23 = load_script("p23_train")
    assert p23.main(["--fake-data", "--epochs", "1", "--device", "cpu", "--logdir",
                     str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt")]) == 0
    out = tmp_path / "shot.png"
    assert screenshot.main(["--logdir", str(tmp_path / "logs"), "--output", str(out)]) == 0
    assert f"wrote {out} ({screenshot.WIDTH}x{screenshot.HEIGHT}, " in capsys.readouterr().out
    with Image.open(out) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (screenshot.HEIGHT, screenshot.WIDTH, 3)
    # TensorBoard's orange header, and the two pictures: many colours, not a blank page
    assert (np.abs(pixels[10, 10].astype(int) - (245, 124, 0)) < 40).all()
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 2000
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".partial"] == []
