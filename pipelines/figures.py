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


def accuracy_chart(names: list[str], values: list[float], intervals: list[list[float]] | None,
                   title: str, width: int = 560, bar_height: int = 26) -> Image.Image:
    """Horizontal bars in [0, 1] with 95 % interval whiskers, one per condition."""
    left, right, top = 130, 50, 30
    height = top + len(names) * (bar_height + 8) + 24
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 8), title, fill="black")
    span = width - left - right
    x = lambda v: left + int(round(v * span))  # noqa: E731
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line([(x(tick), top - 4), (x(tick), height - 20)], fill=(220, 220, 220))
        draw.text((x(tick) - 8, height - 16), f"{tick:.2f}", fill="gray")
    for i, (name, value) in enumerate(zip(names, values)):
        y = top + i * (bar_height + 8)
        draw.text((8, y + bar_height // 2 - 6), name[:20], fill="black")
        draw.rectangle([x(0), y, x(value), y + bar_height], fill=(70, 120, 190))
        end = value
        if intervals:
            lo, hi = intervals[i]
            end = max(value, hi)
            mid = y + bar_height // 2
            draw.line([(x(lo), mid), (x(hi), mid)], fill="black", width=2)
            draw.line([(x(lo), mid - 5), (x(lo), mid + 5)], fill="black", width=2)
            draw.line([(x(hi), mid - 5), (x(hi), mid + 5)], fill="black", width=2)
        draw.text((x(end) + 6, y + bar_height // 2 - 6), f"{value:.3f}", fill="black")
    return canvas
