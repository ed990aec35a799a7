"""Cache files: tensors in one safetensors file whose metadata carries a digest of everything it holds.

    write_cache(path, {"crops": crops}, {"paths": json.dumps(paths)}, "framing")
    cached = read_cache(path, ("crops",), "framing", "framing the photos again")   # (tensors, metadata) or None

A cache is never trusted blindly: the digest covers every tensor byte (with its dtype and shape) and the
metadata, so a flipped bit anywhere, or a file of another shape, is caught; such a file is rebuilt by the
caller, with a warning naming it. An unreadable or unwritable cache costs time, never correctness.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from ..errors import UnveilError
from ..io import write_bytes

log = logging.getLogger(__name__)

__all__ = ["cache_dir", "cache_digest", "read_cache", "write_cache"]

Tensors = dict[str, torch.Tensor]


def cache_dir() -> Path:
    return Path(os.environ.get("UNVEIL_CACHE", Path.home() / ".cache" / "unveil"))


def cache_digest(tensors: Tensors, meta: dict[str, str]) -> str:
    """SHA-256 of the tensors' bytes (by name, with their dtypes and shapes) and of the metadata but its digest."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous().cpu()
        digest.update(f"{name}:{t.dtype}:{list(t.shape)};".encode())
        digest.update(t.numpy())  # the buffer itself, no copy
    digest.update(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    return digest.hexdigest()


def read_cache(path: Path, names: tuple[str, ...], what: str, again: str) -> tuple[Tensors, dict[str, str]] | None:
    """(tensors, metadata) of the cache file `path` if it holds exactly the tensors `names` and its digest
    matches; else None, saying why on stderr ("...; `again`") unless the file is simply missing."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning(f"cannot read the {what} cache {path} ({exc.strerror or exc}); {again}")
        return None
    try:
        tensors = load_bytes(data)
        meta = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])["__metadata__"]
        intact = set(tensors) == set(names) and meta.get("sha256") == cache_digest(tensors, meta)
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        intact = False
    if not intact:
        log.warning(f"{path} is stale or damaged (its layout or its digest does not match); {again}")
        return None
    return tensors, meta


def write_cache(path: Path, tensors: Tensors, meta: dict[str, str], what: str) -> None:
    """Write a cache file with its digest; a folder that cannot be written costs time only (a warning)."""
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    try:
        write_bytes(path, save_bytes(tensors, metadata={**meta, "sha256": cache_digest(tensors, meta)}))
    except UnveilError as exc:
        log.warning(f"cannot write the {what} cache: {exc}")
