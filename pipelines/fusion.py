"""`unveil fit-fusion`: fit the one reading (`unveil.classify.fusion`) on validation faces.

For each (source, occlusion) the val split's faces are occluded as `compare` occludes them
(`condition_images`), the upper-half reader reads the occluded faces and the judge the chosen inpainter's
reconstructions; the fusion is fitted on all of them at once (each source weighing the same) and saved
with the SHA-256 of each model it was fitted for, the data it saw, and its scores per source beside those
of its two inputs (on the faces it was fitted on: a fit, not a test).

    fit_one_reading(FusionSpec([("../shared/data/fer2013", "lower-half")]), Models.open(), Path("runs/fusion"))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from unveil.classify.fusion import fit_fusion, input_record, save_fusion
from unveil.data import load_faces
from unveil.errors import UnveilError
from unveil.inpaint import inpainter_record
from unveil.occlusion import Occlusion
from unveil.shipped import PHOTO_JUDGE, PHOTO_READER

from .compare import Models, condition_images

log = logging.getLogger(__name__)

SPLIT = "val"   # a fusion is fitted on validation faces only: never on the test split it is reported on


@dataclass(frozen=True)
class FusionSpec:
    parts: tuple[tuple[str, str], ...]          # (source, occlusion) pairs
    reader: str = PHOTO_READER
    judge: str = PHOTO_JUDGE
    inpainter: str = "inpainter_unet"
    seed: int = 0
    name: str = "fusion"


def fit_one_reading(spec: FusionSpec, models: Models, out: Path) -> dict:
    """Fit, save to `out` (a checkpoint path) and return the sidecar's record."""
    if not spec.parts:
        raise UnveilError("fit-fusion needs at least one --data source")
    judge, reader = models.judge(spec.judge), models.judge(spec.reader)
    (inpainter,) = models.inpainters([spec.inpainter])
    read, judged, labels, fitted_on = [], [], [], []
    for source, occlusion in spec.parts:
        faces = load_faces(source, SPLIT)
        if len(faces) == 0:
            raise UnveilError(f"{source}: the {SPLIT} split is empty (a fusion is fitted on validation faces)")
        occ = Occlusion.parse(occlusion)
        _, shown = condition_images(faces, occ, [inpainter], models.device, spec.seed)
        read.append(reader.proba(shown["occluded"]).cpu())
        judged.append(judge.proba(shown[inpainter.name]).cpu())
        labels.append(faces.labels.cpu())
        fitted_on.append({"data": faces.source, "fingerprint": faces.fingerprint, "split": SPLIT,
                          "occlusion": str(occ), "n": len(faces)})
        log.info(f"[fit-fusion] {faces.source} ({SPLIT}, {occ}): {len(faces)} faces read")
    # Each source weighs the same in the fit, however many faces it has: FER2013's 3,589 val faces would
    # otherwise set the weights for photo sets of a few hundred.
    weight = torch.cat([torch.full((len(y),), 1 / len(y)) for y in labels])
    fusion = fit_fusion(torch.cat(read), torch.cat(judged), torch.cat(labels), weight)
    for part, r, j, y in zip(fitted_on, read, judged, labels):
        part["accuracy"] = {"reader": _accuracy(r, y), "judge_reconstructed": _accuracy(j, y),
                            "one_reading": _accuracy(fusion(r, j), y)}
    meta = {"name": spec.name, "inputs": {
                "reader": input_record(reader.path), "judge": input_record(judge.path),
                "inpainter": inpainter_record(spec.inpainter, models.checkpoints)},
            "weights": [round(float(w), 4) for w in fusion.weights], "fitted_on": fitted_on, "seed": spec.seed}
    save_fusion(out, fusion, meta)
    return meta


def _accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    return round(float((probs.argmax(1) == labels).float().mean()), 4)
