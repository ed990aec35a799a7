"""The one checkpoint format: `NAME.safetensors` weights + `NAME.json` sidecar. Never a pickle.

The sidecar says how to rebuild the model (`arch`, `arch_args`) and what it is (`kind`, `classes`,
`occlusion`, `data_fingerprint`, `metrics`, `version`, and for generators the `guide` classifier),
so a checkpoint loads without repeating any training flags.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from . import __version__
from .classes import CLASSES, ClassMap
from .errors import UnveilError
from .io import write_bytes, write_json
from .occlusion import Occlusion

log = logging.getLogger(__name__)

DIGEST_KEY = "weights_sha256"   # the sidecar's record of its weights file
NEEDS_ARCH = ("classifier", "inpainter", "segmenter", "baseline", "face_detector")
CANONICAL_CLASSES = ("classifier", "inpainter")
_warned_undigested: set[Path] = set()


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, sidecar) for a checkpoint named with or without its extension."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    half: bool = False) -> Path:
    """Write weights, then the sidecar holding their SHA-256; `half` stores floating tensors as fp16.

    Each file is written atomically, but the pair is two renames. Rather than a folder per checkpoint,
    the sidecar carries the digest of the weights beside it and is written last: a kill between the two
    writes leaves new weights beside the old sidecar, whose digest no longer matches, so the pair is
    refused on load instead of silently mixing two epochs. (An older sidecar without a digest is removed
    first, so that case is refused too: a weights file without its sidecar does not load.)
    """
    weights, sidecar = checkpoint_paths(path)
    tensors = {k: _storable(v, half) for k, v in tensors.items()}
    _check_finite(tensors, weights, "refusing to save")
    if sidecar.exists() and not _has_digest(sidecar):
        sidecar.unlink()
    # safetensors' own save_file creates its file 0600; serialised here, the umask applies.
    write_bytes(weights, save_bytes(tensors))
    write_json(sidecar, {"version": __version__, **meta, DIGEST_KEY: weights_digest(weights)})
    return weights


def update_sidecar(path: str | Path, changes: dict[str, Any]) -> Path:
    """Merge `changes` into checkpoint `path`'s sidecar (a score recorded, a re-evaluation), its weights
    untouched: the one way a sidecar is rewritten after `save_checkpoint`. The result is checked like every
    sidecar and keeps the recorded digest of the weights beside it; it replaces the old one in one step."""
    if DIGEST_KEY in changes:
        raise ValueError(f"{DIGEST_KEY} is the weights' digest: only save_checkpoint writes it")
    sidecar = checkpoint_paths(path)[1]
    meta = {**read_sidecar(path), **changes}
    check_sidecar(meta, sidecar)
    return write_json(sidecar, meta)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                    kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Read (tensors, sidecar): floating tensors come back as float32.

    The sidecar is checked first (`check_sidecar`; `kind`, when given, must match), then the weights
    against the SHA-256 it records, then every floating tensor for NaN and inf: each problem is an
    UnveilError naming the file. A sidecar without a digest (saved before Unveil recorded one) loads
    with a warning: its weights cannot be checked.
    """
    weights, sidecar = checkpoint_paths(path)
    meta = read_sidecar(path, kind)
    try:
        data = weights.read_bytes()
    except OSError as exc:
        raise UnveilError(f"{weights}: cannot read the weights ({exc.strerror or exc})") from None
    _check_digest(data, meta, weights, sidecar)
    try:
        tensors = load_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise UnveilError(f"{weights}: not a valid safetensors file ({exc})") from None
    _check_finite(tensors, weights, "refusing to load")
    return {k: (v.float() if v.is_floating_point() else v).to(device) for k, v in tensors.items()}, meta


def read_sidecar(path: str | Path, kind: str | None = None) -> dict:
    """The sidecar of checkpoint `path` as a dict, checked by `check_sidecar` (no weights are read)."""
    weights, sidecar = checkpoint_paths(path)
    for f in (weights, sidecar):
        if not f.is_file():
            raise UnveilError(f"{f}: checkpoint file not found")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:
        raise UnveilError(f"{sidecar}: not a valid JSON sidecar ({exc})") from None
    except OSError as exc:
        raise UnveilError(f"{sidecar}: cannot read the sidecar ({exc.strerror or exc})") from None
    check_sidecar(meta, sidecar, kind)
    return meta


def check_sidecar(meta: Any, where: str | Path, kind: str | None = None) -> None:
    """The sidecar's schema, before any tensor is used: a JSON object with a `kind` (the expected one),
    `arch` and an `arch_args` mapping where the kind is a model, the canonical `classes` for classifiers
    and inpainters (for a classifier trained on a `class_map`, that map's groups), a parseable
    `occlusion`, and a well-formed digest."""
    if not isinstance(meta, dict):
        raise UnveilError(f"{where}: a sidecar must be a JSON object, got {type(meta).__name__}")
    found = meta.get("kind")
    if not isinstance(found, str) or (kind is not None and found != kind):
        wanted = f"{'an' if (kind or 'u')[0] in 'aeiou' else 'a'} {kind or 'Unveil'}"
        raise UnveilError(f"{where}: not {wanted} checkpoint (kind {found!r})")
    if found in NEEDS_ARCH and (not isinstance(meta.get("arch"), str) or not meta["arch"]):
        raise UnveilError(f"{where}: the sidecar has no 'arch' (the architecture to rebuild)")
    for key in ("arch_args", "stitch", "conditioning", "guide", "selector", "metrics", "masks"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise UnveilError(f"{where}: '{key}' must be a JSON object, got {_shown(meta[key])}")
    _check_classes(meta, where, found)
    _check_occlusion(meta.get("occlusion"), where)
    digest = meta.get(DIGEST_KEY)
    if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise UnveilError(f"{where}: '{DIGEST_KEY}' must be 64 hexadecimal digits, got {_shown(digest)}")


def _check_classes(meta: dict, where, kind: str) -> None:
    if meta.get("class_map") is not None:
        _check_class_map(meta, where, kind)
        return
    classes = meta.get("classes")
    if classes is None and kind not in (*CANONICAL_CLASSES, "baseline"):
        return
    # A classical baseline may have seen the first classes only; every network predicts all of them.
    allowed = [list(CLASSES)] if kind in CANONICAL_CLASSES else [list(CLASSES[:n]) for n in range(1, len(CLASSES) + 1)]
    if classes not in allowed:
        raise UnveilError(f"{where}: 'classes' must be Unveil's canonical class list {list(CLASSES)}, "
                          f"got {_shown(classes)}")


def _check_class_map(meta: dict, where, kind: str) -> None:
    """A classifier trained on coarser classes (`unveil.classes.ClassMap`, e.g. the valence view): its
    map must be a well-formed grouping of the canonical classes and `classes` exactly its groups."""
    mapping = meta["class_map"]
    if kind != "classifier":
        raise UnveilError(f"{where}: only a classifier can be trained on a class map, not a {kind}")
    if not (isinstance(mapping, dict) and set(mapping) == {"name", "groups"}):
        raise UnveilError(f"{where}: 'class_map' must be an object with 'name' and 'groups', got {_shown(mapping)}")
    try:
        groups = ClassMap.parse(mapping, "class_map").names
    except UnveilError as exc:
        raise UnveilError(f"{where}: bad {exc}") from None
    if meta.get("classes") != list(groups):
        raise UnveilError(f"{where}: 'classes' must be the groups of its class_map {list(groups)}, "
                          f"got {_shown(meta.get('classes'))}")


def _check_occlusion(value: Any, where) -> None:
    if value is None:
        return
    try:
        if isinstance(value, str):
            Occlusion.parse(value)
        elif isinstance(value, dict):
            Occlusion.from_dict(value)
        else:
            raise UnveilError(f"expected occlusion text or an object, got {_shown(value)}")
    except (UnveilError, TypeError, ValueError) as exc:
        raise UnveilError(f"{where}: bad 'occlusion' ({exc})") from None


def _check_digest(data: bytes, meta: dict, weights: Path, sidecar: Path) -> None:
    recorded = meta.get(DIGEST_KEY)
    if recorded is None:
        if weights not in _warned_undigested:
            _warned_undigested.add(weights)
            log.warning(f"{sidecar} records no {DIGEST_KEY} (saved by an older Unveil): the weights are "
                        f"not checked")
        return
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        raise UnveilError(f"{weights}: SHA-256 {actual[:12]}... does not match the {recorded[:12]}... recorded in "
                          f"{sidecar.name}: the weights were modified or replaced, or a save was interrupted "
                          f"between the two files; refusing to load them")


def _check_finite(tensors: dict[str, torch.Tensor], weights: Path, action: str) -> None:
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise UnveilError(f"{weights}: tensor {name!r} holds NaN or infinite values; {action} it")


def _has_digest(sidecar: Path) -> bool:
    try:
        return isinstance(json.loads(sidecar.read_text(encoding="utf-8")).get(DIGEST_KEY), str)
    except (OSError, ValueError, AttributeError):
        return False


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, list, dict, bool, int, float)) or value is None else repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def load_model(build: Callable[[], torch.nn.Module], tensors: dict[str, torch.Tensor], path: str | Path,
               what: str = "weights") -> torch.nn.Module:
    """`build()` with `tensors` loaded (see `load_weights`). The model is first built on the meta device
    and checked against the weights, so a sidecar whose `arch_args` ask for a model other than the
    one stored (a huge one, say) costs no memory before it is refused."""
    try:
        with torch.device("meta"):
            _check_weights(build().state_dict(), tensors, path, what)
    except UnveilError as exc:  # e.g. an unknown `arch`: the registry's error, with the file it came from
        message, sidecar = str(exc), checkpoint_paths(path)[1]
        raise UnveilError(message if message.startswith(str(path)) else f"{sidecar}: {message}") from None
    model = build()
    model.load_state_dict(tensors)
    return model


def load_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], path: str | Path,
                 what: str = "weights") -> None:
    """`module.load_state_dict(tensors)`, refusing what it would accept silently: an integer tensor where
    the model holds floats (or the reverse) is an UnveilError naming the file, as are missing, extra
    and misshapen tensors."""
    _check_weights(module.state_dict(), tensors, path, what)
    module.load_state_dict(tensors)


def _check_weights(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], path, what: str) -> None:
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise UnveilError(f"{path}: {what} do not match the sidecar's architecture (missing "
                          f"{', '.join(missing[:4]) or 'none'}; unexpected {', '.join(extra[:4]) or 'none'})")
    for name, want in expected.items():
        got = tensors[name]
        if got.is_floating_point() != want.is_floating_point() or got.shape != want.shape:
            raise UnveilError(f"{path}: {what} tensor {name!r} is {str(got.dtype).removeprefix('torch.')} "
                              f"{list(got.shape)}, the architecture needs {str(want.dtype).removeprefix('torch.')} "
                              f"{list(want.shape)}")


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
    weights, _ = checkpoint_paths(path)
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
