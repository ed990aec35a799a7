"""Putting a synthetic face mask on a real photo: the project's masks (`unveil.occlusion.face_mask`),
drawn in the FER2013 frame of a detected face and mapped back onto the photo. Tests and the masked-photo
test sets are made with it from photos of unmasked faces; other occluders (`unveil.occluders`: a hand, a
tissue, a scarf, a phone) are put on the same way.

    masked, hole = wear_mask(rgb, face, styles=("surgical",), seed=3)
    covered, hole = wear_occluder(rgb, face, styles=("hand",), seed=3)
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from unveil.occluders import OCCLUDER_STYLES, paint_occluder
from unveil.occlusion import MASK_STYLES, face_mask
from .align import fer_landmarks, similarity_transform
from .face import Face

DETAIL = 4  # the mask is drawn at 4 x 48 pixels, so it stays sharp on a large face


def wear_mask(rgb: np.ndarray, face: Face, styles=MASK_STYLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The photo with a synthetic mask over `face`'s nose, mouth and chin, and the mask's pixels.

    The mask's gray paint is written to all three channels (the project's faces are grayscale).

    Shape:
        rgb: uint8 [H, W, 3] -> (uint8 [H, W, 3], bool [H, W]).
    """
    return _wear(rgb, face, lambda blank: face_mask(blank, styles, seed=seed))


def wear_occluder(rgb: np.ndarray, face: Face, styles=OCCLUDER_STYLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The photo with a hand, a tissue, a scarf or a phone over `face`'s lower face (`paint_occluder`),
    and its pixels; as `wear_mask`."""
    return _wear(rgb, face, lambda blank: paint_occluder(blank, styles, seed=seed))


def _wear(rgb: np.ndarray, face: Face, draw) -> tuple[np.ndarray, np.ndarray]:
    """`draw`'s (paint, hole) on a blank face in the FER2013 frame, carried onto the photo over `face`."""
    size = 48 * DETAIL
    matrix = similarity_transform(face.landmarks[:2], fer_landmarks(size)[:2])  # photo -> mask frame
    blank = torch.full((1, 1, size, size), 0.5)
    painted, hole = draw(blank)
    back = (rgb.shape[1], rgb.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    paint = cv2.warpAffine(painted[0, 0].numpy(), matrix, back, flags=flags, borderValue=0)
    cover = cv2.warpAffine(hole[0, 0].numpy(), matrix, back, flags=flags, borderValue=0) > 0.5
    out = rgb.copy()
    out[cover] = np.round(np.clip(paint[cover], 0, 1) * 255).astype(np.uint8)[:, None]
    return out, cover


def photo_masked(rgb: np.ndarray, matrix: np.ndarray, landmarks: np.ndarray, styles=MASK_STYLES,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A face's crop wearing a mask painted on its full-resolution photo, and the exact hole.

    The mask is painted on the photo from the face's landmarks (``wear_mask``), then the photo is cut
    out with the face's own alignment ``matrix``. Outside the hole the crop is the unmasked face's crop,
    pixel for pixel: the painted photo is stretched with the bare crop's contrast, not its own, so only
    the hidden pixels differ between the full and the masked face.

    Shape:
        rgb: uint8 [H, W, 3]; matrix: [2, 3] photo -> crop; landmarks: [5, 2] in the photo ->
        (crop uint8 [48, 48], hole bool [48, 48]).
    """
    from unveil.data.preprocess import SIZE
    from .align import _warp

    face = Face((0.0, 0.0, 0.0, 0.0), 1.0, np.asarray(landmarks, np.float64))
    painted, cover = wear_mask(rgb, face, styles, seed=seed)
    bare, masked = _warp(rgb, matrix, SIZE).astype(np.float32), _warp(painted, matrix, SIZE).astype(np.float32)
    lo, hi = bare.min(), bare.max()
    stretch = lambda x: np.clip(np.round((x - lo) * 255.0 / max(hi - lo, 1.0)), 0, 255)  # noqa: E731
    hole = _warp(cover.astype(np.float32), matrix, SIZE) > 0.5
    crop = np.where(hole, stretch(masked), stretch(bare) if hi > lo else bare).astype(np.uint8)
    return crop, hole
