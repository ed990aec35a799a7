"""Things other than a face mask held over the lower face: a hand, a tissue, a scarf, a phone.

    occluded, hole = paint_occluder(images, seed=3)                  # every style
    occluded, hole = paint_occluder(images, ("hand",), seed=3)

The hole model must mark them as it marks a mask: the lower face behind them is just as hidden. They are
drawn as `unveil.occlusion.face_mask` draws masks, in the 48x48 FER2013 frame scaled to the images'
size, batched (every style rendered for the whole batch, kept where picked), from a CPU generator seeded
with ``seed`` (the same occluders on any device), never above row 21 of 48 (the eyes stay visible).
Shapes and shades vary per face: a hand's skin tone, spread and angle of its fingers; a tissue's outline
and folds; a scarf's height, slant and knit; a phone's size, angle and screen.

Images are float [N, 1, H, W] in [0, 1]; returns (occluded, hole) with hole 1 exactly where painted.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from .errors import UnveilError

__all__ = ["OCCLUDER_STYLES", "paint_occluder"]

OCCLUDER_STYLES = ("hand", "tissue", "scarf", "phone")
_REF = 48.0
_TOP = 21.0          # face units: nothing is painted above this row (the eyes end near row 20)
_DRAWS = 16          # uniform draws per face; each style reads the columns it needs


def paint_occluder(images: Tensor, styles: Sequence[str] | str = OCCLUDER_STYLES,
                   seed: int = 0) -> tuple[Tensor, Tensor]:
    """Paint one occluder per face, its style drawn uniformly from ``styles``.

    Shape:
        images: [N, 1, H, W] float in [0, 1], H and W at least 16 -> (occluded, hole), both [N, 1, H, W].
    """
    styles = (styles,) if isinstance(styles, str) else tuple(styles)
    unknown = [s for s in styles if s not in OCCLUDER_STYLES]
    if not styles or unknown:
        raise UnveilError(f"occluder styles must be some of {OCCLUDER_STYLES}, got {list(styles)}")
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 1 or not images.is_floating_point():
        raise UnveilError(f"images must be a float tensor [N, 1, H, W], got {getattr(images, 'shape', images)}")
    n, _, height, width = images.shape
    if height < 16 or width < 16:
        raise UnveilError(f"paint_occluder needs images of at least 16x16, got {height}x{width}")
    gen = torch.Generator().manual_seed(seed)
    draws = torch.rand(n, _DRAWS + 1, generator=gen)
    noise = torch.rand(n, 1, height, width, generator=gen) * 2 - 1
    device = images.device
    d = draws.to(device).view(n, _DRAWS + 1, 1, 1)
    x = ((torch.arange(width, device=device) + 0.5) * (_REF / width)).view(1, 1, 1, width)
    y = ((torch.arange(height, device=device) + 0.5) * (_REF / height)).view(1, 1, height, 1)
    pick = (d[:, 0] * len(styles)).long().clamp(max=len(styles) - 1)
    names = tuple(dict.fromkeys(styles))
    chosen = torch.tensor([names.index(s) for s in styles], device=device)[pick.view(n)].view(n, 1, 1, 1)
    alpha = torch.zeros(n, 1, height, width, dtype=torch.bool, device=device)
    paint = torch.zeros(n, 1, height, width, device=device)
    p = [d[:, k + 1:k + 2] for k in range(_DRAWS)]   # each [N, 1, 1, 1] in [0, 1)
    for k, name in enumerate(names):
        a, v = _RENDER[name](x, y, p, noise.to(device))
        alpha = torch.where(chosen == k, a, alpha)
        paint = torch.where(chosen == k, v, paint)
    hole = alpha & (y >= _TOP)
    return torch.where(hole, paint.clamp(0, 1).to(images.dtype), images), hole.to(images.dtype)


def _between(u: Tensor, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * u


def _rotated(x: Tensor, y: Tensor, cx: Tensor, cy: Tensor, angle: Tensor) -> tuple[Tensor, Tensor]:
    """Coordinates in a frame centred on (cx, cy) and turned by `angle` (radians)."""
    dx, dy = x - cx, y - cy
    cos, sin = torch.cos(angle), torch.sin(angle)
    return cos * dx + sin * dy, -sin * dx + cos * dy


def _capsule(x: Tensor, y: Tensor, ax: Tensor, ay: Tensor, bx: Tensor, by: Tensor, radius: Tensor) -> Tensor:
    """Pixels within `radius` of the segment a-b: a finger."""
    ux, uy = bx - ax, by - ay
    t = (((x - ax) * ux + (y - ay) * uy) / (ux * ux + uy * uy + 1e-6)).clamp(0, 1)
    return (x - ax - t * ux) ** 2 + (y - ay - t * uy) ** 2 <= radius ** 2


def _hand(x, y, p, noise):
    """A palm over the mouth with four fingers (and a thumb) reaching up across a cheek, in a skin tone."""
    cx, cy = _between(p[0], 16, 32), _between(p[1], 36, 42)
    angle = _between(p[2], -0.5, 0.5)
    u, v = _rotated(x, y, cx, cy, angle)
    rx, ry = _between(p[3], 8, 11), _between(p[4], 6.5, 9)
    palm = (u / rx) ** 2 + (v / ry) ** 2 <= 1
    lean = _between(p[5], -0.9, 0.9)                                # the fingers' direction from upright
    length, radius = _between(p[6], 9, 13), _between(p[7], 1.3, 1.7)
    fx, fy = torch.sin(lean), -torch.cos(lean)                      # unit vector along the fingers (upwards)
    fingers = torch.zeros_like(palm)
    gaps = torch.zeros_like(palm)
    for k, scale in enumerate((1.0, 1.1, 1.05, 0.85)):
        offset = (k - 1.5) * 3.2
        bx, by = cx - fy * offset + fx * ry * 0.5, cy + fx * offset + fy * ry * 0.5
        tip_x, tip_y = bx + fx * length * scale, by + fy * length * scale
        finger = _capsule(x, y, bx, by, tip_x, tip_y, radius)
        fingers |= finger
        gaps |= finger & ~_capsule(x, y, bx, by, tip_x, tip_y, radius * 0.6)   # each finger's shaded edge
    side = torch.where(p[8] < 0.5, -1.0, 1.0)
    thumb = _capsule(x, y, cx + side * rx * 0.8, cy + ry * 0.2, cx + side * (rx + 5), cy - 4, radius * 1.1)
    alpha = palm | fingers | thumb
    tone = _between(p[9], 0.22, 0.85)
    light = 0.12 * (_between(p[10], -1, 1) * u / 12 - v / 14)        # light from one side and above
    shade = tone + light - 0.08 * (gaps & ~palm).float() + 0.03 * noise
    return alpha, shade


def _tissue(x, y, p, noise):
    """A crumpled white or pale tissue pressed over nose and mouth."""
    cx, cy = _between(p[0], 20, 28), _between(p[1], 34, 40)
    radius = _between(p[2], 9, 13)
    theta = torch.atan2(y - cy, x - cx)
    wobble = 1 + 0.15 * torch.sin(3 * theta + 6.3 * p[3]) + 0.1 * torch.sin(5 * theta + 6.3 * p[4])
    alpha = (x - cx) ** 2 + (y - cy) ** 2 <= (radius * wobble) ** 2
    u, _ = _rotated(x, y, cx, cy, _between(p[5], -1.2, 1.2))
    folds = 0.04 * torch.sin(u * _between(p[6], 0.4, 0.9))
    shade = _between(p[7], 0.78, 0.98) + folds + 0.04 * noise
    return alpha, shade


def _scarf(x, y, p, noise):
    """A scarf or a pulled-up collar: a wide band from the nose down, slanted, plain or knitted."""
    top = _between(p[0], 27, 33) + _between(p[1], -0.15, 0.15) * (x - 24) + 0.8 * torch.sin(x * 0.7 + 6.3 * p[2])
    alpha = y >= top
    tone = _between(p[3], 0.08, 0.9)
    period = _between(p[4], 2, 4)
    knit = torch.where(p[5] < 0.5, 0.08 * torch.sin(2 * math.pi * y / period), torch.zeros_like(y))
    shade = tone + knit - 0.1 * ((y - top) < 1.5).float() + 0.04 * noise   # a shadowed upper fold
    return alpha, shade


def _phone(x, y, p, noise):
    """A phone held up at the mouth: a dark rounded rectangle with a lighter screen."""
    cx, cy = _between(p[0], 15, 33), _between(p[1], 35, 42)
    u, v = _rotated(x, y, cx, cy, _between(p[2], -0.6, 0.6))
    half_w, half_h, corner = _between(p[3], 5.5, 7.5), _between(p[4], 10, 13), 2.0
    qx, qy = (u.abs() - half_w + corner).clamp_min(0), (v.abs() - half_h + corner).clamp_min(0)
    inside = (u.abs() <= half_w) & (v.abs() <= half_h) & (qx ** 2 + qy ** 2 <= corner ** 2)
    screen = (u.abs() <= half_w - 1) & (v.abs() <= half_h - 2)
    shade = torch.where(screen, _between(p[5], 0.15, 0.65), _between(p[6], 0.03, 0.25)) + 0.02 * noise
    return inside, shade


_RENDER = {"hand": _hand, "tissue": _tissue, "scarf": _scarf, "phone": _phone}
