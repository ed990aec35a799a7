"""The inpainting stage's view of classifiers: load one, describe it, and tell whether two are the same.

A generator can involve up to three classifiers, and they must be told apart:

* the *guide* — a frozen full-face classifier inside the expression-consistency loss;
* the *conditioner* — an occluded-face classifier whose class distribution conditions the generator;
* the *judge* — the classifier that scores reconstructions in a report. It must never be the guide
  (a generator trained against a classifier learns to fool that classifier).

`classifier_info` records what identifies a classifier checkpoint (path, architecture, seed, data
fingerprint, a SHA-256 of its weights) in generator sidecars, and `same_classifier` compares two
such records, so pipelines can warn when the judge is the guide.

Layering: classifier *architectures* live in the `classify` package, which `inpaint` does not
import at module level (core <- inpaint, classify <- pipelines). Rebuilding a classifier from a
checkpoint is the one place that needs them, so `load_classifier` / `build_classifier` import
`classify` lazily, only when a guide, conditioner or selector is actually used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from unveil.checkpoint import checkpoint_paths, load_checkpoint
from unveil.checkpoint import weights_digest as weights_sha256  # noqa: F401 - re-exported
from unveil.errors import UnveilError


def build_classifier(arch: str, arch_args: dict | None = None) -> nn.Module:
    from classify import create_classifier  # lazy: see the module docstring

    return create_classifier(arch, **(arch_args or {}))


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """(frozen model in eval mode, sidecar) from a classifier checkpoint."""
    tensors, meta = load_checkpoint(path, device)
    if meta.get("kind") != "classifier":
        raise UnveilError(f"{path}: not a classifier checkpoint (kind {meta.get('kind')!r})")
    model = build_classifier(meta["arch"], meta.get("arch_args", {}))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise UnveilError(f"{path}: weights do not match architecture {meta['arch']!r} ({exc})") from None
    return model.to(device).eval().requires_grad_(False), meta


def classifier_info(path: str | Path, meta: dict) -> dict[str, Any]:
    """What a sidecar records about a classifier: enough to recognise it again."""
    return {
        "path": str(path),
        "arch": meta.get("arch"),
        "arch_args": meta.get("arch_args", {}),
        "seed": _find(meta, "seed"),
        "data_fingerprint": meta.get("data_fingerprint"),
        "occlusion": meta.get("occlusion"),
        "weights_sha256": weights_sha256(path),
    }


def _find(meta: dict, key: str) -> Any:
    """A value stored at the top level or one level down (e.g. meta['train']['seed'])."""
    if key in meta:
        return meta[key]
    for value in meta.values():
        if isinstance(value, dict) and key in value and not isinstance(value[key], dict):
            return value[key]
    for value in meta.values():
        if isinstance(value, dict):
            found = _find(value, key)
            if found is not None:
                return found
    return None


def same_classifier(a: dict | None, b: dict | None) -> str | None:
    """Why records `a` and `b` are (or may be) the same classifier, or None when they are independent.

    Identical weights or the same checkpoint path mean the same classifier; the same architecture,
    seed and training data mean a re-run of the same recipe, which is not independent either.
    """
    if not a or not b:
        return None
    if a.get("weights_sha256") and a.get("weights_sha256") == b.get("weights_sha256"):
        return "identical weights (same SHA-256)"
    pa, pb = a.get("path"), b.get("path")
    if pa and pb and _resolved(pa) == _resolved(pb):
        return f"the same checkpoint path ({pa})"
    keys = ("arch", "seed", "data_fingerprint")
    if all(a.get(k) is not None for k in keys) and all(a.get(k) == b.get(k) for k in keys):
        return "the same architecture, seed and training data (a re-run of the same recipe)"
    return None


def _resolved(path: str) -> Path:
    return checkpoint_paths(Path(path)).__getitem__(0).resolve()
