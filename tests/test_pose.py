"""Head pose from the five landmarks (`unveil.photo.pose`): exact on a face turned by a known angle and
projected by the assumed camera, near frontal on the sample photo, and ordered by KDEF's head angles."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from unveil.photo import create_detector, head_pose
from unveil.photo.pose import FACE_3D, camera, rotation
from unveil.photo.read import read_photo
from unveil.pipelines.predict import MAX_YAW, sample_photo

pytestmark = pytest.mark.usefixtures("one_thread")
KDEF = Path(__file__).resolve().parents[2] / "shared" / "data" / "kdef"


def projected(yaw: float, pitch: float, roll: float, shape=(480, 640), at=(30.0, -20.0, 650.0)) -> np.ndarray:
    """The generic face's five points turned by (yaw, pitch, roll) and seen by the assumed camera."""
    points = camera(shape) @ (rotation(yaw, pitch, roll) @ FACE_3D.T + np.array(at)[:, None])
    return (points[:2] / points[2]).T


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (25, 0, 0), (-40, 10, 5), (60, -15, -10), (75, 5, 20)])
def test_a_face_turned_by_a_known_angle_gives_that_angle(yaw, pitch, roll):
    pose = head_pose(projected(yaw, pitch, roll), (480, 640))
    assert abs(pose.yaw - yaw) < 0.5 and abs(pose.pitch - pitch) < 0.5 and abs(pose.roll - roll) < 0.5


def test_the_signs_are_the_photos():
    """Yaw > 0: the nose towards the photo's right; roll > 0: the eyes' line falls to the right; pitch > 0: up."""
    turned, tilted, up, front = projected(30, 0, 0), projected(0, 0, 15), projected(0, 20, 0), projected(0, 0, 0)
    below_eyes = lambda p: p[2, 1] - p[:2, 1].mean()    # noqa: E731  how far the nose sits below the eyes
    assert turned[2, 0] > turned[:2, 0].mean() + 5      # the nose right of the eyes' middle
    assert tilted[1, 1] > tilted[0, 1] + 5              # the photo's right eye lower
    assert below_eyes(up) < below_eyes(front) - 5      # the nose closer to the eyes' line
    mirrored = turned.copy()
    mirrored[:, 0] = 640 - 1 - mirrored[:, 0]
    mirrored = mirrored[[1, 0, 2, 4, 3]]                # left and right swap in a mirror
    assert head_pose(mirrored, (480, 640)).yaw == pytest.approx(-head_pose(turned, (480, 640)).yaw, abs=2)


def test_the_sample_photo_is_near_frontal_and_nonsense_is_refused():
    rgb = sample_photo()[0]
    face = max(create_detector().detect(rgb), key=lambda f: f.score)
    assert abs(head_pose(face.landmarks, rgb.shape).yaw) < 20
    with pytest.raises(ValueError, match="finite"):
        head_pose(np.full((5, 2), np.nan), rgb.shape)


@pytest.mark.skipif(not (KDEF / "val").is_dir(), reason="KDEF is not in ../shared/data")
def test_kdef_head_angles_are_ordered_and_full_profiles_lie_beyond_the_limit():
    """One KDEF val person (35 photos): frontal near 0, half profiles inside the limit, full profiles beyond."""
    detector, yaws = create_detector(), defaultdict(list)
    photos = sorted(KDEF.glob("val/*/*.jpg"))
    person = photos[0].name[:4]
    for path in [p for p in photos if p.name.startswith(person)]:
        rgb, _ = read_photo(path)
        faces = detector.detect(rgb)
        if faces:
            code = re.search(r"(S|HL|HR|FL|FR)\.jpg$", path.name).group(1)
            yaws[code].append(head_pose(max(faces, key=lambda f: f.score).landmarks, rgb.shape).yaw)
    median = {code: float(np.median(v)) for code, v in yaws.items()}
    assert abs(median["S"]) < 10
    assert 15 < abs(median["HL"]) < MAX_YAW and 15 < abs(median["HR"]) < MAX_YAW
    assert np.sign(median["HL"]) == -np.sign(median["HR"])
    assert abs(median["FL"]) > MAX_YAW and abs(median["FR"]) > MAX_YAW
