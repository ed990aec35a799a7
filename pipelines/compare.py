"""The comparison under identical conditions: one judge, the same test faces, the same metrics.

Every condition — occluded, each inpainter's reconstruction, full — is scored by the same classifier
weights on the same images with the same occlusion draw, so differences between conditions come from
what the classifier is shown and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from unveil.data import Faces
from unveil.errors import UnveilError
from unveil.metrics import ImageQuality, classification_report
from unveil.occlusion import Occlusion

BASELINES = ("telea", "navier_stokes", "mean_face")


@dataclass
class NamedInpainter:
    """An inpainter as the comparison sees it: a name, something with `reconstruct`, and its record."""

    name: str
    model: object
    meta: dict = field(default_factory=dict)
    path: str | None = None


@dataclass
class Judge:
    """The classifier that scores every condition, and how to identify it in the report."""

    model: torch.nn.Module
    meta: dict
    path: str

    def describe(self) -> dict:
        """What identifies the judge: the record generators keep of their guide, plus its condition."""
        from inpaint.classifiers import classifier_info

        return {**classifier_info(self.path, self.meta), "condition": self.meta.get("condition")}


def load_judge(path: str, device: torch.device) -> Judge:
    from classify import load_classifier

    model, meta = load_classifier(path, device)
    return Judge(model, meta, str(path))


def resolve_inpainters(specs: list[str], train_faces: Faces | None, device: torch.device) -> list[NamedInpainter]:
    """Baseline names (telea, navier_stokes, mean_face) or generator checkpoints, in the order given."""
    import inpaint

    out = []
    for spec in specs:
        if spec in BASELINES:
            model = inpaint.create_inpainter(spec)
            if hasattr(model.generator, "fit"):  # mean_face learns the training set's mean face
                if train_faces is None:
                    raise UnveilError(f"inpainter {spec!r} needs training faces to fit")
                model.fit(train_faces.float_images().to(device))
            out.append(NamedInpainter(spec, model))
        else:
            model = inpaint.load_inpainter(spec, device)
            meta = getattr(model, "meta", {}) or {}
            out.append(NamedInpainter(_checkpoint_name(spec), model, meta, str(spec)))
    names = [i.name for i in out]
    if len(set(names)) != len(names):
        raise UnveilError(f"two inpainters share a name: {names}")
    return out


def _checkpoint_name(spec: str) -> str:
    """`checkpoints/inpainter_unet` -> inpainter_unet; a run's `runs/unet/best` -> unet."""
    path = Path(spec)
    stem = path.name.removesuffix(".safetensors").removesuffix(".json")
    return path.parent.name if stem in ("best", "last") and path.parent.name else stem


@torch.no_grad()
def condition_images(images: torch.Tensor, occlusion: Occlusion, inpainters: list[NamedInpainter],
                     seed: int = 0, batch_size: int = 1024) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The hole and every condition's images, batch by batch with one occlusion draw per batch.

    Returns (hole, {"occluded": ..., <inpainter>: ..., "full": images}), all [N, 1, H, W].
    """
    holes, shown = [], {"occluded": []} | {i.name: [] for i in inpainters}
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        occluded, hole = occlusion(batch, seed=seed + start // batch_size)
        holes.append(hole)
        shown["occluded"].append(occluded)
        for inp in inpainters:
            shown[inp.name].append(inp.model.reconstruct(occluded, hole).to(batch.dtype).clamp(0, 1))
    out = {name: torch.cat(parts) for name, parts in shown.items()}
    out["full"] = images
    return torch.cat(holes), out


def guide_warnings(judge: Judge, inpainters: list[NamedInpainter]) -> list[str]:
    """Warn when the judge guided a generator's training: its score on those faces is not a result."""
    from inpaint.classifiers import same_classifier

    judge_info = judge.describe()
    warnings = []
    for inp in inpainters:
        why = same_classifier(inp.meta.get("guide"), judge_info)
        if why:
            warnings.append(f"the judge {judge.path} is the classifier that guided {inp.name}'s training ({why}): "
                            f"its accuracy on {inp.name} measures how well the generator fools it, not a result")
    return warnings


def compare(faces: Faces, judge: Judge, inpainters: list[NamedInpainter], occlusion: Occlusion,
            cross: list[Judge] = (), tta: bool = False, seed: int = 0, n_boot: int = 1000,
            use_lpips: bool = True, device: torch.device | str = "cpu") -> tuple[dict, dict]:
    """Score every condition with the judge; return (report, artefacts for the gallery).

    The report is JSON-able: data, occlusion, judge, warnings, conditions{name: metrics}, and with
    `cross` the cross-condition matrix. Artefacts hold the condition images, hole and probabilities.
    """
    from classify.evaluate import predict_proba

    images = faces.float_images().to(device)
    labels = faces.labels.to(device)
    hole, shown = condition_images(images, occlusion, inpainters, seed=seed)
    conditions, probs = {}, {}
    for name, x in shown.items():
        probs[name] = predict_proba(judge.model, x, tta=tta)
        metrics = classification_report(labels, probs[name], n_boot=n_boot, seed=seed)
        if name != "full":
            quality = ImageQuality(use_lpips=use_lpips, device=device)
            quality.update(x, images, hole)
            metrics.update(_image_metrics(quality.compute()))
        conditions[name] = metrics
    report = {
        "data": {"source": faces.source, "n": len(faces), "fingerprint": faces.fingerprint},
        "occlusion": str(occlusion), "tta": tta, "seed": seed,
        "judge": judge.describe(),
        "inpainters": {i.name: {"path": i.path, "arch": i.meta.get("arch"), "guide": i.meta.get("guide")}
                       for i in inpainters},
        "warnings": guide_warnings(judge, inpainters),
        "conditions": conditions,
    }
    if cross:
        report["cross"] = cross_matrix([judge, *cross], shown, labels, tta)
    return report, {"images": shown, "hole": hole, "probs": probs, "labels": labels}


def _image_metrics(quality: dict) -> dict:
    """Hole metrics under the short names (psnr, ssim, l1) and whole-image ones with a suffix."""
    out = {"psnr": quality["psnr_hole"], "ssim": quality["ssim_hole"], "l1": quality["l1_hole"],
           "psnr_image": quality["psnr"], "ssim_image": quality["ssim"], "l1_image": quality["l1"],
           "lpips": quality.get("lpips")}
    if "lpips_missing" in quality:
        out["lpips_missing"] = quality["lpips_missing"]
    return out


def cross_matrix(classifiers: list[Judge], shown: dict[str, torch.Tensor], labels: torch.Tensor,
                 tta: bool) -> dict:
    """Accuracy and macro-F1 of each classifier (by training condition) on each test condition."""
    from classify.evaluate import predict_proba

    rows, accuracy, macro_f1 = [], [], []
    for clf in classifiers:
        trained_on = clf.meta.get("condition") or "unknown"
        rows.append({"classifier": clf.path, "trained_on": trained_on, "occlusion": clf.meta.get("occlusion")})
        acc_row, f1_row = [], []
        for x in shown.values():
            metrics = classification_report(labels, predict_proba(clf.model, x, tta=tta), n_boot=0)
            acc_row.append(metrics["accuracy"])
            f1_row.append(metrics["macro_f1"])
        accuracy.append(acc_row)
        macro_f1.append(f1_row)
    return {"rows": rows, "columns": list(shown), "accuracy": accuracy, "macro_f1": macro_f1}
