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

from unveil.classes import ClassMap, ClassView, class_view
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


def condition_images(faces: Faces, occlusion: Occlusion, inpainters: list[NamedInpainter], device: torch.device,
                     seed: int = 0, precision: str = "auto") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The hole and every condition's images, from one occlusion draw (`Occlusion.over_faces`).

    Returns (hole, {"occluded": ..., <inpainter>: ..., "full": images}), all [N, 1, H, W] on `device`.
    """
    images = faces.float_images().to(device)
    occluded, hole = (x.to(device) for x in occlusion.over_faces(faces, seed))
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
            use_lpips: bool = True, precision: str = "auto", classes: ClassMap | None = None) -> tuple[dict, dict]:
    """Score every condition with the judge; return (report, artefacts for the gallery).

    The report is JSON-able: data, occlusion, judge, warnings, the class view, conditions{name: metrics},
    and with `cross` the cross-condition matrix. Artefacts hold the condition images, hole and
    probabilities. `classes` (a map such as valence) scores everything in that coarser view.
    """
    device = next(judge.model.parameters()).device
    hole, shown = condition_images(faces, occlusion, inpainters, device, seed, precision)
    images, labels = shown["full"], faces.labels.to(device)
    scores, artefacts = judge_conditions(shown, labels, judge, inpainters, cross, tta=tta, seed=seed, n_boot=n_boot,
                                         precision=precision, classes=classes)
    for name, x in shown.items():
        if name != "full":
            scores["conditions"][name].update(image_quality(x, images, hole, use_lpips))
    report = {"data": {"source": faces.source, "n": len(faces), "fingerprint": faces.fingerprint},
              "occlusion": str(occlusion), **scores}
    return report, {**artefacts, "hole": hole}


def judge_conditions(shown: dict[str, torch.Tensor], labels: torch.Tensor, judge: Judge,
                     inpainters: list[NamedInpainter], cross: list[Judge] = (), tta: bool = False, seed: int = 0,
                     n_boot: int = 1000, precision: str = "auto", classes: ClassMap | None = None) -> tuple[dict, dict]:
    """The judge's scores of every condition's faces (and with `cross`, every other classifier's), in
    the judge's class view; with the artefacts the gallery needs. `labels` are canonical."""
    device = next(judge.model.parameters()).device
    view = class_view(judge.meta, classes, judge.path)
    raw = {name: predict_proba(judge.model, x, tta=tta, precision=precision) for name, x in shown.items()}
    probs = {name: view.probs(p) for name, p in raw.items()}
    scored = view.labels(labels)
    report = {
        "tta": tta, "seed": seed, "precision": resolve_precision(device, precision), "class_view": view.record(),
        "judge": {**judge.record, "condition": judge.trained_on},
        "inpainters": {i.name: {"path": i.path, "arch": i.model.meta.get("arch"), "guide": i.model.meta.get("guide")}
                       for i in inpainters},
        "warnings": judge_warnings(judge, inpainters),
        "conditions": {name: classification_report(scored, p, n_boot=n_boot, seed=seed, classes=view.names)
                       for name, p in probs.items()},
    }
    if cross:
        report["cross"] = cross_matrix(judge, view, report["conditions"], cross, shown, labels, tta, precision,
                                       n_boot, seed)
    artefacts = {"images": shown, "probs": probs, "labels": scored, "classes": view.names,
                 "explain": {name: view.explained_class(p) for name, p in raw.items()}}
    return report, artefacts


def cross_matrix(judge: Judge, view: ClassView, judge_scores: dict[str, dict], others: list[Judge],
                 shown: dict[str, torch.Tensor], labels: torch.Tensor, tta: bool, precision: str,
                 n_boot: int = 0, seed: int = 0) -> dict:
    """Accuracy and macro-F1 (with 95 % intervals when `n_boot`) of each classifier (by training
    condition) on each test condition, all in the judge's class view; the judge's row reuses its scores."""
    rows, scores = [], []
    for clf in (judge, *others):
        rows.append({"classifier": clf.path, "trained_on": clf.trained_on, "occlusion": clf.meta.get("occlusion")})
        if clf is judge:
            scores.append(list(judge_scores.values()))
            continue
        theirs = class_view(clf.meta, view.mapping, clf.path)
        if theirs.names != view.names:
            raise UnveilError(f"{clf.path} predicts {len(theirs.names)} classes ({', '.join(theirs.names)}) and the "
                              f"judge {len(view.names)}: pass --classes with the map they share (e.g. valence)")
        scores.append([classification_report(theirs.labels(labels), theirs.probs(predict_proba(
            clf.model, x, tta=tta, precision=precision)), n_boot=n_boot, seed=seed, classes=theirs.names)
            for x in shown.values()])
    out = {"rows": rows, "columns": list(shown), "accuracy": [[s["accuracy"] for s in row] for row in scores],
           "macro_f1": [[s["macro_f1"] for s in row] for row in scores]}
    if all("ci95" in s for row in scores for s in row):
        out["ci95"] = [[s["ci95"] for s in row] for row in scores]
    return out


def reconstruct_loader(device: torch.device, checkpoints: str | Path | None = None):
    """What the classifier stage's reconstructed condition is given: inpainter path -> its `reconstruct`."""
    return lambda spec: fused_for_inference(open_inpainter(spec, device, checkpoints=checkpoints)).reconstruct
