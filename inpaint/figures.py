"""Sample grids: occluded | reconstruction | original rows, two faces per class in columns. Written
during training (every few epochs) and by `unveil eval-inpainter --out`."""

from __future__ import annotations

from pathlib import Path

import torch

from unveil.classes import CLASSES
from unveil.data import Faces
from unveil.figures import Tile, save_png, tile_grid, to_uint8
from unveil.occlusion import Occlusion

ROWS = ("occluded", "reconstruction", "original")


def write_samples(path: str | Path, inpainter, faces: Faces, occlusion: Occlusion, per_class: int = 2) -> Path:
    """The grid of `per_class` faces of each class from `faces`, occluded as `occlusion` draws a set,
    reconstructed by `inpainter` (anything with `reconstruct(occluded, hole)`)."""
    pick = torch.cat([(faces.labels == k).nonzero().squeeze(1)[:per_class] for k in range(len(CLASSES))])
    full = faces.images[pick].unsqueeze(1).float() / 255
    occluded, hole = occlusion.over_set(full)
    rows = [to_uint8(x) for x in (occluded, inpainter.reconstruct(occluded, hole), full)]
    names = [CLASSES[int(k)] for k in faces.labels[pick]]
    grid = tile_grid([[Tile(face) for face in row] for row in rows], list(ROWS), names, label_width=92)
    return save_png(grid, path)
