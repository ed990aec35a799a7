"""Evaluate an inpainter: reconstruction quality on the hole and the whole face, and what a *judge*
classifier reads from the stitched faces.

Two quality paths with the same definitions:

* `reconstruction_quality` — L1, PSNR and SSIM computed here (SSIM from `inpaint.losses.ssim_map`),
  with no kornia or LPIPS: what training's validation and the sidecar numbers use, so they are the
  same on the training machine (which lacks kornia) and on the CPU here;
* `evaluate_inpainter(..., full_metrics=True)` — `unveil.metrics.ImageQuality` (kornia SSIM,
  LPIPS where available): what `unveil eval-inpainter` reports.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn as nn

from unveil.metrics.image import l1, psnr
from unveil.occlusion import Occlusion

from .losses import ssim_region

Predictor = Callable[[torch.Tensor], torch.Tensor]  # images [N, 1, 48, 48] -> probabilities [N, C]


class QualitySums:
    """Running sums of per-image hole/whole L1, PSNR and SSIM (the kornia-free path)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> None:
        pred, target, hole = pred.float(), target.float(), hole.float()
        values = {"l1_hole": l1(pred, target, hole), "l1": l1(pred, target),
                  "psnr_hole": psnr(pred, target, hole), "psnr": psnr(pred, target),
                  "ssim_hole": ssim_region(pred, target, hole), "ssim": ssim_region(pred, target)}
        for key, v in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(v.double().sum())
        self.count += pred.shape[0]

    def compute(self) -> dict[str, float]:
        return {key: total / max(self.count, 1) for key, total in self.sums.items()}


@torch.no_grad()
def evaluate_inpainter(inpainter: nn.Module, images: torch.Tensor, labels: torch.Tensor | None,
                       occlusion: Occlusion, judge: Predictor | None = None, batch_size: int = 1024,
                       full_metrics: bool = False, device: str | torch.device = "cpu",
                       autocast=None) -> dict:
    """Quality of the stitched faces and, with a judge, its accuracy and macro-F1 on them.

    Args:
        inpainter: occluded, hole -> stitched faces (an `Inpainter`).
        images: the true faces, float [N, 1, H, W] in [0, 1], on `device`.
        labels: int [N] (needed with a judge).
        judge: images -> class probabilities; never the generator's guide.
        full_metrics: use `ImageQuality` (kornia SSIM, LPIPS) instead of the kornia-free path.
        autocast: a context-manager factory (e.g. bf16 on CUDA), or None for full precision.

    Returns:
        {"n", "psnr_hole", "ssim_hole", "l1_hole", "psnr", "ssim", "l1", ["lpips"],
         ["accuracy", "macro_f1", "judge_report"]}
    """
    if full_metrics:
        from unveil.metrics.image import ImageQuality

        quality = ImageQuality(use_lpips=True, device=device)
    else:
        quality = QualitySums()
    probs = []
    ctx = autocast or contextlib.nullcontext
    was_training = inpainter.training
    inpainter.eval()
    base = occlusion.seed
    for b, start in enumerate(range(0, images.shape[0], batch_size)):
        full = images[start:start + batch_size]
        occluded, hole = occlusion(full, seed=base + b)
        with ctx():
            stitched = inpainter(occluded, hole)
        stitched = stitched.float().clamp(0, 1)
        quality.update(stitched, full, hole)
        if judge is not None:
            probs.append(judge(stitched).float().cpu())
    inpainter.train(was_training)
    out = {"n": int(images.shape[0]), **quality.compute()}
    if judge is not None:
        from unveil.metrics.classification import classification_report

        report = classification_report(labels.cpu(), torch.cat(probs), n_boot=0)
        out.update(accuracy=report["accuracy"], macro_f1=report["macro_f1"], judge_report=report)
    return out
