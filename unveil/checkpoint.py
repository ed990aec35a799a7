"""The one checkpoint format: `NAME.safetensors` weights + `NAME.json` sidecar. Never a pickle.

The sidecar says how to rebuild the model (`arch`, `arch_args`) and what it is (`kind`, `classes`,
`occlusion`, `data_fingerprint`, `metrics`, `version`, and for generators the `guide` classifier),
so a checkpoint loads without repeating any training flags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .errors import UnveilError
from .io import atomic_path, write_json


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, sidecar) for a checkpoint named with or without its extension."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    half: bool = False) -> Path:
    """Write weights and sidecar atomically; `half` stores floating tensors as fp16 (shipped weights)."""
    weights, sidecar = checkpoint_paths(path)
    tensors = {k: _storable(v, half) for k, v in tensors.items()}
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp))
    write_json(sidecar, {"version": __version__, **meta})
    return weights


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read (tensors, sidecar); floating tensors come back as float32."""
    weights, sidecar = checkpoint_paths(path)
    for f in (weights, sidecar):
        if not f.exists():
            raise UnveilError(f"{f}: checkpoint file not found")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UnveilError(f"{sidecar}: not a valid JSON sidecar ({exc})") from None
    try:
        tensors = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise UnveilError(f"{weights}: not a valid safetensors file ({exc})") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, meta


def _storable(t: torch.Tensor, half: bool) -> torch.Tensor:
    t = t.detach().to("cpu").contiguous()
    if t.is_floating_point():
        t = t.to(torch.float16 if half else torch.float32)
    return t


def flatten_state(prefix: str, state: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Move the tensors of a nested state (optimizer, scheduler) into `tensors`; return the JSON rest."""
    if isinstance(state, torch.Tensor):
        tensors[prefix] = state
        return {"__tensor__": prefix}
    if isinstance(state, dict):
        return {"__dict__": [[_key(k), flatten_state(f"{prefix}.{k}", v, tensors)] for k, v in state.items()]}
    if isinstance(state, (list, tuple)):
        return [flatten_state(f"{prefix}.{i}", v, tensors) for i, v in enumerate(state)]
    return state


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `flatten_state`."""
    if isinstance(obj, dict) and "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if isinstance(obj, dict) and "__dict__" in obj:
        return {_unkey(k): unflatten_state(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def _key(k: Any) -> Any:
    return {"__int__": k} if isinstance(k, int) else k


def _unkey(k: Any) -> Any:
    return k["__int__"] if isinstance(k, dict) else k


def weights_digest(path: str | Path) -> str:
    """sha256 of a checkpoint's weights file: identifies a model whatever its path (e.g. judge vs guide)."""
    import hashlib

    weights, _ = checkpoint_paths(path)
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
