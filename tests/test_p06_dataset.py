import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from torch.utils.data import ConcatDataset

from common import paths
from conftest import file_size_limit, load_script

p06 = load_script("p06_dataset")
HEADER = "second layout, read back with MyLabelData (each image with its .txt label):"


def copy_samples(tmp_path, n_ants=None, n_bees=None):
    """Copies of both sample layouts in tmp_path, optionally with fewer images per class."""
    image_folder = tmp_path / "hymenoptera"
    practice = tmp_path / "practice"
    shutil.copytree(paths.SAMPLE_IMAGE_FOLDER, image_folder)
    shutil.copytree(paths.SAMPLE_PRACTICE_FOLDER, practice,
                    ignore=shutil.ignore_patterns("*_label"))
    for n, folders in ((n_ants, ("train/ants", "train/ants_image")),
                       (n_bees, ("train/bees", "train/bees_image"))):
        if n is None:
            continue
        for root, sub in ((image_folder, folders[0]), (practice, folders[1])):
            for extra in sorted((root / sub).iterdir())[n:]:
                extra.unlink()
    return image_folder, practice


def run(image_folder, practice, capsys):
    rc = p06.main(["--image-folder", str(image_folder), "--practice-folder", str(practice)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        p06.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "--image-folder" in out and "--practice-folder" in out


def test_mydata_is_a_dataset_labelled_by_its_folder():
    root_dir = str(paths.SAMPLE_IMAGE_FOLDER / "train")
    ants_dataset = p06.MyData(root_dir, "ants")
    bees_dataset = p06.MyData(root_dir, "bees")
    on_disk = sorted(p.name for p in (paths.SAMPLE_IMAGE_FOLDER / "train/ants").iterdir())
    assert len(ants_dataset) == len(on_disk) == 10
    img, label = ants_dataset[0]
    assert isinstance(img, Image.Image) and label == "ants"
    assert img.filename.endswith("0013035.jpg") and img.size == (200, 150)
    train_dataset = ants_dataset + bees_dataset
    assert isinstance(train_dataset, ConcatDataset)
    assert len(train_dataset) == len(ants_dataset) + len(bees_dataset) == 20
    assert train_dataset[9][1] == "ants" and train_dataset[10][1] == "bees"


def test_both_layouts_from_a_copy(tmp_path, capsys):
    image_folder, practice = copy_samples(tmp_path, n_ants=4, n_bees=3)
    rc, out, err = run(image_folder, practice, capsys)
    assert rc == 0 and err == ""
    ants = sorted(p.name for p in (image_folder / "train/ants").iterdir())
    bees = sorted(p.name for p in (image_folder / "train/bees").iterdir())
    assert (len(ants), len(bees)) == (4, 3)

    # first layout: lengths from the files on disk, the bees after the ants
    first, second = out.split(HEADER)          # the second layout's lines come under a header
    assert out.count(HEADER) == 1
    assert first.startswith("img_path_list[0]: 0013035.jpg\nimg: size=(200, 150) mode=RGB\n")
    assert f"ants_dataset[0]: {ants[0]}  size=(200, 150)  mode=RGB  label='ants'\n" in first
    for part in (first, second):               # both layouts, once each
        assert part.count("len(ants_dataset): 4\n") == 1
        assert part.count("len(bees_dataset): 3\n") == 1
    assert "len(train_dataset): 7 (ConcatDataset)\n" in first
    assert f"train_dataset[4]: {bees[0]}  size=(200, 150)  mode=RGB  label='bees'\n" in first

    # second layout: the course's label files, <label>_label/<name>.txt holding the label
    for cls in ("ants", "bees"):
        images = sorted(p.name for p in (practice / "train" / f"{cls}_image").iterdir())
        labels = practice / "train" / f"{cls}_label"
        assert sorted(p.name for p in labels.iterdir()) == sorted(
            name[:-len(".jpg")] + ".txt" for name in images)
        assert all(p.read_text() == cls for p in labels.iterdir())
        assert f"wrote {len(images)} label files to {labels}\n" in first
    assert second.startswith("\nlen(ants_dataset): 4\nlen(bees_dataset): 3\nlen(train_dataset): 7\n")
    assert f"train_dataset[0]: {ants[0]}  size=(200, 150)  mode=RGB  label='ants'\n" in second
    assert f"train_dataset[4]: {bees[0]}  size=(200, 150)  mode=RGB  label='bees'\n" in second

    # the pairs read back: each image with the content of its own .txt file
    root_dir = str(practice / "train")
    ds = p06.MyLabelData(root_dir, "bees_image", "bees_label")
    (practice / "train/bees_label" / (bees[1][:-4] + ".txt")).write_text("not a bee")
    assert [ds[i][1] for i in range(len(ds))] == ["bees", "not a bee", "bees"]
    assert ds[0][0].filename.endswith(bees[0])


def test_a_folder_from_a_mac_and_a_png_among_the_jpgs(tmp_path, capsys):
    """macOS leaves .DS_Store in a folder it has shown: not a picture, not index 0 (sorted,
    a dot comes before digits). A .png's label file is <name>.txt, as a .jpg's is (the
    course's split('.jpg') would have named it <name>.png.txt)."""
    image_folder, practice = copy_samples(tmp_path, n_ants=2, n_bees=2)
    for folder in (image_folder / "train/ants", practice / "train/ants_image"):
        (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    Image.new("RGB", (20, 10), "white").save(practice / "train/bees_image/white.png")
    rc, out, err = run(image_folder, practice, capsys)
    assert (rc, err) == (0, "")
    assert out.startswith("img_path_list[0]: 0013035.jpg\n")
    assert "len(ants_dataset): 2\n" in out and "len(bees_dataset): 3\n" in out
    labels = practice / "train/bees_label"
    assert (labels / "white.txt").read_text() == "bees" and not list(labels.glob("*.png.txt"))
    assert not list((practice / "train/ants_label").glob(".DS_Store*"))
    ds = p06.MyLabelData(str(practice / "train"), "bees_image", "bees_label")
    assert [(ds[i][0].size, ds[i][1]) for i in range(len(ds))][-1] == ((20, 10), "bees")


def test_rerun_rewrites_the_same_label_files(tmp_path, capsys):
    image_folder, practice = copy_samples(tmp_path)
    assert run(image_folder, practice, capsys)[0] == 0
    first = sorted((practice / "train/ants_label").iterdir())
    assert len(first) == 10
    rc, out, _ = run(image_folder, practice, capsys)
    assert rc == 0 and sorted((practice / "train/ants_label").iterdir()) == first
    assert "len(train_dataset): 20 (ConcatDataset)\n" in out


def test_missing_image_folder_is_one_line(tmp_path, capsys):
    _, practice = copy_samples(tmp_path)
    rc, out, err = run(tmp_path / "nope", practice, capsys)
    assert rc == 1
    assert err == f"error: image folder not found: {tmp_path / 'nope'}\n"
    assert not (practice / "train/ants_label").exists()       # nothing written


def test_missing_class_folder_is_one_line(tmp_path, capsys):
    image_folder, practice = copy_samples(tmp_path)
    shutil.rmtree(image_folder / "train/bees")
    rc, out, err = run(image_folder, practice, capsys)
    assert (rc, out) == (1, "")
    assert err == f"error: class folder not found: {image_folder / 'train/bees'}\n"


def test_an_empty_class_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    """A class folder with no picture in it (the data unzipped one level off, or a .DS_Store
    alone): the lesson's img_path_list[0] was an IndexError traceback."""
    image_folder, practice = copy_samples(tmp_path)
    for picture in (image_folder / "train/ants").iterdir():
        picture.unlink()
    (image_folder / "train/ants/.DS_Store").write_bytes(b"")
    rc, out, err = run(image_folder, practice, capsys)
    assert (rc, out) == (1, "")
    assert err == (f"error: class folder {image_folder / 'train/ants'} is empty: put the "
                   "pictures of its class in it\n")
    image_folder, practice = copy_samples(tmp_path / "2")
    shutil.rmtree(practice / "train/bees_image")
    (practice / "train/bees_image").mkdir()
    rc, out, err = run(image_folder, practice, capsys)
    assert (rc, out) == (1, "")
    assert err == (f"error: practice image folder {practice / 'train/bees_image'} is empty: "
                   "put the pictures of its class in it\n")
    assert not (practice / "train/ants_label").exists()       # nothing written


def test_missing_practice_images_write_nothing(tmp_path, capsys):
    image_folder, practice = copy_samples(tmp_path)
    shutil.rmtree(practice / "train/bees_image")
    rc, out, err = run(image_folder, practice, capsys)
    assert (rc, out) == (1, "")
    assert err == f"error: practice image folder not found: {practice / 'train/bees_image'}\n"
    assert not (practice / "train/ants_label").exists()
    rc, _, err = run(image_folder, tmp_path / "missing", capsys)
    assert rc == 1 and err == f"error: practice folder not found: {tmp_path / 'missing'}\n"


def test_unreadable_image_is_one_line(tmp_path, capsys):
    image_folder, practice = copy_samples(tmp_path)
    bad = image_folder / "train/ants/0000000.jpg"      # sorts first: ants_dataset[0]
    bad.write_text("not a picture")
    rc, out, err = run(image_folder, practice, capsys)
    assert rc == 1
    assert err.startswith(f"error: cannot read image {bad}: ") and err.count("\n") == 1


def test_a_label_path_that_is_a_folder_is_one_line_and_stays(tmp_path, capsys):
    image_folder, practice = copy_samples(tmp_path, n_ants=2, n_bees=1)
    first = sorted((practice / "train/ants_image").iterdir())[0]
    in_the_way = practice / "train/ants_label" / (first.stem + ".txt")
    in_the_way.mkdir(parents=True)
    rc, out, err = run(image_folder, practice, capsys)
    assert rc == 1
    assert err == (f"error: cannot write {in_the_way}: it is a folder; move that folder out of "
                   f"the way, or write elsewhere with --practice-folder DIR (a copy of {practice}, "
                   "images and all)\n")
    assert in_the_way.is_dir() and list((practice / "train/ants_label").iterdir()) == [in_the_way]


def test_a_full_disk_while_writing_labels_is_one_line(tmp_path, small_disk, capsys):
    """The practice folder on a disk with room for its images and a few label files."""
    image_folder, practice = copy_samples(tmp_path, n_ants=3, n_bees=3)
    disk = small_disk("1m")
    shutil.copytree(practice, disk / "practice")
    used = sum(p.stat().st_size for p in (disk / "practice").rglob("*") if p.is_file())
    # tmpfs counts whole 4 KiB pages: leave room for the folder entries and two label files
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, bytes(4096))
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, filler.stat().st_size - 3 * 4096)
    rc, out, err = run(image_folder, disk / "practice", capsys)
    assert rc == 1 and used > 0
    m = re.fullmatch(rf"error: cannot write ({re.escape(str(disk / 'practice' / 'train'))}/"
                     r"(ants|bees)_label/\S+\.txt): no space left on the device; free some "
                     r"space, or write elsewhere with --practice-folder DIR \(a copy of "
                     rf"{re.escape(str(disk / 'practice'))}, images and all\)\n", err)
    assert m, err
    assert not Path(m.group(1)).exists()                  # no empty label file left
    for label in (disk / "practice" / "train").glob("*_label/*.txt"):
        assert label.read_text() in ("ants", "bees")      # those written are whole
    assert not list((disk / "practice").rglob(".*.tmp"))  # nor a temporary one


def test_a_rerun_that_cannot_write_keeps_the_labels_it_was_rewriting(tmp_path, capsys):
    image_folder, practice = copy_samples(tmp_path, n_ants=3, n_bees=3)
    assert run(image_folder, practice, capsys)[0] == 0
    labels = sorted((practice / "train").glob("*_label/*.txt"))
    assert len(labels) == 6
    with file_size_limit(2):        # "ants" is 4 bytes: every label write now fails
        rc, out, err = run(image_folder, practice, capsys)
    assert rc == 1 and err.count("\n") == 1
    assert err.startswith(f"error: cannot write {labels[0]}: the file is larger than this "
                          "system allows")
    # the course's open(..., 'w') empties the file before the write fails: it was lost
    assert sorted((practice / "train").glob("*_label/*.txt")) == labels
    assert [p.read_text() for p in labels] == ["ants"] * 3 + ["bees"] * 3
    assert not list(practice.rglob(".*.tmp"))
