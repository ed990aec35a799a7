"""Degenerate faces: blank images, near-blank ones, and exact duplicates (within a split, and across
splits, where a training face that is also a test face inflates every test number).

    found = find_degenerate(load_faces("../shared/data/fer2013"))
    found.summary(faces)                     # counts and ids, JSON-able (`unveil data info --check`)
    kept, record = without_degenerate(faces, "test")   # score without the flagged test faces

What is flagged (and what `data.drop_degenerate` drops from training, and `--exclude-degenerate`
leaves out of a score): every constant and nearly constant face; every face whose exact copy is in
another split; and within a split, every copy of a face but the first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from .faces import SPLITS, Faces

# A face is nearly constant when the central 90 % of its pixels (5th to 95th percentile) span at most
# this many gray levels of 255. Why 16: after the per-image min-max stretch every face spans 0-255, so
# the full range says nothing; the central spread does. On FER2013 the faces at or under it are blank
# pages with a few specks of text ("image removed" placeholders, 3-5 levels), and the lowest real face
# spreads over 98 levels: anything from 6 to 97 finds the same faces, 16 leaves room for JPEG noise.
NEAR_CONSTANT_LEVELS = 16
CHUNK = 8192   # faces per percentile pass: memory stays flat on a face store of millions
LISTED = 20    # ids printed per category in the text report (--json lists all)


@dataclass
class Degenerate:
    """What `find_degenerate` found, by index into the faces it was given.

    Shape:
        constant, nearly_constant: bool [N] (exclusive: a constant face is not also nearly constant);
        groups: lists of indices of byte-identical faces (two or more each; constant faces left out,
        they are all copies of one another and counted as constant).
    """

    constant: torch.Tensor
    nearly_constant: torch.Tensor
    groups: list[list[int]]

    def flagged(self, splits: torch.Tensor) -> torch.Tensor:
        """bool [N]: constant, nearly constant, copied in another split, or a later copy in its own."""
        flagged = self.constant | self.nearly_constant
        for group in self.groups:
            members = splits[group].tolist()
            for position, (index, split) in enumerate(zip(group, members)):
                if len(set(members)) > 1 or split in members[:position]:
                    flagged[index] = True
        return flagged

    def summary(self, faces: Faces, listed: int | None = None) -> dict:
        """Counts per split and the ids (all of them, or the first `listed` per category), JSON-able."""
        splits = faces.splits.cpu()
        flagged = self.flagged(splits)
        return {
            "criteria": CRITERIA,
            "constant": _category(faces, self.constant, listed),
            "nearly_constant": _category(faces, self.nearly_constant, listed),
            "duplicates": self._duplicates(faces, listed),
            "flagged": {name: int((flagged & (splits == s)).sum()) for s, name in enumerate(SPLITS)
                        if (splits == s).any()},
        }

    def _duplicates(self, faces: Faces, listed: int | None) -> dict:
        splits, labels = faces.splits.cpu().tolist(), faces.labels.cpu().tolist()
        within: dict[str, dict[str, int]] = {}
        across: dict[str, dict[str, int]] = {}
        copied: dict[str, dict[str, int]] = {}   # faces of one split with a copy in another split
        for group in self.groups:
            present = sorted({splits[i] for i in group})
            table = within if len(present) == 1 else across
            entry = table.setdefault("+".join(SPLITS[s] for s in present), {"groups": 0, "faces": 0})
            entry["groups"] += 1
            entry["faces"] += len(group)
            for index in group:
                for other in present:
                    if other != splits[index]:
                        row = copied.setdefault(SPLITS[splits[index]], {})
                        row[SPLITS[other]] = row.get(SPLITS[other], 0) + 1
        shown = self.groups if listed is None else self.groups[:listed]
        return {"groups": len(self.groups), "faces": sum(map(len, self.groups)), "within_split": _ordered(within),
                "across_splits": _ordered(across),
                "copied_in_another_split": {k: _ordered(v) for k, v in _ordered(copied).items()},
                "label_conflicts": sum(len({labels[i] for i in group}) > 1 for group in self.groups),
                "list": [[faces.ids[i] for i in group] for group in shown]}


def _ordered(table: dict) -> dict:
    """Keys in split order: train, val, test; train+val before train+test."""
    return {key: table[key] for key in sorted(table, key=lambda k: [SPLITS.index(p) for p in k.split("+")])}


CRITERIA = {
    "constant": "every pixel the same value",
    "nearly_constant": f"not constant, and the 5th to 95th percentile of its pixels span at most "
                       f"{NEAR_CONSTANT_LEVELS} of 255 gray levels",
    "duplicates": "byte-identical 48x48 pixels as the models see them (after normalisation); constant faces "
                  "are counted as constant only",
    "flagged": "constant, nearly constant, copied in another split, or a later copy within its split",
}


def _category(faces: Faces, mask: torch.Tensor, listed: int | None) -> dict:
    index = mask.nonzero().squeeze(1).tolist()
    splits = faces.splits.cpu()
    return {"count": len(index),
            "by_split": {name: int((mask & (splits == s)).sum())
                         for s, name in enumerate(SPLITS) if (splits == s).any()},
            "faces": [faces.ids[i] for i in (index if listed is None else index[:listed])]}


def find_degenerate(faces: Faces, levels: int = NEAR_CONSTANT_LEVELS) -> Degenerate:
    """Constant, nearly constant (see `NEAR_CONSTANT_LEVELS`) and byte-identical faces."""
    constant, nearly = [], []
    for start in range(0, len(faces), CHUNK):
        pixels = faces.images[start:start + CHUNK].flatten(1).cpu()
        constant.append(pixels.amax(1) == pixels.amin(1))
        ranked = pixels.sort(1).values.float()
        low, high = ranked[:, int(0.05 * (ranked.shape[1] - 1))], ranked[:, int(0.95 * (ranked.shape[1] - 1))]
        nearly.append(high - low <= levels)
    constant_mask = torch.cat(constant) if constant else torch.zeros(0, dtype=torch.bool)
    nearly_mask = (torch.cat(nearly) if nearly else torch.zeros(0, dtype=torch.bool)) & ~constant_mask
    return Degenerate(constant_mask, nearly_mask, _copies(faces, constant_mask))


def _copies(faces: Faces, skip: torch.Tensor) -> list[list[int]]:
    """Groups of byte-identical faces (hashing each face's bytes: one pass, no pairwise comparison)."""
    by_bytes: dict[bytes, list[int]] = defaultdict(list)
    pixels = faces.images.flatten(1).cpu().numpy()
    for index in (~skip).nonzero().squeeze(1).tolist():
        by_bytes[pixels[index].tobytes()].append(index)
    return [group for group in by_bytes.values() if len(group) > 1]


def without_degenerate(faces: Faces, split: str) -> tuple[Faces, dict]:
    """The faces of `split` less those `Degenerate.flagged` marks (found over all of `faces`, so a copy
    in another split counts), and a record for the report: how many were left out and why (the ids:
    `unveil data info SOURCE --check --json`)."""
    found = find_degenerate(faces)
    flagged = found.flagged(faces.splits.cpu())
    faces.split(split)  # an unknown split is an error naming the valid ones
    in_split = torch.ones(len(faces), dtype=torch.bool) if split == "all" else faces.splits.cpu() == SPLITS.index(split)
    keep = (in_split & ~flagged).nonzero().squeeze(1)
    left_out = in_split & flagged
    record = {"excluded": int(left_out.sum()), "kept": len(keep), "criteria": CRITERIA["flagged"],
              "constant": int((left_out & found.constant).sum()),
              "nearly_constant": int((left_out & found.nearly_constant).sum()),
              "copies": int((left_out & ~found.constant & ~found.nearly_constant).sum())}
    return faces.select(keep), record
