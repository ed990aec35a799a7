"""`photos:DIR`: a class-folder set of photos read as faces (found, aligned, cached, skips reported), and
the photo-mask occlusion that paints masks on those photos, on a small set built from the sample photo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from unveil.data import load_faces
from unveil.data.faces import SPLITS
from unveil.errors import DataError, UnveilError
from unveil.occlusion import MASK_STYLES, Occlusion
from unveil.photo import create_detector
from unveil.photo.framing import frame_face
from unveil.photo.masks import wear_mask
from unveil.pipelines.cli import main
from unveil.pipelines.predict import sample_photo

pytestmark = pytest.mark.usefixtures("one_thread")


def _canvas(rgb: np.ndarray, scale: float, shift: tuple[int, int], size: tuple[int, int] = (640, 560)) -> np.ndarray:
    """The photo scaled and placed on a larger gray canvas at `shift` (x, y)."""
    small = np.asarray(Image.fromarray(rgb).resize((round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                                                   Image.Resampling.LANCZOS))
    canvas = np.full((size[1], size[0], 3), 110, np.uint8)
    x, y = shift
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small[: size[1] - y, : size[0] - x]
    return canvas


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory):
    """happy/: the sample photo as it is, scaled and shifted on a larger canvas, flipped, and wearing a
    painted mask; smiling/ (an alias for happy): one more copy; neutral/: a copy scaled down, a blank
    picture (no face) and a copy so small its face is under 40 px (skipped with their reasons)."""
    rgb = sample_photo()[0]
    face = create_detector().detect(rgb)[0]
    root = tmp_path_factory.mktemp("photos")
    for folder in ("happy", "smiling", "neutral"):
        (root / folder).mkdir()
    photos = {"happy/a_as_is.png": rgb, "happy/b_moved.png": _canvas(rgb, 0.8, (100, 30)),
              "happy/c_flipped.png": np.ascontiguousarray(rgb[:, ::-1]),
              "happy/d_masked.png": wear_mask(rgb, face, ("surgical",), seed=1)[0],
              "smiling/e.png": _canvas(rgb, 1.2, (0, 0), (700, 640)),
              "neutral/f_small.png": _canvas(rgb, 0.6, (40, 60)),
              "neutral/g_blank.png": np.full((300, 300, 3), 128, np.uint8),
              "neutral/h_tiny.png": _canvas(rgb, 0.25, (10, 10), (300, 300))}
    for name, image in photos.items():
        Image.fromarray(image).save(root / name)
    return root


@pytest.fixture(scope="module")
def faces(photo_set, tmp_path_factory):
    return load_faces(f"photos:{photo_set}", aliases={"smiling": "happy"})


def test_a_photo_set_becomes_aligned_faces_with_its_skips(faces):
    assert len(faces) == 6 and faces.source.startswith("photos:")
    assert faces.labels.tolist() == [3, 3, 3, 3, 4, 3]  # happy x4, neutral, smiling -> happy
    assert [s["id"] for s in faces.skipped] == ["neutral/g_blank.png", "neutral/h_tiny.png"]
    assert faces.skipped[0]["reason"] == "no face found" and "under 40 px" in faces.skipped[1]["reason"]
    assert {s["label"] for s in faces.skipped} == {"neutral"}
    counts = faces.counts()
    assert set(counts) <= {"train", "val", "test"} and sum(sum(c.values()) for c in counts.values()) == 6


def test_faces_are_framed_as_predict_frames_them(faces, photo_set):
    """The same face on a canvas, scaled and shifted, gives about the same crop as the photo itself; the
    flipped photo gives the flipped crop; each crop is predict's own (frame_face on the detection)."""
    crops = {i: faces.images[k].float() for k, i in enumerate(faces.ids)}
    base = crops["happy/a_as_is.png"]
    for other in ("happy/b_moved.png", "smiling/e.png", "neutral/f_small.png"):
        # of 255: resampling and the detector's landmark noise across scales (16 at 0.6x); another face: 50+
        assert (crops[other] - base).abs().mean() < 20, other
    assert (crops["happy/c_flipped.png"].flip(-1) - base).abs().mean() < 20
    rgb = np.asarray(Image.open(photo_set / "happy" / "b_moved.png").convert("RGB"))
    expected = frame_face(rgb, create_detector().detect(rgb)[0]).crop
    assert np.array_equal(faces.images[faces.ids.index("happy/b_moved.png")].numpy(), expected)


def test_photo_sets_are_read_once_and_re_read_when_a_photo_changes(photo_set, faces, tmp_path, monkeypatch,
                                                                    capsys):
    from unveil.photo import framing

    calls = []
    real = framing._frame_all
    monkeypatch.setattr(framing, "_frame_all", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_faces(f"photos:{photo_set}", aliases={"smiling": "happy"})
    assert calls == [] and torch.equal(again.images, faces.images) and again.skipped == faces.skipped
    changed = tmp_path / "set"
    import shutil

    shutil.copytree(photo_set, changed)
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(changed / "happy" / "a_as_is.png")
    fresh = load_faces(f"photos:{changed}", aliases={"smiling": "happy"})
    assert calls and "happy/a_as_is.png" in [s["id"] for s in fresh.skipped]


def test_data_info_reports_the_detection_rate_per_class(photo_set, capsys):
    assert main(["data", "info", f"photos:{photo_set}", "--alias", "smiling=happy", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["detection"]["happy"] == {"photos": 5, "faces": 5}
    assert info["detection"]["neutral"] == {"photos": 3, "faces": 1}
    assert info["detection"]["all"] == {"photos": 8, "faces": 6} and len(info["skipped"]) == 2


def test_a_plain_class_folder_of_photos_says_it_squashes_them(photo_set, capsys):
    load_faces(str(photo_set), aliases={"smiling": "happy"}, use_cache=False)
    assert f"read them as photos:{photo_set}" in capsys.readouterr().err


def test_photo_mask_paints_on_the_photo_and_carries_the_exact_hole(faces):
    occlusion = Occlusion.parse("photo-mask:styles=surgical+cloth")
    occluded, hole = occlusion.over_faces(faces, seed=3)
    assert occluded.shape == hole.shape == (6, 1, 48, 48)
    full = faces.float_images()
    outside = hole == 0
    assert torch.equal(occluded[outside], full[outside])           # only the hidden pixels differ
    assert (hole.mean((1, 2, 3)) > 0.15).all() and not hole[:, :, :14].any()   # a mask, below the eyes
    assert (occluded - full).abs()[hole > 0].mean() > 0.05           # and something was painted there
    again, _ = occlusion.over_faces(faces, seed=3)
    other, _ = occlusion.over_faces(faces, seed=4)
    assert torch.equal(again, occluded) and not torch.equal(other, occluded)  # deterministic by seed
    # A face's mask depends on its seed and id, not on the other faces scored with it.
    one, _ = occlusion.over_faces(faces.select(torch.tensor([2])), seed=3)
    assert torch.equal(one[0], occluded[2])


@pytest.mark.parametrize("style", MASK_STYLES)
def test_every_mask_style_paints(faces, style):
    occluded, hole = Occlusion.parse(f"photo-mask:styles={style}").over_faces(faces.select(torch.tensor([0])), seed=0)
    assert hole.mean() > 0.15


def test_photo_mask_needs_photos_and_is_not_for_training_batches(faces):
    synthetic = load_faces("synthetic:n=210,seed=0")
    with pytest.raises(DataError, match="paints masks on the photos of a photos:DIR source"):
        Occlusion.parse("photo-mask").over_faces(synthetic)
    with pytest.raises(UnveilError, match="not crops in training"):
        Occlusion.parse("photo-mask")(faces.float_images())


def test_split_folders_keep_their_splits(tmp_path):
    """`DIR/{train,val,test}/<class>/<photo>`: each photo keeps the split its folder names (docs/photos.md's
    layout), instead of the split folder being read as a class."""
    rgb = sample_photo()[0]
    layout = {"train/happy/a.png": rgb, "train/neutral/b.png": _canvas(rgb, 0.8, (100, 30)),
              "val/happy/c.png": np.ascontiguousarray(rgb[:, ::-1]), "test/happy/d.png": _canvas(rgb, 0.9, (20, 20))}
    for name, image in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / name)
    faces = load_faces(f"photos:{tmp_path}", use_cache=False)
    split_of = {i: SPLITS[int(s)] for i, s in zip(faces.ids, faces.splits)}
    assert split_of == {"train/happy/a.png": "train", "train/neutral/b.png": "train", "val/happy/c.png": "val",
                        "test/happy/d.png": "test"}
    assert faces.labels.tolist() == [3, 3, 4, 3]   # test/happy, train/happy, train/neutral, val/happy
    (tmp_path / "val" / "e.png").write_bytes((tmp_path / "val/happy/c.png").read_bytes())
    with pytest.raises(DataError, match="outside a class folder"):
        load_faces(f"photos:{tmp_path}", use_cache=False)


def test_a_mix_part_can_wear_masks_painted_on_its_photos(tmp_path, capsys):
    """`wear: photo-mask`: each face twice, as painted and as predict cuts it (hole at 0, its one-pixel rim
    left painted); a training condition keeps them as they are and cuts holes in the other faces only."""
    from unveil.classify.condition import Condition
    from unveil.data.mix import MixPart, load_mix
    from unveil.trainer import DataConfig

    rgb = sample_photo()[0]
    for name, image in {"train/happy/a.png": rgb, "train/neutral/b.png": _canvas(rgb, 0.8, (100, 30)),
                        "val/happy/c.png": np.ascontiguousarray(rgb[:, ::-1])}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / name)
    parts = [MixPart(f"photos:{tmp_path}", name="bare"),
             MixPart(f"photos:{tmp_path}", name="masked", wear="photo-mask:styles=surgical")]
    faces = load_mix(parts)
    bare, masked = faces.part("bare"), faces.part("masked")
    assert len(masked) == 2 * len(bare) == 6 and faces.worn.tolist() == [False] * 3 + [True] * 6
    assert masked.ids[3:] == [f"{i}#cut" for i in masked.ids[:3]] and masked.ids[0].startswith("masked:")
    _, hole = Occlusion.parse("photo-mask:styles=surgical").over_faces(load_faces(f"photos:{tmp_path}"))
    full, painted, cut = bare.float_images(), masked.float_images()[:3], masked.float_images()[3:]
    assert torch.equal(painted[hole == 0], full[hole == 0]) and (painted - full).abs()[hole > 0].mean() > 0.05
    inner = 1 - torch.nn.functional.max_pool2d(1 - hole, 3, 1, 1)
    rim = (hole > 0) & (inner == 0)
    assert (cut[inner > 0] == 0).all() and torch.equal(cut[rim], painted[rim]) and rim.any()
    assert torch.equal(load_mix(parts).images, faces.images)   # the second load reads the cache
    assert "stale" not in capsys.readouterr().err

    shown = Condition.build("lower-half").over_faces(faces)
    assert torch.equal(shown[3:], faces.float_images()[3:])             # worn faces as they are
    assert (shown[:3, :, 24:] == 0).all() and not torch.equal(shown[:3], faces.float_images()[:3])
    batch = Condition.build("lower-half")(faces.float_images(), seed=1, worn=faces.worn)
    assert torch.equal(batch, shown)
    with pytest.raises(UnveilError, match="masked wear theirs"):
        DataConfig(mix=parts).check_bare("train-inpainter")
    with pytest.raises(ValueError, match="unknown occlusion kind"):
        MixPart(f"photos:{tmp_path}", wear="scarf")


def test_a_mix_part_can_carry_the_holes_masks_painted_on_its_photos_make(tmp_path):
    """`holes: photo-mask`: the faces stay bare, each carrying the hole its painted mask covers (for the
    generators, whose truth is the bare face); `wear` and `holes` together are refused."""
    from unveil.data.mix import MixPart, load_mix

    rgb = sample_photo()[0]
    for name, image in {"train/happy/a.png": rgb, "val/happy/c.png": np.ascontiguousarray(rgb[:, ::-1])}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / name)
    bare = load_faces(f"photos:{tmp_path}")
    faces = load_mix([MixPart("synthetic:n=40", name="synthetic"),
                      MixPart(f"photos:{tmp_path}", name="photos", holes="photo-mask:styles=surgical")])
    _, hole = Occlusion.parse("photo-mask:styles=surgical").over_faces(bare)
    photos = faces.part("photos")
    assert torch.equal(photos.images, bare.images) and photos.worn is None
    assert torch.equal(photos.holes.unsqueeze(1).float(), hole) and photos.holes[:, 30:40].any()
    assert not faces.part("synthetic").holes.any()
    with pytest.raises(ValueError, match="not both"):
        MixPart(f"photos:{tmp_path}", wear="photo-mask", holes="photo-mask")
