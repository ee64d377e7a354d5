"""What TensorBoard shows of what the model learned (p23, p25): the confusion matrix, each
class's accuracy, a fixed grid of predictions, the run's text and HParams entry, p25's
pictures. Read back from the event files with TensorBoard's own EventAccumulator, and held
against an independent evaluation of the saved weights (the course's ToTensor + DataLoader)."""
import json
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from torch.utils.data import DataLoader
from torchvision import transforms

from common import data, figures
from common.model import CIFAR10_CLASSES, GST
from conftest import course_test_pass, decoded, events, load_script, only_run, scalars

p23 = load_script("p23_train")
p25 = load_script("p25_test")

TRAIN, TEST, BATCH = 300, 53, 16      # 53 test images: four batches of 16 and one of 5


def _predictions_the_course_way(checkpoint_path):
    """Oracle: ``(targets, predictions)`` of the saved weights on the --fake-data test set,
    through ToTensor and a DataLoader, as the course tests."""
    state = torch.load(checkpoint_path, weights_only=True)
    gst = GST()
    gst.load_state_dict(state["model"])
    gst.eval()
    dataset = data.FakeCIFAR10(train=False, size=TEST, transform=transforms.ToTensor())
    targets, predicted = [], []
    with torch.no_grad():
        for imgs, t in DataLoader(dataset, batch_size=7):
            targets += t.tolist()
            predicted += gst(imgs).argmax(1).tolist()
    return targets, predicted


def _hparams(acc):
    """``(hparams {name: value}, metric tags)`` of a run, from its HParams plugin data."""
    def content(tag):
        return plugin_data_pb2.HParamsPluginData.FromString(
            acc.SummaryMetadata(tag).plugin_data.content)
    start = content("_hparams_/session_start_info").session_start_info
    values = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
              for k, v in start.hparams.items()}
    experiment = content("_hparams_/experiment").experiment
    return values, [m.name.tag for m in experiment.metric_infos]


def _text(acc, tag="run"):
    return {e.step: e.tensor_proto.string_val[0].decode() for e in acc.Tensors(f"{tag}/text_summary")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One p23 --fake-data run of 2 epochs on 300/53 images, the grid's arguments recorded."""
    root = tmp_path_factory.mktemp("tb")
    grids = []
    real = figures.prediction_grid

    def recording(images, predicted, true, classes, title=""):
        grids.append((images.clone(), list(predicted), list(true), list(classes)))
        return real(images, predicted, true, classes, title)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "FAKE_TRAIN_SIZE", TRAIN)
        mp.setattr(data, "FAKE_TEST_SIZE", TEST)
        mp.setattr(p23.figures, "prediction_grid", recording)
        argv = ["--fake-data", "--epochs", "2", "--batch-size", str(BATCH), "--lr", "0.02",
                "--seed", "0", "--device", "cpu", "--logdir", str(root / "logs"),
                "--checkpoint-dir", str(root / "ckpt"), "--metrics", str(root / "m.json")]
        assert p23.main(argv) == 0
    run = only_run(root / "logs", "p23_train")
    (ckpt_run,) = (root / "ckpt" / "p23_train").iterdir()
    return {"root": root, "run": run, "last": ckpt_run / "gst_1.pth", "grids": grids,
            "metrics": json.loads((root / "m.json").read_text())}


def test_the_confusion_matrix_counts_each_true_and_predicted_pair(trained):
    targets, predicted = _predictions_the_course_way(trained["last"])
    pairs = Counter(zip(targets, predicted))
    oracle = [[pairs[(t, p)] for p in range(10)] for t in range(10)]
    matrix = trained["metrics"]["confusion_matrix"]
    assert matrix == oracle
    assert sum(map(sum, matrix)) == TEST
    assert trained["metrics"]["test_accuracy"] == pytest.approx(
        sum(t == p for t, p in zip(targets, predicted)) / TEST)
    # one picture of it per epoch, at the size the figure is drawn
    images = events(trained["run"]).Images("test_confusion_matrix")
    assert [e.step for e in images] == [0, 1]
    width, height = (round(x * figures.DPI) for x in figures.CONFUSION_INCHES)
    assert {(e.width, e.height) for e in images} == {(width, height)}
    assert decoded(trained["run"], "test_confusion_matrix")[1].shape[:2] == (height, width)


def test_the_test_loss_and_accuracy_against_an_oracle(trained):
    # 53 test images in batches of 16: the last batch (5 images) counts in both numbers
    state = torch.load(trained["last"], weights_only=True)
    gst = GST()
    gst.load_state_dict(state["model"])
    images, targets = data.cifar_uint8(data.FakeCIFAR10(train=False, size=TEST))
    oracle_loss, right = course_test_pass(gst, images, targets, BATCH)
    assert trained["metrics"]["test_loss"] == pytest.approx(oracle_loss, rel=1e-5)
    assert trained["metrics"]["test_accuracy"] == pytest.approx(right / TEST)
    assert state["test_loss"] == pytest.approx(oracle_loss, rel=1e-5)
    assert scalars(trained["run"], "test_loss")[-1][1] == pytest.approx(oracle_loss, rel=1e-5)


def test_each_class_has_its_accuracy_curve(trained):
    targets, predicted = _predictions_the_course_way(trained["last"])
    for k, name in enumerate(CIFAR10_CLASSES):
        mine = [p for t, p in zip(targets, predicted) if t == k]
        points = scalars(trained["run"], f"test_accuracy_per_class/{name}")
        if not mine:      # a class with no test image has no accuracy, and no curve
            assert points == []
            continue
        assert [s for s, _ in points] == [0, 1]
        assert points[-1][1] == pytest.approx(sum(p == k for p in mine) / len(mine))
        assert trained["metrics"]["test_accuracy_per_class"][name] == pytest.approx(points[-1][1])


def test_the_prediction_grid_shows_the_same_test_images_every_epoch(trained):
    grids = trained["grids"]
    assert len(grids) == 2                         # one per epoch
    test_images, test_targets = data.cifar_uint8(data.FakeCIFAR10(train=False, size=TEST))
    shown = p23.prediction_sample(TEST)
    assert len(shown) == p23.PREDICTION_IMAGES and len(set(shown.tolist())) == len(shown)
    assert torch.equal(shown, p23.prediction_sample(TEST))      # drawn with a fixed seed
    for images, _, true, classes in grids:
        assert torch.equal(images, test_images[shown])          # the same pictures, as stored
        assert true == test_targets[shown].tolist() and classes == list(CIFAR10_CLASSES)
    # the last grid says what the saved weights say for those images
    _, predicted = _predictions_the_course_way(trained["last"])
    assert grids[-1][1] == [predicted[i] for i in shown.tolist()]
    # and it is in the event file, one image an epoch, each the same size
    images = events(trained["run"]).Images("test_predictions")
    assert [e.step for e in images] == [0, 1]
    assert len({(e.width, e.height) for e in images}) == 1


def test_the_prediction_grid_marks_the_wrong_ones():
    # 2 images, the second predicted wrong: its frame is red, the first's is not
    images = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    figure = figures.prediction_grid(images, [0, 1], [0, 2], list(CIFAR10_CLASSES))
    titles = [t.get_text() for t in figure.axes[0].texts]
    assert titles == ["right: airplane\ntrue: airplane", "WRONG: automobile\ntrue: bird"]
    assert figure.axes[0].texts[1].get_color() == figures.WRONG
    mosaic = np.asarray(figure.axes[0].images[0].get_array())
    size = figures.CELL_PIXELS + 2 * figures.FRAME_PIXELS
    pitch, top, inside = size + figures.GAP_PIXELS, figures.CAPTION_PIXELS, figures.FRAME_PIXELS
    red, green = figures._rgb(figures.WRONG), figures._rgb(figures.RIGHT)
    first, second = (mosaic[top:top + size, x:x + size] for x in (0, pitch))
    assert (second[:inside] == red).all() and (second[:, -inside:] == red).all()  # thick, red
    assert (first[0] == green).all() and not (first == red).all(-1).any()         # thin, green
    for cell in (first, second):          # the picture itself, 4x larger, inside the frame
        assert (cell[inside:-inside, inside:-inside] == 128).all()


def test_the_run_says_what_it_is_in_text_and_hparams_in_its_own_folder(trained):
    run = trained["run"]
    # no other run folder: not the sub-run SummaryWriter.add_hparams makes (pytorch#32651)
    assert [p for p in run.iterdir() if p.is_dir()] == []
    assert [p.name for p in run.parent.iterdir()] == [run.name]
    acc = events(run)
    text = _text(acc)
    assert list(text) == [0]
    assert "--fake-data" in text[0] and "synthetic --fake-data images" in text[0]
    assert f"{TRAIN} training and {TEST} test images" in text[0]
    assert "| lr | 0.02 |" in text[0] and f"| batch_size | {BATCH} |" in text[0]
    hparams, metrics = _hparams(acc)
    assert hparams == {"lr": 0.02, "batch_size": BATCH, "epochs": 2, "momentum": 0.0,
                       "data": "fake-data", "device": "cpu", "amp": "False", "seed": 0,
                       "processes": 1}
    assert metrics == ["test_accuracy", "test_loss"]      # the run's own per-epoch tags
    end = plugin_data_pb2.HParamsPluginData.FromString(
        acc.SummaryMetadata("_hparams_/session_end_info").plugin_data.content)
    assert end.session_end_info.status == api_pb2.STATUS_SUCCESS     # every epoch trained


def test_a_run_stopped_early_has_no_end_in_hparams(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 64)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 16)
    real_save = p23.checkpoint.save

    def save_then_stop(obj, path, **options):
        real_save(obj, path, **options)
        raise KeyboardInterrupt                 # Ctrl-C right after the first epoch's save

    monkeypatch.setattr(p23.checkpoint, "save", save_then_stop)
    assert p23.main(["--fake-data", "--epochs", "3", "--device", "cpu", "--logdir",
                     str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt")]) == 130
    acc = events(only_run(tmp_path / "logs", "p23_train"))
    assert set(acc.PluginTagToContent("hparams")) == {"_hparams_/experiment",
                                                      "_hparams_/session_start_info"}


def test_class_names_no_installed_font_draws_get_one_note_not_a_warning_per_glyph(
        monkeypatch, capsys, recwarn):
    from torch.utils.tensorboard._utils import figure_to_image
    monkeypatch.setattr(figures, "_installed_cjk_fonts", lambda: ())
    figures._no_font_note.cache_clear()
    for _ in range(2):
        figure_to_image(figures.confusion_figure(torch.eye(2, dtype=torch.int64) * 3,
                                                 ["蚂蚁", "蜜蜂"]))
    err = capsys.readouterr().err
    assert err.count("note: no font installed here draws 蚂蚁, 蜜蜂: TensorBoard's pictures "
                     "show boxes for them. Install a CJK font") == 1
    assert not [w for w in recwarn if "missing from font" in str(w.message)]

    # Accents are not Chinese: the default font draws café, guêpes, ü (and Greek, Cyrillic),
    # with no note and no warning (a file "sp ace ü.png" got the CJK note, wrongly).
    figures._no_font_note.cache_clear()
    for names in (["café", "guêpes"], ["Ameisen ü", "мёд"], ["αβ", "z"]):
        figure_to_image(figures.confusion_figure(torch.eye(2, dtype=torch.int64), names))
    assert capsys.readouterr().err == ""
    from matplotlib import font_manager     # the oracle: DejaVu Sans's own character map
    dejavu = font_manager.get_font(font_manager.findfont("DejaVu Sans")).get_charmap()
    assert all(ord(c) in dejavu for c in "caféguêpesüмёдαβ") and ord("蚂") not in dejavu


def test_a_resumed_run_adds_its_text_and_keeps_one_hparams_entry(trained, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(trained["root"], root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "FAKE_TRAIN_SIZE", TRAIN)
        mp.setattr(data, "FAKE_TEST_SIZE", TEST)
        assert p23.main(["--resume", "last", "--epochs", "3", "--lr", "0.03", "--device", "cpu",
                         "--logdir", str(root / "logs"),
                         "--checkpoint-dir", str(root / "ckpt")]) == 0
    run = only_run(root / "logs", "p23_train")
    assert [p for p in run.iterdir() if p.is_dir()] == []
    acc = events(run)
    text = _text(acc)
    assert sorted(text) == [0, 2]
    assert "**resumed** from" in text[2] and "at epoch 3" in text[2]
    assert "epochs 2 → 3, lr 0.02 → 0.03" in text[2]
    assert _hparams(acc)[0]["lr"] == 0.02        # the run's first entry, as the text says
    assert [e.step for e in acc.Images("test_confusion_matrix")] == [0, 1, 2]


@pytest.fixture
def p25_model(tmp_path):
    gst = GST()
    torch.save({"model": gst.state_dict(), "epoch": 0, "classes": list(CIFAR10_CLASSES)},
               tmp_path / "gst.pth")
    return tmp_path / "gst.pth"


def test_p25_writes_one_image_per_picture_it_classified(p25_model, tmp_path, capsys):
    pictures = []
    for n, size in enumerate([(40, 30), (800, 600)]):
        pictures.append(tmp_path / f"pic{n}.png")
        Image.new("RGB", size, (200, 40 * n, 40)).save(pictures[-1])
    logdir = tmp_path / "logs"
    rc = p25.main([*map(str, pictures), str(tmp_path / "missing.png"), "--checkpoint",
                   str(p25_model), "--logdir", str(logdir), "--topk", "4"])
    assert rc == 1                            # the missing one: one error line, the others done
    run = only_run(logdir, "p25_test")
    acc = events(run)
    assert acc.Tags()["images"] == ["predictions/1_pic0.png", "predictions/2_pic1.png"]
    width, height = (round(x * figures.DPI) for x in figures.TOPK_INCHES)
    for tag in acc.Tags()["images"]:
        (image,) = acc.Images(tag)
        assert (image.width, image.height) == (width, height)
    (text,) = _text(acc, "checkpoint").values()
    assert str(p25_model) in text
    assert f"TensorBoard run: {run}" in capsys.readouterr().out


def test_p25_writes_no_run_when_no_picture_could_be_read(p25_model, tmp_path, capsys):
    logdir = tmp_path / "logs"
    assert p25.main([str(tmp_path / "missing.png"), "--checkpoint", str(p25_model),
                     "--logdir", str(logdir)]) == 1
    assert not (logdir / "p25_test").exists()
    assert "TensorBoard" not in capsys.readouterr().out


def test_figures_refuse_a_matrix_of_the_wrong_shape():
    with pytest.raises(ValueError, match="3x3"):
        figures.confusion_figure(torch.zeros(2, 2), ["a", "b", "c"])
