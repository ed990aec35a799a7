"""Pictures of faces: labelled grids as PNG, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from unveil.io import atomic_path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [N, 1, H, W] in [0, 1] (or uint8 [N, H, W]) -> uint8 [N, H, W] numpy."""
    if images.dtype != torch.uint8:
        images = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return images.reshape(images.shape[0], *images.shape[-2:]).cpu().numpy()


def grid_image(rows: list[np.ndarray], row_labels: list[str] | None = None, scale: int = 3,
               gap: int = 2, label_width: int = 70) -> Image.Image:
    """Tile rows of uint8 images [K, H, W] into one picture, with an optional text label per row."""
    h, w = rows[0].shape[1:]
    cols = max(len(r) for r in rows)
    left = label_width if row_labels else 0
    canvas = Image.new("L", (left + cols * (w * scale + gap), len(rows) * (h * scale + gap)), 255)
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        y = r * (h * scale + gap)
        if row_labels:
            draw.text((4, y + h * scale // 2 - 5), row_labels[r], fill=0)
        for c, img in enumerate(row):
            tile = Image.fromarray(img).resize((w * scale, h * scale), Image.Resampling.NEAREST)
            canvas.paste(tile, (left + c * (w * scale + gap), y))
    return canvas


def save_png(image: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
