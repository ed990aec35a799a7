"""Grad-CAM (Selvaraju et al. 2017): where in the face a classifier looks for a class.

    heat = grad_cam(model, images)                 # [N, 1, 48, 48] in [0, 1], for the predicted class
    rgb = overlay(images, heat)                    # uint8 [N, 48, 48, 3] for a picture
    picture, right = saliency_grid(model, images, labels)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from unveil.classes import CLASSES
from unveil.figures import RIGHT, WRONG, Tile, tile_grid, to_uint8
from unveil.runtime import eval_mode


def grad_cam(model: nn.Module, images: torch.Tensor, target: torch.Tensor | int | None = None) -> torch.Tensor:
    """Grad-CAM heatmaps from the model's last convolutional map (`forward_features`).

    Each feature channel is weighted by the spatial mean of the class score's gradient; the ReLU of the
    weighted sum is upsampled to the image size and scaled to a maximum of 1 per image (all zeros when
    nothing speaks for the class). Runs in eval mode (restored afterwards), in float32.

    Args:
        target: the class to explain, one per image or one for all; None explains the predicted class.

    Shape:
        images: [N, 1, H, W] in [0, 1] -> heatmaps [N, 1, H, W] in [0, 1], on the images' device.

    Example:
        >>> heat = grad_cam(create_classifier("tiny_cnn"), torch.rand(2, 1, 48, 48))
        >>> heat.shape, bool(heat.min() >= 0), bool(heat.max() <= 1)
        (torch.Size([2, 1, 48, 48]), True, True)
    """
    device = next(model.parameters()).device
    with eval_mode(model), torch.enable_grad():
        x = images.to(device).float()
        features = model.forward_features(x).detach().requires_grad_(True)
        logits = model.forward_head(features).float()
        if target is None:
            target = logits.argmax(1)
        target = torch.as_tensor(target, device=device).long().expand(len(x))
        score = logits.gather(1, target.view(-1, 1)).sum()
        (grads,) = torch.autograd.grad(score, features)
    weights = grads.mean((2, 3), keepdim=True)
    cam = F.relu((weights * features.detach()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)
    peak = cam.flatten(1).amax(1).view(-1, 1, 1, 1)
    cam = torch.where(peak > 0, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))
    return cam.clamp(0, 1).to(images.device)


def colormap(values: np.ndarray) -> np.ndarray:
    """A jet-like colour map: [...] in [0, 1] -> uint8 [..., 3] (blue, cyan, yellow, red)."""
    v = np.clip(values, 0, 1)[..., None]
    rgb = np.clip(np.concatenate([1.5 - np.abs(4 * v - 3), 1.5 - np.abs(4 * v - 2), 1.5 - np.abs(4 * v - 1)], -1), 0, 1)
    return (rgb * 255).round().astype(np.uint8)


def overlay(images: torch.Tensor, heatmaps: torch.Tensor, alpha: float = 0.45) -> np.ndarray:
    """Blend coloured heatmaps over grayscale faces.

    Shape:
        images, heatmaps: [N, 1, H, W] in [0, 1] -> uint8 numpy [N, H, W, 3].
    """
    gray = images.detach().float().clamp(0, 1).cpu().numpy()[:, 0, ..., None] * 255
    heat = colormap(heatmaps.detach().float().cpu().numpy()[:, 0]).astype(np.float64)
    return ((1 - alpha) * gray + alpha * heat).round().clip(0, 255).astype(np.uint8)


def saliency_grid(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, precision: str = "auto",
                  per_row: int = 8) -> tuple[Image.Image, int]:
    """Each face beside its Grad-CAM for the predicted class, captioned `true>predicted` (green when
    right), `per_row` faces a row; returns the picture and how many faces were predicted right."""
    from .evaluate import predict_proba

    preds = predict_proba(model, images, precision=precision).argmax(1)
    heat = grad_cam(model, images, preds)
    faces, maps = to_uint8(images), overlay(images, heat)
    tiles = []
    for i, (truth, guess) in enumerate(zip(labels.tolist(), preds.tolist())):
        caption = f"{CLASSES[truth][:7]}>{CLASSES[guess][:7]}"
        tiles += [Tile(faces[i], caption, RIGHT if truth == guess else WRONG), Tile(maps[i])]
    rows = [tiles[i:i + 2 * per_row] for i in range(0, len(tiles), 2 * per_row)]
    return tile_grid(rows), int((preds.cpu() == labels.cpu()).sum())
