"""Readers for every source Unveil knows, each returning raw decoded faces in canonical labels.

A source is named by a string: `synthetic` (or `synthetic:n=2000,seed=3`), a FER2013 challenge CSV,
a folder of class folders (FER2013's image layout or any other data set), a `.tar.xz`/`.tar.gz`/`.zip`
archive of such folders, a folder holding such archives (as `../shared/data/fer2013` does), or
`photos:DIR`, class folders of photos whose faces are found and aligned (`unveil.data.photo_source`).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import lzma
import os
import sys
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..classes import FER_CSV_TO_CANONICAL, NUM_CLASSES, canonical_label
from ..errors import DataError
from .faces import SPLITS
from .preprocess import SIZE, decode_image

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip")
NO_SPLIT = -1
LARGE_IMAGE = 96   # px on the shorter side: larger than any face crop of a 48x48 data set, likely a photo

# FER2013 file names carry the challenge usage; folder names of other sets carry their split.
USAGE_TO_SPLIT = {"training": "train", "publictest": "val", "privatetest": "test"}
FOLDER_TO_SPLIT = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "publictest": "val",
    "test": "test", "testing": "test", "privatetest": "test",
}


@dataclass
class RawFaces:
    """Decoded faces before normalisation: uint8 [N, 48, 48], labels [N], split index or -1 [N]."""

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    ids: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)   # {id, label, reason} per input left out (a photo without a face)


@functools.cache
def _renderer_digest() -> str:
    from . import synthetic

    return hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Source:
    kind: str                      # synthetic | csv | folder | archives | photos
    location: str                  # a path, or the synthetic spec
    paths: tuple[Path, ...] = ()   # archives, for kind == "archives"
    n: int = 0
    seed: int = 0
    aliases: tuple[tuple[str, str], ...] = ()   # extra class-name aliases, part of the fingerprint

    def describe(self) -> str:
        return f"{self.kind}:{self.location}"

    def fingerprint_parts(self) -> list:
        """What identifies this source's content without reading it all: file names, sizes, mtimes."""
        if self.kind == "synthetic":
            # The faces are the renderer's output: a changed renderer must not be served from the cache.
            return [self.n, self.seed, _renderer_digest()]
        if self.kind == "photos":
            from .photo_source import photo_fingerprint

            return photo_fingerprint(Path(self.location), dict(self.aliases))
        parts: list = [list(self.aliases)]
        files = self.paths if self.kind == "archives" else _walk_files(Path(self.location))
        if self.kind == "csv":
            files = [Path(self.location)]
        for f in files:
            try:
                st = f.stat()
            except OSError as exc:
                raise DataError(f"{f}: cannot read ({exc.strerror or exc})") from None
            parts.append([str(f), st.st_size, st.st_mtime_ns])
        return parts

    def read(self) -> RawFaces:
        if self.kind == "synthetic":
            return read_synthetic(self.n, self.seed)
        if self.kind == "csv":
            return read_csv(Path(self.location))
        if self.kind == "photos":
            from .photo_source import read_photo_set

            return read_photo_set(Path(self.location), dict(self.aliases))
        records = (_archive_records(self.paths) if self.kind == "archives"
                   else _folder_records(Path(self.location)))
        return read_records(records, self.location, dict(self.aliases))


def resolve_source(text: str, aliases: dict[str, str] | None = None) -> Source:
    """Turn a source string into a Source, or raise a DataError that says what was expected."""
    text = str(text)
    if text == "synthetic" or text.startswith("synthetic:"):
        return _synthetic_source(text)
    source = _photos_source(text) if text.startswith("photos:") else _path_source(text)
    return replace(source, aliases=tuple(sorted((aliases or {}).items())))


def _path_source(text: str) -> Source:
    path = Path(text).expanduser().resolve()  # absolute, so the cache key is the same from any folder
    if not path.exists():
        raise DataError(f"{text}: no such file or folder (expected a FER2013 CSV, an image folder, "
                        f"an archive, or 'synthetic')")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return Source("csv", str(path))
        if _is_archive(path):
            return Source("archives", str(path), paths=(path,))
        raise DataError(f"{path}: not a CSV file or an archive ({', '.join(ARCHIVE_SUFFIXES)})")
    archives = tuple(sorted(p for p in path.iterdir() if p.is_file() and _is_archive(p)))
    has_subfolders = any(p.is_dir() for p in path.iterdir())
    if archives and not has_subfolders:
        return Source("archives", str(path), paths=archives)
    csvs = sorted(path.glob("*.csv"))
    if len(csvs) == 1 and not has_subfolders:
        return Source("csv", str(csvs[0]))
    return Source("folder", str(path))


def _photos_source(text: str) -> Source:
    folder = text.removeprefix("photos:")
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"{folder}: not a folder (photos:DIR takes a folder of class folders of photos)")
    return Source("photos", str(path))


def _synthetic_source(text: str) -> Source:
    options = {"n": 10_000, "seed": 0}
    _, _, rest = text.partition(":")
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in options or not value.strip().lstrip("-").isdigit():
            raise DataError(f"bad synthetic source {text!r}: expected synthetic:n=INT,seed=INT")
        options[key] = int(value)
    if options["n"] < len(SPLITS) * NUM_CLASSES:
        raise DataError(f"bad synthetic source {text!r}: n must be at least {len(SPLITS) * NUM_CLASSES}")
    return Source("synthetic", f"n={options['n']},seed={options['seed']}", n=options["n"], seed=options["seed"])


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


# --- synthetic ----------------------------------------------------------------------------------

def read_synthetic(n: int, seed: int) -> RawFaces:
    from .synthetic import synthesize

    images, labels = synthesize(n, seed)
    return RawFaces(images.numpy(), labels.numpy(), np.full(n, NO_SPLIT, np.int8),
                    [f"synthetic/{seed}/{i}" for i in range(n)])


# --- FER2013 challenge CSV ----------------------------------------------------------------------

def read_csv(path: Path) -> RawFaces:
    """Read `emotion,pixels[,Usage]`; labels use the challenge order and are mapped to canonical."""
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = _csv_rows(path, reader)
    except UnicodeDecodeError:
        raise DataError(_not_utf8(path)) from None
    except csv.Error as exc:  # e.g. a quote never closed swallows the rest of the file into one field
        raise DataError(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not rows:
        raise DataError(f"{path}: no faces after the header")
    images, labels, splits, ids = zip(*rows)
    return RawFaces(np.stack(images), np.array(labels, np.int64), np.array(splits, np.int8), list(ids))


def _not_utf8(path: Path) -> str:
    """Where the text stops being UTF-8: the reader decodes in blocks, so its line count is not exact."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (f"{path} line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
                f"a FER2013 CSV is plain text")
    return f"{path}: not UTF-8 text"


def _csv_rows(path: Path, reader) -> list:
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path}: empty CSV file")
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [c for c in ("emotion", "pixels") if c not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} "
                        f"(found {', '.join(header)}; expected emotion,pixels[,Usage])")
    return [_csv_row(path, reader.line_num, row, columns) for row in reader if row]


def _csv_row(path: Path, line: int, row: list[str], columns: dict[str, int]):
    where = f"{path} line {line}"
    if len(row) < len(columns):
        raise DataError(f"{where}: expected {len(columns)} fields, got {len(row)}")
    try:
        emotion = int(row[columns["emotion"]])
        pixels = np.array(row[columns["pixels"]].split(), dtype=np.int64)
    except ValueError as exc:
        raise DataError(f"{where}: not an integer ({exc})") from None
    if not 0 <= emotion < len(FER_CSV_TO_CANONICAL):
        raise DataError(f"{where}: emotion {emotion} outside 0..{len(FER_CSV_TO_CANONICAL) - 1}")
    if pixels.size != SIZE * SIZE:
        raise DataError(f"{where}: expected {SIZE * SIZE} pixels, got {pixels.size}")
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{where}: pixel values must lie in 0..255")
    split = NO_SPLIT
    if "usage" in columns:
        usage = row[columns["usage"]].strip()
        name = USAGE_TO_SPLIT.get(usage.lower(), FOLDER_TO_SPLIT.get(usage.lower()))
        if name is None:
            raise DataError(f"{where}: unknown Usage {usage!r} (expected Training, PublicTest or PrivateTest)")
        split = SPLITS.index(name)
    image = pixels.astype(np.uint8).reshape(SIZE, SIZE)
    return image, FER_CSV_TO_CANONICAL[emotion], split, f"{path.name}:{line}"


# --- class folders, on disk or in archives ------------------------------------------------------

@dataclass(frozen=True)
class Record:
    """One image file: where it is, its class folder, its split hint, and how to get its bytes."""

    where: str
    parts: tuple[str, ...]   # path components relative to the source root
    read: object             # () -> bytes


def read_records(records: Iterable[Record], root: str, aliases: dict[str, str] | None = None) -> RawFaces:
    images, labels, splits, ids, large = [], [], [], [], 0
    for rec in records:
        if len(rec.parts) < 2:
            raise DataError(f"{rec.where}: image outside a class folder (expected <class>/<image>)")
        labels.append(canonical_label(rec.parts[-2], aliases, where=rec.where))
        splits.append(split_hint(rec.parts))
        try:
            data = rec.read()
        except OSError as exc:
            raise DataError(f"{rec.where}: cannot read ({exc.strerror or exc})") from None
        image, (width, height) = decode_image(data, rec.where)
        images.append(image)
        large += min(width, height) >= LARGE_IMAGE
        ids.append("/".join(rec.parts))
    if not images:
        raise DataError(f"{root}: no images found (expected <class>/<image> folders, optionally under "
                        f"train/ val/ test/, with extensions {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if large:
        # Never silently: a photo squashed whole to 48x48 is mostly background (README, "Photo data sets").
        print(f"note: {large} of {len(images)} images in {root} are {LARGE_IMAGE} px or larger; each is resized "
              f"whole to 48x48, which is right for face crops. If they are photos, read them as photos:{root} "
              f"to find and align each face.", file=sys.stderr)
    return RawFaces(np.stack(images), np.array(labels, np.int64), np.array(splits, np.int8), ids)


def split_hint(parts: tuple[str, ...]) -> int:
    """FER2013's file-name usage wins; else a split folder above the class folder; else none."""
    prefix = parts[-1].split("_", 1)[0].lower()
    if prefix in USAGE_TO_SPLIT:
        return SPLITS.index(USAGE_TO_SPLIT[prefix])
    for folder in parts[:-2]:
        if folder.lower() in FOLDER_TO_SPLIT:
            return SPLITS.index(FOLDER_TO_SPLIT[folder.lower()])
    return NO_SPLIT


def _is_image_name(name: str) -> bool:
    base = os.path.basename(name)
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def _walk_files(root: Path) -> list[Path]:
    return sorted(Path(d) / f for d, _, files in os.walk(root) for f in files if _is_image_name(f))


def _folder_records(root: Path) -> Iterator[Record]:
    for path in _walk_files(root):
        yield Record(str(path), path.relative_to(root).parts, path.read_bytes)


def _archive_records(archives: Iterable[Path]) -> Iterator[Record]:
    for archive in archives:
        try:
            yield from (_zip_records(archive) if archive.suffix.lower() == ".zip" else _tar_records(archive))
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
            # Streamed: damage deep inside (a bad CRC, corrupt xz data) surfaces only while reading.
            raise DataError(f"{archive}: cannot read archive ({exc or type(exc).__name__})") from None


def _tar_records(archive: Path) -> Iterator[Record]:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:  # streamed: xz archives are read once, front to back
            if member.isfile() and _is_image_name(member.name):
                data = tar.extractfile(member).read()
                yield Record(f"{archive}:{member.name}", _parts(member.name), lambda d=data: d)


def _zip_records(archive: Path) -> Iterator[Record]:
    with zipfile.ZipFile(archive) as zf:
        for name in sorted(zf.namelist()):
            if not name.endswith("/") and _is_image_name(name):
                data = zf.read(name)  # here, inside the archive's error handling (a bad CRC raises on read)
                yield Record(f"{archive}:{name}", _parts(name), lambda d=data: d)


def _parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


# --- splits for sources that have none ----------------------------------------------------------

def assign_splits(raw: RawFaces, val_fraction: float = 0.1, test_fraction: float = 0.1) -> np.ndarray:
    """Fill unknown splits with a deterministic stratified split; carve val out of train if missing.

    Faces are ordered by a hash of their id within each class, so the split of a face does not change
    when other faces are added to the source.
    """
    splits = raw.splits.copy()
    unknown = splits == NO_SPLIT
    if unknown.any():
        splits[unknown] = _stratified(raw, np.flatnonzero(unknown), val_fraction, test_fraction)
    train, val = SPLITS.index("train"), SPLITS.index("val")
    if not (splits == val).any() and (splits == train).any():
        in_train = np.flatnonzero(splits == train)
        splits[in_train] = _stratified(raw, in_train, val_fraction, 0.0, rest=train)
    return splits


def _stratified(raw: RawFaces, index: np.ndarray, val_fraction: float, test_fraction: float,
                rest: int = 0) -> np.ndarray:
    out = np.full(len(index), rest, np.int8)
    keys = np.array([hashlib.sha1(raw.ids[i].encode()).hexdigest() for i in index])
    for label in np.unique(raw.labels[index]):
        members = np.flatnonzero(raw.labels[index] == label)
        members = members[np.argsort(keys[members], kind="stable")]
        n_test = int(round(len(members) * test_fraction))
        n_val = int(round(len(members) * val_fraction))
        out[members[:n_test]] = SPLITS.index("test")
        out[members[n_test:n_test + n_val]] = SPLITS.index("val")
    return out
