"""Stitching: put a reconstruction under the real visible pixels, which stay exactly as they were.

    face = stitch(generated, occluded, hole)              # hard seam
    face = stitch(generated, occluded, hole, feather=2)   # soft seam, still exact where hole == 0

Definition. Let `visible` be any image whose pixels are correct where `hole == 0` (the occluded image
or the original; hidden pixels of `visible` are never read). Then

* `feather == 0`: `out = generated` where `hole == 1`, `out = visible` where `hole == 0`;
* `feather == k > 0`: as above, except that hole pixels at chessboard distance `d <= k` from the
  nearest visible pixel become `w * generated + (1 - w) * edge` with `w = d / (k + 1)`, where `edge`
  is the visible border smeared into the hole (a masked 3x3 average grown one pixel per step). This
  hides a brightness step at the seam. Pixels with `hole == 0` are still copied bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def stitch(generated: torch.Tensor, visible: torch.Tensor, hole: torch.Tensor, feather: int = 0) -> torch.Tensor:
    """Composite `generated` into the hole and keep every visible pixel exact.

    Args:
        generated: the generator's output in [0, 1].
        visible: the occluded image or the original face (only pixels with hole == 0 are read).
        hole: 0/1 mask, 1 = hidden.
        feather: width in pixels of the soft seam inside the hole (0: hard seam).

    Shape:
        all :math:`(N, 1, H, W)`; returns :math:`(N, 1, H, W)`.

    Example:
        >>> x = torch.rand(2, 1, 48, 48); hole = torch.zeros_like(x); hole[..., 24:, :] = 1
        >>> out = stitch(torch.zeros_like(x), x, hole)
        >>> bool(torch.equal(out[..., :24, :], x[..., :24, :]))
        True
    """
    if generated.shape != visible.shape or hole.shape != visible.shape:
        raise ValueError(f"stitch needs equal shapes, got generated {tuple(generated.shape)}, "
                         f"visible {tuple(visible.shape)}, hole {tuple(hole.shape)}")
    inside = hole > 0.5
    generated = generated.to(visible.dtype)
    if feather > 0:
        generated = _feather(generated, visible, inside, int(feather))
    return torch.where(inside, generated, visible)


def _feather(generated: torch.Tensor, visible: torch.Tensor, inside: torch.Tensor, k: int) -> torch.Tensor:
    """Blend the first k rings of the hole towards the smeared visible border (see module docstring)."""
    known = (~inside).to(visible.dtype)
    edge = visible * known
    weight = torch.ones_like(generated)
    ones = torch.ones(1, 1, 3, 3, dtype=visible.dtype, device=visible.device)
    for ring in range(1, k + 1):
        total = F.conv2d(edge * known, ones, padding=1)
        count = F.conv2d(known, ones, padding=1)
        new = (count > 0) & (known == 0)              # the next ring into the hole
        edge = torch.where(new, total / count.clamp_min(1), edge)
        weight = torch.where(new, torch.full_like(weight, ring / (k + 1)), weight)
        known = torch.where(new, torch.ones_like(known), known)
    return weight * generated + (1 - weight) * edge
