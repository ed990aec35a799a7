"""Photos to aligned faces, once: each photo's most confident face, cut out in the FER2013 frame.

    framed = frame_photos(paths, create_detector())       # cached by content and by the detector's settings
    framed.crops[framed.found]                            # uint8 [K, 48, 48]

This is the path every photo takes before the models (``predict``, ``eval-holes``, the hole model's
training data): detect, keep the most confident face, align it (``align_face``) and map its landmarks
into the crop. A whole set is framed once and cached under ``unveil.data.cache_dir()``; the key holds
every file's SHA-256, the detector's settings and ``FRAMING_VERSION``, so a changed photo, another
detector or a changed aligner never gets a stale crop, and the file carries a digest of what it holds
(``unveil.data.cache``), so a damaged one is framed again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unveil.data.cache import cache_dir, read_cache, write_cache
from unveil.data.preprocess import SIZE
from unveil.errors import UnveilError
from unveil.logs import progress
from unveil.runtime import one_cpu_thread

from .align import _warp, align_face, transform_points
from .face import Face
from .pose import Pose, head_pose
from .read import read_photo

log = logging.getLogger(__name__)

__all__ = ["FRAMING_VERSION", "FramedFace", "FramedPhotos", "frame_face", "frame_photos", "warp_to_crop"]

FRAMING_VERSION = 3   # bump when detection, the choice of face or the alignment changes
CACHED = ("crops", "matrices", "points", "scores", "sizes", "found", "readable", "poses")
CACHE_LAYOUT = 3      # bump when CACHED or the pose changes (the faces framed stay the same: FRAMING_VERSION is not)


@dataclass
class FramedFace:
    """One face cut out of its photo: the crop, the photo -> crop matrix, the landmarks in the crop, and the
    head's pose in the photo."""

    face: Face
    crop: np.ndarray      # uint8 [48, 48]
    matrix: np.ndarray    # float64 [2, 3]
    points: np.ndarray    # float64 [5, 2]
    pose: Pose


def frame_face(rgb: np.ndarray, face: Face, size: int = SIZE) -> FramedFace:
    crop, matrix = align_face(rgb, face, size)
    pose = head_pose(face.landmarks, rgb.shape)
    return FramedFace(face, crop, matrix, transform_points(matrix, face.landmarks), pose)


def warp_to_crop(mask: np.ndarray, matrix: np.ndarray, size: int = SIZE) -> np.ndarray:
    """A photo-sized 0/1 map (a mask's pixels) carried into the crop exactly as ``align_face`` carries the
    photo: float32 [size, size], the share of each crop pixel that the map covers."""
    return _warp(np.ascontiguousarray(mask, np.float32), matrix, size)


@dataclass
class FramedPhotos:
    """A set of photos, framed. Row i is ``paths[i]``; where no face was found, ``found[i]`` is False,
    the crop is zeros and ``problems[i]`` says why; ``readable[i]`` is False where the photo itself could
    not be read (a damaged file is not a photo without a face).

    Shape:
        crops: uint8 [N, 48, 48]; matrices: float64 [N, 2, 3] (photo -> crop); points: float32 [N, 5, 2]
        (landmarks in the crop); scores, sizes: float32 [N]; found, readable: bool [N]; poses: float32 [N, 3]
        (yaw, pitch, roll in degrees, `unveil.photo.pose`; NaN where no face was found).
    """

    paths: list[str]
    crops: torch.Tensor
    matrices: torch.Tensor
    points: torch.Tensor
    scores: torch.Tensor
    sizes: torch.Tensor
    found: torch.Tensor
    readable: torch.Tensor
    poses: torch.Tensor
    problems: list[str | None]

    def __len__(self) -> int:
        return len(self.paths)


def frame_photos(paths: list[str | Path], detector, min_size: float = 0.0, use_cache: bool = True,
                 cache: Path | None = None, what: str = "photos") -> FramedPhotos:
    """Frame every photo (the most confident face of at least ``min_size`` pixels); from the cache when
    nothing changed. Unreadable photos and photos without a face are rows with ``found`` False."""
    paths = [str(p) for p in paths]
    key = _cache_key(paths, detector, min_size)
    path = (cache or cache_dir()) / f"framed-{key[:24]}.safetensors"
    framed = _read_cache(path, paths) if use_cache else None
    if framed is None:
        framed = _frame_all(paths, detector, min_size, what)
        if use_cache:
            _write_cache(path, framed)
    return framed


def _frame_all(paths: list[str], detector, min_size: float, what: str) -> FramedPhotos:
    """Frame every photo, on every core: one photo per thread, each torch call on one thread (torch
    releases the GIL inside its kernels). On a busy machine this also avoids the stalls of a parallel
    region waiting for a second core (see `one_cpu_thread`)."""
    n = len(paths)
    crops, points = np.zeros((n, SIZE, SIZE), np.uint8), np.zeros((n, 5, 2), np.float32)
    matrices = np.zeros((n, 2, 3), np.float64)
    scores, sizes, found = np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, bool)
    readable, problems, poses = np.zeros(n, bool), [None] * n, np.full((n, 3), np.nan, np.float32)
    with one_cpu_thread(), ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        framing = pool.map(lambda p: _frame_one(p, detector, min_size), paths)
        for i, (best, problem, read) in enumerate(progress(framing, f"framing {what}", n, "photo")):
            problems[i], readable[i] = problem, read
            if best is not None:
                crops[i], matrices[i], points[i] = best.crop, best.matrix, best.points
                scores[i], sizes[i], found[i] = best.face.score, best.face.size, True
                poses[i] = best.pose.yaw, best.pose.pitch, best.pose.roll
    return FramedPhotos(paths, torch.from_numpy(crops), torch.from_numpy(matrices), torch.from_numpy(points),
                        torch.from_numpy(scores), torch.from_numpy(sizes), torch.from_numpy(found),
                        torch.from_numpy(readable), torch.from_numpy(poses), problems)


def _frame_one(path: str, detector, min_size: float) -> tuple[FramedFace | None, str | None, bool]:
    """(the most confident face of at least `min_size` px, framed; or the problem that left none; whether
    the photo could be read)."""
    try:
        rgb, _ = read_photo(path)
    except UnveilError as exc:
        return None, str(exc), False
    try:
        detected = detector.detect(rgb)
    except UnveilError as exc:
        return None, str(exc), True
    faces = [f for f in detected if f.size >= min_size]
    if not faces:
        return None, (f"{path}: no face found" if not detected else
                      f"{path}: the largest face found is {int(max(f.size for f in detected))} px, "
                      f"under {min_size:g} px"), True
    return frame_face(rgb, max(faces, key=lambda f: f.score)), None, True


def _cache_key(paths: list[str], detector, min_size: float) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([FRAMING_VERSION, CACHE_LAYOUT, detector_settings(detector), min_size]).encode())
    for p in paths:
        digest.update(p.encode() + b"\0")
        try:
            digest.update(hashlib.sha256(Path(p).read_bytes()).digest())
        except OSError:
            digest.update(b"unreadable")
    return digest.hexdigest()


def detector_settings(detector) -> dict:
    """What a detector's results depend on: its name and every setting (weights included)."""
    settings = {k: v for k, v in vars(detector).items() if isinstance(v, (int, float, str, tuple))}
    return {"name": detector.name, **settings}


def _read_cache(path: Path, paths: list[str]) -> FramedPhotos | None:
    """The cached framing of `paths`, or None: a cache whose digest does not match, or another set's, is
    framed again, with a warning (`read_cache`)."""
    cached = read_cache(path, CACHED, "framing", "framing the photos again")
    if cached is None:
        return None
    tensors, meta = cached
    if meta.get("paths") != json.dumps(paths):
        log.warning(f"{path} is stale (another set of photos); framing the photos again")
        return None
    return FramedPhotos(paths, *(tensors[k] for k in CACHED), json.loads(meta["problems"]))


def _write_cache(path: Path, framed: FramedPhotos) -> None:
    meta = {"paths": json.dumps(framed.paths), "problems": json.dumps(framed.problems)}
    write_cache(path, {k: getattr(framed, k) for k in CACHED}, meta, "framing")
