"""A class-folder set of photos as faces, the source ``photos:DIR``, and the occlusion that paints masks on
those photos, ``photo-mask``: both registered into the core's tables (``SOURCES``, ``OCCLUSIONS``).

    faces = load_faces("photos:../shared/data/photos-wild")     # every command takes it like any source

Each photo's most confident face is found and aligned in the FER2013 frame exactly as ``unveil
predict`` frames it (``unveil.photo.framing.frame_photos``: the default detector, ``align_face``); a
photo without a usable face (none found, or one under ``MIN_FACE`` px) is left out with its reason,
which ``Faces.skipped`` keeps and ``unveil data info`` reports per class. Class folders, aliases and
the stratified split are those of any class-folder set (``labelled_photos``, ``assign_splits``).

A plain class-folder source (a folder without ``photos:``) squashes each whole image to 48x48, which
is right for face crops; it says so on stderr when its images are ``sources.LARGE_IMAGE`` px or larger,
since photos with background should be read with ``photos:``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from unveil.classes import CLASSES
from unveil.data.sources import SOURCES, RawFaces, Source, split_hint
from unveil.errors import DataError, UnveilError
from unveil.occlusion import MASK_STYLES, Occlusion

from .detect import create_detector
from .framing import FRAMING_VERSION, detector_settings, frame_photos
from .masks import photo_masked
from .read import labelled_photos, read_photo

__all__ = ["PREFIX", "MIN_FACE", "PhotoSetSource", "PhotoMasks", "photo_fingerprint", "read_photo_set"]

PREFIX = "photos:"
MIN_FACE = 40     # px: as `unveil predict`, a smaller face holds too little for a 48x48 crop


def _detector():
    return create_detector()


@dataclass(frozen=True, kw_only=True)
class PhotoSetSource(Source):
    def fingerprint_parts(self) -> list:
        return photo_fingerprint(Path(self.location), dict(self.aliases))

    def read(self) -> RawFaces:
        return read_photo_set(Path(self.location), dict(self.aliases))


@SOURCES.register("photos")
def photos_source(spec: str = "") -> PhotoSetSource:
    """`photos:DIR`: a folder of class folders of photos."""
    path = Path(spec).expanduser().resolve()
    if not spec or not path.is_dir():
        raise DataError(f"{spec or repr(spec)}: not a folder (photos:DIR takes a folder of class folders of photos)")
    return PhotoSetSource(kind="photos", location=str(path))


def photo_fingerprint(root: Path, aliases: dict[str, str]) -> list:
    """Every photo's path and SHA-256, the detector's settings and the framing version: a changed photo,
    another detector or a changed aligner is never served from the cache."""
    parts: list = [FRAMING_VERSION, detector_settings(_detector()), MIN_FACE, sorted(aliases.items())]
    for path, label in labelled_photos(root, aliases):
        try:
            parts.append([str(path.relative_to(root)), label, hashlib.sha256(path.read_bytes()).hexdigest()])
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parts


def read_photo_set(root: Path, aliases: dict[str, str]):
    """RawFaces of the photos with a usable face, with the skipped photos and their reasons."""
    photos = labelled_photos(root, aliases)
    framed = frame_photos([p for p, _ in photos], _detector(), min_size=MIN_FACE, what=root.name)
    keep = framed.found.numpy()
    ids = [str(p.relative_to(root).as_posix()) for p, _ in photos]
    skipped = [{"id": ids[i], "label": CLASSES[photos[i][1]], "reason": _reason(framed.problems[i])}
               for i in np.flatnonzero(~keep)]
    if not keep.any():
        raise DataError(f"{root}: no usable face in any of its {len(photos)} photos (faces of {MIN_FACE} px and more)")
    labels = np.array([label for _, label in photos], np.int64)
    splits = np.array([split_hint(tuple(i.split("/"))) for i in ids], np.int8)
    return RawFaces(framed.crops.numpy()[keep], labels[keep], splits[keep], [ids[i] for i in np.flatnonzero(keep)],
                    skipped=skipped)


def _reason(problem: str | None) -> str:
    """The framing's problem line without the path it starts with (the id says which photo)."""
    if not problem:
        return "no usable face"
    return problem.split(": ", 1)[-1]


def photo_masked_faces(faces, styles: tuple[str, ...], seed: int) -> tuple:
    """Faces of a ``photos:`` source wearing masks painted on their photos (``photo_masked``): (occluded
    float [N, 1, 48, 48] in [0, 1], hole float [N, 1, 48, 48], 1 = hidden), on the CPU. Each face's mask
    is drawn from ``seed`` and the face's id, so it does not depend on which other faces are scored."""
    if not faces.source.startswith(PREFIX):
        raise DataError(f"the photo-mask occlusion paints masks on the photos of a {PREFIX}DIR source; "
                        f"{faces.source} has no photos (use the mask occlusion)")
    root = Path(faces.source.removeprefix(PREFIX))
    framed = frame_photos([root / i for i in faces.ids], _detector(), min_size=MIN_FACE, what=root.name)
    crops, holes = np.zeros((len(faces), 48, 48), np.uint8), np.zeros((len(faces), 48, 48), bool)
    for k, face_id in enumerate(faces.ids):
        if not framed.found[k]:
            raise DataError(f"{root / face_id}: its face is no longer found (the photo changed since it was read)")
        matrix = framed.matrices[k].numpy()
        landmarks = _to_photo(framed.points[k].double().numpy(), matrix, cv2)
        rgb, _ = read_photo(root / face_id)
        crops[k], holes[k] = photo_masked(rgb, matrix, landmarks, styles, seed=face_seed(seed, face_id))
    return (torch.from_numpy(crops).unsqueeze(1).float().div(255), torch.from_numpy(holes).unsqueeze(1).float())


def face_seed(seed: int, face_id: str) -> int:
    return (seed * 1_000_003 + int(hashlib.sha256(face_id.encode()).hexdigest()[:8], 16)) % 2**31


def _to_photo(points: np.ndarray, matrix: np.ndarray, cv2) -> np.ndarray:
    """Landmarks in the crop -> in the photo (the inverse of the face's alignment)."""
    inverse = cv2.invertAffineTransform(matrix)
    return points @ inverse[:, :2].T + inverse[:, 2]


@dataclass(frozen=True)
class PhotoMasks(Occlusion, kind="photo-mask"):
    """A face mask painted on each face's full-resolution photo before alignment, as MaskTheFace does:
    it needs the faces of a ``photos:`` source (`over_faces`), not bare crops."""

    styles: tuple[str, ...] = MASK_STYLES
    seed: int = 0

    def __call__(self, images: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor]:
        raise UnveilError("the photo-mask occlusion paints masks on the source photos: it occludes the faces "
                          "of a photos: source when they are scored (compare, eval-*), not crops in training "
                          "batches (train with the mask occlusion)")

    def over_faces(self, faces, seed: int | None = None) -> tuple[Tensor, Tensor]:
        return photo_masked_faces(faces, self.styles, self._seed(seed))
