"""Sample grids: occluded | reconstruction | original, one column per face, two faces per class.
Written during training (every few epochs) and by `unveil eval-inpainter --out`."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from unveil.io import atomic_path

ROWS = ("occluded", "reconstruction", "original")


def sample_grid(path: str | Path, occluded: torch.Tensor, reconstruction: torch.Tensor, original: torch.Tensor,
                names: list[str] | None = None, scale: int = 3, gap: int = 2, label_width: int = 92) -> Path:
    """Write the three rows (each [K, 1, H, W] in [0, 1]) as one labelled PNG; returns the path."""
    rows = [t.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)[:, 0].cpu().numpy()
            for t in (occluded, reconstruction, original)]
    k, h, w = rows[0].shape
    top = 12 if names else 0
    canvas = Image.new("L", (label_width + k * (w * scale + gap), top + 3 * (h * scale + gap)), 255)
    draw = ImageDraw.Draw(canvas)
    for c in range(k):
        if names:
            draw.text((label_width + c * (w * scale + gap), 0), names[c][:8], fill=0)
    for r, row in enumerate(rows):
        y = top + r * (h * scale + gap)
        draw.text((4, y + h * scale // 2 - 5), ROWS[r], fill=0)
        for c in range(k):
            tile = Image.fromarray(row[c]).resize((w * scale, h * scale), Image.Resampling.NEAREST)
            canvas.paste(tile, (label_width + c * (w * scale + gap), y))
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def write_samples(path: str | Path, inpainter, faces, occlusion, per_class: int = 2) -> Path:
    """The grid of `per_class` faces of each class from `faces` (a `Faces`), occluded as `occlusion`
    draws a set, reconstructed by `inpainter`."""
    from unveil.classes import CLASSES

    pick = torch.cat([(faces.labels == k).nonzero().squeeze(1)[:per_class] for k in range(len(CLASSES))])
    full = faces.images[pick].unsqueeze(1).float() / 255
    occluded, hole = occlusion.over_set(full)
    recon = inpainter.reconstruct(occluded, hole)
    names = [CLASSES[int(k)] for k in faces.labels[pick]]
    return sample_grid(path, occluded, recon, full, names)
