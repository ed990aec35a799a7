"""Photo sets for finding masks: photos labelled masked or bare, and photos with pixel labels of the mask.

    photos = masked_photos("../shared/data/masked-faces/real-crops", split="test")
    labelled = pixel_labelled("../shared/data/masked-faces/synthetic-seg/testing")

Two layouts, as users have them:

- **masked / bare folders**: ``ROOT/with_mask/`` and ``ROOT/without_mask/`` (``masked``/``bare``,
  ``mask``/``no_mask`` also work), photos or face crops, searched recursively. An optional
  ``ROOT/manifest.csv`` (columns ``file`` and, where known, ``origin`` and ``duplicate_of``) names each
  photo's origin, for breakdowns, and its near copies, for the split.
- **pixel labels**: ``.../images/NAME.jpg`` beside ``.../masks/NAME_gt.png`` (or ``NAME.png``), searched
  recursively; the folders above ``images/`` name the group (``testing/CWM``). A palette label holds
  classes (0 background, 1 face, 2 mask: MaskedFace-Net's segmentation layout); any other label image
  is binary (any non-zero pixel is mask).

The split (``SPLIT_SHARES``) is fixed and needs no file: each photo's duplicate group (a photo and every
``duplicate_of`` copy, chained) goes to train, val or test by the SHA-256 of its first member's path.
So copies never straddle a split, and the split of a photo never changes when others are added.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from unveil.errors import DataError
from .read import image_files

__all__ = ["MASKED_FOLDERS", "BARE_FOLDERS", "SPLITS", "SPLIT_SHARES", "MaskedPhoto", "LabelledHole",
           "masked_photos", "pixel_labelled", "read_hole_label", "split_of"]

MASKED_FOLDERS = ("with_mask", "masked", "mask")
BARE_FOLDERS = ("without_mask", "bare", "no_mask", "unmasked")
SPLITS = ("train", "val", "test")
SPLIT_SHARES = (0.70, 0.15, 0.15)
MASK_CLASS = 2  # MaskedFace-Net's palette: 0 background, 1 face, 2 mask


@dataclass(frozen=True)
class MaskedPhoto:
    path: Path
    masked: bool
    group: str      # the manifest's origin, else the class folder's name
    split: str      # train / val / test, by duplicate group


@dataclass(frozen=True)
class LabelledHole:
    image: Path
    label: Path
    group: str      # the folders above images/, e.g. testing/CWM


def split_of(key: str) -> str:
    """train, val or test for a duplicate group named by ``key`` (a path relative to the set's root)."""
    fraction = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    edge = 0.0
    for name, share in zip(SPLITS, SPLIT_SHARES):
        edge += share
        if fraction < edge:
            return name
    return SPLITS[-1]


def masked_photos(root: str | Path, split: str | None = None) -> list[MaskedPhoto]:
    """Every photo of a masked / bare folder set, sorted by path; only ``split``'s when given."""
    root = Path(root)
    if split is not None and split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    folders = _class_folders(root)
    manifest = _manifest(root)
    groups = _duplicate_groups(manifest)
    photos = []
    for folder, masked in folders:
        for path in image_files(folder):
            key = path.relative_to(root).as_posix()
            origin = manifest.get(key, {}).get("origin") or folder.name
            photos.append(MaskedPhoto(path, masked, origin, split_of(groups.get(key, key))))
    if not photos:
        raise DataError(f"{root}: no photos in its mask folders ({', '.join(f.name for f, _ in folders)})")
    chosen = [p for p in photos if split is None or p.split == split]
    if not chosen:
        raise DataError(f"{root}: none of its {len(photos)} photos is in the {split} split (the split is fixed by "
                        f"duplicate group; a small set may leave a split empty)")
    return chosen


def _class_folders(root: Path) -> list[tuple[Path, bool]]:
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected {root}/with_mask/ and {root}/without_mask/)")
    found = [(root / name, masked) for names, masked in ((MASKED_FOLDERS, True), (BARE_FOLDERS, False))
             for name in names if (root / name).is_dir()]
    if not found:
        raise DataError(f"{root}: no mask folders (expected one of {', '.join(MASKED_FOLDERS)} and one of "
                        f"{', '.join(BARE_FOLDERS)})")
    return found


def _manifest(root: Path) -> dict[str, dict[str, str]]:
    path = root / "manifest.csv"
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the manifest ({exc})") from None
    if rows and "file" not in rows[0]:
        raise DataError(f"{path}: the manifest has no 'file' column")
    return {row["file"]: row for row in rows}


def _duplicate_groups(manifest: dict[str, dict[str, str]]) -> dict[str, str]:
    """Each file's group key: the first member (by path) of its chain of ``duplicate_of`` copies."""
    parent = {f: f for f in manifest}

    def find(f: str) -> str:
        while parent.setdefault(f, f) != f:
            parent[f] = parent[parent[f]]
            f = parent[f]
        return f

    for f, row in manifest.items():
        if row.get("duplicate_of"):
            a, b = find(f), find(row["duplicate_of"])
            parent[max(a, b)] = min(a, b)
    return {f: find(f) for f in manifest}


def pixel_labelled(root: str | Path) -> list[LabelledHole]:
    """Every image with a pixel label under ``root`` (``.../images/X.*`` + ``.../masks/X_gt.png``), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of pixel-labelled images (.../images/ and .../masks/)")
    pairs = []
    for images in sorted(p for p in root.rglob("images") if p.is_dir()):
        masks = images.parent / "masks"
        for image in image_files(images, recursive=False):
            candidates = (masks / f"{image.stem}_gt.png", masks / f"{image.stem}.png")
            label = next((m for m in candidates if m.is_file()), None)
            if label is None:
                raise DataError(f"{image}: no pixel label beside it (looked for {masks}/{image.stem}_gt.png)")
            group = images.parent.relative_to(root).as_posix()
            pairs.append(LabelledHole(image, label, "." if group == "." else group))
    if not pairs:
        raise DataError(f"{root}: no pixel-labelled images (expected .../images/NAME.jpg and .../masks/NAME_gt.png)")
    return pairs


def read_hole_label(path: str | Path) -> np.ndarray:
    """The mask pixels of a label image as bool [H, W] (see the module's docstring for the two kinds)."""
    try:
        with Image.open(path) as img:
            img.load()
            palette = img.mode == "P"
            values = np.array(img if palette or img.mode in ("L", "1", "I;16", "I") else img.convert("L"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as a label image ({exc})") from None
    return values == MASK_CLASS if palette else values > 0
