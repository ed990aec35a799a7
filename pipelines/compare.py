"""The comparison under identical conditions: one judge, the same test faces, the same metrics.

Every condition — occluded, each inpainter's reconstruction, full — is scored by the same classifier
weights on the same images with the same occlusion draw, so differences between conditions come from
what the classifier is shown and nothing else. `unveil compare` reports all of them; `unveil
eval-inpainter` is the same comparison with one inpainter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from unveil.classify import load_classifier, predict_proba
from unveil.classify.identity import classifier_record
from unveil.data import Faces
from unveil.errors import UnveilError
from unveil.inpaint import BASELINES, Inpainter, open_inpainter
from unveil.metrics import classification_report, image_quality
from unveil.occlusion import Occlusion
from unveil.runtime import fused_for_inference, resolve_precision
from unveil.shipped import resolve_checkpoint


@dataclass
class Judge:
    """A classifier that scores conditions: the model (folded for inference), its sidecar, and its record."""

    model: torch.nn.Module
    meta: dict
    path: str
    record: dict

    @property
    def trained_on(self) -> str:
        return self.meta.get("condition") or "unknown"


@dataclass
class NamedInpainter:
    """An inpainter as the comparison sees it: a name, the model, and where it came from."""

    name: str
    model: Inpainter
    path: str | None = None


def load_judge(spec: str, device: torch.device, checkpoints: str | Path | None = None) -> Judge:
    path = resolve_checkpoint(spec, checkpoints)
    model, meta = load_classifier(path, device)
    return Judge(fused_for_inference(model), meta, str(path), classifier_record(path, meta))


def load_inpainters(specs: list[str], device: torch.device, train_faces: Callable[[], torch.Tensor],
                    checkpoints: str | Path | None = None) -> list[NamedInpainter]:
    """Baseline names and generator checkpoints (paths or shipped names), in the order given."""
    out = []
    for spec in specs:
        model = fused_for_inference(open_inpainter(spec, device, train_faces, checkpoints))
        if spec in BASELINES:
            out.append(NamedInpainter(spec, model))
        else:
            out.append(NamedInpainter(_checkpoint_name(spec), model, str(resolve_checkpoint(spec, checkpoints))))
    names = [i.name for i in out]
    if len(set(names)) != len(names):
        raise UnveilError(f"two inpainters share a name: {names}")
    return out


def _checkpoint_name(spec: str) -> str:
    """`checkpoints/inpainter_unet` -> inpainter_unet; a run's `runs/unet/best` -> unet."""
    path = Path(spec)
    stem = path.name.removesuffix(".safetensors").removesuffix(".json")
    return path.parent.name if stem in ("best", "last") and path.parent.name else stem


def condition_images(images: torch.Tensor, occlusion: Occlusion, inpainters: list[NamedInpainter],
                     seed: int = 0, precision: str = "auto") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The hole and every condition's images, from one occlusion draw (`Occlusion.over_set`).

    Returns (hole, {"occluded": ..., <inpainter>: ..., "full": images}), all [N, 1, H, W].
    """
    occluded, hole = occlusion.over_set(images, seed)
    shown = {"occluded": occluded}
    for inp in inpainters:
        shown[inp.name] = inp.model.reconstruct(occluded, hole, precision=precision)
    shown["full"] = images
    return hole, shown


def judge_warnings(judge: Judge, inpainters: list[NamedInpainter]) -> list[str]:
    """Where the judge took part in a generator's training (guide, selector or conditioner)."""
    return [w for inp in inpainters for w in inp.model.judge_conflicts(judge.record)]


def compare(faces: Faces, judge: Judge, inpainters: list[NamedInpainter], occlusion: Occlusion,
            cross: list[Judge] = (), tta: bool = False, seed: int = 0, n_boot: int = 1000,
            use_lpips: bool = True, precision: str = "auto") -> tuple[dict, dict]:
    """Score every condition with the judge; return (report, artefacts for the gallery).

    The report is JSON-able: data, occlusion, judge, warnings, conditions{name: metrics}, and with
    `cross` the cross-condition matrix. Artefacts hold the condition images, hole and probabilities.
    """
    device = next(judge.model.parameters()).device
    images, labels = faces.float_images().to(device), faces.labels.to(device)
    hole, shown = condition_images(images, occlusion, inpainters, seed, precision)
    probs = {name: predict_proba(judge.model, x, tta=tta, precision=precision) for name, x in shown.items()}
    conditions = {}
    for name, x in shown.items():
        conditions[name] = classification_report(labels, probs[name], n_boot=n_boot, seed=seed)
        if name != "full":
            conditions[name].update(image_quality(x, images, hole, use_lpips))
    report = {
        "data": {"source": faces.source, "n": len(faces), "fingerprint": faces.fingerprint},
        "occlusion": str(occlusion), "tta": tta, "seed": seed, "precision": resolve_precision(device, precision),
        "judge": {**judge.record, "condition": judge.trained_on},
        "inpainters": {i.name: {"path": i.path, "arch": i.model.meta.get("arch"), "guide": i.model.meta.get("guide")}
                       for i in inpainters},
        "warnings": judge_warnings(judge, inpainters),
        "conditions": conditions,
    }
    if cross:
        report["cross"] = cross_matrix(judge, probs, cross, shown, labels, tta, precision)
    return report, {"images": shown, "hole": hole, "probs": probs, "labels": labels}


def cross_matrix(judge: Judge, judge_probs: dict[str, torch.Tensor], others: list[Judge],
                 shown: dict[str, torch.Tensor], labels: torch.Tensor, tta: bool, precision: str) -> dict:
    """Accuracy and macro-F1 of each classifier (by training condition) on each test condition; the
    judge's row reuses the probabilities already computed."""
    rows, accuracy, macro_f1 = [], [], []
    for clf in (judge, *others):
        rows.append({"classifier": clf.path, "trained_on": clf.trained_on, "occlusion": clf.meta.get("occlusion")})
        scores = [classification_report(labels, judge_probs[name] if clf is judge else
                                         predict_proba(clf.model, x, tta=tta, precision=precision), n_boot=0)
                  for name, x in shown.items()]
        accuracy.append([s["accuracy"] for s in scores])
        macro_f1.append([s["macro_f1"] for s in scores])
    return {"rows": rows, "columns": list(shown), "accuracy": accuracy, "macro_f1": macro_f1}


def reconstruct_loader(device: torch.device, checkpoints: str | Path | None = None):
    """What the classifier stage's reconstructed condition is given: inpainter path -> its `reconstruct`."""
    return lambda spec: fused_for_inference(open_inpainter(spec, device, checkpoints=checkpoints)).reconstruct
