"""Telling classifiers apart: the one identity check every command uses.

A generator can involve three classifiers, and a report a fourth:

* the *guide* — a frozen full-face classifier inside the expression-consistency loss;
* the *conditioner* — an occluded-face classifier whose reading conditions the generator;
* the *selector* — an independent classifier that picks the generator's checkpoint on val;
* the *judge* — the classifier that scores reconstructions in a report. It must be none of the above
  (a generator trained against a classifier learns to fool that classifier).

`classifier_record` is what a sidecar keeps about a classifier; `same_classifier` decides identity
from the weights' SHA-256, and only where a record has no digest, from the training recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unveil.checkpoint import weights_digest

RECIPE = ("arch", "seed", "data_fingerprint", "condition", "occlusion")


def classifier_record(path: str | Path, meta: dict) -> dict[str, Any]:
    """What identifies a classifier checkpoint: its weights' digest, and the recipe that made it."""
    return {"path": str(path), "arch": meta.get("arch"), "arch_args": meta.get("arch_args", {}),
            "seed": meta.get("seed"), "data_fingerprint": meta.get("data_fingerprint"),
            "condition": meta.get("condition", "full"), "occlusion": meta.get("occlusion", "none"),
            "weights_sha256": weights_digest(path)}


def same_classifier(a: dict | None, b: dict | None) -> str | None:
    """Why records `a` and `b` are the same classifier, or None when they are different ones.

    Two digests decide alone: the same weights, or different ones. A record without a digest (an older
    sidecar) falls back to the recipe: the same architecture, seed, training data and training
    condition make a re-run of the same model, which is not independent either.
    """
    if not a or not b:
        return None
    digests = a.get("weights_sha256"), b.get("weights_sha256")
    if all(digests):
        return "identical weights (same SHA-256)" if digests[0] == digests[1] else None
    known = [k for k in RECIPE if a.get(k) is not None and b.get(k) is not None]
    if {"arch", "seed", "data_fingerprint"} <= set(known) and all(a[k] == b[k] for k in known):
        return "the same architecture, seed, training data and condition (a re-run of the same recipe)"
    return None
