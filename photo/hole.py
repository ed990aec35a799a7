"""The hole on an aligned face: which pixels of the 48x48 crop count as hidden.

Two ways: the lower half (rows 24-47, the project's standard occlusion) or the region a face mask
would cover, placed from the face's own landmarks the way MaskTheFace (Anwar & Raychowdhury 2020)
fits its mask templates: from the middle of the nose bridge, across the face to the jaw, down to
the chin.

Convention of ``unveil.occlusion``: a float tensor [1, 1, H, W] of 0/1 with 1 = hidden.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from unveil.data.preprocess import SIZE
from unveil.errors import UnveilError
from unveil.occlusion import lower_half

__all__ = ["lower_half_hole", "landmark_hole", "upright_landmarks"]

# Mask geometry in units of the face's own landmark distances (so it follows the face's size and
# roll in the crop, not the crop's rows):
# - the top edge is NOSE_BRIDGE of the eye-to-nose distance above the nose tip. MaskTheFace puts it
#   at the midpoint of the nose bridge, and the bridge runs from about the eye line to the tip: 0.5.
NOSE_BRIDGE = 0.5
# - it never comes closer to the eye line than EYE_MARGIN inter-ocular distances: the lower eyelid
#   is about 0.1 IOD below the pupil, MTCNN's landmarks err by about 0.07 IOD on average (the
#   paper's AFLW figure), and the rest is slack for worse faces.
EYE_MARGIN = 0.25
# - the chin is the lower of two estimates: CHIN eye-to-mouth distances below the mouth corners, or
#   CHIN_FROM_NOSE eye-to-nose distances below the eyes. Both come from the mean FER2013 Training
#   face, whose chin ends at about row 46.5 (the column through its centre brightens down to row 45
#   and darkens under the chin), with the mean landmarks of `FER_LANDMARKS`: (46.5 - 36.9) / 19.2
#   and (46.5 - 17.7) / 10.0. Two, because the mouth corners move with the expression (a broad
#   smile lifts them by a few pixels, and the chin estimate with them) while the nose tip does not.
CHIN = 0.5
CHIN_FROM_NOSE = 2.9
# - the sides reach the jaw line, HALF_WIDTH inter-ocular distances from the centre line (the face
#   is about two IODs wide at the cheekbones, where a mask's ear loops leave it), and run straight
#   down to JAW of the eye-to-mouth distance below the mouth, from where the jaw curves to the chin.
HALF_WIDTH = 1.0
JAW = 0.15
# - mouth corners always lie at least MOUTH_MARGIN IODs inside the sides.
MOUTH_MARGIN = 0.15


def lower_half_hole(size: int = SIZE) -> Tensor:
    """Rows size/2 .. size-1 hidden (rows 24-47 at 48x48), as ``unveil.occlusion.lower_half``.

    Shape:
        - output: :math:`(1, 1, size, size)`
    """
    return lower_half(torch.zeros(1, 1, size, size), start_row=size // 2)[1]


def landmark_hole(points_in_crop: np.ndarray, size: int = SIZE) -> Tensor:
    """The region a face mask placed from the face's landmarks would hide, clipped to the crop.

    In the face's own frame (u along the eye line, v down from it): from the middle of the nose
    bridge (never within ``EYE_MARGIN`` of the eyes) down to the estimated chin, ``HALF_WIDTH`` to
    each side of the nose-mouth centre line; straight sides down to the jaw, then a parabola to the
    chin. Both mouth corners are always inside.

    Args:
        points_in_crop: the five landmarks mapped into the crop (``transform_points(matrix,
            face.landmarks)``), (x, y) in crop pixels, order of ``LANDMARK_NAMES``.
        size: the crop's side.

    Shape:
        - points_in_crop: :math:`(5, 2)`
        - output: :math:`(1, 1, size, size)` float, 1 = hidden

    Example:
        >>> crop, matrix = align_face(photo, face)
        >>> hole = landmark_hole(transform_points(matrix, face.landmarks))
    """
    points = np.asarray(points_in_crop, np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise UnveilError(f"landmark_hole needs five finite (x, y) landmarks [5, 2], got shape {points.shape}")
    origin, along, down, shape = _mask_shape(points)
    # Every pixel centre (x = column, y = row) in the face frame.
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    dx, dy = xs - origin[0], ys - origin[1]
    u = dx * along[0] + dy * along[1] - shape["centre"]
    v = dx * down[0] + dy * down[1]
    side = (u.abs() / shape["half"]).clamp(max=1.0)
    bottom = shape["chin"] - (shape["chin"] - shape["jaw"]) * side**2
    hole = (v >= shape["top"]) & (u.abs() <= shape["half"]) & (v <= bottom)
    return hole.to(torch.float32)[None, None]


def upright_landmarks(points: np.ndarray) -> bool:
    """Whether five landmarks [5, 2] (as ``Face.landmarks``) are an upright face's: the eyes apart, the
    person's right eye on the image's left, and both mouth corners at least 2 * EYE_MARGIN inter-ocular
    distances below the eye line, measured across the face's own roll. A detection without this
    cannot be given a mask hole; RetinaFace gives a few on real photos (mouth corners placed above the eyes)."""
    points = np.asarray(points, np.float64)
    left_eye, right_eye = points[0], points[1]
    iod = float(np.linalg.norm(right_eye - left_eye))
    if not np.isfinite(points).all() or iod < 1e-6:
        return False
    along = (right_eye - left_eye) / iod
    down = np.array([-along[1], along[0]])  # image y points down, so this is "down the face"
    mouth_down = (points[3:] - (left_eye + right_eye) / 2) @ down
    return bool(mouth_down.min() >= 2 * EYE_MARGIN * iod)


def _mask_shape(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """The face frame (origin between the eyes, unit vectors along the eye line and down the face) and
    the mask's outline in it: centre line, half width, top, jaw and chin (see `landmark_hole`)."""
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    if not upright_landmarks(points):
        raise UnveilError(f"landmark_hole: the mouth corners ({mouth_left}, {mouth_right}) are not below the eyes "
                          f"({left_eye}, {right_eye}); these are not an upright face's landmarks")
    iod = float(np.linalg.norm(right_eye - left_eye))
    along = (right_eye - left_eye) / iod
    down = np.array([-along[1], along[0]])  # image y points down, so this is "down the face"
    origin = (left_eye + right_eye) / 2

    def frame(p: np.ndarray) -> tuple[float, float]:
        d = p - origin
        return float(d @ along), float(d @ down)

    nose_u, nose_v = frame(nose)
    (left_u, left_v), (right_u, right_v) = frame(mouth_left), frame(mouth_right)
    mouth_v = max(left_v, right_v)
    centre = (nose_u + (left_u + right_u) / 2) / 2
    top = max(nose_v - NOSE_BRIDGE * max(nose_v, 0.0), EYE_MARGIN * iod)
    top = min(top, min(left_v, right_v) - MOUTH_MARGIN * iod)  # a squashed face: the mouth still wins
    half = max(HALF_WIDTH * iod, max(abs(left_u - centre), abs(right_u - centre)) + MOUTH_MARGIN * iod)
    eye_to_mouth = (left_v + right_v) / 2
    jaw = mouth_v + JAW * eye_to_mouth
    chin = max(mouth_v + CHIN * eye_to_mouth, CHIN_FROM_NOSE * nose_v, jaw)
    return origin, along, down, {"centre": centre, "half": half, "top": top, "jaw": jaw, "chin": chin}
