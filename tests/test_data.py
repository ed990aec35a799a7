"""Data sources: every layout maps to the same canonical faces, the cache, and clear errors."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from unveil.classes import CLASSES, FER_CSV_ORDER
from unveil.data import load_faces, resolve_source
from unveil.data.preprocess import minmax_normalize
from unveil.errors import DataError

USAGES = ("Training", "PublicTest", "PrivateTest")
FER_COUNTS = {  # from ../shared/data/fer2013/README.md
    "train": [3995, 436, 4097, 7215, 4965, 4830, 3171],
    "val": [467, 56, 496, 895, 607, 653, 415],
    "test": [491, 55, 528, 879, 626, 594, 416],
}


def _faces(n: int, seed: int = 0) -> np.ndarray:
    """Random faces in a narrow CSV-like range (not contrast-stretched)."""
    rng = np.random.default_rng(seed)
    lo = rng.integers(0, 60, (n, 1, 1))
    hi = rng.integers(180, 256, (n, 1, 1))
    return (lo + rng.random((n, 48, 48)) * (hi - lo)).astype(np.uint8)


def _stretch(img: np.ndarray) -> np.ndarray:
    lo, hi = int(img.min()), int(img.max())
    return np.round((img.astype(np.float64) - lo) * 255 / (hi - lo)).astype(np.uint8)


@pytest.fixture
def fer_like(tmp_path):
    """The same 21 faces as a challenge CSV and as FER2013 image folders (stretched, like the export)."""
    images = _faces(21)
    canonical = [k % 7 for k in range(21)]
    usage = [USAGES[k % 3] for k in range(21)]
    csv_path = tmp_path / "fer2013.csv"
    lines = ["emotion,pixels,Usage"]
    for img, label, use in zip(images, canonical, usage):
        lines.append(f"{FER_CSV_ORDER.index(CLASSES[label])},{' '.join(map(str, img.flatten()))},{use}")
    csv_path.write_text("\n".join(lines) + "\n")
    root = tmp_path / "folders"
    for k, (img, label, use) in enumerate(zip(images, canonical, usage)):
        folder = root / ("train" if use == "Training" else "test") / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_stretch(img)).save(folder / f"{use}_{k:05d}.png")
    return csv_path, root, images, canonical, usage


def _by_key(faces, key):
    order = sorted(range(len(faces)), key=key)
    return faces.images[order], faces.labels[order]


def test_csv_and_folders_agree_on_labels_splits_and_pixels(fer_like):
    csv_path, root, _, canonical, usage = fer_like
    from_csv = load_faces(str(csv_path))
    from_folders = load_faces(str(root))
    assert len(from_csv) == len(from_folders) == 21
    assert from_csv.labels.tolist() == canonical
    assert from_csv.counts()["train"] == {c: 1 for c in CLASSES}
    # Same face -> same canonical label and, after normalisation, the same pixels.
    csv_images, csv_labels = _by_key(from_csv, lambda i: int(from_csv.ids[i].split(":")[1]))
    folder_images, folder_labels = _by_key(from_folders, lambda i: from_folders.ids[i].rsplit("_", 1)[1])
    assert torch.equal(csv_labels, folder_labels)
    assert torch.equal(csv_images, folder_images)
    assert from_folders.counts() == from_csv.counts()


def test_archive_reads_like_the_folder(fer_like, tmp_path):
    _, root, *_ = fer_like
    archive = tmp_path / "fer-train.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(root / "train", arcname="train")
        tar.add(root / "test", arcname="test")
    from_archive = load_faces(str(archive))
    from_folders = load_faces(str(root))
    assert sorted(from_archive.ids) == sorted(from_folders.ids)
    assert from_archive.counts() == from_folders.counts()


def test_normalisation_meets_the_stretched_twin():
    images = torch.from_numpy(_faces(8, seed=3))
    twins = torch.from_numpy(np.stack([_stretch(i) for i in images.numpy()]))
    assert not torch.equal(images, twins)
    assert torch.equal(minmax_normalize(images), minmax_normalize(twins))
    # PIL's autocontrast truncates instead of rounding: still within one grey level.
    from PIL import ImageOps
    pil = torch.from_numpy(np.stack([np.asarray(ImageOps.autocontrast(Image.fromarray(i))) for i in images.numpy()]))
    assert (minmax_normalize(images).int() - minmax_normalize(pil).int()).abs().max() <= 1
    flat = torch.full((1, 48, 48), 77, dtype=torch.uint8)
    assert torch.equal(minmax_normalize(flat), flat)


def test_class_folders_of_any_size_colour_and_alias(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("joy", "sadness", "Angry"):
        (tmp_path / name).mkdir()
        for k in range(20):
            rgb = rng.integers(0, 256, (64 + k, 80, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(tmp_path / name / f"img{k}.jpg")
    faces = load_faces(str(tmp_path), aliases={"joy": "happy"})
    assert faces.images.shape == (60, 48, 48)
    assert set(faces.labels.tolist()) == {CLASSES.index(c) for c in ("happy", "sad", "angry")}
    counts = faces.counts()
    assert set(counts) == {"train", "val", "test"}
    assert all(counts[s]["happy"] == 2 for s in ("val", "test"))  # stratified 80/10/10
    again = load_faces(str(tmp_path), aliases={"joy": "happy"}, use_cache=False)
    assert torch.equal(faces.splits, again.splits)  # deterministic


def test_val_is_carved_from_train_when_missing(tmp_path):
    for split in ("train", "test"):
        for name in ("happy", "sad"):
            (tmp_path / split / name).mkdir(parents=True)
            for k in range(10):
                Image.fromarray(np.full((48, 48), k * 20, np.uint8)).save(tmp_path / split / name / f"{k}.png")
    counts = load_faces(str(tmp_path)).counts()
    assert counts["test"]["happy"] == 10 and counts["val"]["happy"] == 1 and counts["train"]["happy"] == 9


def test_cache_is_reused_and_invalidated(fer_like, monkeypatch):
    csv_path, *_ = fer_like
    first = load_faces(str(csv_path))
    from unveil.data import sources

    def refuse(self):
        raise AssertionError("decoded again although the source did not change")

    monkeypatch.setattr(sources.Source, "read", refuse)
    second = load_faces(str(csv_path))
    assert torch.equal(first.images, second.images) and second.ids == first.ids
    monkeypatch.undo()
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(lines[:-1]) + "\n")  # the source changes
    assert len(load_faces(str(csv_path))) == 20


def test_synthetic_source_is_deterministic():
    a = load_faces("synthetic:n=700,seed=5", use_cache=False)
    b = load_faces("synthetic:n=700,seed=5", use_cache=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.splits, b.splits)
    assert set(a.counts()) == {"train", "val", "test"}


def test_a_changed_renderer_is_not_served_from_the_cache(monkeypatch):
    """Synthetic faces cached by an older renderer once silently replaced the current ones."""
    from unveil.data import sources

    before = load_faces("synthetic:n=70,seed=3")
    monkeypatch.setattr(sources, "_renderer_digest", lambda: "another renderer")
    after = load_faces("synthetic:n=70,seed=3")
    assert after.fingerprint != before.fingerprint


# --- bad input: each a clear error that names the file (and line) ------------------------------

def _csv(tmp_path, header, rows):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_row_with_2303_pixels(tmp_path):
    good = "0," + " ".join(["1"] * 2304) + ",Training"
    bad = "0," + " ".join(["1"] * 2303) + ",Training"
    path = _csv(tmp_path, "emotion,pixels,Usage", [good, bad])
    with pytest.raises(DataError, match=r"bad\.csv line 3: expected 2304 pixels, got 2303"):
        load_faces(str(path))


def test_csv_missing_column(tmp_path):
    path = _csv(tmp_path, "emotion,Usage", ["0,Training"])
    with pytest.raises(DataError, match=r"bad\.csv: missing column\(s\) pixels"):
        load_faces(str(path))


def test_corrupt_image(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"broken\.jpg: cannot decode image"):
        load_faces(str(tmp_path))


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        load_faces(str(tmp_path))


def test_unknown_class(tmp_path):
    (tmp_path / "bored").mkdir()
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(tmp_path / "bored" / "a.png")
    with pytest.raises(DataError, match=r"a\.png: unknown class name 'bored'"):
        load_faces(str(tmp_path))


def test_a_source_name_is_a_registered_kind_unless_a_folder_of_that_name_is_here(tmp_path, monkeypatch):
    """`photos:DIR` and `synthetic` are named sources (the registry); a bare name that is also a folder here
    is that folder, so a class-folder set called `photos` still reads as one."""
    (tmp_path / "photos" / "happy").mkdir(parents=True)
    Image.fromarray(np.full((48, 48), 128, np.uint8)).save(tmp_path / "photos" / "happy" / "a.png")
    monkeypatch.chdir(tmp_path)
    assert resolve_source("photos").kind == "folder"
    assert resolve_source("photos:photos").kind == "photos"
    assert resolve_source("synthetic").kind == "synthetic"
    with pytest.raises(DataError, match="not a folder"):
        resolve_source("photos:")
    with pytest.raises(DataError, match="no such file or folder"):
        resolve_source("fer2013")


def test_missing_source():
    with pytest.raises(DataError, match="no such file or folder"):
        load_faces("/nonexistent/fer2013.csv")


# --- the real FER2013 archives, where ../shared has them ---------------------------------------

def test_fer2013_archives(fer_dir):
    faces = load_faces(str(fer_dir))
    counts = faces.counts()
    assert {s: sum(c.values()) for s, c in counts.items()} == {"train": 28709, "val": 3589, "test": 3589}
    for split, expected in FER_COUNTS.items():
        assert [counts[split][c] for c in CLASSES] == expected
    stretched = (faces.images.amin((1, 2)) == 0) & (faces.images.amax((1, 2)) == 255)
    assert stretched.float().mean() > 0.999
