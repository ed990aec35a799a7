"""Evaluate an inpainter on a set of faces: reconstruction quality on the hole and the whole face, and
what a classifier reads from the stitched faces (training's *selector*, or a report's *judge*).

    metrics = evaluate_inpainter(inpainter, images, labels, occlusion, judge=lambda x: predict_proba(judge, x))
"""

from __future__ import annotations

from typing import Callable

import torch

from unveil.metrics import classification_report, image_quality
from unveil.occlusion import Occlusion

from .inpainter import Inpainter

Predictor = Callable[[torch.Tensor], torch.Tensor]  # images [N, 1, 48, 48] -> probabilities [N, C]


@torch.no_grad()
def evaluate_inpainter(inpainter: Inpainter, images: torch.Tensor, labels: torch.Tensor | None,
                       occlusion: Occlusion, judge: Predictor | None = None, precision: str = "auto",
                       use_lpips: bool = False) -> dict:
    """Image quality of the stitched faces and, with a classifier, its accuracy and macro-F1 on them.

    The masks are `occlusion.over_set(images)`: the same for every inpainter scored on these faces.

    Args:
        images: the true faces, float [N, 1, H, W] in [0, 1], on the inpainter's device.
        labels: int [N] (needed with a judge).
        judge: images -> class probabilities; never the generator's guide.
        precision: inference precision (`unveil.runtime.autocast`).

    Returns:
        {"n", "psnr_hole", "ssim_hole", "l1_hole", "psnr_image", "ssim_image", "l1_image", "lpips",
         ["accuracy", "macro_f1", "judge_report"]}
    """
    occluded, hole = occlusion.over_set(images)
    stitched = inpainter.reconstruct(occluded, hole, precision=precision)
    out = {"n": int(images.shape[0]), **image_quality(stitched, images, hole, use_lpips)}
    if judge is not None:
        report = classification_report(labels, judge(stitched), n_boot=0)
        out.update(accuracy=report["accuracy"], macro_f1=report["macro_f1"], judge_report=report)
    return out
