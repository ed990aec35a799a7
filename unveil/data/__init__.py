"""Data sources -> `Faces` (uint8 N x 48 x 48, canonical labels, train/val/test), decoded once and cached.

    faces = load_faces("../shared/data/fer2013")        # the three FER2013 archives
    train = faces.split("train").to("cuda")
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from .cache import cache_dir, read_cache, write_cache
from .faces import SPLIT_CHOICES, SPLITS, Faces
from .preprocess import minmax_normalize
from .store import is_store, open_store
from .sources import Source, assign_splits, resolve_source

log = logging.getLogger(__name__)

__all__ = ["Faces", "SPLITS", "SPLIT_CHOICES", "load_faces", "resolve_source", "cache_dir"]

# Bump when decoding, splitting or the cache layout changes, so old caches are not reused.
LOADER_VERSION = 3
CACHED = ("images", "labels", "splits")


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
    log.info(f"decoding {src.describe()} (once; later loads use the cache)")
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
    cache is rebuilt, never trusted (`read_cache` checks its digest over every byte it holds)."""
    cached = read_cache(path, CACHED, "faces", "decoding the source again")
    if cached is None:
        return None
    tensors, meta = cached
    try:
        ids, skipped = json.loads(meta["ids"]), json.loads(meta.get("skipped", "[]"))
    except (KeyError, ValueError):
        ids = None
    if meta.get("fingerprint") != fingerprint or not isinstance(ids, list):
        log.warning(f"{path} is stale or damaged (not the cache of this source); decoding the source again")
        return None
    return Faces(tensors["images"], tensors["labels"], tensors["splits"], ids,
                 source=src.describe(), fingerprint=fingerprint, skipped=skipped)


def _write_cache(path: Path, faces: Faces) -> None:
    tensors = {"images": faces.images, "labels": faces.labels, "splits": faces.splits}
    meta = {"fingerprint": faces.fingerprint, "source": faces.source, "ids": json.dumps(faces.ids),
            "skipped": json.dumps(faces.skipped)}
    write_cache(path, tensors, meta, "faces")
