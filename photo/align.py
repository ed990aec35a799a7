"""Align a detected face to the FER2013 frame: 48x48 grayscale, eyes where FER2013's eyes are.

FER2013's faces were cropped by a face detector, not aligned on landmarks, so "the FER2013 frame" is
measured, not defined: ``scripts/measure_fer_frame.py`` runs our MTCNN on Training faces and averages
their landmarks (see ``FER_LANDMARKS``). A photo's face is then mapped by the similarity transform
that puts its eyes on those mean eyes, and stretched to span 0..255 like every face Unveil reads.

Coordinates follow OpenCV: the centre of pixel (row r, column c) is the point (x=c, y=r).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from unveil.data.preprocess import SIZE, minmax_normalize
from unveil.errors import UnveilError
from unveil.runtime import one_cpu_thread
from .face import Face

__all__ = ["FER_LANDMARKS", "align_face", "fer_landmarks", "rgb_to_gray", "similarity_transform",
           "transform_points"]

# Mean MTCNN landmarks of FER2013 Training faces, (x, y) in 48x48 pixel coordinates, in the order
# left eye, right eye, nose, left mouth corner, right mouth corner (image left = smaller x).
# Measured with
#   python scripts/measure_fer_frame.py --n 4000 --seed 0
# which printed: 4000 Training faces sampled, 3447 (86.2 %) with exactly one detection of score
# >= 0.9; mean x (std), mean y (std):
#   left_eye    14.91 (3.46)  17.87 (3.24)     right_eye   32.35 (3.63)  17.59 (3.31)
#   nose        23.54 (4.80)  27.76 (3.24)
#   mouth_left  16.30 (3.80)  37.00 (3.56)     mouth_right 30.95 (3.94)  36.81 (3.56)
#   eye centre (23.63, 17.73), inter-ocular distance 17.64 (3.19)
# (The medians are within 0.45 px of the means; the spread is FER2013's own: its faces were boxed by
# a detector, not aligned, and include tilted and turned heads.)
FER_LANDMARKS = np.array([
    [14.91, 17.87],
    [32.35, 17.59],
    [23.54, 27.76],
    [16.30, 37.00],
    [30.95, 36.81],
])  # fmt: skip

# Which landmarks the alignment fits: the two eyes (exactly: two points fix a similarity). Mainly by
# design: the mouth corners move with the expression (a smile widens and lifts them, an open mouth
# pulls them down) and are hidden under a mask, so a crop framed on them would depend on what we
# classify and on what we cannot see. The same script checked it on FER2013's own crops, aligned both
# ways: both moved them as little (median RMS shift of the frame 4.14 px eyes, 4.11 px five points),
# and the five-point fit's scale varied a little more with the class (class means 0.91-1.04, std
# 0.039, fear and surprise 0.95 / 0.96; eyes 0.94-1.04, std 0.034, fear and surprise 0.99 / 1.00).
ALIGN_POINTS = (0, 1)


def fer_landmarks(size: int = SIZE) -> np.ndarray:
    """``FER_LANDMARKS`` for a size x size crop (the same face layout, scaled)."""
    return (FER_LANDMARKS + 0.5) * (size / SIZE) - 0.5


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking ``src`` points onto ``dst``.

    Written with complex numbers, z -> a z + b, which is exactly a similarity (no shear, no
    mirror); two points give the exact fit.

    Shape:
        - src, dst: :math:`(P, 2)` (x, y), P >= 2
        - output: :math:`(2, 3)` float64 matrix, as ``cv2.warpAffine`` takes
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise UnveilError(f"similarity_transform needs two matching [P >= 2, 2] point arrays, "
                          f"got {src.shape} and {dst.shape}")
    z, w = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    zc, wc = z - z.mean(), w - w.mean()
    spread = np.sum(np.abs(zc) ** 2)
    if spread < 1e-12:
        raise UnveilError("similarity_transform: the source points coincide, no transform fits them")
    a = np.sum(np.conj(zc) * wc) / spread
    b = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (x, y) points with a 2x3 affine matrix (e.g. a face's landmarks into its crop).

    Shape:
        - matrix: :math:`(2, 3)`; points: :math:`(P, 2)`
        - output: :math:`(P, 2)`
    """
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> gray uint8 [H, W], bit-exact with PIL's ``convert("L")``.

    The FER2013 files were read through PIL, so a photo gets the same luma weights and rounding
    (ITU-R BT.601 in 16-bit fixed point). A gray [H, W] image is returned as it is.
    """
    if image.ndim == 2:
        return image
    rgb = image.astype(np.uint32)
    luma = rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000
    return (luma >> 16).astype(np.uint8)


def align_face(image: np.ndarray, face: Face, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``face`` from ``image`` in the FER2013 frame.

    Grayscale (as PIL), a similarity transform that puts the detected eyes on ``FER_LANDMARKS``'
    eyes, replicated borders where the frame leaves the photo, then the per-image min-max stretch of
    ``unveil.data.preprocess.minmax_normalize``.

    Args:
        image: the photo the face was detected in, RGB uint8 [H, W, 3] or gray uint8 [H, W].
        face: a detection from ``FaceDetector.detect(image)``.
        size: side of the crop (48 for the models).

    Returns:
        ``(crop, matrix)``: uint8 [size, size] and the float64 2x3 matrix mapping photo
        coordinates to crop coordinates (use ``transform_points`` for landmarks or box corners).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise UnveilError(f"image must be a uint8 numpy array [H, W, 3] or [H, W], got "
                          f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    if image.ndim == 3 and image.shape[2] != 3:
        raise UnveilError(f"image must be RGB [H, W, 3] or grayscale [H, W], got shape {image.shape}")
    pick = list(ALIGN_POINTS)
    matrix = similarity_transform(face.landmarks[pick], fer_landmarks(size)[pick])
    crop = _warp(image, matrix, size)
    with one_cpu_thread():
        crop = minmax_normalize(torch.from_numpy(crop)[None])[0].numpy()
    return crop, matrix


def _warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``cv2.warpAffine`` of the face's neighbourhood, shrunk first with area averaging.

    A photo's face is usually several times larger than the crop, and warpAffine's bilinear
    sampling would alias (FER2013's faces are smooth). So the part of the photo the crop sees is
    cut out, shrunk with INTER_AREA to about the crop's scale, and only the remaining rotation and
    small scale go through warpAffine. Cutting first also keeps the cost independent of the
    photo's size.
    """
    height, width = image.shape[:2]
    scale = float(np.hypot(*matrix[:, 0]))
    inverse = cv2.invertAffineTransform(matrix)
    corners = transform_points(inverse, [[-1, -1], [size, -1], [-1, size], [size, size]])
    # A margin of two crop pixels for the interpolation; clipped to the photo, whose own border is
    # then replicated exactly as it would be on the whole photo.
    margin = int(np.ceil(2 / min(scale, 1.0))) + 1
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + margin + 1, [width, height])
    if x0 >= x1 or y0 >= y1:  # a crop wholly outside the photo (not a face found in it): its nearest pixel
        x0, y0 = min(x0, width - 1), min(y0, height - 1)
        x1, y1 = x0 + 1, y0 + 1
    gray = rgb_to_gray(image[y0:y1, x0:x1])
    if scale < 1:
        shrunk = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        ky, kx = shrunk[1] / gray.shape[0], shrunk[0] / gray.shape[1]
        gray = cv2.resize(gray, shrunk, interpolation=cv2.INTER_AREA)
    else:
        kx = ky = 1.0
    # Photo -> cut-out (shift) -> shrunk cut-out (edge-preserving resize) -> crop.
    to_cut = np.array([[kx, 0, (0.5 - x0) * kx - 0.5], [0, ky, (0.5 - y0) * ky - 0.5], [0, 0, 1]])
    remaining = np.vstack([matrix, [0, 0, 1]]) @ np.linalg.inv(to_cut)
    return cv2.warpAffine(gray, remaining[:2], (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
