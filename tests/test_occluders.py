"""Occluders other than masks (`unveil.occluders`): painted only below the eyes, exact holes, every style
drawn, reproducible by seed, batched alike at any size; and motion blur (`PhotoLike.motion`)."""

from __future__ import annotations

import pytest
import torch

from unveil.augment import PhotoLike, _motion_blur
from unveil.errors import UnveilError
from unveil.occluders import OCCLUDER_STYLES, paint_occluder


@pytest.fixture(scope="module")
def faces():
    return torch.rand(64, 1, 48, 48, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("style", OCCLUDER_STYLES)
def test_each_style_covers_part_of_the_lower_face_and_never_the_eyes(faces, style):
    occluded, hole = paint_occluder(faces, (style,), seed=1)
    assert not hole[:, :, :21].any()                             # rows 0-20: the eyes stay visible
    assert torch.equal(occluded[hole == 0], faces[hole == 0])    # only the hole's pixels change
    share = hole.mean((1, 2, 3))
    assert (share > 0.03).all() and (share < 0.6).all()
    assert (hole[:, :, 30:40, 16:32].mean((1, 2, 3)) > 0).float().mean() > 0.6   # mostly over the mouth


def test_styles_are_drawn_per_face_and_reproducible(faces):
    a, hole_a = paint_occluder(faces, seed=3)
    b, hole_b = paint_occluder(faces, seed=3)
    c, _ = paint_occluder(faces, seed=4)
    assert torch.equal(a, b) and torch.equal(hole_a, hole_b) and not torch.equal(a, c)
    shapes = {tuple(hole_a[k].flatten().nonzero().flatten()[:5].tolist()) for k in range(len(faces))}
    assert len(shapes) > 50                                          # every face its own occluder
    big, big_hole = paint_occluder(torch.nn.functional.interpolate(faces[:4], size=96), seed=3)
    small = torch.nn.functional.avg_pool2d(big_hole, 2)
    assert ((small > 0.5).float() - hole_a[:4]).abs().mean() < 0.05   # the same occluders at twice the size


def test_bad_input_is_named():
    with pytest.raises(UnveilError, match="occluder styles"):
        paint_occluder(torch.rand(1, 1, 48, 48), ("umbrella",))
    with pytest.raises(UnveilError, match=r"\[N, 1, H, W\]"):
        paint_occluder(torch.rand(1, 3, 48, 48))


def test_motion_blur_smears_along_its_line_and_keeps_a_still_face():
    dot = torch.zeros(2, 1, 15, 15)
    dot[:, :, 7, 7] = 1
    smeared = _motion_blur(dot, torch.tensor([0.0, 7.0]), torch.tensor([0.0, 0.0]))
    assert torch.equal(smeared[0], dot[0])
    assert torch.allclose(smeared[1, 0, 7, 4:11], torch.full((7,), 1 / 7)) and smeared[1, 0, 6].sum() == 0
    x = torch.rand(8, 1, 48, 48)
    assert torch.equal(PhotoLike()(x, torch.Generator().manual_seed(0)),
                       PhotoLike(motion=0.0)(x, torch.Generator().manual_seed(0)))   # off by default, same draws
