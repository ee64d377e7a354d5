import io

import cv2
import numpy as np
import pytest
from PIL import Image

from common import paths
from conftest import events, image_tags, load_script, only_run

p08 = load_script("p08_transforms")
ANT = paths.SAMPLE_IMAGE_FOLDER / "train/ants/0013035.jpg"


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        p08.main(["--help"])
    assert e.value.code == 0
    assert "--image" in capsys.readouterr().out


def test_totensor_and_cv2(tmp_path, capsys):
    assert p08.main(["--logdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # PIL -> ToTensor -> float tensor [C, H, W]; cv2.imread -> uint8 ndarray [H, W, C]
    assert lines[0].startswith("img: <PIL.JpegImagePlugin.JpegImageFile image mode=RGB "
                               "size=200x150 at ")
    assert lines[1] == "type(tensor_img): <class 'torch.Tensor'>"
    assert lines[2] == "tensor_img.shape: torch.Size([3, 150, 200])  tensor_img.dtype: torch.float32"
    assert lines[4:6] == ["type(cv_img): <class 'numpy.ndarray'>",
                          "cv_img.shape: (150, 200, 3)  cv_img.dtype: uint8"]
    rgb = np.array(Image.open(ANT))
    assert lines[3] == (f"tensor_img values: {rgb.min() / 255:.4f} .. {rgb.max() / 255:.4f} "
                        "(ToTensor divides 0..255 by 255)")
    # OpenCV's channel order is B, G, R: the same pixel, reversed
    bgr = cv2.imread(str(ANT))[0, 0]
    assert f"top-left pixel, PIL RGB: {rgb[0, 0].tolist()}  cv2 BGR: {bgr.tolist()}" in lines
    assert np.abs(bgr[::-1].astype(int) - rgb[0, 0]).max() <= 2     # two JPEG decoders

    run = only_run(tmp_path, "p08_transforms")
    assert image_tags(run) == {"Tensor_img"}
    (event,) = events(run).Images("Tensor_img")
    assert (event.step, event.width, event.height) == (0, 200, 150)
    shown = np.array(Image.open(io.BytesIO(event.encoded_image_string)))
    assert np.abs(shown.astype(int) - rgb).max() <= 1      # x/255*255, truncated to uint8


def test_other_image_by_absolute_path(tmp_path, capsys):
    png = tmp_path / "grey.png"
    Image.new("L", (40, 30), 128).save(png)
    assert p08.main(["--image", str(png), "--logdir", str(tmp_path / "logs")]) == 0
    out = capsys.readouterr().out
    # one channel in, one out; cv2.imread gives 3 (BGR)
    assert "tensor_img.shape: torch.Size([1, 30, 40])  tensor_img.dtype: torch.float32\n" in out
    assert "cv_img.shape: (30, 40, 3)  cv_img.dtype: uint8\n" in out


def test_image_by_a_path_from_here_or_inside_the_image_folder(tmp_path, monkeypatch, capsys):
    """A tab-completed path from where you are is used as it is (it was joined to
    --image-folder: dataset/hymenoptera_sample/dataset/hymenoptera_sample/...); a path inside
    --image-folder still works; a path that is in neither place says both."""
    folder = tmp_path / "pics"
    (folder / "train/bees").mkdir(parents=True)
    Image.new("L", (40, 30), 128).save(folder / "train/bees/grey.png")
    Image.new("L", (20, 10), 128).save(tmp_path / "here.png")
    monkeypatch.chdir(tmp_path)
    logs = ["--logdir", str(tmp_path / "logs"), "--image-folder", str(folder)]
    for image, shape in (("pics/train/bees/grey.png", "[1, 30, 40]"),     # from here
                         ("train/bees/grey.png", "[1, 30, 40]"),          # inside the folder
                         ("here.png", "[1, 10, 20]")):
        assert p08.main(["--image", image, *logs]) == 0, image
        assert f"tensor_img.shape: torch.Size({shape})" in capsys.readouterr().out, image
    assert p08.main(["--image", "train/ants/x.jpg", *logs]) == 1
    assert capsys.readouterr().err == (f"error: image not found: train/ants/x.jpg, neither from "
                                       f"here ({tmp_path}) nor in --image-folder {folder}\n")
    # the same name here and in the folder, two different pictures: which one is not guessed
    (tmp_path / "train/bees").mkdir(parents=True)
    Image.new("L", (11, 7), 128).save(tmp_path / "train/bees/grey.png")
    assert p08.main(["--image", "train/bees/grey.png", *logs]) == 1
    assert capsys.readouterr().err == (
        f"error: --image train/bees/grey.png names two pictures, {tmp_path}/train/bees/grey.png "
        f"(from here) and {folder}/train/bees/grey.png (in --image-folder): give the one you "
        "mean by its full path\n")
    assert p08.main(["--image", str(tmp_path / "train/bees/grey.png"), *logs]) == 0
    assert "tensor_img.shape: torch.Size([1, 7, 11])" in capsys.readouterr().out


def test_bad_image_is_one_line(tmp_path, capsys):
    missing = tmp_path / "missing.jpg"
    assert p08.main(["--image", str(missing), "--logdir", str(tmp_path / "logs")]) == 1
    assert capsys.readouterr().err == f"error: image not found: {missing}\n"
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a picture")
    assert p08.main(["--image", str(bad), "--logdir", str(tmp_path / "logs")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read image {bad}: ") and err.count("\n") == 1
    assert not (tmp_path / "logs").exists()
