"""A face store for data sets too large to decode per run or to hold on one GPU (AffectNet-scale, ~1M
faces): decoded uint8 faces in shard files on disk, read through memory maps.

    write_store(load_faces("path/to/affectnet"), "stores/affectnet")     # `unveil data store SRC OUT`
    faces = load_faces("stores/affectnet")                                # a store is a source like any
    faces = open_store("stores/affectnet", rank=1, world=4)               # this rank's quarter of train

Layout: `store.json` (the manifest), `labels.npy`, `splits.npy`, `ids.txt`, and `train-00000.u8` ...
`val-00000.u8`, `test-00000.u8`: raw N x 48 x 48 uint8, the training faces shuffled once when the store
is written, so that each data-parallel rank can read one contiguous block of them — only the pages of
its block — and still see every class.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from ..classes import CLASSES, NUM_CLASSES
from ..errors import DataError
from ..io import atomic_folder, check_writable
from .faces import SPLITS, Faces
from .preprocess import SIZE

MANIFEST = "store.json"
FORMAT = "unveil-face-store"
VERSION = 2          # 2: the manifest also records the SHA-256 of labels.npy, splits.npy and ids.txt
FACE_BYTES = SIZE * SIZE
SMALL_FILES = ("labels.npy", "splits.npy", "ids.txt")


def is_store(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def check_new_folder(folder: str | Path) -> Path:
    """`folder` if a store can be written there: a new folder, or an empty one; never over anything."""
    folder = check_writable(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: a file is there; a store is written into a new folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise DataError(f"{folder}: not empty; a store is written into a new folder")
    return folder


def write_store(faces: Faces, folder: str | Path, shard_faces: int = 65_536, seed: int = 0) -> Path:
    """Write `faces` as a store in the new folder `folder`, as one set: it appears complete or not at all."""
    folder = check_new_folder(folder)
    if shard_faces < 1:
        raise DataError(f"shard size must be at least 1 face, got {shard_faces}")
    order = _store_order(faces, seed)
    images, labels, splits = faces.images[order].numpy(), faces.labels[order].numpy(), faces.splits[order].numpy()
    with atomic_folder(folder, replace=False) as tmp:
        shards = []
        for s, name in enumerate(SPLITS):
            rows = np.flatnonzero(splits == s)
            for k, start in enumerate(range(0, len(rows), shard_faces)):
                part = np.ascontiguousarray(images[rows[start:start + shard_faces]])
                file = f"{name}-{k:05d}.u8"
                (tmp / file).write_bytes(part.tobytes())
                shards.append({"file": file, "split": name, "faces": int(len(part)),
                               "sha256": hashlib.sha256(part.tobytes()).hexdigest()})
        np.save(tmp / "labels.npy", labels.astype(np.int64))
        np.save(tmp / "splits.npy", splits.astype(np.int8))
        (tmp / "ids.txt").write_text("\n".join(faces.ids[i] for i in order.tolist()) + "\n", encoding="utf-8")
        manifest = {"format": FORMAT, "version": VERSION, "faces": len(faces), "image_size": SIZE,
                    "classes": list(CLASSES), "source": faces.source, "fingerprint": faces.fingerprint,
                    "shards": shards, "files": {f: _sha256((tmp / f).read_bytes()) for f in SMALL_FILES}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return folder


def _store_order(faces: Faces, seed: int) -> torch.Tensor:
    """Train faces shuffled (every contiguous block a fair sample), then val, then test."""
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for s in range(len(SPLITS)):
        rows = (faces.splits == s).nonzero().squeeze(1)
        parts.append(rows[torch.randperm(len(rows), generator=gen)] if s == 0 else rows)
    return torch.cat(parts)


def open_store(folder: str | Path, rank: int = 0, world: int = 1) -> Faces:
    """The store's faces; with `world` > 1, only block `rank` of the training faces (val and test whole).

    Images are read through memory maps: a rank touches only the shards of its own block, and checks
    each one it reads against the SHA-256 in the manifest (so does every file of labels, splits and ids):
    a damaged store is a DataError naming the file, never faces read wrongly.
    """
    folder = Path(folder)
    manifest = _manifest(folder)
    labels = _array(folder, "labels.npy", manifest, NUM_CLASSES)
    splits = _array(folder, "splits.npy", manifest, len(SPLITS))
    ids = _read(folder, "ids.txt", manifest).decode("utf-8", errors="replace").splitlines()
    if len(ids) != manifest["faces"]:
        raise DataError(f"{folder / 'ids.txt'}: {len(ids)} ids where the manifest has {manifest['faces']} faces")
    train_faces = sum(s["faces"] for s in manifest["shards"] if s["split"] == "train")
    per_rank = train_faces // world
    keep = np.r_[rank * per_rank:(rank + 1) * per_rank] if world > 1 else np.r_[0:train_faces]
    keep = np.concatenate([keep, np.r_[train_faces:manifest["faces"]]])
    images = _read_rows(folder, manifest["shards"], keep)
    return Faces(torch.from_numpy(images), torch.from_numpy(labels[keep]).long(),
                 torch.from_numpy(splits[keep]), [ids[i] for i in keep], source=f"store:{folder}",
                 fingerprint=manifest["fingerprint"], sharded=world > 1)


def _manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DataError(f"{path}: cannot read the store's manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("classes") != list(CLASSES):
        raise DataError(f"{path}: not an Unveil face store with the classes {', '.join(CLASSES)}")
    shards, faces = manifest.get("shards"), manifest.get("faces")
    if not isinstance(shards, list) or not all(_is_shard(s) for s in shards) or not _count(faces):
        raise DataError(f"{path}: damaged manifest (expected 'faces' and a list of 'shards', each with a file name, "
                        f"a split, a face count and a SHA-256)")
    if sum(s["faces"] for s in shards) != faces or [s["split"] for s in shards] != sorted(
            (s["split"] for s in shards), key=SPLITS.index):
        raise DataError(f"{path}: damaged manifest (its shards hold {sum(s['faces'] for s in shards)} faces, "
                        f"not the {faces} it names, or not in train, val, test order)")
    for shard in shards:
        file = folder / shard["file"]
        size = file.stat().st_size if file.is_file() else -1
        if size != shard["faces"] * FACE_BYTES:
            raise DataError(f"{file}: {size} bytes where the manifest expects "
                            f"{shard['faces']} faces ({shard['faces'] * FACE_BYTES} bytes)")
    return manifest


def _is_shard(shard) -> bool:
    return (isinstance(shard, dict) and isinstance(shard.get("file"), str) and Path(shard["file"]).name == shard["file"]
            and shard.get("split") in SPLITS and _count(shard.get("faces")) and isinstance(shard.get("sha256"), str))


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read(folder: Path, name: str, manifest: dict) -> bytes:
    """A small file of the store, checked against the manifest's SHA-256 where it records one."""
    try:
        data = (folder / name).read_bytes()
    except OSError as exc:
        raise DataError(f"{folder / name}: cannot read ({exc.strerror or exc})") from None
    recorded = (manifest.get("files") or {}).get(name)
    if recorded is not None and _sha256(data) != recorded:
        raise DataError(f"{folder / name}: SHA-256 does not match the store's manifest: the file was changed or "
                        f"damaged")
    return data


def _array(folder: Path, name: str, manifest: dict, classes: int) -> np.ndarray:
    """labels.npy or splits.npy: a plain 1-D integer array (a pickled file is never loaded), one value per
    face, each in 0..classes-1."""
    path = folder / name
    try:
        array = np.load(io.BytesIO(_read(folder, name, manifest)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a plain numpy array ({exc})") from None
    if array.dtype.kind not in "iu" or array.shape != (manifest["faces"],):
        raise DataError(f"{path}: expected {manifest['faces']} integers (one per face), got {array.dtype} "
                        f"{list(array.shape)}")
    if len(array) and not (0 <= array.min() and array.max() < classes):
        raise DataError(f"{path}: values must lie in 0..{classes - 1}")
    return array


def _read_rows(folder: Path, shards: list[dict], rows: np.ndarray) -> np.ndarray:
    """The faces at `rows` (store order, ascending), copied out of the shard files' memory maps; every
    shard read is checked against its SHA-256 first."""
    out, start = [], 0
    for shard in shards:
        end = start + shard["faces"]
        wanted = rows[(rows >= start) & (rows < end)] - start
        if len(wanted):
            mapped = np.memmap(folder / shard["file"], np.uint8, "r", shape=(shard["faces"], SIZE, SIZE))
            if _sha256(mapped) != shard["sha256"]:
                raise DataError(f"{folder / shard['file']}: SHA-256 does not match the store's manifest: the shard "
                                f"was changed or damaged")
            out.append(np.array(mapped[wanted]))
        start = end
    return np.concatenate(out) if out else np.zeros((0, SIZE, SIZE), np.uint8)


def _sha256(data) -> str:
    return hashlib.sha256(data).hexdigest()
