"""Data sources -> `Faces` (uint8 N x 48 x 48, canonical labels, train/val/test), decoded once and cached.

    faces = load_faces("../shared/data/fer2013")        # the three FER2013 archives
    train = faces.split("train").to("cuda")
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from ..errors import UnveilError
from ..io import write_bytes
from .faces import SPLIT_CHOICES, SPLITS, Faces
from .preprocess import minmax_normalize
from .store import is_store, open_store
from .sources import Source, assign_splits, resolve_source

__all__ = ["Faces", "SPLITS", "SPLIT_CHOICES", "load_faces", "resolve_source", "cache_dir"]

# Bump when decoding, splitting or the cache layout changes, so old caches are not reused.
LOADER_VERSION = 3
CACHED = ("images", "labels", "splits")


def cache_dir() -> Path:
    return Path(os.environ.get("UNVEIL_CACHE", Path.home() / ".cache" / "unveil"))


def load_faces(source: str, split: str = "all", normalize: bool = True,
               aliases: dict[str, str] | None = None, use_cache: bool = True) -> Faces:
    """Load a source (see `unveil.data.sources`) as Faces, from the cache when it is unchanged.

    `normalize` applies the per-image min-max stretch (on by default for everything Unveil trains).
    A face store (`unveil.data.store`) is read through memory maps, not cached again; under data-parallel
    training each rank reads only its block of the training faces.
    """
    if is_store(source):
        from ..distributed import world

        return open_store(source, *world()).split(split)
    src = resolve_source(source, aliases)
    fingerprint = _fingerprint(src, normalize)
    path = cache_dir() / f"faces-{fingerprint[:24]}.safetensors"
    faces = _read_cache(path, src, fingerprint) if use_cache else None
    if faces is None:
        faces = _decode(src, fingerprint, normalize)
        if use_cache:
            _write_cache(path, faces)
    return faces.split(split)


def _fingerprint(src: Source, normalize: bool) -> str:
    """The cache key and the data's identity in sidecars: the files' names and content keys, not where they
    are nor their times (`Source.fingerprint_parts`)."""
    key = [LOADER_VERSION, src.kind, normalize, src.fingerprint_parts()]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _decode(src: Source, fingerprint: str, normalize: bool) -> Faces:
    print(f"decoding {src.describe()} (once; later loads use the cache)", file=sys.stderr)
    raw = src.read()
    images = torch.from_numpy(raw.images)
    return Faces(
        images=minmax_normalize(images) if normalize else images,
        labels=torch.from_numpy(raw.labels).long(),
        splits=torch.from_numpy(assign_splits(raw)),
        ids=raw.ids, source=src.describe(), fingerprint=fingerprint, skipped=raw.skipped,
    )


def _read_cache(path: Path, src: Source, fingerprint: str) -> Faces | None:
    """The cached faces, or None (decode again) when the file is missing, stale or damaged: a damaged
    cache is rebuilt, never trusted. The content digest covers every tensor byte and the ids, so a
    flipped bit anywhere in the data is caught, not only one that breaks the file's structure."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:  # an unreadable cache costs speed, not correctness
        print(f"warning: cannot read the faces cache {path} ({exc.strerror or exc}); decoding the source again",
              file=sys.stderr)
        return None
    try:
        tensors = load_bytes(data)
        header_len = int.from_bytes(data[:8], "little")  # metadata lives in the safetensors header
        meta = json.loads(data[8:8 + header_len])["__metadata__"]
        ids = json.loads(meta["ids"])
        intact = (meta.get("fingerprint") == fingerprint and set(tensors) == set(CACHED)
                  and meta.get("sha256") == _content_digest(tensors, meta["ids"]))
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        intact = False
    if not intact:
        print(f"note: {path} is stale or damaged; decoding the source again", file=sys.stderr)
        return None
    return Faces(tensors["images"], tensors["labels"], tensors["splits"], ids,
                 source=src.describe(), fingerprint=fingerprint, skipped=json.loads(meta.get("skipped", "[]")))


def _write_cache(path: Path, faces: Faces) -> None:
    tensors = {"images": faces.images.contiguous(), "labels": faces.labels, "splits": faces.splits}
    ids = json.dumps(faces.ids)
    meta = {"fingerprint": faces.fingerprint, "source": faces.source, "ids": ids,
            "skipped": json.dumps(faces.skipped), "sha256": _content_digest(tensors, ids)}
    try:
        write_bytes(path, save_bytes(tensors, metadata=meta))  # save_file would make it 0600
    except UnveilError as exc:  # a read-only cache folder costs speed, not correctness
        print(f"warning: cannot write the faces cache: {exc}", file=sys.stderr)


def _content_digest(tensors: dict[str, torch.Tensor], ids: str) -> str:
    """SHA-256 of the cached tensors' bytes (in a fixed order, with their dtypes and shapes) and the ids."""
    digest = hashlib.sha256()
    for name in CACHED:
        t = tensors[name].contiguous().cpu()
        digest.update(f"{name}:{t.dtype}:{list(t.shape)};".encode())
        digest.update(t.numpy())  # the buffer itself, no copy
    digest.update(ids.encode())
    return digest.hexdigest()
