"""Head pose from the five landmarks: yaw, pitch and roll in degrees, by fitting a generic 3-D face to them.

    pose = head_pose(face.landmarks, rgb.shape)     # Pose(yaw=-3.1, pitch=4.0, roll=1.2)

The five points (eyes, nose tip, mouth corners) of a mean adult face, in millimetres, are placed by
OpenCV's PnP solver so that a pinhole camera (focal length the photo's longer side, centred) projects
them onto the detected landmarks; the rotation found is read as intrinsic yaw-pitch-roll. A generic face
and five points give the pose to within several degrees: enough to tell a frontal face from a half or a
full profile (measured per KDEF angle in docs/real-faces.md), not a head tracker's precision.

Signs, as the photo shows them: yaw > 0 when the nose points towards the photo's right side, pitch > 0
when the face looks up, roll > 0 when the eyes' line runs down from the photo's left to its right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# A mean adult face (mm), in the camera's axes (x right, y down, z away from the camera), origin at the nose
# tip; in LANDMARK_NAMES order: the photo's left eye, right eye, nose tip, left and right mouth corners.
FACE_3D = np.array([[-32.0, -35.0, 30.0], [32.0, -35.0, 30.0], [0.0, 0.0, 0.0],
                    [-24.0, 30.0, 25.0], [24.0, 30.0, 25.0]])
# The nose's sideways offset from the eyes' middle, in half eye spacings, is NOSE_REACH * tan(yaw) for FACE_3D
# (30 mm of depth over 32 mm of half spacing).
NOSE_REACH = 30.0 / 32.0


@dataclass(frozen=True)
class Pose:
    yaw: float     # degrees; > 0: the nose points towards the photo's right
    pitch: float   # degrees; > 0: looking up
    roll: float    # degrees; > 0: the eyes' line falls to the photo's right

    def to_json(self) -> dict:
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1)}


def camera(shape: tuple[int, ...]) -> np.ndarray:
    """The pinhole camera assumed for a photo of `shape` (H, W, ...): focal length its longer side, centred."""
    h, w = shape[:2]
    f = float(max(h, w))
    return np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])


def head_pose(landmarks: np.ndarray, shape: tuple[int, ...]) -> Pose:
    """The head pose of one face from its landmarks float [5, 2] (x, y) in a photo of `shape` (H, W, ...)."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    if not np.isfinite(points).all():
        raise ValueError(f"landmarks must be finite numbers, got {points.tolist()}")
    matrix = camera(shape)
    # Start at the distance the eyes' spacing implies, turned by the yaw the nose's offset from the eyes'
    # middle suggests: started frontal, the iteration settles on a near-frontal solution for many full
    # profiles, whose landmarks crowd together (KDEF val: 26 of 139 full profiles under 50 degrees, 15 so).
    eyes = points[1] - points[0]
    spacing = max(float(np.linalg.norm(eyes)), 1.0)
    offset = float((points[2] - points[:2].mean(0)) @ eyes) / spacing / (spacing / 2)
    turn = rotation(math.degrees(math.atan(offset / NOSE_REACH)), 0.0, 0.0)
    depth = matrix[0, 0] * 64.0 / spacing
    start = np.linalg.inv(matrix) @ np.array([*points[2], 1.0]) * depth
    ok, rvec, _ = cv2.solvePnP(FACE_3D, points, matrix, None, cv2.Rodrigues(turn)[0], start.reshape(3, 1),
                               useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return Pose(float("nan"), float("nan"), float("nan"))
    return pose_of(cv2.Rodrigues(rvec)[0])


def pose_of(rotation: np.ndarray) -> Pose:
    """Yaw, pitch and roll of a face rotation (model -> camera) R = Ry(yaw) @ Rx(pitch) @ Rz(roll) in the
    camera's axes, with this module's signs."""
    r = np.asarray(rotation, np.float64)
    pitch = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    yaw = math.atan2(r[0, 2], r[2, 2])   # the camera's y axis points down: a turn to the photo's right is negative
    roll = math.atan2(r[1, 0], r[1, 1])
    return Pose(-math.degrees(yaw), -math.degrees(pitch), math.degrees(roll))


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The face rotation (model -> camera) of a pose in degrees: the inverse of `pose_of`."""
    y, p, r = (math.radians(v) for v in (-yaw, -pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz
