"""Training on several sources at once, and on crowd votes instead of one label per face.

A data mix is a list of parts, each a source of its own (FER2013, `photos:DIR`, any class-folder set) with
a weight: its share of the training batches. Every part keeps its own train/val/test split; the mixed
`Faces` records which part each face came from (`Faces.origin`, `Faces.origins`), so validation can be
reported per part and pooled.

    faces = load_mix([MixPart("../shared/data/fer2013", votes="../shared/data/ferplus/ferplus_votes.csv"),
                      MixPart("photos:../shared/data/kdef", weight=0.5)])
    faces.part("kdef").split("val")

Soft labels (`votes`): FER+ gives ten crowd votes per FER2013 face. A part read with its votes trains on
the vote distribution over the seven classes (`Faces.soft`); faces whose votes are missing, mostly
"not a face" or hold no vote for any of the seven classes are left out of that part's training split
(they stay in val and test, which are scored against the source's own labels). Faces of other parts get
their one-hot label as their soft label.

Worn faces (`wear`): a part can hold its faces already occluded, fixed per face when loaded, as an occlusion
that needs more than the crop draws it (``photo-mask``: a mask painted on each face's full-resolution photo).
Each face appears twice: as the camera shows it (the mask's paint) and cut (the hole at 0, less the one-pixel
rim of the mask that the hole model left visible when the shipped reader was trained; `predict` now cuts to
the rim and a pixel beyond, `benchmarks/hole_reach.py`).
`Faces.worn` marks them; a training condition shows them as they are instead of cutting another hole.

Holes of their own (`holes`), for generators: a part's faces stay bare, each carrying the hole that the same
painting covers (`Faces.holes`), so a generator learns to fill the shape a mask on a photo makes, with the
bare face as its truth.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..classes import CLASSES
from ..errors import DataError
from .faces import SPLITS, Faces
from .sources import content_key

# FER+ vote columns -> canonical class names; contempt, unknown and NF are not among the seven classes.
FERPLUS_COLUMNS = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy",
                   "neutral": "neutral", "sadness": "sad", "surprise": "surprise"}


@dataclass
class MixPart:
    """One part of `data.mix`: a source, its share of the training batches, and optional crowd votes."""

    source: str = ""
    weight: float = 1.0        # relative share of the training batches drawn from this part
    name: str = ""             # how reports name it; default: the source's folder name
    votes: str | None = None   # a FER+ votes CSV (file, ..., neutral, happiness, ..., NF): train on soft labels
    wear: str | None = None    # an occlusion the faces wear, fixed per face (photo-mask: painted on the photos)
    holes: str | None = None   # bare faces, each carrying the hole that occlusion makes on it (for generators)

    def __post_init__(self):
        if not self.source:
            raise ValueError("each data.mix part needs a source")
        if not self.weight > 0:
            raise ValueError(f"data.mix weight must be > 0, got {self.weight} for {self.source}")
        if self.wear is not None and self.holes is not None:
            raise ValueError(f"data.mix part {self.source}: give wear (faces occluded) or holes (bare faces with "
                             f"a hole each), not both")
        from ..occlusion import Occlusion

        for occlusion in (self.wear, self.holes):
            if occlusion is not None:
                Occlusion.parse(occlusion)   # a bad occlusion is named when the config is read, not after loading

    def label(self) -> str:
        return self.name or Path(self.source.removeprefix("photos:").rstrip("/")).name or self.source


def load_mix(parts: list[MixPart], normalize: bool = True) -> Faces:
    """The parts' faces as one `Faces`, with `origin`/`origins`, `soft` (one-hot where a part has no votes)
    and the training split less the faces a part's votes leave out. Raises DataError for duplicate names."""
    from . import load_faces

    names = [p.label() for p in parts]
    if len(set(names)) != len(names):
        raise DataError(f"data.mix: two parts share a name ({', '.join(names)}); give each a distinct name")
    loaded = []
    for k, part in enumerate(parts):
        faces = load_faces(part.source, normalize=normalize)
        soft = one_hot_labels(faces.labels)
        if part.votes:
            soft, keep = read_votes(Path(part.votes), faces)
            faces, soft = _drop_from_training(faces, soft, keep)
        if part.wear:
            faces, soft = wear_faces(faces, part.wear), torch.cat([soft, soft])
        if part.holes:
            faces = replace(faces, holes=painted(faces, part.holes)[1][:, 0].byte())
        loaded.append((faces, soft, torch.full((len(faces),), k, dtype=torch.long)))
    return Faces(images=torch.cat([f.images for f, _, _ in loaded]), labels=torch.cat([f.labels for f, _, _ in loaded]),
                 splits=torch.cat([f.splits for f, _, _ in loaded]), ids=[f"{names[o]}:{i}" for o, (f, _, _) in
                                                                         enumerate(loaded) for i in f.ids],
                 source="mix:" + "+".join(f.source for f, _, _ in loaded),
                 fingerprint=_mix_fingerprint(parts, [f.fingerprint for f, _, _ in loaded]),
                 skipped=[s for f, _, _ in loaded for s in f.skipped],
                 origin=torch.cat([o for _, _, o in loaded]), origins=tuple(names),
                 shares=tuple(p.weight for p in parts),
                 soft=torch.cat([s for _, s, _ in loaded]) if any(p.votes for p in parts) else None,
                 worn=torch.cat([_worn(f) for f, _, _ in loaded]) if any(p.wear for p in parts) else None,
                 holes=torch.cat([_holes(f) for f, _, _ in loaded]) if any(p.holes for p in parts) else None)


WEAR_VERSION = 1   # bump when how worn faces are made changes, so their cache is not reused


def wear_faces(faces: Faces, occlusion: str) -> Faces:
    """`faces` wearing `occlusion` (drawn once per face with its seed and the face's id), each face twice:
    as painted, then with the hole at 0 but its one-pixel rim left as painted (``#cut`` ids)."""
    paint, hole = painted(faces, occlusion)
    inner = 1 - torch.nn.functional.max_pool2d(1 - hole, 3, 1, 1)   # the hole less its one-pixel rim
    cut = torch.where(inner > 0, torch.zeros_like(paint), paint)
    both = faces.select(torch.cat([torch.arange(len(faces))] * 2))
    return replace(both, images=torch.cat([paint, cut])[:, 0], ids=faces.ids + [f"{i}#cut" for i in faces.ids],
                   worn=torch.ones(2 * len(faces), dtype=torch.bool))


def painted(faces: Faces, occlusion: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`faces` under `occlusion` drawn once per face (`Occlusion.over_faces`): (painted uint8 [N, 1, 48, 48],
    hole float 0/1 [N, 1, 48, 48]). Cached by the faces' fingerprint and the occlusion."""
    from ..occlusion import Occlusion
    from . import cache_dir, read_cache, write_cache

    occ = Occlusion.parse(occlusion)
    key = hashlib.sha256(json.dumps([faces.fingerprint, str(occ), WEAR_VERSION]).encode()).hexdigest()
    path = cache_dir() / f"worn-{key[:24]}.safetensors"
    cached = read_cache(path, ("painted", "hole"), "worn faces", "painting them again")
    if cached is None:
        paint, hole = occ.over_faces(faces)
        cached = ({"painted": paint.mul(255).round().byte(), "hole": hole.byte()}, {})
        write_cache(path, *cached, "worn faces")
    return cached[0]["painted"], cached[0]["hole"].float()


def _worn(faces: Faces) -> torch.Tensor:
    return faces.worn if faces.worn is not None else torch.zeros(len(faces), dtype=torch.bool)


def _holes(faces: Faces) -> torch.Tensor:
    return faces.holes if faces.holes is not None else torch.zeros_like(faces.images)


def one_hot_labels(labels: torch.Tensor) -> torch.Tensor:
    """Hard labels as soft ones: float [N, 7] one-hot rows."""
    return torch.nn.functional.one_hot(labels.long(), len(CLASSES)).float()


def read_votes(path: Path, faces: Faces) -> tuple[torch.Tensor, torch.Tensor]:
    """(soft labels float [N, 7], usable bool [N]) for `faces` from a FER+ votes CSV matched by file name.
    A face is usable when it has votes, not-a-face is not its majority, and some vote is for one of the
    seven classes."""
    rows = _vote_rows(path)
    soft, usable = torch.zeros(len(faces), len(CLASSES)), torch.zeros(len(faces), dtype=torch.bool)
    order = [CLASSES.index(c) for c in FERPLUS_COLUMNS.values()]
    found = 0
    for k, face_id in enumerate(faces.ids):
        row = rows.get(face_id)
        if row is None:
            continue
        found += 1
        votes, not_face = row
        if votes.sum() > 0 and not_face * 2 <= votes.sum() + not_face:
            soft[k, order] = torch.from_numpy(votes / votes.sum()).float()
            usable[k] = True
    if found == 0:
        raise DataError(f"{path}: none of its file names is a face of {faces.source} (expected names such as "
                        f"{faces.ids[0]})")
    return soft, usable


def _vote_rows(path: Path) -> dict[str, tuple[np.ndarray, float]]:
    """file -> (votes for the seven classes in FERPLUS_COLUMNS order, NF votes); empty vote cells: no row."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"file", "NF", *FERPLUS_COLUMNS} - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{path}: not a FER+ votes file (missing columns {', '.join(sorted(missing))})")
            out = {}
            for line, row in enumerate(reader, start=2):
                if not row[next(iter(FERPLUS_COLUMNS))]:
                    continue  # FER+ left this face without votes
                try:
                    out[row["file"]] = (np.array([float(row[c]) for c in FERPLUS_COLUMNS]), float(row["NF"]))
                except (TypeError, ValueError):
                    raise DataError(f"{path} line {line}: vote counts must be numbers") from None
            return out
    except OSError as exc:
        raise DataError(f"{path}: cannot read the votes ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _drop_from_training(faces: Faces, soft: torch.Tensor, keep: torch.Tensor) -> tuple[Faces, torch.Tensor]:
    """Training faces without usable votes are left out; val and test keep every face (hard labels)."""
    train = faces.splits == SPLITS.index("train")
    index = (~train | keep).nonzero().squeeze(1)
    soft = torch.where(keep.unsqueeze(1), soft, one_hot_labels(faces.labels))
    return faces.select(index), soft[index]


def _mix_fingerprint(parts: list[MixPart], fingerprints: list[str]) -> str:
    """The mix's identity in sidecars: each part's name, weight, data fingerprint and votes file content."""
    key = [[p.label(), p.weight, f, content_key(Path(p.votes)) if p.votes else None]
           + ([p.wear, WEAR_VERSION] if p.wear else [])  # an older mix without worn parts keeps its identity
           + ([{"holes": p.holes}, WEAR_VERSION] if p.holes else [])
           for p, f in zip(parts, fingerprints)]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def majority(soft: torch.Tensor) -> torch.Tensor:
    """The vote majority per face (int64 [N]), -1 where the top vote is shared or there are no votes."""
    top = soft.max(1).values
    unique = (soft == top.unsqueeze(1)).sum(1) == 1
    return torch.where(unique & (top > 0), soft.argmax(1), torch.full_like(soft.argmax(1), -1))


def majority_faces(faces: Faces, votes: Path) -> Faces:
    """The faces whose crowd votes have one clear majority among the seven classes, labelled with it (FER+'s
    majority label), for reporting a classifier against the crowd as well as against the source's labels."""
    soft, usable = read_votes(votes, faces)
    labels = majority(soft)
    keep = (usable & (labels >= 0)).nonzero().squeeze(1)
    return replace(faces.select(keep), labels=labels[keep])
