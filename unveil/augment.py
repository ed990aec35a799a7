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
    photo: float = 0.0         # probability of a face made to look cut out of a photo (`PhotoLike`)

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
        out = _erase(out, self.erase, rand) if self.erase > 0 else out
        return _photo_like(out, self.photo, generator) if self.photo > 0 else out


def _photo_like(images: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """A share `p` of the faces resampled, blurred, relit and noised as photos are (`PhotoLike`), then
    stretched to span 0..1 again, as every face is before a model reads it (`minmax_normalize`)."""
    n = images.shape[0]
    pick = torch.rand(n, device=images.device, generator=generator) < p
    if not pick.any():
        return images
    degraded = PhotoLike()(images[pick], generator)
    lo = degraded.amin((1, 2, 3), keepdim=True)
    span = degraded.amax((1, 2, 3), keepdim=True) - lo
    out = images.clone()
    out[pick] = torch.where(span > 0, (degraded - lo) / span.clamp_min(1e-6), degraded)
    return out


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


@dataclass(frozen=True)
class PhotoLike:
    """What sets a face cut out of a photo apart from a FER2013 crop, drawn per image: resampled from a
    smaller or a larger face (shrunk, then enlarged back), defocus blur, lighting (gamma, contrast) and
    sensor noise; with ``motion`` > 0, that share of the faces is also smeared along a line (a moving head
    or camera). Images are float [N, C, H, W] in [0, 1]; every channel of an image gets the same draw.
    """

    resample: float = 2.5      # largest shrink factor
    blur: float = 1.0          # largest Gaussian sigma, in pixels
    gamma: float = 0.5         # gamma drawn log-uniformly in [1 / (1 + gamma), 1 + gamma]
    contrast: float = 0.3      # contrast scaled by a factor in [1 - contrast, 1]
    noise: float = 0.03        # largest noise standard deviation
    motion: float = 0.0        # share of faces given motion blur, 2 to `motion_length` pixels long
    motion_length: float = 7.0

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, device = images.shape[0], images.device
        rand = lambda *shape: torch.rand(*shape, device=device, generator=generator)  # noqa: E731
        x = _resample(images, 1 + rand(n) * (self.resample - 1))
        x = _blur(x, rand(n) * self.blur)
        if self.motion > 0:
            moving = rand(n) < self.motion
            length = torch.where(moving, 2 + rand(n) * (self.motion_length - 2), torch.zeros(n, device=device))
            x = _motion_blur(x, length, rand(n) * math.pi)
        gamma = torch.exp((rand(n) * 2 - 1) * math.log1p(self.gamma)).view(n, 1, 1, 1)
        x = x.clamp(0, 1) ** gamma
        mean = x.mean((1, 2, 3), keepdim=True)
        x = mean + (x - mean) * (1 - rand(n) * self.contrast).view(n, 1, 1, 1)
        x = x + torch.randn(x.shape, device=device, generator=generator) * (rand(n) * self.noise).view(n, 1, 1, 1)
        return x.clamp(0, 1)


def _resample(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Each image shrunk by its factor (area averaging) and enlarged back (bilinear), in a few size groups."""
    out, (h, w) = images.clone(), images.shape[-2:]
    levels = torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0, 4.0], device=images.device)
    group = (factor.view(-1, 1) - levels).abs().argmin(1)
    for k in group.unique().tolist():
        if levels[k] == 1:
            continue
        pick = group == k
        size = (max(4, round(h / float(levels[k]))), max(4, round(w / float(levels[k]))))
        small = F.interpolate(images[pick], size=size, mode="area")
        out[pick] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def _blur(images: torch.Tensor, sigma: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """A separable Gaussian blur with one sigma per image (0: unchanged), as one grouped convolution."""
    n, c, h, w = images.shape
    t = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-t**2 / (2 * sigma.clamp_min(1e-3).view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [n * c, taps]
    x = F.pad(images.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel.view(n * c, 1, 1, -1), groups=n * c)
    x = F.conv2d(x, kernel.view(n * c, 1, -1, 1), groups=n * c)
    return x.view(n, c, h, w)


def _motion_blur(images: torch.Tensor, length: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Each image smeared along a line of `length` pixels (0: unchanged) at `angle` (radians), as one
    grouped convolution with a per-image kernel."""
    n, c, h, w = images.shape
    radius = max(1, math.ceil(float(length.max()) / 2)) if n else 1
    t = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    ys, xs = torch.meshgrid(t, t, indexing="ij")
    cos, sin = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    along, across = xs * cos + ys * sin, -xs * sin + ys * cos
    kernel = ((across.abs() <= 0.5) & (along.abs() <= length.view(-1, 1, 1) / 2)).to(images.dtype)
    kernel[:, radius, radius] = 1.0   # the centre pixel always: length 0 keeps the image
    kernel = (kernel / kernel.sum((1, 2), keepdim=True)).repeat_interleave(c, 0)
    x = F.pad(images.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    return F.conv2d(x, kernel.unsqueeze(1), groups=n * c).view(n, c, h, w)
