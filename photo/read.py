"""Reading a user's photo: a path, a numpy array or a PIL image -> RGB uint8 [H, W, 3].

Errors name the file and say what is wrong (cannot be read, not an image, too large to decode safely),
so that one bad file among many costs only its own result.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from unveil.data.preprocess import upright
from unveil.data.sources import FOLDER_TO_SPLIT, IMAGE_EXTENSIONS, listing, walk_images
from unveil.classes import canonical_label
from unveil.errors import DataError

PhotoInput = Union[str, Path, np.ndarray, Image.Image]
MAX_PIXELS = 64_000_000   # a larger image is refused instead of decoded (decompression bombs)


def read_photo(source: PhotoInput) -> tuple[np.ndarray, str]:
    """(RGB uint8 [H, W, 3], a name for messages) from a path, an array ([H, W] or [H, W, 3|4],
    uint8) or a PIL image. EXIF orientation is applied and 16-bit pictures scaled, as a photo viewer would."""
    if isinstance(source, np.ndarray):
        return _from_array(source), f"array {tuple(source.shape)}"
    if isinstance(source, Image.Image):
        return np.array(upright(source).convert("RGB")), f"PIL image {source.size}"
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{path}: {'not a regular file' if os.path.exists(path) else 'no such file'}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: an empty file (0 bytes), not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise DataError(f"{path}: {img.width}x{img.height} pixels is too large to decode safely "
                                    f"(the limit is {MAX_PIXELS:,})")
                img.load()
                return np.array(upright(img).convert("RGB")), str(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path}: refused as a possible decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as an image ({exc})") from None


def _from_array(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise DataError(f"an image array must be uint8 (0..255), got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[:, :, :3])
    raise DataError(f"an image array must be [H, W], [H, W, 3] or [H, W, 4], got {image.shape}")


def image_files(folder: str | Path, recursive: bool = True) -> list[Path]:
    """The image files in ``folder`` (by extension), sorted, searched through subfolders unless told not
    to, as a class-folder source searches them (`sources.walk_images`): hidden entries left out, anything
    but a regular file skipped with a warning naming it, symlinked folders followed once."""
    return walk_images(Path(folder), recursive)


def photos_in(paths: list[str | Path]) -> list[Path]:
    """Files as given, and the image files inside folders and their subfolders (sorted)."""
    out = []
    for p in map(Path, paths):
        out += image_files(p) if p.is_dir() else [p]
    return out


def labelled_photos(root: str | Path, aliases: dict[str, str] | None = None) -> list[tuple[Path, int]]:
    """(photo, canonical label) for every image in `root`'s class folders (`root/<class>/<image>`, or
    `root/<split>/<class>/<image>` with split folders named as any class-folder set names them: train,
    val, test, ...), the class named as in any class-folder set, aliases allowed, sorted. The split is
    read back from the photo's path (`sources.split_hint`). A file or folder that breaks the layout is an
    error naming it."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of class folders (<class>/<photo>)")
    out = []
    for entry in listing(root):
        if entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS:
            raise DataError(f"{entry}: photo outside a class folder (expected {root}/<class>/<photo>)")
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        if entry.name.lower() in FOLDER_TO_SPLIT:
            out += _class_folders(entry, aliases)
        else:
            out += _class_folder(entry, aliases)
    if not out:
        raise DataError(f"{root}: no photos in class folders (expected {root}/<class>/<photo>, optionally "
                        f"under train/ val/ test/)")
    return out


def _class_folders(split: Path, aliases: dict[str, str] | None) -> list[tuple[Path, int]]:
    """The photos of a split folder's class folders; a photo directly in it is outside any class."""
    out = []
    for entry in listing(split):
        if entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS:
            raise DataError(f"{entry}: photo outside a class folder (expected {split}/<class>/<photo>)")
        if entry.is_dir() and not entry.name.startswith("."):
            out += _class_folder(entry, aliases)
    return out


def _class_folder(folder: Path, aliases: dict[str, str] | None) -> list[tuple[Path, int]]:
    label = canonical_label(folder.name, aliases, where=str(folder))
    return [(photo, label) for photo in image_files(folder)]
