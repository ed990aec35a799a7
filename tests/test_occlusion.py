"""Tests for unveil.occlusion: lower-half crops, synthetic face masks, the Occlusion config."""

import json

import pytest
import torch

from unveil.occlusion import MASK_STYLES, OCCLUSIONS, Occlusion, face_mask, lower_half

# Regions at 48x48 (rows, columns), inclusive pixel ranges from the module's contract.
FACE_BOX = ((20, 47), (3, 45))
MOUTH = ((31, 38), (17, 31))


def random_images(n=8, size=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g)


def scaled(region, size):
    """Pixel ranges of a 48x48 region at another size (pixel centres inside the scaled span)."""
    (r0, r1), (c0, c1) = region
    s = size / 48

    def span(a, b):
        return slice(int(torch.tensor(a * s).ceil()), int(torch.tensor((b + 1) * s).floor()))

    return span(r0, r1), span(c0, c1)


def outside(hole, region):
    rows, cols = scaled(region, hole.shape[-1])
    rest = hole.clone()
    rest[:, :, rows, cols] = 0
    return rest


# --------------------------------------------------------------------------- lower_half


@pytest.mark.parametrize("start_row, fill", [(24, 0.0), (20, 0.5), (0, 1.0), (47, 0.25)])
def test_lower_half_hides_exactly_the_rows(start_row, fill):
    images = random_images()
    occluded, hole = lower_half(images, start_row=start_row, fill=fill)
    assert occluded.shape == hole.shape == images.shape
    assert torch.all(occluded[:, :, start_row:] == fill)
    assert torch.equal(occluded[:, :, :start_row], images[:, :, :start_row])
    expected = torch.zeros_like(images)
    expected[:, :, start_row:] = 1
    assert torch.equal(hole, expected)


def test_lower_half_changed_pixels_inside_hole():
    images = random_images()
    occluded, hole = lower_half(images)
    changed = occluded != images
    assert torch.all(hole[changed] == 1)


@pytest.mark.parametrize("start_row", [-1, 48, 100])
def test_lower_half_rejects_bad_start_row(start_row):
    with pytest.raises(ValueError, match="start_row"):
        lower_half(random_images(), start_row=start_row)


def test_lower_half_rejects_bad_fill():
    with pytest.raises(ValueError, match="fill"):
        lower_half(random_images(), fill=1.5)


@pytest.mark.parametrize(
    "images",
    [torch.rand(1, 48, 48), torch.rand(2, 3, 48, 48), torch.zeros(2, 1, 48, 48, dtype=torch.uint8)],
)
def test_rejects_bad_images(images):
    with pytest.raises(ValueError, match="images"):
        lower_half(images)
    with pytest.raises(ValueError, match="images"):
        face_mask(images)


# --------------------------------------------------------------------------- face_mask


@pytest.mark.parametrize("style", MASK_STYLES)
def test_mask_inside_face_box_and_covers_mouth(style):
    _, hole = face_mask(random_images(128), styles=(style,), seed=1)
    assert outside(hole, FACE_BOX).sum() == 0
    rows, cols = scaled(MOUTH, 48)
    assert torch.all(hole[:, :, rows, cols] == 1)


@pytest.mark.parametrize("jitter", [0.0, 5.0])
def test_mask_geometry_holds_for_any_jitter(jitter):
    _, hole = face_mask(random_images(64), seed=2, jitter=jitter)
    rows, cols = scaled(MOUTH, 48)
    assert torch.all(hole[:, :, rows, cols] == 1)
    assert outside(hole, FACE_BOX).sum() == 0


def test_mask_zero_jitter_fixes_the_outline():
    _, hole = face_mask(random_images(16), styles="surgical", seed=3, jitter=0.0)
    assert torch.all(hole == hole[:1])


def test_mask_visible_pixels_exact_and_range():
    images = random_images(64)
    occluded, hole = face_mask(images, seed=4)
    visible = hole == 0
    assert torch.equal(occluded[visible], images[visible])
    assert torch.all((occluded != images) <= (hole == 1))  # changed ⊆ hole
    assert occluded.min() >= 0 and occluded.max() <= 1
    assert set(hole.unique().tolist()) == {0.0, 1.0}
    assert occluded.dtype == images.dtype and hole.dtype == images.dtype


def test_mask_deterministic_and_seed_dependent():
    images = random_images(16)
    a, hole_a = face_mask(images, seed=7)
    b, hole_b = face_mask(images, seed=7)
    c, _ = face_mask(images, seed=8)
    assert torch.equal(a, b) and torch.equal(hole_a, hole_b)
    assert not torch.equal(a, c)


def test_every_style_appears_in_a_batch():
    # An image's draws do not depend on `styles`, so each image of a mixed batch equals
    # exactly one single-style render: that tells us which style it got.
    images = random_images(64)
    mixed, _ = face_mask(images, seed=5)
    per_style = torch.stack([face_mask(images, styles=(s,), seed=5)[0] for s in MASK_STYLES])
    matches = (per_style == mixed).flatten(2).all(-1)  # [styles, N]
    assert torch.all(matches.sum(0) == 1)
    assert torch.all(matches.sum(1) > 0)


def test_mask_batch_of_one_and_64px():
    occluded, hole = face_mask(random_images(1), seed=0)
    assert occluded.shape == hole.shape == (1, 1, 48, 48)
    images = random_images(32, size=64)
    occluded, hole = face_mask(images, seed=0)
    assert occluded.shape == hole.shape == (32, 1, 64, 64)
    rows, cols = scaled(MOUTH, 64)
    assert torch.all(hole[:, :, rows, cols] == 1)
    assert outside(hole, FACE_BOX).sum() == 0
    assert torch.equal(occluded[hole == 0], images[hole == 0])


def test_mask_rejects_bad_arguments():
    images = random_images(2)
    with pytest.raises(ValueError, match="valid styles"):
        face_mask(images, styles=("bandana",))
    with pytest.raises(ValueError, match="at least one"):
        face_mask(images, styles=())
    with pytest.raises(ValueError, match="jitter"):
        face_mask(images, jitter=-1)
    with pytest.raises(ValueError, match="16x16"):
        face_mask(torch.rand(1, 1, 8, 8))


# --------------------------------------------------------------------------- Occlusion


@pytest.mark.parametrize(
    "text",
    ["none", "lower-half", "lower-half:start_row=20,fill=0.5", "mask", "mask:styles=surgical+n95,seed=3"],
)
def test_parse_str_round_trip(text):
    occ = Occlusion.parse(text)
    assert str(occ) == text
    assert Occlusion.parse(str(occ)) == occ
    assert Occlusion.from_dict(json.loads(json.dumps(occ.to_dict()))) == occ


def test_parse_values():
    occ = Occlusion.parse(" mask : styles = cloth+black , seed = 9 ")
    assert occ == Occlusion(kind="mask", styles=("cloth", "black"), seed=9)
    assert Occlusion.parse("lower-half:fill=1") == Occlusion(fill=1.0)
    assert Occlusion(kind="mask", styles=["n95"]).styles == ("n95",)


@pytest.mark.parametrize(
    "occ",
    [Occlusion(), Occlusion("none", seed=4), Occlusion("mask", start_row=30, fill=0.1), Occlusion("mask", seed=-2)],
)
def test_str_round_trips_any_instance(occ):
    assert Occlusion.parse(str(occ)) == occ
    assert Occlusion.from_dict(occ.to_dict()) == occ


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "non-empty"),
        ("scarf", "valid kinds"),
        ("mask:", "key=value"),
        ("mask:seed", "key=value"),
        ("mask:seed=3,", "key=value"),
        ("mask:colour=red", "valid options"),
        ("mask:seed=x", "must be an int"),
        ("mask:seed=1,seed=2", "twice"),
        ("mask:styles=surgical+bandana", "valid styles"),
        ("lower-half:fill=2", "fill"),
        ("lower-half:start_row=-3", "start_row"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(ValueError, match=message):
        Occlusion.parse(text)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown occlusion key"):
        Occlusion.from_dict({"kind": "mask", "colour": "red"})


def test_call_dispatches_on_kind():
    images = random_images(4)
    occluded, hole = Occlusion("none")(images)
    assert occluded is images and torch.equal(hole, torch.zeros_like(images))
    assert all(torch.equal(a, b) for a, b in zip(Occlusion(start_row=20)(images), lower_half(images, 20)))
    mask = Occlusion("mask", styles=("cloth",), seed=2)
    assert torch.equal(mask(images)[0], face_mask(images, ("cloth",), seed=2)[0])
    assert torch.equal(mask(images, seed=6)[1], face_mask(images, ("cloth",), seed=6)[1])
    assert set(OCCLUSIONS) == {"none", "lower-half", "mask", "mixed", "photo-mask"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    images = random_images(32)
    cuda = images.cuda()
    for occ in (Occlusion("none"), Occlusion(), Occlusion("mask", seed=3)):
        out, hole = occ(cuda)
        assert out.device == hole.device == cuda.device
        ref_out, ref_hole = occ(images)
        # Same random draws; float rounding may flip the odd pixel exactly on an edge.
        assert (hole.cpu() != ref_hole).float().mean() < 2e-3
        agree = hole.cpu() == ref_hole
        assert torch.allclose(out.cpu()[agree], ref_out[agree], atol=1e-4)


def test_mixed_gives_each_image_one_of_the_two_holes():
    images = torch.rand(200, 1, 48, 48)
    mixed = Occlusion.parse("mixed:lower=0.3,seed=4")
    occluded, hole = mixed(images)
    lower, _ = Occlusion.parse("lower-half")(images)
    masked, mask_hole = Occlusion.parse("mask:seed=4")(images)
    is_lower = (hole == Occlusion.parse("lower-half")(images)[1]).flatten(1).all(1)
    assert 0.15 < is_lower.float().mean() < 0.45
    assert torch.equal(occluded[is_lower], lower[is_lower])
    assert torch.equal(occluded[~is_lower], masked[~is_lower]) and torch.equal(hole[~is_lower], mask_hole[~is_lower])
    assert torch.equal(mixed(images)[1], hole)  # the same seed draws the same holes
    assert Occlusion.parse(str(mixed)) == mixed
