"""Tests for unveil.photo: both detectors on a real photo, alignment to the FER2013 frame, holes from landmarks."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

skimage_data = pytest.importorskip("skimage.data")

from unveil.errors import UnveilError  # noqa: E402
from unveil.occlusion import lower_half  # noqa: E402
from unveil.photo import (  # noqa: E402
    FER_LANDMARKS,
    MTCNN,
    Face,
    RetinaFace,
    align_face,
    create_detector,
    landmark_hole,
    lower_half_hole,
    rgb_to_gray,
    similarity_transform,
    transform_points,
)
from unveil.photo import mtcnn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

# The astronaut's landmarks from facenet-pytorch 2.5.3's own MTCNN on the same weights (min face 40).
# Its coordinates run about 0.8 px high (Matlab's 1-based pixels), ours are OpenCV's: within 3 px.
# RetinaFace was trained on other landmark annotations (its mouth corners sit about 4 px higher on this
# 112 px face): within 5 % of the face's size.
LANDMARK_TOLERANCE = {"mtcnn": 3.0, "retinaface": 6.0}
# RetinaFace regresses its landmarks from anchors at strides 8-32 where O-Net refines them on a 48x48
# crop: on this photo they move about 1.5x as much under a flip, a rotation or a rescale.
NOISE = {"mtcnn": 1.0, "retinaface": 1.5}
REFERENCE_LANDMARKS = np.array([[205.37, 101.48], [246.86, 103.11], [225.06, 129.24],
                                [201.15, 139.58], [245.14, 141.09]])


@pytest.fixture(scope="module", params=["retinaface", "mtcnn"])
def detector(request):
    """Each detector, searching faces of 40 px and more (the size predict can use)."""
    return create_detector(request.param, min_face=40)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def face(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    return faces[0]


def mirrored(points: np.ndarray, width: int) -> np.ndarray:
    """Points of a horizontally flipped image, left/right landmarks swapped back into their order."""
    out = points[[1, 0, 2, 4, 3]].copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out


# --------------------------------------------------------------------------- detection


def test_astronaut_has_one_face_with_its_landmarks(face, detector):
    assert face.score > 0.99
    np.testing.assert_allclose(face.landmarks, REFERENCE_LANDMARKS, atol=LANDMARK_TOLERANCE[detector.name])
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    assert lx < nx < rx and mlx < mrx  # "left" is the image's left
    assert max(ly, ry) < ny < min(mly, mry)  # eyes, then nose, then mouth down the face
    x0, y0, x1, y1 = face.box
    assert (face.landmarks >= [x0, y0]).all() and (face.landmarks <= [x1, y1]).all()
    assert 80 < face.size < 130


def test_grayscale_photo_finds_the_same_face(detector, astronaut, face):
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    [found] = detector.detect(gray)
    np.testing.assert_allclose(found.landmarks, face.landmarks, atol=2.0)


def test_blank_and_noise_have_no_face(detector):
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    rng = np.random.default_rng(0)
    assert detector.detect(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) == []
    assert detector.detect(rng.integers(0, 256, (200, 300), dtype=np.uint8)) == []
    assert detector.detect(np.zeros((20, 30, 3), np.uint8)) == []  # smaller than min_face


def test_flipped_photo_gives_a_mirrored_face(detector, astronaut, face):
    width = astronaut.shape[1]
    [flipped] = detector.detect(np.ascontiguousarray(astronaut[:, ::-1]))
    np.testing.assert_allclose(mirrored(flipped.landmarks, width), face.landmarks, atol=2.0 * NOISE[detector.name])
    x0, y0, x1, y1 = flipped.box
    np.testing.assert_allclose([width - 1 - x1, y0, width - 1 - x0, y1], face.box, atol=8.0)


def test_faces_smaller_than_min_face_are_not_reported(astronaut, face, detector):
    """The documented behaviour: a face under `min_face` pixels is not reported at all, because a
    20 px face holds too little for a 48x48 crop; lowering min_face finds it. (The shrunk photo sits on
    a gray canvas, as a small face in a larger photo does.)"""
    k = 20 / face.size
    small = cv2.resize(astronaut, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    border = (320 - small.shape[0]) // 2
    canvas = cv2.copyMakeBorder(small, border, border, border, border, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    assert detector.detect(canvas) == []
    [tiny] = create_detector(detector.name, min_face=12, score=0.7).detect(canvas)
    assert 12 <= tiny.size < 40
    centre = lambda f: np.array([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2])  # noqa: E731
    np.testing.assert_allclose((centre(tiny) - border) / k, centre(face), atol=0.25 * face.size)  # the same face


def test_bad_inputs_are_clear_errors(detector):
    with pytest.raises(UnveilError, match="uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(UnveilError, match=r"\[H, W, 3\]"):
        detector.detect(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(UnveilError, match="min_face"):
        create_detector(detector.name, min_face=5)
    with pytest.raises(UnveilError, match="score"):
        create_detector(detector.name, score=1.5)
    with pytest.raises(UnveilError, match="unknown face detector 'yolo'; registered: mtcnn, retinaface"):
        create_detector("yolo")


def test_mtcnn_stage_thresholds_are_checked_and_used(astronaut):
    """A stricter O-Net threshold or final score never adds a face, and thresholds outside [0, 1) are refused."""
    with pytest.raises(UnveilError, match="thresholds"):
        MTCNN(thresholds=(0.6, 0.7, 1.0))
    loose = MTCNN(min_face=20, score=0.5).detect(astronaut)
    strict = MTCNN(min_face=20, score=0.99).detect(astronaut)
    assert len(strict) <= len(loose) and all(f.score >= 0.99 for f in strict)
    assert all(f.score >= 0.5 for f in loose)


def test_retinaface_score_and_passes_are_checked_and_used(astronaut):
    """The cut-off is applied; a second pass runs only where the first found nothing; bad passes are refused."""
    for score in (0.3, 0.9):
        assert all(f.score >= score for f in RetinaFace(score=score).detect(astronaut))
    with pytest.raises(UnveilError, match="passes"):
        RetinaFace(passes=())
    with pytest.raises(UnveilError, match="pad"):
        RetinaFace(passes=((480, 2.0),))
    calls = []
    twice = RetinaFace(passes=((480, 0.3), (960, 0.0)))
    real = twice._pass
    twice._pass = lambda rgb, side, pad: calls.append(side) or real(rgb, side, pad)
    twice.detect(astronaut)
    assert calls == [480]  # the face was found in the first pass
    twice.detect(np.full((120, 160, 3), 128, np.uint8))
    assert calls == [480, 480, 960]


def test_retinaface_weights_are_the_converted_published_model():
    """The shipped weights load by name with their sidecar's licence, and the network is the one converted."""
    from unveil.checkpoint import read_sidecar
    from unveil.shipped import shipped_checkpoint

    meta = read_sidecar(shipped_checkpoint("face_detector"), kind="face_detector")
    assert "MIT" in meta["licence"] and meta["arch"] == "retinaface_mnet025"
    assert meta["converted"]["largest_difference"]["probability"] < 0.005


def test_missing_facenet_pytorch_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "facenet_pytorch" else real(name, *args))
    with pytest.raises(UnveilError, match=r'pip install "facenet-pytorch>=2.5,<2.6"'):
        MTCNN()


def test_unreadable_weights_name_the_file(monkeypatch, tmp_path):
    (tmp_path / "pnet.pt").write_bytes(b"not a state dict")
    monkeypatch.setattr(mtcnn, "weights_dir", lambda: tmp_path)
    with pytest.raises(UnveilError, match=r"pnet\.pt: cannot load"):
        MTCNN()


def test_photo_package_is_core():
    """unveil.photo imports no stage, and only reads facenet-pytorch's files (never its code)."""
    code = ("import sys, numpy as np; from unveil.photo import create_detector; "
            "[create_detector(n).detect(np.zeros((64, 64, 3), np.uint8)) for n in ('mtcnn', 'retinaface')]; "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'facenet_pytorch' or "
            "m.startswith(('unveil.classify', 'unveil.inpaint', 'unveil.pipelines'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --------------------------------------------------------------------------- alignment


def test_rgb_to_gray_is_pil_convert_l():
    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rgb_to_gray(rgb), np.asarray(Image.fromarray(rgb).convert("L")))


def test_similarity_transform_recovers_a_known_one():
    angle, scale, shift = 0.3, 1.7, np.array([4.0, -2.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.random.default_rng(1).normal(size=(5, 2)) * 10
    matrix = similarity_transform(src, src @ rot.T + shift)
    np.testing.assert_allclose(matrix, np.hstack([rot, shift[:, None]]), atol=1e-9)
    with pytest.raises(UnveilError, match="coincide"):
        similarity_transform(np.ones((2, 2)), np.zeros((2, 2)))


def test_aligned_astronaut_is_a_fer_frame(astronaut, face, detector):
    crop, matrix = align_face(astronaut, face)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop.min() == 0 and crop.max() == 255
    in_crop = transform_points(matrix, face.landmarks)
    np.testing.assert_allclose(in_crop[:2], FER_LANDMARKS[:2], atol=1e-6)  # the eyes are fitted exactly
    assert (in_crop[:2, 1] < 24).all()  # upper half: visible under the lower-half occlusion
    np.testing.assert_allclose(in_crop[2:], FER_LANDMARKS[2:], atol=4.0 * NOISE[detector.name])  # an ordinary face
    # The crop is the face: darker eyes than the skin between them.
    eyes = [crop[round(y), round(x)] for x, y in in_crop[:2]]
    assert max(eyes) < crop[18:21, 22:26].mean()


def test_alignment_undoes_rotation_and_scale(astronaut):
    """The same face rotated by 15 degrees and shrunk to 60 % gives about the same crop. (With MTCNN's
    landmarks: this tests the alignment. RetinaFace's eyes move 3-4 px more here, and the crops with them.)"""
    detector = MTCNN()
    [face] = detector.detect(astronaut)
    rot = cv2.getRotationMatrix2D((256.0, 256.0), 15, 0.6)
    turned = cv2.warpAffine(astronaut, rot, (512, 512), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    other = detector.detect(turned)[0]  # the reflected border may hold a mirrored half face too
    np.testing.assert_allclose(other.landmarks, transform_points(rot, face.landmarks), atol=3.0)
    a, _ = align_face(astronaut, face)
    b, _ = align_face(turned, other)
    assert np.abs(a.astype(float) - b.astype(float)).mean() < 16  # of 255
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def test_alignment_does_not_depend_on_the_photo_s_resolution(astronaut, face, detector):
    """The same face in a photo three times larger (shrunk with area averaging before the warp)
    gives the same crop, up to resampling."""
    big = cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    scaled = Face(tuple((np.array(face.box) + 0.5) * 3 - 0.5), face.score, (face.landmarks + 0.5) * 3 - 0.5)
    a, _ = align_face(astronaut, face)
    b, _ = align_face(big, scaled)
    # of 255; a plain warpAffine: 8.7 on MTCNN's landmarks
    assert np.abs(a.astype(float) - b.astype(float)).mean() < 6 * NOISE[detector.name]


def test_align_accepts_gray_and_other_sizes(astronaut, face):
    gray = rgb_to_gray(astronaut)
    crop48, _ = align_face(astronaut, face)
    np.testing.assert_array_equal(align_face(gray, face)[0], crop48)
    big, matrix = align_face(astronaut, face, size=96)
    assert big.shape == (96, 96)
    np.testing.assert_allclose(transform_points(matrix, face.landmarks[:2]), (FER_LANDMARKS[:2] + 0.5) * 2 - 0.5)


def test_face_at_the_photo_edge_gets_replicated_borders(detector, astronaut):
    edge = np.ascontiguousarray(astronaut[40:, 170:])  # the face's left cheek touches the left edge
    [found] = detector.detect(edge)
    crop, matrix = align_face(edge, found)
    assert crop.shape == (48, 48) and crop.max() == 255
    left = transform_points(matrix, [[0, y] for y in range(0, 200, 20)])[:, 0]
    assert (left > 0).any()  # the crop does reach past the photo's edge


# --------------------------------------------------------------------------- holes


def test_lower_half_hole_is_the_occlusion_module_s():
    hole = lower_half_hole()
    assert hole.shape == (1, 1, 48, 48)
    assert torch.equal(hole, lower_half(torch.zeros(1, 1, 48, 48))[1])
    assert hole[0, 0, 24:].eq(1).all() and hole[0, 0, :24].eq(0).all()


def test_landmark_hole_covers_the_mouth_not_the_eyes(astronaut, face):
    _, matrix = align_face(astronaut, face)
    points = transform_points(matrix, face.landmarks)
    hole = landmark_hole(points)
    assert hole.shape == (1, 1, 48, 48) and hole.dtype == torch.float32
    assert set(hole.unique().tolist()) == {0.0, 1.0}
    grid = hole[0, 0]
    for x, y in points[3:]:  # both mouth corners, with a pixel around them
        assert grid[round(y) - 1:round(y) + 2, round(x) - 1:round(x) + 2].eq(1).all()
    for x, y in points[:2]:  # both eyes, with two pixels around them
        assert grid[round(y) - 2:round(y) + 3, round(x) - 2:round(x) + 3].eq(0).all()
    eye_row = points[:2, 1].max()
    assert grid[: int(eye_row) + 3].eq(0).all()  # nothing near the eye line
    assert grid[round(points[2, 1]), round(points[2, 0])] == 1  # the nose tip is hidden
    assert not torch.equal(hole, lower_half_hole())
    assert 0.3 < hole.mean() < 0.5  # a mask, not half the frame: its corners stay visible


def test_landmark_hole_follows_a_tilted_face():
    """On a face rolled by 20 degrees the hole rolls with it: corners covered, eyes clear."""
    centre = np.array([24.0, 24.0])
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (FER_LANDMARKS - centre) @ rot.T + centre
    grid = landmark_hole(points)[0, 0]
    for x, y in points[3:]:
        assert grid[round(y), round(x)] == 1
    for x, y in points[:2]:
        assert grid[round(y) - 2:round(y) + 3, round(x) - 2:round(x) + 3].eq(0).all()


def test_landmark_hole_rejects_what_is_not_a_face():
    with pytest.raises(UnveilError, match=r"\[5, 2\]"):
        landmark_hole(np.zeros((4, 2)))
    upside_down = FER_LANDMARKS.copy()
    upside_down[:, 1] = 47 - upside_down[:, 1]
    with pytest.raises(UnveilError, match="not below the eyes"):
        landmark_hole(upside_down)


def test_detections_whose_landmarks_are_not_a_face_s_are_left_out():
    from unveil.photo.hole import upright_landmarks
    from unveil.photo.face import faces_from

    tilted = (FER_LANDMARKS - 24) @ np.array([[0.8, -0.6], [0.6, 0.8]]).T + 24
    assert upright_landmarks(FER_LANDMARKS) and upright_landmarks(tilted)
    mouth_up = FER_LANDMARKS.copy()
    mouth_up[3:, 1] = 10.0  # mouth corners above the eyes, as RetinaFace gives on a few real photos
    assert not upright_landmarks(mouth_up) and not upright_landmarks(FER_LANDMARKS[[1, 0, 2, 4, 3]])
    boxes, points = torch.tensor([[0.0, 0, 48, 48]] * 2), torch.from_numpy(np.stack([FER_LANDMARKS, mouth_up]) + 0.5)
    faces = faces_from(boxes, torch.tensor([0.9, 0.99]), points)
    assert len(faces) == 1 and faces[0].score == pytest.approx(0.9)
    assert np.allclose(faces[0].landmarks, FER_LANDMARKS)  # edges -> pixel centres
