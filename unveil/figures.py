"""Every picture Unveil draws: grids of faces with labels and captions, the confusion matrix and the
accuracy chart, written atomically as PNG.

    save_png(tile_grid([[Tile(face), Tile(recon, "happy 0.91")]], row_labels=["happy"]), "grid.png")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .classes import CLASSES
from .errors import UnveilError
from .io import atomic_path

RIGHT, WRONG, INK = (22, 122, 44), (179, 38, 30), (0, 0, 0)


@dataclass
class Tile:
    """One picture in a grid: uint8 [H, W] (gray) or [H, W, 3] (RGB), an optional caption under it."""

    image: np.ndarray
    caption: str = ""
    ink: tuple[int, int, int] = INK


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [N, 1, H, W] in [0, 1] (or uint8 [N, H, W]) -> uint8 [N, H, W] numpy."""
    if images.dtype != torch.uint8:
        images = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return images.reshape(images.shape[0], *images.shape[-2:]).cpu().numpy()


def tile_grid(rows: list[list[Tile]], row_labels: list[str] | None = None, column_labels: list[str] | None = None,
              scale: int = 3, gap: int = 2, label_width: int = 70) -> Image.Image:
    """Rows of tiles, each enlarged `scale` times (nearest neighbour: the pixels stay visible), with a
    label left of each row, one above each column and each tile's caption under it."""
    h, w = rows[0][0].image.shape[:2]
    captioned = any(t.caption for row in rows for t in row)
    cell_w, cell_h = w * scale + gap, h * scale + gap + (12 if captioned else 0)
    left, top = (label_width if row_labels else 0), (14 if column_labels else 0)
    columns = max(len(row) for row in rows)
    canvas = Image.new("RGB", (left + columns * cell_w, top + len(rows) * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(column_labels or []):
        draw.text((left + c * cell_w + 1, 1), label[: max(3, w * scale // 6)], fill=INK)
    for r, row in enumerate(rows):
        y = top + r * cell_h
        if row_labels:
            draw.text((4, y + h * scale // 2 - 6), row_labels[r], fill=INK)
        for c, tile in enumerate(row):
            x = left + c * cell_w
            canvas.paste(Image.fromarray(tile.image).resize((w * scale, h * scale), Image.Resampling.NEAREST), (x, y))
            if tile.caption:
                draw.text((x, y + h * scale + 1), tile.caption, fill=tile.ink)
    return canvas


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write atomically; a path without the .png suffix gets it."""
    path = Path(path)
    if os.path.isdir(path):  # False, not an OSError, for a name the system refuses: atomic_path names it
        raise UnveilError(f"{path} is a folder; name the PNG file to write, e.g. {path / 'picture.png'}")
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True)
    return path


def confusion_image(confusion: list[list[int]], names: list[str] | None = None, cell: int = 56) -> Image.Image:
    """Row-normalised confusion matrix as a picture: darker cells hold more of the true class.
    `names` label the rows and columns (default: the canonical classes)."""
    conf = np.asarray(confusion, dtype=np.float64)
    rates = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    names = list(names or CLASSES[: len(conf)])
    left, top = 70, 40
    size = (left + cell * len(conf) + 10, top + cell * len(conf) + 30)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    for k, name in enumerate(names):
        draw.text((left + k * cell + 4, top - 14), name[:8], fill=INK)
        draw.text((4, top + k * cell + cell // 2 - 5), name, fill=INK)
    for i in range(len(conf)):
        for j in range(len(conf)):
            shade = int(round(255 * (1 - rates[i, j])))
            box = (left + j * cell, top + i * cell, left + (j + 1) * cell - 1, top + (i + 1) * cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline="gray")
            ink = "white" if rates[i, j] > 0.5 else "black"
            draw.text((box[0] + 4, box[1] + cell // 2 - 12), f"{100 * rates[i, j]:.0f}%", fill=ink)
            draw.text((box[0] + 4, box[1] + cell // 2 + 2), str(int(conf[i, j])), fill=ink)
    draw.text((left, size[1] - 20), "rows: true class, columns: predicted (row %, count)", fill=INK)
    return img


def accuracy_chart(names: list[str], values: list[float], intervals: list[list[float]] | None,
                   title: str, width: int = 560, bar_height: int = 26) -> Image.Image:
    """Horizontal bars in [0, 1] with 95 % interval whiskers, one per condition."""
    left, right, top = 130, 50, 30
    height = top + len(names) * (bar_height + 8) + 24
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 8), title, fill=INK)
    span = width - left - right
    x = lambda v: left + int(round(v * span))  # noqa: E731
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line([(x(tick), top - 4), (x(tick), height - 20)], fill=(220, 220, 220))
        draw.text((x(tick) - 8, height - 16), f"{tick:.2f}", fill="gray")
    for i, (name, value) in enumerate(zip(names, values)):
        y = top + i * (bar_height + 8)
        draw.text((8, y + bar_height // 2 - 6), name[:20], fill=INK)
        draw.rectangle([x(0), y, x(value), y + bar_height], fill=(70, 120, 190))
        end = value
        if intervals:
            lo, hi = intervals[i]
            end, mid = max(value, hi), y + bar_height // 2
            draw.line([(x(lo), mid), (x(hi), mid)], fill=INK, width=2)
            draw.line([(x(lo), mid - 5), (x(lo), mid + 5)], fill=INK, width=2)
            draw.line([(x(hi), mid - 5), (x(hi), mid + 5)], fill=INK, width=2)
        draw.text((x(end) + 6, y + bar_height // 2 - 6), f"{value:.3f}", fill=INK)
    return canvas


def annotated_photo(rgb: np.ndarray, boxes: list, landmarks: list, labels: list[str], height: int = 360) -> Image.Image:
    """A photo scaled to `height` pixels with each face's box, its five landmarks and a label."""
    image = Image.fromarray(rgb)
    scale = height / image.height
    image = image.resize((max(1, round(image.width * scale)), height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for box, points, label in zip(boxes, landmarks, labels):
        x0, y0, x1, y1 = (v * scale for v in box)
        draw.rectangle((x0, y0, x1, y1), outline=(255, 210, 0), width=2)
        for x, y in points:
            draw.ellipse((x * scale - 2, y * scale - 2, x * scale + 2, y * scale + 2), fill=(0, 200, 255))
        draw.rectangle((x0, max(0, y0 - 13), x0 + 6 * len(label) + 4, max(13, y0)), fill=(255, 210, 0))
        draw.text((x0 + 2, max(0, y0 - 12)), label, fill=INK)
    return image


def beside(left: Image.Image, right: Image.Image, gap: int = 8) -> Image.Image:
    """Two pictures side by side on white, tops aligned."""
    canvas = Image.new("RGB", (left.width + gap + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return canvas


SERIES = [(230, 60, 50), (120, 80, 40), (130, 60, 180), (240, 170, 0), (60, 110, 210), (0, 160, 160), (140, 140, 140)]


def timeline_chart(panels: list[tuple[str, list[float], np.ndarray]], names: list[str], width: int = 720,
                   panel_height: int = 150) -> Image.Image:
    """One panel per series set, stacked: (title, times in seconds, values [T, K] in [0, 1]), a line per
    column of values, coloured as the legend under the panels lists `names`."""
    left, right, top, gap = 40, 12, 18, 26
    height = len(panels) * (panel_height + gap) + 22
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    span = max([t for _, times, _ in panels for t in times] + [1e-6])
    for k, (title, times, values) in enumerate(panels):
        y0 = k * (panel_height + gap) + top
        x = lambda t: left + (width - left - right) * t / span  # noqa: E731
        y = lambda v, y0=y0: y0 + panel_height * (1 - v)  # noqa: E731
        draw.text((left, y0 - 14), title, fill=INK)
        draw.rectangle((left, y0, width - right, y0 + panel_height), outline=(200, 200, 200))
        for tick in (0.0, 0.5, 1.0):
            draw.text((6, y(tick) - 6), f"{tick:.1f}", fill="gray")
        draw.text((width - right - 40, y0 + panel_height + 2), f"{span:.1f} s", fill="gray")
        values = np.asarray(values, dtype=np.float64)
        for column in range(values.shape[1]):
            points = [(x(t), y(v)) for t, v in zip(times, values[:, column])]
            if len(points) > 1:
                draw.line(points, fill=SERIES[column % len(SERIES)], width=2)
            elif points:
                draw.ellipse((points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2),
                             fill=SERIES[column % len(SERIES)])
    for column, name in enumerate(names):
        draw.text((left + column * 90, height - 16), name, fill=SERIES[column % len(SERIES)])
    return canvas
