"""Faces followed through a video, each with an id that lasts.

Detecting every frame costs too much on a CPU (the detector is most of a frame's time), so the detector
runs every ``every`` frames and, in between, each face's box and landmarks are carried by the motion of
the face's pixels: corners found inside the box, followed with pyramidal Lucas-Kanade optical flow,
and fitted with a similarity (RANSAC, so a few corners on the background do not drag the face). On a
detection frame, detections are matched to the carried boxes by IoU; a face the detector misses keeps
its id for ``patience`` more rounds (a masked face is sometimes missed once), and a new face gets a new id.

    tracker = FaceTracker(create_detector(**video_detector_settings("retinaface")), every=5)
    for frame in video.frames():
        for track in tracker.update(frame.rgb):       # Track(id, face: Face), in the frame's coordinates
            ...
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from unveil.photo import Face
from unveil.photo.align import transform_points
from unveil.photo.boxes import box_ops

__all__ = ["DETECT_SIDE", "Track", "FaceTracker", "video_detector_settings", "follow_motion"]

DETECT_SIDE = 320    # px: the detector sees a frame shrunk to this longer side (a 640x480 frame: 4x fewer pixels)
MIN_CORNERS = 6      # fewer corners followed than this: the face keeps its place for this frame


@dataclass
class Track:
    id: int
    face: Face
    missed: int = 0      # detection rounds in a row that did not find this face


def video_detector_settings(name: str, side: int = DETECT_SIDE) -> dict:
    """``create_detector`` arguments for video frames: one pass over the whole frame shrunk to ``side``
    pixels, no border (a frame is a scene, not a tight crop). MTCNN keeps its own settings."""
    if name == "retinaface":
        return {"name": name, "passes": ((side, 0.0),), "max_side": side}
    return {"name": name}


class FaceTracker:
    """Faces with ids through consecutive frames (see the module's docstring).

    Args:
        detector: any detector (``create_detector``).
        every: detect on frames 0, every, 2 * every, ...; 1 detects on every frame.
        min_face: detections smaller than this (box's longer side, px) are not followed.
        match_iou: a detection takes over a followed face whose box overlaps it this much.
        patience: detection rounds a followed face survives without being detected.
    """

    def __init__(self, detector, every: int = 5, min_face: float = 40.0, match_iou: float = 0.3, patience: int = 1):
        self.detector, self.every, self.min_face = detector, max(1, int(every)), min_face
        self.match_iou, self.patience = match_iou, patience
        self.tracks: list[Track] = []
        self.next_id, self.frame, self.previous = 1, 0, None

    def update(self, rgb: np.ndarray) -> list[Track]:
        """The faces in this frame (the next one of the video), by id."""
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self.previous is not None:
            for track in self.tracks:
                track.face = follow_motion(self.previous, gray, track.face)
        if self.frame % self.every == 0:
            self._match([f for f in self.detector.detect(rgb) if f.size >= self.min_face])
        self.previous, self.frame = gray, self.frame + 1
        return list(self.tracks)

    def _match(self, found: list[Face]) -> None:
        """Detections take over the followed faces they overlap most (greedy by IoU); the rest are new faces."""
        taken_tracks, taken_found = set(), set()
        if self.tracks and found:
            iou = box_ops().box_iou(_boxes([t.face for t in self.tracks]), _boxes(found)).numpy()
            for flat in np.argsort(-iou, axis=None):
                t, f = np.unravel_index(flat, iou.shape)
                if iou[t, f] < self.match_iou:
                    break
                if t not in taken_tracks and f not in taken_found:
                    self.tracks[t].face, self.tracks[t].missed = found[f], 0
                    taken_tracks.add(t), taken_found.add(f)
        for t, track in enumerate(self.tracks):
            track.missed += t not in taken_tracks
        self.tracks = [t for t in self.tracks if t.missed <= self.patience]
        for f, face in enumerate(found):
            if f not in taken_found:
                self.tracks.append(Track(self.next_id, face))
                self.next_id += 1


def follow_motion(previous: np.ndarray, current: np.ndarray, face: Face) -> Face:
    """``face`` carried from the gray frame ``previous`` to ``current`` by its pixels' motion (a similarity
    fitted to corners followed with optical flow); unchanged where too few corners could be followed."""
    height, width = previous.shape
    x0, y0, x1, y1 = face.box
    left, top = max(0, int(x0)), max(0, int(y0))
    right, bottom = min(width, int(np.ceil(x1)) + 1), min(height, int(np.ceil(y1)) + 1)
    if right - left < 8 or bottom - top < 8:
        return face
    corners = cv2.goodFeaturesToTrack(previous[top:bottom, left:right], maxCorners=40, qualityLevel=0.01,
                                      minDistance=4)
    if corners is None or len(corners) < MIN_CORNERS:
        return face
    corners = (corners + np.float32([left, top])).astype(np.float32)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, None, winSize=(21, 21), maxLevel=3)
    good = status.ravel() == 1
    if good.sum() < MIN_CORNERS:
        return face
    matrix, _ = cv2.estimateAffinePartial2D(corners[good], moved[good], method=cv2.RANSAC, ransacReprojThreshold=2.0)
    return face if matrix is None else moved_face(face, matrix)


def moved_face(face: Face, matrix: np.ndarray) -> Face:
    """The face under a similarity: landmarks mapped, the box's centre mapped and its sides scaled (an
    upright box, as detectors give, not the bounding box of a rotated one)."""
    x0, y0, x1, y1 = face.box
    centre = transform_points(matrix, [[(x0 + x1) / 2, (y0 + y1) / 2]])[0]
    half = np.array([x1 - x0, y1 - y0]) / 2 * float(np.hypot(*matrix[:, 0]))
    box = tuple(float(v) for v in (*(centre - half), *(centre + half)))
    return Face(box, face.score, transform_points(matrix, face.landmarks))


def _boxes(faces: list[Face]) -> torch.Tensor:
    return torch.tensor([f.box for f in faces], dtype=torch.float64)
