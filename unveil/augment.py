"""Batched augmentation on the device (no per-image loops, no data loader): flip, affine, erasing."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Random horizontal flip, rotation/scale/shift, and optional random erasing, per image.

    Images are float [N, 1, H, W]; the same call can transform a second aligned batch (a target face)
    with the identical geometry, as inpainting needs.
    """

    flip: bool = True
    degrees: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.1         # fraction of the image size
    erase: float = 0.0         # probability of erasing one random rectangle

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, device = images.shape[0], images.device
        rand = lambda *shape: torch.rand(*shape, device=device, generator=generator)  # noqa: E731
        angle = (rand(n) * 2 - 1) * math.radians(self.degrees)
        scale = self.scale[0] + rand(n) * (self.scale[1] - self.scale[0])
        sign = torch.where(rand(n) < 0.5, -1.0, 1.0) if self.flip else torch.ones(n, device=device)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([
            torch.stack([cos * sign, -sin, (rand(n) * 2 - 1) * self.shift * 2], 1),
            torch.stack([sin * sign, cos, (rand(n) * 2 - 1) * self.shift * 2], 1),
        ], 1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        out = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border",
                            align_corners=False)
        return _erase(out, self.erase, rand) if self.erase > 0 else out


def _erase(images: torch.Tensor, p: float, rand) -> torch.Tensor:
    """Random erasing (Zhong et al. 2020): one rectangle of 2-20 % of the area filled with noise."""
    n, _, h, w = images.shape
    area = 0.02 + rand(n) * 0.18
    aspect = torch.exp((rand(n) * 2 - 1) * math.log(3.0))
    eh = (torch.sqrt(area * aspect) * h).clamp(1, h)
    ew = (torch.sqrt(area / aspect) * w).clamp(1, w)
    top, left = rand(n) * (h - eh), rand(n) * (w - ew)
    rows = torch.arange(h, device=images.device).view(1, h, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w)
    box = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
           & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1)))
    box = (box & (rand(n) < p).view(n, 1, 1)).unsqueeze(1)
    return torch.where(box, rand(*images.shape).to(images.dtype), images)
