import io

import numpy as np
import pytest
from PIL import Image

from common import paths
from conftest import events, image_tags, load_script, only_run, run_dirs, scalar_tags, scalars

p07 = load_script("p07_tensorboard")
TRAIN = paths.SAMPLE_IMAGE_FOLDER / "train"


def decoded(event) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(event.encoded_image_string)))


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        p07.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--logdir" in out and "--image-folder" in out


def test_scalar_curve_and_images(tmp_path, capsys):
    assert p07.main(["--logdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    run = only_run(tmp_path, "p07_tensorboard")
    assert f"TensorBoard run: {run}" in out

    # add_scalar: y = 2x, steps 0..99
    assert scalar_tags(run) == {"y=2x"}
    assert scalars(run, "y=2x") == [(i, 2.0 * i) for i in range(100)]

    # add_image "test": the ant at step 1, the bee at step 2, pixels exactly the JPEG's
    assert image_tags(run) == {"test"}
    shown = events(run).Images("test")
    assert [e.step for e in shown] == [1, 2]
    for event, picture in zip(shown, [TRAIN / "ants/0013035.jpg",
                                      TRAIN / "bees/16838648_415acd9e3f.jpg"]):
        assert (event.width, event.height) == (200, 150)
        assert np.array_equal(decoded(event), np.array(Image.open(picture)))
    # each picture's path, array type and shape, labelled; the shape is the JPEG's own (H, W, C)
    for picture in (TRAIN / "ants/0013035.jpg", TRAIN / "bees/16838648_415acd9e3f.jpg"):
        with Image.open(picture) as img:
            h_w_c = (img.height, img.width, len(img.getbands()))
        assert out.count(f"image_path: {picture}\ntype(img_array): <class 'numpy.ndarray'>\n"
                         f"img_array.shape: {h_w_c}\n") == 1
    assert h_w_c == (150, 200, 3)


def test_reruns_do_not_mix(tmp_path, capsys):
    assert p07.main(["--logdir", str(tmp_path)]) == 0
    assert p07.main(["--logdir", str(tmp_path)]) == 0
    runs = run_dirs(tmp_path, "p07_tensorboard")
    assert len(runs) == 2
    assert all(len(scalars(r, "y=2x")) == 100 for r in runs)


def test_missing_image_is_one_line_and_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "images"
    (folder / "train/ants").mkdir(parents=True)
    rc = p07.main(["--image-folder", str(folder), "--logdir", str(tmp_path / "logs")])
    out, err = capsys.readouterr()
    assert (rc, out) == (1, "")
    assert err == f"error: image not found: {folder / 'train/ants/0013035.jpg'}\n"
    assert not (tmp_path / "logs").exists()
    rc = p07.main(["--image-folder", str(tmp_path / "nope"), "--logdir", str(tmp_path / "logs")])
    assert rc == 1
    assert capsys.readouterr().err == f"error: image folder not found: {tmp_path / 'nope'}\n"
