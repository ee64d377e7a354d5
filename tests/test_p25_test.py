import os
import re
import shlex
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from common import checkpoint, cli, data, paths
from common.model import CIFAR10_CLASSES, GST
from conftest import REPO, load_script, sideways_photo, upright_photo

p25 = load_script("p25_test")


@pytest.fixture(autouse=True)
def no_pictures(monkeypatch):
    """These tests read p25's printed predictions; its TensorBoard pictures are tested in
    test_tensorboard_pictures.py."""
    monkeypatch.setattr(p25, "log_predictions", lambda *args, **kwargs: None)

RED, BLUE = (200, 40, 40), (40, 40, 200)


def _picture(colour, size=(50, 40), seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.normal(colour, 30, (size[1], size[0], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def ants_bees(tmp_path_factory):
    """A checkpoint trained by p23 on red "ants" and blue "bees": an oracle for predictions."""
    root = tmp_path_factory.mktemp("ants_bees")
    for split, n in (("train", 12), ("val", 4)):
        for name, colour in (("ants", RED), ("bees", BLUE)):
            (root / "pics" / split / name).mkdir(parents=True)
            for i in range(n):
                _picture(colour, seed=i).save(root / "pics" / split / name / f"{i}.png")
    p23 = load_script("p23_train")
    assert p23.main(["--image-folder", str(root / "pics"), "--epochs", "6", "--batch-size", "4",
                     "--lr", "0.05", "--seed", "0", "--logdir", str(root / "logs"),
                     "--checkpoint-dir", str(root / "ckpt")]) == 0
    return root / "ckpt"


def _last(ckpt_root):
    """The last epoch of the one p23 run under ``ckpt_root``."""
    (run,) = (ckpt_root / "p23_train").iterdir()
    return max(run.iterdir(), key=lambda p: int(p.stem.split("_")[1]))


def _predictions(out):
    """{path: [(class, probability), ...]} from p25's output."""
    result, current = {}, None
    for line in out.splitlines():
        if m := re.match(r"^(\S+)  \((.+) -> RGB 32x32\)$", line):
            current = result.setdefault(m.group(1), [])
        elif m := re.match(r"^ +\d+\. (.+?) +([\d.]+)%$", line):
            current.append((m.group(1), float(m.group(2)) / 100))
    return result


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as e:
        p25.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "P25 完整的模型验证套路" in out and "--topk" in out and "--trust-pickle" in out


def test_every_image_mode_is_converted_and_predicted(ants_bees, tmp_path, capsys):
    red, blue = _picture(RED), _picture(BLUE, size=(64, 48))
    files = {
        "red_rgba.png": red.convert("RGBA"),
        "blue_palette.png": blue.convert("P"),
        "red.jpg": red,
        "blue_rgb.png": blue,
        "gray.png": red.convert("L"),
    }
    for name, image in files.items():
        image.save(tmp_path / name)
    paths = [str(tmp_path / n) for n in files]
    assert p25.main([*paths, "--checkpoint-dir", str(ants_bees), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint: {_last(ants_bees)}" in out      # the last epoch of the newest run
    assert _last(ants_bees).name == "gst_5.pth"
    assert "model:" not in out and "Sequential" not in out     # the layers only with --verbose
    assert f"{tmp_path / 'red_rgba.png'}  (PNG RGBA 50x40 -> RGB 32x32)" in out
    assert f"{tmp_path / 'blue_palette.png'}  (PNG P 64x48 -> RGB 32x32)" in out
    assert f"{tmp_path / 'gray.png'}  (PNG L 50x40 -> RGB 32x32)" in out
    assert f"{tmp_path / 'red.jpg'}  (JPEG RGB 50x40 -> RGB 32x32)" in out
    pred = _predictions(out)
    assert set(pred) == set(paths)
    for top in pred.values():
        assert len(top) == 2                              # --topk 3, but only 2 classes
        assert {c for c, _ in top} == {"ants", "bees"}    # the checkpoint's class names
        assert top[0][1] >= top[1][1] and sum(v for _, v in top) == pytest.approx(1, abs=2e-4)
    for name in ("red_rgba.png", "red.jpg"):
        assert pred[str(tmp_path / name)][0][0] == "ants"
    for name in ("blue_palette.png", "blue_rgb.png"):
        assert pred[str(tmp_path / name)][0][0] == "bees"


@pytest.mark.parametrize("normalize", [None, (0.5, 0.5)])
def test_probabilities_match_an_independent_computation(tmp_path, capsys, normalize):
    torch.manual_seed(0)
    gst = GST()
    ckpt = checkpoint.save({"arch": "GST", "model": gst.state_dict(), "classes": list(CIFAR10_CLASSES),
                            "normalize": normalize}, tmp_path / "ckpt" / "gst_0.pth")
    image = _picture((90, 160, 60), size=(45, 70)).convert("RGBA")
    image.save(tmp_path / "x.png")
    assert p25.main([str(tmp_path / "x.png"), "--checkpoint", str(ckpt), "--topk", "10"]) == 0
    top = _predictions(capsys.readouterr().out)[str(tmp_path / "x.png")]

    # Oracle: PIL resize + numpy scaling + the model's forward, no torchvision transforms.
    rgb = np.asarray(Image.open(tmp_path / "x.png").convert("RGB").resize((32, 32), Image.BILINEAR))
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    if normalize is not None:                    # what the model was trained on: (x - 0.5) / 0.5
        x = (x - 0.5) * 2
    with torch.no_grad():
        probs = torch.softmax(gst.eval()(x), 1)[0]
    expected = sorted(zip(CIFAR10_CLASSES, probs.tolist()), key=lambda cp: -cp[1])
    assert [c for c, _ in top] == [c for c, _ in expected]
    assert [p for _, p in top] == pytest.approx([p for _, p in expected], abs=6e-5)


def test_a_16_bit_or_float_picture_is_predicted_as_its_8_bit_twin(tmp_path, capsys):
    """PIL's convert("RGB") cut a 16-bit grey PNG at 255 (a gradient came out all but white,
    predicted "ship" at 99.8%) and a 0-to-1 float TIFF at 1 (black). The same picture saved
    in 8 bits is the oracle: the same probabilities."""
    torch.manual_seed(0)
    ckpt = checkpoint.save({"arch": "GST", "model": GST().state_dict(),
                            "classes": list(CIFAR10_CLASSES)}, tmp_path / "gst_0.pth")
    ramp = np.add.outer(np.arange(48), np.arange(64)) / (47 + 63)        # 0 .. 1, 48 x 64
    eight = np.rint(ramp * 255).astype(np.uint8)
    Image.fromarray(eight, "L").save(tmp_path / "eight.png")
    Image.fromarray((eight.astype(np.uint16) * 257)).save(tmp_path / "sixteen.png")   # I;16
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "float.tif")             # F
    names = ["eight.png", "sixteen.png", "float.tif"]
    assert p25.main([*(str(tmp_path / n) for n in names), "--checkpoint", str(ckpt),
                     "--topk", "10"]) == 0
    out = capsys.readouterr().out
    # (Pillow 10 opens a 16-bit grey PNG as mode I, Pillow 11 and later as I;16)
    assert re.search(rf"^{re.escape(str(tmp_path / 'sixteen.png'))}  \(PNG I(;16)? 64x48 -> RGB "
                     r"32x32\)$", out, re.M), out
    assert f"{tmp_path / 'float.tif'}  (TIFF F 64x48 -> RGB 32x32)" in out
    pred = _predictions(out)
    for name in names[1:]:
        assert pred[str(tmp_path / name)] == pred[str(tmp_path / "eight.png")], name


def test_rgb_scales_wide_pictures_to_8_bits():
    ramp = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)       # 0, 257, ... 65535
    sixteen = data.rgb(Image.fromarray(ramp))
    assert sixteen.mode == "RGB"
    assert (np.asarray(sixteen)[..., 1] == ramp // 257).all()              # exactly 0 .. 255
    small = np.arange(256, dtype=np.int32).reshape(16, 16)                   # I, all in 8 bits
    assert (np.asarray(data.rgb(Image.fromarray(small)))[..., 0] == small).all()
    wide = Image.fromarray(ramp.astype(np.int32))                           # I, 16-bit values
    assert (np.asarray(data.rgb(wide))[..., 2] == ramp // 257).all()
    unit = Image.fromarray((ramp / 65535).astype(np.float32))               # F, 0 .. 1
    assert (np.asarray(data.rgb(unit))[..., 0] == ramp // 257).all()
    grey = Image.fromarray((ramp // 257).astype(np.uint8))
    assert np.asarray(data.rgb(grey)).tolist() == np.asarray(grey.convert("RGB")).tolist()


def test_a_dark_16_bit_png_stays_dark(tmp_path):
    """All its values below 256 of 65535: black, whichever mode Pillow opens it in (Pillow 10:
    I, where "fits in 8 bits" would have made it bright; 11 and later: I;16)."""
    dark = np.arange(256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(dark).save(tmp_path / "dark.png")
    with data.open_picture(tmp_path / "dark.png") as image:
        assert image.mode in ("I", "I;16")
        assert np.asarray(data.rgb(image)).max() == 1            # 255 / 257, rounded


def test_a_huge_own_picture_is_read_quietly_and_the_guard_put_back(tmp_path, monkeypatch):
    """PIL warns above Image.MAX_IMAGE_PIXELS and refuses above twice it (a 200-megapixel
    phone photo was "not a readable image"); the user's own pictures get a gigapixel. Scaled
    down here: PIL's limit 100 pixels, a 30 x 20 picture."""
    _picture(RED, size=(30, 20)).save(tmp_path / "big.png")
    # a TIFF checks its size again when its pixels are read (LZW: no strip offsets up front)
    _picture(RED, size=(30, 20)).save(tmp_path / "big.tif", compression="tiff_lzw")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "big.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # no DecompressionBombWarning either
        for name in ("big.png", "big.tif"):
            with data.open_picture(tmp_path / name) as image:
                assert image.size == (30, 20)
                assert np.asarray(data.rgb(image)).shape == (20, 30, 3)   # pixels read
    assert Image.MAX_IMAGE_PIXELS == 100                # PIL's own guard as it was
    monkeypatch.setattr(data, "OWN_PICTURE_MAX_PIXELS", 500)
    with pytest.raises(Image.DecompressionBombError):   # past the gigapixel (here 500)
        data.open_picture(tmp_path / "big.png")
    assert Image.MAX_IMAGE_PIXELS == 100


def test_a_phone_photo_is_classified_upright(tmp_path, capsys):
    # The same picture, stored sideways with its EXIF orientation and stored upright, must
    # give the same answer: what the network sees is the photo as it is shown.
    torch.manual_seed(0)
    ckpt = checkpoint.save({"arch": "GST", "model": GST().state_dict(),
                            "classes": list(CIFAR10_CLASSES)}, tmp_path / "ckpt" / "gst_0.pth")
    phone, shown = sideways_photo(tmp_path / "phone.jpg"), upright_photo(tmp_path / "shown.jpg")
    assert p25.main([str(phone), str(shown), "--checkpoint", str(ckpt), "--topk", "10"]) == 0
    top = _predictions(capsys.readouterr().out)
    assert [c for c, _ in top[str(phone)]] == [c for c, _ in top[str(shown)]]
    assert [p for _, p in top[str(phone)]] == pytest.approx([p for _, p in top[str(shown)]],
                                                            abs=2e-3)
    transform = p25.torchvision.transforms.Compose([
        p25.torchvision.transforms.Resize((32, 32)), p25.torchvision.transforms.ToTensor()])
    seen, original, picture = p25.read_image(phone, transform)
    assert original == "JPEG RGB 40x20" and picture.size == (20, 40)
    assert seen[0, :14].mean() > 0.8 and seen[2, :14].mean() < 0.2     # red on top
    assert seen[0, 18:].mean() < 0.2 and seen[2, 18:].mean() > 0.8     # blue below


def test_bad_files_get_one_line_each_and_the_rest_are_predicted(ants_bees, tmp_path, capsys):
    good = tmp_path / "good.png"
    _picture(RED).save(good)
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    truncated = tmp_path / "truncated.png"
    _picture(BLUE).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    missing = tmp_path / "missing.jpg"
    folder = tmp_path / "pictures"
    folder.mkdir()

    rc = p25.main([str(missing), str(text), str(good), str(truncated), str(folder),
                   "--checkpoint", str(_last(ants_bees))])
    assert rc == 1
    captured = capsys.readouterr()
    assert list(_predictions(captured.out)) == [str(good)]
    assert _predictions(captured.out)[str(good)][0][0] == "ants"
    lines = captured.err.splitlines()
    assert len(lines) == 4
    assert lines[3] == (f"error: {folder} is a folder with no pictures in it (nor in its "
                        "subfolders): name image files")
    assert lines[0] == f"error: {missing}: no such file"
    assert lines[1] == (f"error: {text}: not a readable image "
                        f"(cannot identify image file '{text}')")
    assert lines[2].startswith(f"error: {truncated}: not a readable image (")


def test_a_folder_gets_a_pattern_that_names_its_pictures(ants_bees, tmp_path, capsys):
    # pictures in class folders, as the sample's val/ants/, val/bees/: the pattern goes one down
    val = paths.SAMPLE_IMAGE_FOLDER / "val"
    flat = tmp_path / "flat"
    flat.mkdir()
    _picture(RED).save(flat / "a.png")
    _picture(BLUE).save(flat / "b.png")
    _picture(BLUE).save(flat / "c.jpg")
    (flat / "notes.txt").write_text("not a picture")
    assert p25.main([str(val), str(flat), "--checkpoint", str(_last(ants_bees))]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {val} is a folder, not an image: name its pictures ({val}/*/*.jpg)",
        f"error: {flat} is a folder, not an image: name its pictures ({flat}/*.png)"]
    # and the pattern does name them: what a shell would pass
    assert len(list(val.glob("*/*.jpg"))) == 10 and len(list(flat.glob("*.png"))) == 2


def test_the_images_are_read_before_the_model_is_loaded(tmp_path, capsys):
    # the course's order: a mistyped picture is said first, even where no model exists yet
    missing = tmp_path / "dgo.png"
    assert p25.main([str(missing), "--checkpoint-dir", str(tmp_path / "none")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"error: {missing}: no such file"]
    assert not (tmp_path / "none").exists()


def test_topk(ants_bees, tmp_path, capsys):
    _picture(BLUE).save(tmp_path / "b.png")
    assert p25.main([str(tmp_path / "b.png"), "--checkpoint-dir", str(ants_bees), "--topk", "1"]) == 0
    assert [c for c, _ in _predictions(capsys.readouterr().out)[str(tmp_path / "b.png")]] == ["bees"]
    # more than the model knows: all of them, and a word saying so (not with the default 3)
    assert p25.main([str(tmp_path / "b.png"), "--checkpoint-dir", str(ants_bees), "--topk", "5"]) == 0
    out = capsys.readouterr().out
    assert "note: --topk 5, but the model knows 2 classes: all 2 are listed\n" in out
    assert len(_predictions(out)[str(tmp_path / "b.png")]) == 2
    assert p25.main([str(tmp_path / "b.png"), "--checkpoint-dir", str(ants_bees)]) == 0
    assert "note: --topk" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        p25.main([str(tmp_path / "b.png"), "--checkpoint-dir", str(ants_bees), "--topk", "0"])
    assert e.value.code == 2
    assert capsys.readouterr().err == "error: argument --topk: must be 1 or more, not 0 (see --help)\n"


def test_default_is_the_last_epoch_of_the_newest_p23_run_never_another_lessons_file(tmp_path,
                                                                                   capsys):
    t = 10**18
    for run, name, when in [("20260101-000000", "gst_9.pth", t + 1), ("20260102-000000", "gst_2.pth", t + 2),
                            ("20260102-000000", "gst_10.pth", t + 3)]:
        classes = [f"{run}/{name}_{k}" for k in range(10)]
        path = checkpoint.save({"arch": "GST", "model": GST().state_dict(), "classes": classes,
                                "epoch": int(name[4:-4])}, tmp_path / "p23_train" / run / name)
        os.utime(path, ns=(when, when))
    # written after every p23 run, in lesson 22's own folder and in the root: never taken
    later = t + 9
    for stray in (tmp_path / "p22_model_save" / "gst_method2.pth", tmp_path / "gst_method2.pth"):
        checkpoint.save(GST().state_dict(), stray)
        os.utime(stray, ns=(later, later))
    _picture(RED).save(tmp_path / "r.png")
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint: {tmp_path / 'p23_train' / '20260102-000000' / 'gst_10.pth'}" in out
    assert "trained on: CIFAR-10 (size not recorded), 11 epochs; test accuracy not recorded" in out
    assert all(c.startswith("20260102-000000/gst_10.pth_")
               for c, _ in _predictions(out)[str(tmp_path / "r.png")])


def test_no_trained_model_names_the_command_that_makes_one(tmp_path, monkeypatch, capsys):
    _picture(RED).save(tmp_path / "r.png")
    checkpoint.save(GST().state_dict(), tmp_path / "ck" / "p22_model_save" / "gst_method2.pth")
    args = [str(tmp_path / "r.png"), "--checkpoint-dir", str(tmp_path / "ck")]
    assert p25.main(args) == 1
    err = capsys.readouterr().err
    m = re.fullmatch(rf"error: no p23_train run in {re.escape(str(tmp_path / 'ck' / 'p23_train'))}: "
                     r"train a model first: (.+) \(CIFAR-10\), or offline (.+); or pass "
                     r"--checkpoint PATH\n", err)
    assert m, err
    online, offline = (shlex.split(c) for c in m.groups())
    assert online[1].endswith("scripts/p23_train.py") and offline[1] == online[1]
    assert online[2:] == ["--checkpoint-dir", str(tmp_path / "ck")]
    assert offline[2:] == ["--fake-data", "--checkpoint-dir", str(tmp_path / "ck")]

    # pasted (on a small synthetic set), it makes the model p25 then finds
    from common import data
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    assert load_script("p23_train").main([*offline[2:], "--epochs", "1",
                                          "--logdir", str(tmp_path / "logs")]) == 0
    capsys.readouterr()
    assert p25.main(args) == 0
    assert capsys.readouterr().out.startswith(f"checkpoint: {tmp_path / 'ck' / 'p23_train'}/")


def test_what_the_model_was_trained_on_is_printed(ants_bees, tmp_path, monkeypatch, capsys):
    _picture(RED).save(tmp_path / "r.png")
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint-dir", str(ants_bees)]) == 0
    out = capsys.readouterr().out.splitlines()
    state = checkpoint.load(_last(ants_bees))
    assert out[1] == (f"trained on: the image folder {ants_bees.parent / 'pics'} (24 images, "
                      f"classes: ants, bees), 6 epochs; test accuracy "
                      f"{state['test_accuracy']:.4f} of 8 test images")
    assert "never a photograph" not in "\n".join(out)

    # a --fake-data model says, in one line, that it has never seen a photograph
    from common import data
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    p23 = load_script("p23_train")
    assert p23.main(["--fake-data", "--epochs", "1", "--logdir", str(tmp_path / "logs"),
                     "--checkpoint-dir", str(tmp_path / "ckpt")]) == 0
    capsys.readouterr()
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint-dir", str(tmp_path / "ckpt"),
                     "--verbose"]) == 0
    out = capsys.readouterr().out
    # --verbose: the course's prints, the top class of output.argmax(1) being the top-1 line
    ((best, _), *_), = _predictions(out).values()
    assert "\n  image.shape: torch.Size([3, 32, 32])\n" in out     # before the reshape
    scores = re.findall(r"\n  output: tensor\(\[\[(.+?)\]\]\)\n", out, re.S)
    assert len(scores) == 1 and len(scores[0].split(",")) == 10
    (argmax, name), = re.findall(r"\n  output.argmax\(1\): tensor\(\[(\d)\]\) \((\w+)\)\n", out)
    assert name == best == CIFAR10_CLASSES[int(argmax)]
    accuracy = checkpoint.load(_last(tmp_path / "ckpt"))["test_accuracy"]
    assert (f"trained on: synthetic --fake-data pictures (64 images, no photographs), 1 epoch; "
            f"test accuracy {accuracy:.4f} of 16 test images\n") in out
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert notes == ["note: this model has only ever seen --fake-data's coloured stripes, never a "
                     "photograph: for a real picture its answer is a guess. Train on CIFAR-10 "
                     f"({cli.command_line(REPO / 'scripts' / 'p23_train.py')}) for real "
                     "predictions"]
    monkeypatch.chdir(tmp_path)           # run from elsewhere: a command that works from there
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint-dir", str(tmp_path / "ckpt")]) == 0
    (command,) = re.findall(r"Train on CIFAR-10 \((.+)\) for", capsys.readouterr().out)
    assert shlex.split(command)[1] == str(REPO / "scripts" / "p23_train.py")
    assert "model:\nGST(\n  (model): Sequential(" in out         # --verbose: the layers


def test_whole_model_pickle_needs_trust(tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "gst_method1.pth"
    torch.save(GST(), path)                                 # the course's torch.save(gst, ...)
    _picture(RED).save(tmp_path / "r.png")
    args = [str(tmp_path / "r.png"), "--checkpoint", str(path)]
    assert p25.main(args) == 1
    assert capsys.readouterr().err == (
        f"error: {path} holds a pickled Python object (a whole model saved with torch.save(model)), "
        "and unpickling can run any code in it. Load the state_dict format instead, or, if you "
        "made this file yourself, re-run with --trust-pickle\n")
    assert p25.main([*args, "--trust-pickle"]) == 0
    top = _predictions(capsys.readouterr().out)[str(tmp_path / "r.png")]
    assert len(top) == 3 and all(c in CIFAR10_CLASSES for c, _ in top)


def test_bare_state_dict_uses_cifar10_names(tmp_path, capsys):
    path = tmp_path / "gst_method2.pth"
    torch.save(GST().state_dict(), path)                    # lesson 22's second way
    _picture(RED).save(tmp_path / "r.png")
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint", str(path), "--topk", "10"]) == 0
    top = _predictions(capsys.readouterr().out)[str(tmp_path / "r.png")]
    assert sorted(c for c, _ in top) == sorted(CIFAR10_CLASSES)


def test_not_a_gst_checkpoint(tmp_path, capsys):
    path = tmp_path / "linear.pth"
    torch.save(nn.Linear(4, 2).state_dict(), path)
    _picture(RED).save(tmp_path / "r.png")
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint", str(path)]) == 1
    assert capsys.readouterr().err == (f"error: {path} is not a GST checkpoint "
                                       "(no model.8.weight in its state_dict)\n")
    text = tmp_path / "text.pth"
    text.write_text("hello")
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint", str(text)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {text} is not a PyTorch checkpoint") and err.count("\n") == 1


def test_another_architecture_or_no_model_in_the_checkpoint_is_one_line(tmp_path, capsys):
    _picture(RED).save(tmp_path / "r.png")
    other = checkpoint.save({"arch": "ResNet18", "model": GST().state_dict()},
                            tmp_path / "resnet.pth")
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint", str(other)]) == 1
    assert capsys.readouterr().err == f"error: {other} holds a ResNet18 model, not GST\n"
    empty = checkpoint.save({"arch": "GST", "epoch": 0}, tmp_path / "empty.pth")
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint", str(empty)]) == 1
    assert capsys.readouterr().err == (f"error: {empty} is not a model checkpoint (no "
                                       "state_dict in it)\n")


@pytest.mark.parametrize("field, value, words", [
    ("classes", 5, "its 'classes' should be a list of class names, not 5"),
    ("normalize", "ab", "its 'normalize' should be (mean, std), or None, not 'ab'"),
    ("test_accuracy", "x", "its 'test_accuracy' should be a number, not 'x'"),
    ("epoch", "3", "its 'epoch' should be a whole number, 0 or more, not '3'"),
    ("model.8", 0, "is not a GST checkpoint (its model has no outputs)"),
])
def test_a_checkpoint_made_by_hand_is_one_line(tmp_path, capsys, field, value, words):
    """The right keys, a field of another kind: a TypeError, ValueError or IndexError before."""
    state = {"arch": "GST", "model": GST().state_dict(), "epoch": 0,
             "classes": list(CIFAR10_CLASSES), "normalize": None, "test_accuracy": 0.5}
    if field == "model.8":
        state["model"]["model.8.weight"] = torch.zeros(0, 64)
        state["model"]["model.8.bias"] = torch.zeros(0)
        state["classes"] = []
    else:
        state[field] = value
    made = checkpoint.save(state, tmp_path / "gst_0.pth")
    _picture(RED).save(tmp_path / "x.png")
    assert p25.main([str(tmp_path / "x.png"), "--checkpoint", str(made),
                     "--logdir", str(tmp_path / "logs")]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {made} ") and words in err and err.count("\n") == 1, err
    assert not (tmp_path / "logs").exists()


def test_predict_runs_the_picture_on_the_models_device_and_ranks_the_classes():
    torch.manual_seed(0)
    image = torch.rand(3, 32, 32)
    # on the meta device (a stand-in for a GPU): a picture left on the CPU would fail there
    meta = torch.device("meta")
    seen, output, top = p25.predict(GST().to(meta).eval(), image, meta, 3)
    assert seen.device == top.values.device == meta and seen.shape == (1, 3, 32, 32)
    assert output.device == meta and output.shape == (1, 10)
    # on the CPU, against the softmax computed here
    gst = GST().eval()
    seen, output, top = p25.predict(gst, image, torch.device("cpu"), 4)
    with torch.no_grad():
        assert torch.equal(output, gst(image[None]))
        probs = torch.softmax(gst(image[None]), 1)[0]
    assert top.indices.tolist() == probs.argsort(descending=True)[:4].tolist()
    assert top.values.tolist() == pytest.approx(probs.sort(descending=True).values[:4].tolist())
    assert torch.equal(seen[0], image)


def test_a_bare_state_dict_of_other_classes_and_a_mismatch_are_named(tmp_path, capsys):
    _picture(RED).save(tmp_path / "r.png")
    three = tmp_path / "three.pth"
    torch.save(GST(3).state_dict(), three)         # lesson 22's way, 3 outputs, no names
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint", str(three), "--topk", "3"]) == 0
    top = _predictions(capsys.readouterr().out)[str(tmp_path / "r.png")]
    assert sorted(c for c, _ in top) == ["class 0", "class 1", "class 2"]
    named = checkpoint.save({"arch": "GST", "model": GST(3).state_dict(), "classes": ["a", "b"]},
                            tmp_path / "named.pth")
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint", str(named)]) == 1
    assert capsys.readouterr().err == (f"error: {named} names 2 classes but its model has 3 "
                                       "outputs\n")
    broken = GST().state_dict()
    broken["model.0.weight"] = torch.zeros(1)            # the right keys, a wrong shape
    bad = checkpoint.save({"arch": "GST", "model": broken}, tmp_path / "bad.pth")
    assert p25.main([str(tmp_path / "r.png"), "--checkpoint", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad} is a checkpoint for a different architecture than GST")


def test_a_model_from_a_stopped_run_says_so_and_its_command_finishes_that_run(
        tmp_path, monkeypatch, capsys):
    """A run stopped (Ctrl-C) after epoch 1 of 2 left gst_0.pth: p25 loads it, says "1 of 2
    epochs", and prints the command that finishes that very run (its folders are not the
    defaults here). Once finished, its gst_0.pth is just an earlier epoch: no note."""
    from common import data
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    p23 = load_script("p23_train")
    folders = ["--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert p23.main(["--fake-data", "--epochs", "2", *folders]) == 0
    (run,) = (tmp_path / "ckpt" / "p23_train").iterdir()
    (run / "gst_1.pth").unlink()                  # as if stopped during epoch 2
    _picture(RED).save(tmp_path / "r.png")
    capsys.readouterr()
    assert p25.main([str(tmp_path / "r.png"), *folders]) == 0
    out = capsys.readouterr().out
    assert "pictures (64 images, no photographs), 1 of 2 epochs; test accuracy " in out
    (note,) = [line for line in out.splitlines() if line.startswith("note: its run")]
    command = re.fullmatch(r"note: its run ended after epoch 1 of 2, or is still training\. If "
                           r"it was stopped, (.+) finishes it; or name another model with "
                           r"--checkpoint", note).group(1)
    argv = shlex.split(command)
    assert argv[1:4] == [str(REPO / "scripts" / "p23_train.py"), "--resume",
                         str(run / "gst_0.pth")]
    assert p23.main(argv[2:]) == 0                # pasted: it finishes the same run
    assert sorted(p.name for p in run.iterdir()) == ["gst_0.pth", "gst_1.pth"]
    assert [p.name for p in (tmp_path / "logs" / "p23_train").iterdir()] == [run.name]
    for name, said in [("gst_1.pth", "2 epochs;"), ("gst_0.pth", "1 of 2 epochs;")]:
        capsys.readouterr()
        assert p25.main([str(tmp_path / "r.png"), "--checkpoint", str(run / name),
                         "--logdir", str(tmp_path / "logs")]) == 0
        out = capsys.readouterr().out
        assert f"no photographs), {said} test accuracy" in out
        assert "note: its run" not in out       # finished; gst_0 is only an earlier epoch
