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
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
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

    def __post_init__(self):
        if not self.source:
            raise ValueError("each data.mix part needs a source")
        if not self.weight > 0:
            raise ValueError(f"data.mix weight must be > 0, got {self.weight} for {self.source}")

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
        loaded.append((faces, soft, torch.full((len(faces),), k, dtype=torch.long)))
    return Faces(images=torch.cat([f.images for f, _, _ in loaded]), labels=torch.cat([f.labels for f, _, _ in loaded]),
                 splits=torch.cat([f.splits for f, _, _ in loaded]), ids=[f"{names[o]}:{i}" for o, (f, _, _) in
                                                                         enumerate(loaded) for i in f.ids],
                 source="mix:" + "+".join(f.source for f, _, _ in loaded),
                 fingerprint=_mix_fingerprint(parts, [f.fingerprint for f, _, _ in loaded]),
                 skipped=[s for f, _, _ in loaded for s in f.skipped],
                 origin=torch.cat([o for _, _, o in loaded]), origins=tuple(names),
                 shares=tuple(p.weight for p in parts),
                 soft=torch.cat([s for _, s, _ in loaded]) if any(p.votes for p in parts) else None)


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
    from dataclasses import replace

    soft, usable = read_votes(votes, faces)
    labels = majority(soft)
    keep = (usable & (labels >= 0)).nonzero().squeeze(1)
    return replace(faces.select(keep), labels=labels[keep])
