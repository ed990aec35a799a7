"""A detected face: its box, score and five landmarks, what every detector returns and every later step reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from .hole import upright_landmarks

__all__ = ["LANDMARK_NAMES", "Face", "faces_from"]

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Face:
    """One detected face, in the image's pixel coordinates (pixel centres at integers, as OpenCV).

    ``landmarks`` is float [5, 2] of (x, y) in the order of ``LANDMARK_NAMES``: left eye, right eye,
    nose, left mouth corner, right mouth corner, where "left" is the image's left (smaller x), so the
    person's right eye comes first.
    """

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    landmarks: np.ndarray

    @property
    def size(self) -> float:
        """The box's longer side, in pixels."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)


def faces_from(boxes: Tensor, scores: Tensor, points: Tensor) -> list[Face]:
    """Detections as ``Face`` results, from boxes [K, 4] and landmarks [K, 5, 2] in edge coordinates
    (moved here to pixel centres) and scores [K]. A detection whose landmarks are not an upright face's
    is left out: it could be neither aligned nor given a hole (``upright_landmarks``)."""
    boxes, points = boxes.cpu().double() - 0.5, points.cpu().double() - 0.5
    faces = [Face(tuple(b.tolist()), float(s), p.numpy().copy()) for b, s, p in zip(boxes, scores.cpu(), points)]
    return [face for face in faces if upright_landmarks(face.landmarks)]
