"""What both face detectors share: the RGB input check, torchvision's box operations, and the final
suppression of boxes nested inside a better one."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from unveil.errors import UnveilError

__all__ = ["as_rgb", "box_ops", "nms_min"]


def box_ops():
    """torchvision.ops (NMS, RoIAlign), imported on the first detection: importing torchvision costs
    about 1.3 s, which every other `unveil` command would otherwise pay at start-up."""
    from torchvision import ops

    return ops


def nms_min(boxes: Tensor, scores: Tensor, threshold: float) -> Tensor:
    """Greedy NMS on intersection over the *smaller* area (each detector's last step).

    IoU lets a box nested inside a larger one survive (a face part scored as a face, or a head box
    around a better face box); overlap over the smaller area removes it. Only a handful of boxes are
    left by then, so the loop over them is short.

    Shape:
        - boxes: :math:`(K, 4)`, scores: :math:`(K,)`
        - output: indices kept, highest score first
    """
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    area = (boxes[:, 2:] - boxes[:, :2]).clamp_min(0).prod(1)
    low = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    high = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (high - low).clamp_min(0).prod(2)
    overlap = inter / torch.minimum(area[:, None], area[None, :]).clamp_min(1e-6)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlap[i] > threshold
    return order[keep]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Check the photo's type and shape; grayscale becomes three equal channels."""
    if not isinstance(image, np.ndarray):
        raise UnveilError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise UnveilError(f"image must be uint8 (0..255), got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise UnveilError(f"image must be RGB [H, W, 3] or grayscale [H, W], got shape {image.shape}")
    image = np.ascontiguousarray(image)
    return image if image.flags.writeable else image.copy()  # torch.from_numpy wants a writable array
