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
from safetensors.torch import load_file, save_file

from ..io import atomic_path
from .faces import SPLIT_CHOICES, SPLITS, Faces
from .preprocess import minmax_normalize
from .sources import Source, assign_splits, resolve_source

__all__ = ["Faces", "SPLITS", "SPLIT_CHOICES", "load_faces", "resolve_source", "cache_dir"]

# Bump when decoding or splitting changes, so old caches are not reused.
LOADER_VERSION = 1


def cache_dir() -> Path:
    return Path(os.environ.get("UNVEIL_CACHE", Path.home() / ".cache" / "unveil"))


def load_faces(source: str, split: str = "all", normalize: bool = True,
               aliases: dict[str, str] | None = None, use_cache: bool = True) -> Faces:
    """Load a source (see `unveil.data.sources`) as Faces, from the cache when it is unchanged.

    `normalize` applies the per-image min-max stretch (on by default for everything Unveil trains).
    """
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
    key = [LOADER_VERSION, src.kind, src.location, normalize, src.fingerprint_parts()]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _decode(src: Source, fingerprint: str, normalize: bool) -> Faces:
    print(f"decoding {src.describe()} (once; later loads use the cache)", file=sys.stderr)
    raw = src.read()
    images = torch.from_numpy(raw.images)
    return Faces(
        images=minmax_normalize(images) if normalize else images,
        labels=torch.from_numpy(raw.labels).long(),
        splits=torch.from_numpy(assign_splits(raw)),
        ids=raw.ids, source=src.describe(), fingerprint=fingerprint,
    )


def _read_cache(path: Path, src: Source, fingerprint: str) -> Faces | None:
    if not path.exists():
        return None
    try:
        tensors = load_file(path)
        with open(path, "rb") as handle:  # metadata lives in the safetensors header
            header_len = int.from_bytes(handle.read(8), "little")
            meta = json.loads(handle.read(header_len))["__metadata__"]
    except (SafetensorError, OSError, ValueError, KeyError):
        return None  # a damaged cache is rebuilt, never trusted
    if meta.get("fingerprint") != fingerprint:
        return None
    return Faces(tensors["images"], tensors["labels"], tensors["splits"], json.loads(meta["ids"]),
                 source=src.describe(), fingerprint=fingerprint)


def _write_cache(path: Path, faces: Faces) -> None:
    tensors = {"images": faces.images.contiguous(), "labels": faces.labels, "splits": faces.splits}
    meta = {"fingerprint": faces.fingerprint, "source": faces.source, "ids": json.dumps(faces.ids)}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
    except OSError as exc:  # a read-only cache folder costs speed, not correctness
        print(f"warning: cannot write cache {path}: {exc}", file=sys.stderr)
