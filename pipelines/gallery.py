"""Galleries: the same sampled test faces under every condition, with the judge's reading of each.

Rows are faces (stratified by class, fixed by seed, right and wrong cases both); columns are occluded |
each reconstruction | original, each with the top prediction and its confidence, and the judge's
Grad-CAM saliency for that prediction. Written as an offline HTML page with PNG files beside it, and
logged to W&B as a table with the same columns.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unveil.classes import CLASSES
from unveil.figures import RIGHT, WRONG, Tile, save_png, tile_grid
from unveil.io import write_text

SCALE = 4  # 48 px faces shown at 192 px


@dataclass
class GalleryRow:
    """One face: its id and true class, and per condition the face, saliency and the judge's reading
    (class names of the report's class view: canonical, or a map's groups)."""

    face_id: str
    label: str
    images: dict[str, np.ndarray]      # condition -> uint8 [H, W]
    saliency: dict[str, np.ndarray]    # condition -> uint8 RGB [H, W, 3]
    predicted: dict[str, str]
    confidence: dict[str, float]


def select_faces(labels: torch.Tensor, correct: torch.Tensor, per_class: int, seed: int = 0,
                 num_classes: int = len(CLASSES)) -> torch.Tensor:
    """Up to `per_class` faces per class, half the judge reads right and half wrong where both exist.

    Shape:
        labels: [N]; correct: bool [N] (the judge's verdict on the reference condition) -> indices [K].
    """
    gen = torch.Generator().manual_seed(seed)
    labels, correct = labels.cpu(), correct.cpu()
    chosen = []
    for k in range(num_classes):
        right = _shuffled((labels == k) & correct, gen)
        wrong = _shuffled((labels == k) & ~correct, gen)
        n_wrong = min(len(wrong), per_class // 2)
        n_right = min(len(right), per_class - n_wrong)
        n_wrong = min(len(wrong), per_class - n_right)  # fill up with wrong cases when few are right
        chosen += right[:n_right].tolist() + wrong[:n_wrong].tolist()
    return torch.tensor(chosen, dtype=torch.long)


def _shuffled(mask: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    index = mask.nonzero().squeeze(1)
    return index[torch.randperm(len(index), generator=gen)]


def build_rows(artefacts: dict, ids: list[str], judge: torch.nn.Module, reference: str,
               per_class: int = 2, seed: int = 0) -> list[GalleryRow]:
    """Pick faces by the judge's verdict on `reference` and gather every condition's view of them.

    `artefacts` are `compare`'s: images, probs and labels per condition in the report's class view,
    its class names (`classes`), and the judge output Grad-CAM explains per face (`explain`).
    """
    from unveil.classify.saliency import grad_cam, overlay

    labels, probs, shown = artefacts["labels"], artefacts["probs"], artefacts["images"]
    names = artefacts["classes"]
    correct = probs[reference].argmax(1) == labels
    index = select_faces(labels, correct, per_class, seed, len(names)).to(labels.device)
    views, maps = {}, {}
    for name, images in shown.items():
        picked = images[index]
        views[name] = _uint8(picked)
        maps[name] = overlay(picked, grad_cam(judge, picked, target=artefacts["explain"][name][index]))
    rows = []
    for r, i in enumerate(index.tolist()):
        rows.append(GalleryRow(
            face_id=ids[i], label=names[int(labels[i])],
            images={n: views[n][r] for n in shown}, saliency={n: maps[n][r] for n in shown},
            predicted={n: names[int(probs[n][i].argmax())] for n in shown},
            confidence={n: float(probs[n][i].max()) for n in shown}))
    return rows


def _uint8(images: torch.Tensor) -> np.ndarray:
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).squeeze(1).cpu().numpy()


def write_html(rows: list[GalleryRow], conditions: list[str], out_dir: str | Path, title: str) -> Path:
    """gallery.html plus gallery/*.png beside it; the page references only the files written here."""
    out = Path(out_dir)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in conditions)
    body = []
    for r, row in enumerate(rows):
        cells = [f"<td class='meta'>{html.escape(row.label)}<br><small>{html.escape(row.face_id)}</small></td>"]
        for c in conditions:
            face = _save_tile(row.images[c], out / "gallery" / f"{r:03d}_{_slug(c)}.png")
            sal = _save_tile(row.saliency[c], out / "gallery" / f"{r:03d}_{_slug(c)}_cam.png")
            right = row.predicted[c] == row.label
            cells.append(
                f"<td><img src='gallery/{face.name}' alt='{html.escape(c)}'>"
                f"<img src='gallery/{sal.name}' alt='saliency'>"
                f"<div class='{'ok' if right else 'bad'}'>{html.escape(row.predicted[c])} "
                f"{row.confidence[c]:.2f}</div></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: 6px; text-align: center; border-bottom: 1px solid #ddd; vertical-align: top; }}
img {{ width: {48 * SCALE // 2}px; height: {48 * SCALE // 2}px; image-rendering: pixelated; margin: 1px; }}
.ok {{ color: #167a2c; font-weight: bold; }} .bad {{ color: #b3261e; font-weight: bold; }}
.meta {{ text-align: left; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Each row is one test face; each column what the judge was shown, with its top prediction and confidence
(green: right, red: wrong) and its Grad-CAM saliency for that prediction.</p>
<table><tr><th>true class</th>{head}</tr>
{chr(10).join(body)}
</table></body></html>
"""
    return write_text(out / "gallery.html", page)


def write_png(rows: list[GalleryRow], conditions: list[str], path: str | Path, scale: int = 2) -> Path:
    """The gallery as one picture (for a README or an issue): a row per face, a column per condition,
    each face with the judge's top prediction and confidence under it (green right, red wrong)."""
    grid = [[Tile(row.images[c], f"{row.predicted[c][:7]} {row.confidence[c]:.2f}",
                  RIGHT if row.predicted[c] == row.label else WRONG) for c in conditions] for row in rows]
    labels = [c.removeprefix("inpainter_") for c in conditions]
    return save_png(tile_grid(grid, [r.label for r in rows], labels, scale=scale, gap=8), path)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _save_tile(pixels: np.ndarray, path: Path) -> Path:
    img = Image.fromarray(pixels)
    return save_png(img.resize((img.width * SCALE, img.height * SCALE), Image.Resampling.NEAREST), path)
