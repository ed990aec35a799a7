"""Real masked photos as a test set: a class-folder set of photos (`root/<class>/<photo>`), each photo's
most confident face framed as FER2013 frames its faces (detect, align, find the hole), then scored as
`compare` scores a data set: the judge on the occluded crops and on each inpainter's reconstruction,
and with `cross` (the upper-half reader, by default) the cross matrix. There is no full condition and
no image quality: the truth is under the mask.

    report = evaluate_photos(PhotoEvalSpec("masked_photos/", hole="landmarks"), Models.open(), Path("runs/photos"))
    photos = frame_photo_set("masked_photos/", FaceFramer("landmarks"))       # or step by step
    report, artefacts = score_photo_set(photos, judge, inpainters, cross=[reader])
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from unveil.classes import ClassMap
from unveil.errors import DataError, UnveilError
from unveil.io import check_replaceable, output_folder
from unveil.photo.read import labelled_photos, read_photo
from unveil.shipped import FUSION, PHOTO_JUDGE, PHOTO_READER

from .compare import (REPORT_FILES, Judge, Models, NamedInpainter, OneReadingInputs, default_inpainters,
                      judge_conditions, write_outputs)
from .predict import FaceFramer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoEvalSpec:
    """What `unveil eval-photos` scores and how; `inpainters` None means every shipped generator and the
    baselines that need no training faces (mean_face does: name it with a checkpoint set)."""

    root: str                              # ROOT/<class>/<photo>
    hole: str = "landmarks"                # a FaceFramer hole mode
    judge: str = PHOTO_JUDGE
    inpainters: tuple[str, ...] | None = None
    cross: tuple[str, ...] = (PHOTO_READER,)   # the upper-half reader by default
    aliases: dict[str, str] | None = None  # folder name -> class
    classes: ClassMap | None = None
    tta: bool = False
    seed: int = 0                          # the bootstrap and the gallery's sample
    n_boot: int = 1000
    per_class: int = 2
    reader: str = PHOTO_READER             # the one reading: this reader pooled with the judge
    fusion: str | None = FUSION            # ... by this fusion (None: the equal-weight pool)


def evaluate_photos(spec: PhotoEvalSpec, models: Models, out: Path) -> dict:
    """Frame and score the photo set, and write the report, figures and gallery into `out` as one set
    (as `compare` does); the report's data.skipped names every photo left out and why."""
    check_replaceable(out, REPORT_FILES, "a comparison", [spec.root])
    specs = (list(spec.inpainters) if spec.inpainters is not None
             else [s for s in default_inpainters(models.checkpoints) if s != "mean_face"])
    framer = FaceFramer(spec.hole, checkpoints=models.checkpoints, device=str(models.device),
                        precision=models.precision)
    photos = frame_photo_set(spec.root, framer, spec.aliases)
    judge = models.judge(spec.judge)
    others = [models.judge(name) for name in spec.cross]
    inpainters = models.inpainters(specs)
    one = OneReadingInputs.open(models, spec.reader, spec.fusion, judge, inpainters)
    report, artefacts = score_photo_set(photos, judge, inpainters, others, tta=spec.tta,
                                        seed=spec.seed, n_boot=spec.n_boot, classes=spec.classes, one=one)
    with output_folder(out, REPORT_FILES, "a comparison") as folder:
        write_outputs(report, artefacts, photos.ids, judge, folder, f"photos, hole {spec.hole}", spec.per_class,
                      spec.seed)
    return report


@dataclass
class PhotoSet:
    """The framed faces of a photo set, one per usable photo.

    Shape: images, holes [N, 1, 48, 48] (holes 1 = hidden); labels int [N] (canonical).
    """

    source: str
    images: torch.Tensor
    holes: torch.Tensor
    labels: torch.Tensor
    ids: list[str]                 # the photo each face came from
    holes_used: list[str]          # per face: the hole mode used ("auto (no mask found)" says so)
    skipped: list[str] = field(default_factory=list)   # one line per photo without a usable face

    def record(self) -> dict:
        """What the report says about the set: counts, the holes, and every skipped photo with its reason."""
        return {"source": self.source, "kind": "photos", "n": len(self.ids),
                "photos": len(self.ids) + len(self.skipped),
                "skipped": self.skipped, "holes": dict(Counter(self.holes_used)),
                "mean_hole_fraction": round(float(self.holes.mean()), 4)}


def frame_photo_set(root: str | Path, framer: FaceFramer, aliases: dict[str, str] | None = None) -> PhotoSet:
    """Read, detect, align and find the hole of every photo; a photo that cannot be read or has no
    usable face is skipped with its reason (the set fails only if none is usable)."""
    images, holes, labels, ids, used, skipped = [], [], [], [], [], []
    for path, label in labelled_photos(root, aliases):
        try:
            rgb, _ = read_photo(path)
        except UnveilError as exc:
            skipped.append(str(exc))
            continue
        faces, errors = framer.faces(rgb, str(path))
        if not faces:
            skipped.append("; ".join(errors))
            continue
        full, hole, mode = framer.frame(rgb, faces[0])   # the most confident face: a photo has one label
        images.append(full)
        holes.append(hole)
        labels.append(label)
        ids.append(str(path.relative_to(root)))
        used.append(mode)
    if not ids:
        raise DataError(f"{root}: no usable face in any of its {len(skipped)} photos (first: {skipped[0]})")
    return PhotoSet(str(root), torch.cat(images), torch.cat(holes), torch.tensor(labels), ids, used, skipped)


def score_photo_set(photos: PhotoSet, judge: Judge, inpainters: list[NamedInpainter], cross: list[Judge] = (),
                    tta: bool = False, seed: int = 0, n_boot: int = 1000,
                    classes: ClassMap | None = None, one: OneReadingInputs | None = None) -> tuple[dict, dict]:
    """The report (as `compare`'s, with `data` describing the photo set) and the gallery's artefacts."""
    device = next(judge.model.parameters()).device
    holes = photos.holes.to(device)
    occluded = photos.images.to(device) * (1 - holes)
    shown = {"occluded": occluded}
    for inp in inpainters:
        shown[inp.name] = inp.reconstruct(occluded, holes)
    log.info(f"scoring {len(shown)} conditions on {len(photos.ids)} faces from {photos.source}")
    scores, artefacts = judge_conditions(shown, photos.labels.to(device), judge, inpainters, cross, tta=tta,
                                         seed=seed, n_boot=n_boot, classes=classes, one=one)
    modes = sorted(set(photos.holes_used))
    report = {"data": photos.record(), "occlusion": f"photos, hole {'/'.join(modes)}", **scores}
    return report, {**artefacts, "hole": holes}
