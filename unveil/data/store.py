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
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..classes import CLASSES
from ..errors import DataError
from .faces import SPLITS, Faces
from .preprocess import SIZE

MANIFEST = "store.json"
FORMAT = "unveil-face-store"
FACE_BYTES = SIZE * SIZE


def is_store(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def write_store(faces: Faces, folder: str | Path, shard_faces: int = 65_536, seed: int = 0) -> Path:
    """Write `faces` as a store in `folder` (built in a temporary folder, then renamed into place)."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise DataError(f"{folder}: not empty; a store is written into a new folder")
    if shard_faces < 1:
        raise DataError(f"shard size must be at least 1 face, got {shard_faces}")
    order = _store_order(faces, seed)
    images, labels, splits = faces.images[order].numpy(), faces.labels[order].numpy(), faces.splits[order].numpy()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
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
        manifest = {"format": FORMAT, "version": 1, "faces": len(faces), "image_size": SIZE, "classes": list(CLASSES),
                    "source": faces.source, "fingerprint": faces.fingerprint, "shards": shards}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if folder.exists():
            folder.rmdir()
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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

    Images are read through memory maps: a rank touches only the pages of its own block.
    """
    folder = Path(folder)
    manifest = _manifest(folder)
    labels = np.load(folder / "labels.npy", allow_pickle=False)
    splits = np.load(folder / "splits.npy", allow_pickle=False)
    ids = (folder / "ids.txt").read_text(encoding="utf-8").splitlines()
    if not len(labels) == len(splits) == len(ids) == manifest["faces"]:
        raise DataError(f"{folder}: labels, splits and ids do not match the manifest's {manifest['faces']} faces")
    train_faces = sum(s["faces"] for s in manifest["shards"] if s["split"] == "train")
    per_rank = train_faces // world
    keep = np.r_[rank * per_rank:(rank + 1) * per_rank] if world > 1 else np.r_[0:train_faces]
    keep = np.concatenate([keep, np.r_[train_faces:manifest["faces"]]])
    images = _read_rows(folder, manifest["shards"], keep)
    return Faces(torch.from_numpy(images), torch.from_numpy(labels[keep]).long(),
                 torch.from_numpy(splits[keep]), [ids[i] for i in keep], source=f"store:{folder}",
                 fingerprint=manifest["fingerprint"], sharded=world > 1)


def _manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder / MANIFEST}: cannot read the store's manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("classes") != list(CLASSES):
        raise DataError(f"{folder / MANIFEST}: not an Unveil face store with the classes {', '.join(CLASSES)}")
    for shard in manifest["shards"]:
        size = (folder / shard["file"]).stat().st_size if (folder / shard["file"]).exists() else -1
        if size != shard["faces"] * FACE_BYTES:
            raise DataError(f"{folder / shard['file']}: {size} bytes where the manifest expects "
                            f"{shard['faces']} faces ({shard['faces'] * FACE_BYTES} bytes)")
    return manifest


def _read_rows(folder: Path, shards: list[dict], rows: np.ndarray) -> np.ndarray:
    """The faces at `rows` (store order, ascending), copied out of the shard files' memory maps."""
    out, start = [], 0
    for shard in shards:
        end = start + shard["faces"]
        wanted = rows[(rows >= start) & (rows < end)] - start
        if len(wanted):
            mapped = np.memmap(folder / shard["file"], np.uint8, "r", shape=(shard["faces"], SIZE, SIZE))
            out.append(np.array(mapped[wanted]))
        start = end
    return np.concatenate(out) if out else np.zeros((0, SIZE, SIZE), np.uint8)
