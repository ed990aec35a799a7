"""Readers for every source Unveil knows, each returning raw decoded faces in canonical labels.

A source is named by a string: `synthetic` (or `synthetic:n=2000,seed=3`), a FER2013 challenge CSV,
a folder of class folders (FER2013's image layout or any other data set), a `.tar.xz`/`.tar.gz`/`.zip`
archive of such folders, or a folder holding such archives (as `../shared/data/fer2013` does).

Named sources (`NAME` or `NAME:SPEC`) are built through the `SOURCES` registry; the photo layer adds
`photos:DIR`, class folders of photos whose faces are found and aligned (`unveil.photo.source`).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import lzma
import os
import re
import tarfile
import zipfile
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..classes import FER_CSV_TO_CANONICAL, NUM_CLASSES, canonical_label
from ..config import check_seed
from ..errors import DataError
from ..registry import Registry
from .faces import SPLITS
from .preprocess import SIZE, decode_image

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip")
NO_SPLIT = -1
LARGE_IMAGE = 96   # px on the shorter side: larger than any face crop of a 48x48 data set, likely a photo
MAX_SYNTHETIC = 1_000_000       # faces a synthetic source may render (2.3 GB of uint8)
KEY_BLOCK = 1 << 16             # a file's content key: its size and first and last 64 KiB (see `content_key`)

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
    skipped: list[dict] = field(default_factory=list)   # {id, label, reason} per input left out (a faceless photo)


@functools.cache
def _renderer_digest() -> str:
    from . import synthetic

    return hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class Source(ABC):
    """A set of faces `load_faces` can decode and cache: each kind reads its own data and says what
    identifies it without decoding it."""

    kind: str                      # synthetic | csv | folder | archives | a registered kind (photos)
    location: str                  # a path, or the synthetic spec
    aliases: tuple[tuple[str, str], ...] = ()   # extra class-name aliases, part of the fingerprint

    def describe(self) -> str:
        return f"{self.kind}:{self.location}"

    @abstractmethod
    def fingerprint_parts(self) -> list:
        """What identifies the content (the cache key and the data's identity in sidecars); never a file time."""

    @abstractmethod
    def read(self) -> RawFaces:
        """The decoded faces, labels in canonical order."""


@dataclass(frozen=True, kw_only=True)
class SyntheticSource(Source):
    n: int
    seed: int

    def fingerprint_parts(self) -> list:
        # The faces are the renderer's output: a changed renderer must not be served from the cache.
        return [self.n, self.seed, _renderer_digest()]

    def read(self) -> RawFaces:
        return read_synthetic(self.n, self.seed)


@dataclass(frozen=True, kw_only=True)
class FileSource(Source):
    """A FER2013 CSV (kind csv), class folders (folder) or archives of them (archives)."""

    paths: tuple[Path, ...]        # the files read: the CSV, the archives, or a folder's image files

    def fingerprint_parts(self) -> list:
        """Each file's name (below the source's own path, so a moved copy is the same data) and content key."""
        root = Path(self.location)
        return [list(self.aliases)] + [[f.relative_to(root).as_posix() if f != root else f.name, *content_key(f)]
                                       for f in self.paths]

    def read(self) -> RawFaces:
        if self.kind == "csv":
            return read_csv(self.paths[0])
        records = (_archive_records(self.paths) if self.kind == "archives"
                   else _folder_records(Path(self.location), self.paths))
        return read_records(records, self.location, dict(self.aliases))


# NAME -> build(spec) for the sources named `NAME` or `NAME:SPEC`; anything else is a path.
SOURCES: Registry[Source] = Registry("data source")


def content_key(path: Path) -> list:
    """[size, SHA-256 of the first and last 64 KiB]: all of a small file (a face image), and for an archive
    the parts that hold checksums of everything inside (a zip's central directory, a gzip or single-block xz
    stream's trailer), so a file rewritten in place, whatever its time stamp, is read again."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            digest = hashlib.sha256(handle.read(KEY_BLOCK))
            if size > KEY_BLOCK:
                handle.seek(max(KEY_BLOCK, size - KEY_BLOCK))
                digest.update(handle.read())
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return [size, digest.hexdigest()]


def resolve_source(text: str, aliases: dict[str, str] | None = None) -> Source:
    """Turn a source string into a Source, or raise a DataError that says what was expected.

    `NAME:SPEC` with a registered NAME is that source; so is a bare registered NAME (`synthetic`) unless a file
    or folder of that name is here: a class folder set called `photos` is read as one."""
    text = str(text)
    name, colon, spec = text.partition(":")
    named = (re.fullmatch(r"[a-z][a-z0-9_-]*", name) and name in SOURCES
             and (colon or not Path(text).expanduser().exists()))
    source = SOURCES.create(name, spec=spec) if named else _path_source(text)
    return replace(source, aliases=tuple(sorted((aliases or {}).items())))


def _path_source(text: str) -> Source:
    path = Path(text).expanduser().resolve()  # absolute, so the cache key is the same from any folder
    if not path.exists():
        raise DataError(f"{text}: no such file or folder (expected a FER2013 CSV, an image folder, "
                        f"an archive, or 'synthetic')")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return FileSource(kind="csv", location=str(path), paths=(path,))
        if _is_archive(path):
            return FileSource(kind="archives", location=str(path), paths=(path,))
        raise DataError(f"{path}: not a CSV file or an archive ({', '.join(ARCHIVE_SUFFIXES)})")
    if not path.is_dir():
        raise DataError(f"{path}: not a regular file or a folder")
    return _folder_source(path)


def _folder_source(path: Path) -> Source:
    """A folder is one kind of source: archives, one CSV, or class folders. A mix would leave some data
    unread without a word, so it is refused, naming what is there."""
    entries = [p for p in listing(path) if not p.name.startswith(".")]
    kinds = {"archives": [p for p in entries if p.is_file() and _is_archive(p)],
             "CSV files": [p for p in entries if p.is_file() and p.suffix.lower() == ".csv"],
             "folders": [p for p in entries if p.is_dir()],
             "images": [p for p in entries if p.is_file() and _is_image_name(p.name)]}
    found = {kind: files for kind, files in kinds.items() if files}
    if len(found) > 1:
        shown = "; ".join(f"{kind}: {', '.join(p.name for p in files[:3])}" for kind, files in found.items())
        listed = ", ".join(list(found)[:-1]) + " and " + list(found)[-1]
        raise DataError(f"{path}: holds {listed} ({shown}); a source is one kind: point at the "
                        f"archives, the CSV or a folder of class folders alone")
    if "archives" in found:
        return FileSource(kind="archives", location=str(path), paths=tuple(found["archives"]))
    if "CSV files" in found:
        if len(found["CSV files"]) > 1:
            raise DataError(f"{path}: holds several CSV files ({', '.join(p.name for p in found['CSV files'])}); "
                            f"point at one of them")
        return FileSource(kind="csv", location=str(found["CSV files"][0]), paths=tuple(found["CSV files"]))
    return FileSource(kind="folder", location=str(path), paths=tuple(walk_images(path)))


@SOURCES.register("synthetic")
def synthetic_source(spec: str = "") -> Source:
    """`synthetic` or `synthetic:n=INT,seed=INT`: faces drawn by `unveil.data.synthetic`."""
    options, text = {"n": 10_000, "seed": 0}, f"synthetic:{spec}" if spec else "synthetic"
    for item in filter(None, spec.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in options or not re.fullmatch(r"-?[0-9]+", value.strip()):
            raise DataError(f"bad synthetic source {text!r}: expected synthetic:n=INT,seed=INT")
        options[key] = int(value)
    if not len(SPLITS) * NUM_CLASSES <= options["n"] <= MAX_SYNTHETIC:
        raise DataError(f"bad synthetic source {text!r}: n must be from {len(SPLITS) * NUM_CLASSES} to "
                        f"{MAX_SYNTHETIC:,}")
    check_seed(options["seed"], f"synthetic source {text!r}")
    return SyntheticSource(kind="synthetic", location=f"n={options['n']},seed={options['seed']}", **options)


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
    images, labels, splits, ids, seen, large = [], [], [], [], {}, 0
    for rec in records:
        if len(rec.parts) < 2:
            raise DataError(f"{rec.where}: image outside a class folder (expected <class>/<image>)")
        face = "/".join(rec.parts)
        if face in seen:  # an archive may hold a member twice: it would count one face twice
            raise DataError(f"{rec.where}: a second image named {face} (first: {seen[face]}); each face must "
                            f"appear once")
        seen[face] = rec.where
        labels.append(canonical_label(rec.parts[-2], aliases, where=rec.where))
        splits.append(split_hint(rec.parts))
        try:
            data = rec.read()
        except OSError as exc:
            raise DataError(f"{rec.where}: cannot read ({exc.strerror or exc})") from None
        image, (width, height) = decode_image(data, rec.where)
        images.append(image)
        large += min(width, height) >= LARGE_IMAGE
        ids.append(face)
    if not images:
        raise DataError(f"{root}: no images found (expected <class>/<image> folders, optionally under "
                        f"train/ val/ test/, with extensions {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if large:
        # Never silently: a photo squashed whole to 48x48 is mostly background (docs/photos.md, "Photo data sets").
        log.info(f"note: {large} of {len(images)} images in {root} are {LARGE_IMAGE} px or larger; each is resized "
                 f"whole to 48x48, which is right for face crops. If they are photos, read them as photos:{root} "
                 f"to find and align each face.")
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


def listing(folder: Path) -> list[Path]:
    """A folder's entries, sorted; an unreadable folder is a DataError naming it, never skipped."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot read the folder ({exc.strerror or exc})") from None


def walk_images(root: Path, recursive: bool = True) -> list[Path]:
    """The image files under `root` (and its subfolders, unless not `recursive`), sorted; hidden entries are
    left out. Anything else with an image's name (a FIFO, a socket, a broken link) is skipped with a warning
    naming it: reading a FIFO would block forever. Symlinked folders are followed once: a folder reached
    again (a link loop, two links to one folder) is not read again."""
    def unreadable(exc: OSError):
        raise DataError(f"{exc.filename}: cannot read the folder ({exc.strerror or exc})")

    found, seen = [], set()
    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError as exc:
            unreadable(exc)
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        if (info.st_dev, info.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        for name in filter(_is_image_name, files):
            path = Path(folder) / name
            if path.is_file():
                found.append(path)
            else:
                log.warning(f"{path}: not a regular file; skipped")
    return sorted(found)


def _folder_records(root: Path, files: Iterable[Path]) -> Iterator[Record]:
    for path in files:
        yield Record(str(path), path.relative_to(root).parts, path.read_bytes)


def _archive_records(archives: Iterable[Path]) -> Iterator[Record]:
    for archive in archives:
        try:
            yield from (_zip_records(archive) if archive.suffix.lower() == ".zip" else _tar_records(archive))
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, lzma.LZMAError, zlib.error,
                RuntimeError, NotImplementedError) as exc:
            # Streamed: damage deep inside (a bad CRC, corrupt xz data) surfaces only while reading; an
            # encrypted member (RuntimeError) or an unsupported method such as deflate64 only when it is read.
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
