"""Inference and evaluation: batched probabilities (optionally with test-time augmentation), the full
classification report of a classifier on a split under a condition, and its JSON / Markdown / PNG files.

    probs = predict_proba(model, faces.float_images(), tta=True)
    report = evaluate(model, faces.split("test"), Condition.build("lower-half"))
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from unveil.classes import CLASSES, ClassView
from unveil.data import Faces
from unveil.figures import confusion_image
from unveil.io import json_text, output_folder
from unveil.metrics import classification_report
from unveil.runtime import autocast, eval_mode, inference_batch_size

from .condition import Condition

TTA_SHIFT = 2  # pixels; FER2013 faces are aligned to within a few pixels


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def tta_views(images: torch.Tensor, shift: int = TTA_SHIFT) -> list[torch.Tensor]:
    """The test-time views of a batch: the faces and their mirror, each as is and shifted by `shift`
    pixels up/down/left/right (edges replicated), 10 views in all.

    Shape:
        images: [N, 1, H, W] -> a list of 10 tensors [N, 1, H, W].
    """
    views = []
    for x in (images, images.flip(-1)):
        views.append(x)
        if shift:
            h, w = x.shape[-2:]
            padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
            for dy, dx in ((-shift, 0), (shift, 0), (0, -shift), (0, shift)):
                views.append(padded[..., shift + dy:shift + dy + h, shift + dx:shift + dx + w])
    return views


@torch.inference_mode()
def predict_proba(model: nn.Module, images: torch.Tensor, batch_size: int | None = None, tta: bool = False,
                  precision: str = "auto") -> torch.Tensor:
    """Class probabilities of float faces, in eval mode, in batches, channels-last.

    Batches move to the model's device; the result comes back on the images' device as float32. With
    `tta` the softmax of the views from `tta_views` is averaged. `batch_size` defaults to what suits the
    device, `precision` to bf16 where the hardware runs it natively (`unveil.runtime.autocast`).
    The model's train/eval mode is restored. For repeated use, pass `fused_for_inference(model)`.

    Shape:
        images: [N, 1, 48, 48] in [0, 1] -> [N, C] float32, rows summing to 1.

    Example:
        >>> model = create_classifier("tiny_cnn")
        >>> predict_proba(model, torch.rand(3, 1, 48, 48)).shape
        torch.Size([3, 7])
    """
    device = _device_of(model)
    batch_size = batch_size or inference_batch_size(device)
    out = []
    n_views = len(tta_views(images[:1])) if tta else 1
    step = max(1, batch_size // n_views)  # the views of a batch go through the model as one batch
    with eval_mode(model):
        for start in range(0, len(images), step):
            x = images[start:start + step].to(device, non_blocking=True).float()
            views = torch.cat(tta_views(x)) if tta else x
            with autocast(device, precision):
                logits = model(views.contiguous(memory_format=torch.channels_last)).float()
            probs = logits.softmax(1).view(n_views, len(x), -1).mean(0)
            out.append(probs.to(images.device))
    if not out:
        return torch.zeros(0, getattr(model, "num_classes", len(CLASSES)), device=images.device)
    return torch.cat(out)


def evaluate(model: nn.Module, faces: Faces, condition: Condition | None = None, tta: bool = False,
             n_boot: int = 1000, seed: int = 0, precision: str = "auto", view: ClassView | None = None) -> dict:
    """unveil.metrics.classification_report of `model` on `faces` shown under `condition`, in `view`
    (default: the canonical classes; see `unveil.classes.class_view`).

    The condition's masks are drawn from `seed`, so two models evaluated with the same seed see the
    same occluded faces.
    """
    device = _device_of(model)
    images = condition.over_faces(faces, seed, device) if condition is not None else faces.float_images().to(device)
    probs = predict_proba(model, images, tta=tta, precision=precision)
    return scored(faces.labels, probs, view or ClassView(), n_boot=n_boot, seed=seed)


def scored(labels: torch.Tensor, probs: torch.Tensor, view: ClassView, n_boot: int = 1000, seed: int = 0) -> dict:
    """classification_report of a model's probabilities on canonical `labels`, in `view`."""
    return classification_report(view.labels(labels), view.probs(probs), n_boot=n_boot, seed=seed, classes=view.names)


# --------------------------------------------------------------------------- report files


REPORT_FILES = {"metrics.json", "report.md", "confusion.png"}   # what `write_report` writes, and only that


def write_report(report: dict, out_dir: str | Path, title: str, info: dict | None = None) -> dict[str, Path]:
    """Write `metrics.json` (report plus `info`), `report.md` and `confusion.png` as the folder `out_dir`.

    The three must agree: the folder is written as one set (`unveil.io.output_folder`), so an interruption
    leaves the previous report whole, and a folder holding anything else (a training run's files) is
    refused rather than mixed into.
    """
    out_dir = Path(out_dir)
    with output_folder(out_dir, REPORT_FILES, "an evaluation report") as folder:
        (folder / "metrics.json").write_text(json_text({**(info or {}), **report}), encoding="utf-8")
        (folder / "report.md").write_text(report_markdown(report, title, info), encoding="utf-8")
        confusion_image(report["confusion"], report.get("classes")).save(folder / "confusion.png", format="PNG",
                                                                          optimize=True)
    return {"json": out_dir / "metrics.json", "markdown": out_dir / "report.md", "png": out_dir / "confusion.png"}


def report_markdown(report: dict, title: str, info: dict | None = None) -> str:
    """A human-readable report: headline numbers with 95 % intervals, per-class table, confusion."""
    ci = report.get("ci95", {})

    def with_ci(key: str) -> str:
        lo_hi = ci.get(key)
        return f"{100 * report[key]:.2f} %" + (f" (95 % CI {100 * lo_hi[0]:.2f}-{100 * lo_hi[1]:.2f})" if lo_hi else "")

    lines = [f"# {title}", ""]
    lines += [f"- {k}: {v}" for k, v in (info or {}).items()]
    auc = report.get("macro_roc_auc")
    lines += [f"- faces: {report['n']}", f"- accuracy: {with_ci('accuracy')}", f"- macro-F1: {with_ci('macro_f1')}",
              f"- macro ROC-AUC (one-vs-rest): {auc:.4f}" if auc is not None else "- macro ROC-AUC: undefined", "",
              "| class | precision | recall | F1 | ROC-AUC | support |", "|---|---|---|---|---|---|"]
    for name, row in report["per_class"].items():
        roc = report["roc_auc"].get(name)
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
                     f"{'-' if roc is None else f'{roc:.3f}'} | {row['support']} |")
    names = list(report["per_class"])
    lines += ["", "Confusion matrix (rows: true class, columns: predicted):", "",
              "| true \\ predicted | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for name, row in zip(names, report["confusion"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
