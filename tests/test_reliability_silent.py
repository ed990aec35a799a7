"""Reliability, nothing silent: data is read as it is or refused with a reason (never part of it, never
pixels unlike the picture), caches are checked against the content they stand for, and arguments that
would be ignored or cut short are refused.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from test_reliability import CONFIGS, data_error, face_png, one_line_error, umask

from unveil.classify.config import ClassifierConfig
from unveil.config import load_config
from unveil.data import load_faces
from unveil.data.preprocess import decode_image
from unveil.data.store import open_store, write_store
from unveil.errors import DataError, UnveilError
from unveil.photo import create_detector
from unveil.photo.framing import frame_photos
from unveil.photo.read import labelled_photos, read_photo
from unveil.pipelines.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def class_folders(root: Path, per_class: int = 2, classes=("happy", "sad")) -> Path:
    for label in classes:
        (root / label).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            (root / label / f"{k}.png").write_bytes(face_png(40 + k + 10 * len(label)))
    return root


# --------------------------------------------------------------------------- data read wrongly


@pytest.mark.parametrize("extra, kinds", [
    ("faces.zip", "archives and folders"), ("fer.csv", "CSV files and folders"), ("loose.png", "folders and images"),
])
def test_a_folder_is_one_kind_of_source(tmp_path, extra, kinds):
    root = class_folders(tmp_path / "data")
    if extra.endswith(".zip"):
        with zipfile.ZipFile(root / extra, "w") as zf:
            zf.writestr("angry/0.png", face_png())
    else:
        (root / extra).write_bytes(face_png() if extra.endswith(".png") else b"emotion,pixels\n")
    message = data_error(root)
    assert f"{root}: holds {kinds}" in message and extra in message
    (root / extra).unlink()
    assert len(load_faces(str(root), use_cache=False)) == 4


def test_a_folder_of_several_csv_files_is_refused(tmp_path):
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("emotion,pixels\n")
    assert "holds several CSV files (a.csv, b.csv)" in data_error(tmp_path)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_16_bit_and_rotated_images_decode_as_shown():
    face = np.random.default_rng(0).integers(0, 256, (48, 48)).astype(np.uint8)
    wide = Image.fromarray(face.astype(np.uint16) * 257)  # the same picture in 16 bits
    assert wide.mode.startswith("I;16")
    assert np.array_equal(decode_image(png_bytes(wide), "wide.png")[0], face)
    stored = Image.fromarray(face).transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to show
    buffer = io.BytesIO()
    stored.save(buffer, "PNG", exif=exif)
    assert np.array_equal(decode_image(buffer.getvalue(), "turned.png")[0], face)


def test_a_16_bit_photo_is_read_as_shown_and_its_face_found(tmp_path):
    from skimage import data

    from unveil.photo import create_detector
    from unveil.photo.read import read_photo

    gray = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "wide.png")
    rgb, _ = read_photo(tmp_path / "wide.png")
    assert np.array_equal(rgb[..., 0], gray)
    assert create_detector("retinaface").detect(rgb)


def fail_listing(monkeypatch, folder: Path) -> None:
    """`folder` cannot be listed (tests may run as root, whom file modes do not stop)."""
    for name in ("scandir", "listdir"):
        real = getattr(os, name)

        def listing(path=".", real=real):
            if os.fspath(path) == str(folder):
                raise PermissionError(13, "Permission denied", str(folder))
            return real(path)

        monkeypatch.setattr(os, name, listing)


def test_an_unreadable_class_folder_is_named_not_dropped(tmp_path, monkeypatch, capsys):
    root = class_folders(tmp_path / "data")
    fail_listing(monkeypatch, root / "sad")
    assert f"{root / 'sad'}: cannot read the folder (Permission denied)" in data_error(root)
    with pytest.raises(DataError, match="sad: cannot read the folder"):
        labelled_photos(root)
    line = one_line_error(["eval-photos", root, "--out", tmp_path / "o"], capsys, alone=False)
    assert "sad: cannot read the folder" in line


@pytest.mark.parametrize("archive", ["faces.zip", "faces.tar"])
def test_an_archive_holding_a_face_twice_is_refused(tmp_path, archive):
    path = tmp_path / archive
    if archive.endswith(".zip"):
        with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as zf:
            for k in (1, 2):
                zf.writestr("happy/a.png", face_png(40 + k))
    else:
        with tarfile.open(path, "w") as tar:
            for k in (1, 2):
                data = face_png(40 + k)
                info = tarfile.TarInfo("happy/a.png")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    assert f"{path}:happy/a.png: a second image named happy/a.png" in data_error(path)


# --------------------------------------------------------------------------- caches


def test_a_file_rewritten_with_the_same_size_and_time_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("UNVEIL_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"
    (root / "happy").mkdir(parents=True)
    pgm = root / "happy" / "a.pgm"  # a fixed-size format: the same size whatever the pixels
    for name in ("b.pgm", "a.pgm"):
        (root / "happy" / name).write_bytes(b"P5 48 48 255\n" + bytes(range(48)) * 48)
    first = load_faces(str(root), normalize=False)
    stat = pgm.stat()
    pgm.write_bytes(b"P5 48 48 255\n" + bytes(range(100, 148)) * 48)
    os.utime(pgm, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert pgm.stat().st_size == stat.st_size and pgm.stat().st_mtime_ns == stat.st_mtime_ns
    again = load_faces(str(root), normalize=False)
    assert again.fingerprint != first.fingerprint and int(again.images[0].min()) == 100


@pytest.fixture(scope="module")
def face_photos(tmp_path_factory) -> list[Path]:
    """Two photos with a face (the sample photo, small) and one without."""
    from unveil.pipelines.predict import sample_photo

    folder = tmp_path_factory.mktemp("photos")
    small = Image.fromarray(sample_photo()[0]).resize((192, 192), Image.Resampling.BOX)
    small.save(folder / "a.png")
    small.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "b.png")
    (folder / "c.png").write_bytes(png_bytes(Image.new("RGB", (64, 64), (90, 90, 90))))
    return sorted(folder.glob("*.png"))


def _rewrite_metadata(path: Path, **changes: str) -> None:
    """The cache file with metadata values replaced, as valid safetensors of another shape."""
    header = int.from_bytes(path.read_bytes()[:8], "little")
    meta = json.loads(path.read_bytes()[8:8 + header])["__metadata__"]
    path.write_bytes(save_bytes(load_bytes(path.read_bytes()), metadata={**meta, **changes}))


@pytest.mark.parametrize("damage", ["bit", "shape"])
def test_a_damaged_framing_cache_is_framed_again_and_said(face_photos, tmp_path, capsys, damage):
    detector = create_detector()
    clean = frame_photos(face_photos, detector, cache=tmp_path)
    assert clean.found.tolist() == [True, True, False]
    (cache,) = tmp_path.glob("framed-*.safetensors")
    if damage == "bit":  # one bit of the last tensor, `sizes` (sorted names: found comes before)
        _flip(cache, cache.stat().st_size - 1)
    else:  # valid metadata of the wrong shape: no problems listed
        _rewrite_metadata(cache, problems="[]")
    capsys.readouterr()
    again = frame_photos(face_photos, detector, cache=tmp_path)
    assert f"warning: {cache} is stale or damaged (its layout or its digest does not match" in capsys.readouterr().err
    assert torch.equal(again.found, clean.found) and torch.equal(again.sizes, clean.sizes)
    assert again.problems == clean.problems
    assert frame_photos(face_photos, detector, cache=tmp_path).problems == clean.problems  # rebuilt whole
    assert capsys.readouterr().err == ""


def masked_set(root: Path, face_photos: list[Path]) -> Path:
    """A masked / bare set (with_mask/a.png, without_mask/b.png): two photos with a face."""
    for folder, photo in (("with_mask", face_photos[0]), ("without_mask", face_photos[1])):
        (root / folder).mkdir(parents=True)
        shutil.copy(photo, root / folder / photo.name)
    return root


def test_eval_holes_names_a_photo_it_cannot_read_and_leaves_it_out_of_the_rates(face_photos, tmp_path, capsys):
    root = masked_set(tmp_path / "set", face_photos)
    cut = root / "without_mask" / "cut.jpg"
    jpeg = io.BytesIO()
    Image.open(face_photos[1]).convert("RGB").save(jpeg, "JPEG")
    cut.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    capsys.readouterr()
    assert main(["eval-holes", str(root), "--hole", "lower-half", "--device", "cpu", "--json",
                 "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    (record,) = json.loads(captured.out)["sets"]
    assert record["bare"]["photos"] == 1 and record["bare"]["detection_rate"] == 1.0  # not a face missed
    assert record["no_face"] == [] and len(record["unreadable"]) == 1
    assert f"warning: {cut}: cannot read it as an image" in captured.err and "left out" in captured.err


def test_eval_holes_on_an_empty_split_is_one_line(face_photos, tmp_path, capsys):
    from unveil.photo.hole_sets import SPLITS, masked_photos

    root = masked_set(tmp_path / "set", face_photos)
    empty = next(s for s in SPLITS if s not in {p.split for p in masked_photos(root)})
    line = one_line_error(["eval-holes", root, "--split", empty, "--hole", "lower-half", "--device", "cpu",
                           "--out", tmp_path / "out"], capsys)
    assert f"{root}: none of its 2 photos is in the {empty} split" in line


def test_a_damaged_hole_examples_cache_is_built_again_and_said(tmp_path, monkeypatch, capsys):
    from unveil.inpaint.segmenter_data import HoleExamples, _cached

    monkeypatch.setenv("UNVEIL_CACHE", str(tmp_path))
    images = torch.arange(2 * 48 * 48, dtype=torch.int32).remainder(251).to(torch.uint8).view(2, 48, 48)
    built = []

    def build():
        built.append(1)
        return HoleExamples(images, images > 100, torch.ones_like(images), torch.tensor([True, False]))

    first = _cached("k" * 24, build, "painted")
    (cache,) = tmp_path.glob("holes-*.safetensors")
    _flip(cache, cache.stat().st_size - 100)  # a pixel of `weight`, the last tensor
    capsys.readouterr()
    again = _cached("k" * 24, build, "painted")
    assert len(built) == 2 and "is stale or damaged" in capsys.readouterr().err
    assert torch.equal(again.weight, first.weight) and torch.equal(again.images, first.images)


@pytest.fixture()
def store(tmp_path, synthetic_faces) -> Path:
    return write_store(synthetic_faces.select(torch.arange(300)), tmp_path / "store", shard_faces=64)


@pytest.mark.parametrize("damage, file", [
    (lambda s: _flip(s / "train-00001.u8", 100), "train-00001.u8: SHA-256 does not match"),
    (lambda s: np.save(s / "labels.npy", np.roll(np.load(s / "labels.npy"), 1)), "labels.npy: SHA-256 does not match"),
    (lambda s: _flip(s / "ids.txt", 3), "ids.txt: SHA-256 does not match"),
])
def test_the_face_store_is_checked_against_its_manifest(store, damage, file):
    damage(store)
    with pytest.raises(DataError, match=file):
        open_store(store)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- arguments that would be ignored


def test_a_config_key_given_twice_is_refused(tmp_path, capsys):
    path = tmp_path / "twice.yaml"
    path.write_text((CONFIGS / "classifier_synthetic.yaml").read_text() + "\nname: second\n")
    with pytest.raises(UnveilError, match=r"twice\.yaml line \d+: invalid YAML \(key 'name' given twice\)"):
        load_config(ClassifierConfig, path)
    line = one_line_error(["train-classifier", "--config", CONFIGS / "classifier_synthetic.yaml", "--set",
                           "model.args={widths: [8], widths: [16]}"], capsys)
    assert "model.args={widths: [8], widths: [16]}" in line and "key 'widths' given twice" in line


@pytest.mark.parametrize("argv", [
    ["data", "preview", "synthetic:n=70", "--occlusion", "mask:seed=3", "--seed", "5", "--out", "x.png"],
    ["eval-classifier", "classifier_full", "--data", "synthetic:n=70", "--occlusion", "mask:seed=3"],
    ["compare", "--data", "synthetic:n=70", "--occlusion", "mask:styles=n95,seed=0"],
    ["eval-inpainter", "telea", "--data", "synthetic:n=70", "--occlusion", "mixed:seed=2"],
    ["train-classifier", "--config", str(CONFIGS / "classifier_synthetic.yaml"), "--set",
     "condition={name: occluded, occlusion: 'mask:seed=3'}"],
    ["train-inpainter", "--config", str(CONFIGS / "inpaint_synthetic_unet.yaml"), "--set", "occlusion=mask:seed=3"],
])
def test_a_seed_inside_an_occlusion_is_refused_not_ignored(argv, capsys):
    line = one_line_error(argv, capsys)
    assert "the masks are drawn from the command's own seed (--seed; train.seed in a training config)" in line
    assert "--occlusion" in line or "occlusion:" in line


def test_more_folds_than_the_smallest_class_holds_is_refused(tmp_path, capsys):
    line = one_line_error(["baseline", "logreg", "--data", "synthetic:n=300", "--folds", "500", "--train-size",
                           "5000", "--bootstrap", "0", "--out", tmp_path / "b"], capsys, alone=False)
    assert "--folds 500: stratified cross-validation needs as many faces of each class" in line
    assert "their smallest class" in line


def test_the_face_store_respects_the_umask(tmp_path, synthetic_faces):
    faces = synthetic_faces.select(torch.arange(100))
    for mask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o077, 0o600, 0o700)):
        with umask(mask):
            folder = write_store(faces, tmp_path / f"store{mask:o}", shard_faces=64)
        assert oct(folder.stat().st_mode & 0o777) == oct(dir_mode)
        assert {oct(f.stat().st_mode & 0o777) for f in folder.iterdir()} == {oct(file_mode)}


# --------------------------------------------------------------------------- what is not a file


@pytest.mark.timeout(120)
def test_a_fifo_in_a_data_folder_is_skipped_with_a_warning_never_read(tmp_path, capsys):
    root = class_folders(tmp_path / "data")
    os.mkfifo(root / "happy" / "pipe.png")  # a reader of it would wait forever
    os.mkfifo(root / "happy" / ".hidden.png")
    faces = load_faces(str(root), use_cache=False)
    assert len(faces) == 4
    assert f"warning: {root / 'happy' / 'pipe.png'}: not a regular file; skipped" in capsys.readouterr().err
    assert main(["data", "info", str(root), "--json", "--no-cache"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 4
    os.mkfifo(tmp_path / "fer.csv")
    assert "fer.csv: not a regular file or a folder" in data_error(tmp_path / "fer.csv")
    (root / "happy" / "pipe.png").unlink()
    os.mkfifo(tmp_path / "data" / "sneaky.zip")  # beside class folders: not an archive, not read
    assert len(load_faces(str(root), use_cache=False)) == 4


@pytest.mark.timeout(120)
def test_a_photo_set_follows_symlinks_once_and_names_what_it_skips(tmp_path, capsys):
    """What `photos:` and eval-holes read (`labelled_photos`, `image_files`): a folder link loop is read once,
    not until the path is too long (each photo 41 times), and a FIFO gets the warning a data folder gives."""
    root = class_folders(tmp_path / "photos")
    (root / "happy" / "again").symlink_to(root / "happy")   # a loop: happy/again/again/...
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "2.png").write_bytes(face_png(80))
    (root / "surprise").symlink_to(tmp_path / "more", target_is_directory=True)  # a linked class folder: followed
    os.mkfifo(root / "happy" / "pipe.jpg")
    photos = labelled_photos(root)
    assert [p.relative_to(root).as_posix() for p, _ in photos] == ["happy/0.png", "happy/1.png", "sad/0.png",
                                                                   "sad/1.png", "surprise/2.png"]
    assert f"warning: {root / 'happy' / 'pipe.jpg'}: not a regular file; skipped" in capsys.readouterr().err
    assert len(load_faces(str(root), use_cache=False)) == 5  # a class-folder source walks them the same way
    with pytest.raises(DataError, match="pipe.jpg: not a regular file"):
        read_photo(root / "happy" / "pipe.jpg")  # given by name, as to predict: named, never opened


def test_yaml_in_a_config_is_a_plain_tree(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(yaml.safe_dump({"name": "x"}) + "train: &t {epochs: 1}\nmodel: *t\n")
    with pytest.raises(UnveilError, match=r"anchors\.yaml line 3: invalid YAML \(alias \*t refused"):
        load_config(ClassifierConfig, path)
