"""Finding masked faces and their masks on photos: the photo sets and their split, the weak labels, the
hole model (a tiny one trained here with a presence head; the shipped one on masked and bare crops),
and `unveil eval-holes` on a small set built from the sample photo. Real masks, where ../shared holds
them, check the shipped hole model on a slice of the test split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from unveil.config import from_dict
from unveil.errors import DataError
from unveil.occlusion import MASK_STYLES
from unveil.photo import FER_LANDMARKS, create_detector, landmark_hole
from unveil.photo.framing import frame_photos
from unveil.photo.hole_sets import masked_photos, pixel_labelled, read_hole_label, split_of
from unveil.photo.masks import wear_mask
from unveil.pipelines.cli import main
from unveil.pipelines.predict import MAX_YAW, FaceFramer, sample_photo

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """A masked / bare set and a pixel-labelled set made from the sample photo.

    with_mask/: the photo wearing each mask style, and a mirrored copy (listed in manifest.csv as a
    copy of the first); without_mask/: the photo, its mirror and a smaller copy on a wide canvas, in a
    subfolder (sets are searched recursively). pixels/testing/CWM: two painted photos with their masks
    as binary label images, and one with a palette label (0 background, 1 face, 2 mask)."""
    rgb = sample_photo()[0]
    face = create_detector().detect(rgb)[0]
    root = tmp_path_factory.mktemp("holes")
    masked_dir, bare_dir = root / "masks" / "with_mask", root / "masks" / "without_mask" / "studio"
    images, labels = root / "pixels" / "testing" / "CWM" / "images", root / "pixels" / "testing" / "CWM" / "masks"
    for folder in (masked_dir, bare_dir, images, labels):
        folder.mkdir(parents=True)
    rows = ["file,label,origin,duplicate_of"]
    for k, style in enumerate(MASK_STYLES):
        painted, cover = wear_mask(rgb, face, (style,), seed=k)
        Image.fromarray(painted).save(masked_dir / f"{style}.png")
        rows.append(f"with_mask/{style}.png,with_mask,painted_{style},")
        if k < 3:
            Image.fromarray(painted).save(images / f"{k:03d}.png")
            label = cover.astype(np.uint8) * (2 if k == 2 else 255)
            if k == 2:  # a palette label: face (1) around the mask (2)
                label = np.where(cover, 2, 1).astype(np.uint8)
                img = Image.fromarray(label, mode="L").convert("P")
                img.putpalette([0, 0, 0, 0, 255, 0, 255, 0, 0] + [0] * 759)
                img.save(labels / f"{k:03d}_gt.png")
            else:
                Image.fromarray(label).save(labels / f"{k:03d}_gt.png")
    Image.fromarray(np.ascontiguousarray(wear_mask(rgb, face, ("surgical",), seed=0)[0][:, ::-1])).save(
        masked_dir / "surgical_mirror.png")
    rows.append("with_mask/surgical_mirror.png,with_mask,painted_surgical,with_mask/surgical.png")
    small = np.asarray(Image.fromarray(rgb).resize((256, 256), Image.Resampling.BOX))
    Image.fromarray(rgb).save(bare_dir / "photo.jpg", quality=92)
    Image.fromarray(np.ascontiguousarray(rgb[:, ::-1])).save(bare_dir / "mirror.jpg", quality=92)
    Image.fromarray(np.pad(small, ((40, 40), (200, 200), (0, 0)), mode="edge")).save(bare_dir / "small.jpg")
    (root / "masks" / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_masked_photos_reads_both_classes_recursively_with_their_origins(sets):
    photos = masked_photos(sets / "masks")
    assert sum(p.masked for p in photos) == 5 and sum(not p.masked for p in photos) == 3
    assert {p.group for p in photos if p.masked} == {f"painted_{s}" for s in MASK_STYLES}
    assert {p.group for p in photos if not p.masked} == {"without_mask"}  # no manifest row: the folder's name
    with pytest.raises(DataError, match="no mask folders"):
        masked_photos(sets / "pixels")


def test_the_split_is_fixed_and_keeps_copies_together(sets):
    photos = {p.path.name: p for p in masked_photos(sets / "masks")}
    assert photos["surgical_mirror.png"].split == photos["surgical.png"].split   # a copy follows its original
    assert photos["surgical.png"].split == split_of("with_mask/surgical.png")
    assert [split_of(f"x/{k}.jpg") for k in range(5)] == [split_of(f"x/{k}.jpg") for k in range(5)]
    shares = np.mean([[split_of(f"photo_{k}.jpg") == s for s in ("train", "val", "test")] for k in range(4000)], 0)
    np.testing.assert_allclose(shares, [0.70, 0.15, 0.15], atol=0.02)
    assert sum(len(masked_photos(sets / "masks", s)) for s in ("train", "val", "test")) == 8


def test_pixel_labels_are_read_as_palette_classes_or_binary(sets):
    pairs = pixel_labelled(sets / "pixels")
    assert [p.image.name for p in pairs] == ["000.png", "001.png", "002.png"]
    assert {p.group for p in pairs} == {"testing/CWM"}
    binary, palette = read_hole_label(pairs[0].label), read_hole_label(pairs[2].label)
    assert binary.dtype == bool and 0.01 < binary.mean() < 0.2
    assert 0.01 < palette.mean() < 0.2   # the mask class only, not the face around it
    (sets / "pixels" / "testing" / "CWM" / "images" / "lonely.png").write_bytes(
        (sets / "pixels" / "testing" / "CWM" / "images" / "000.png").read_bytes())
    try:
        with pytest.raises(DataError, match="lonely.png: no pixel label"):
            pixel_labelled(sets / "pixels")
    finally:
        (sets / "pixels" / "testing" / "CWM" / "images" / "lonely.png").unlink()


def test_weak_labels_mark_the_mask_core_and_the_band_above_the_eyes():
    from unveil.inpaint.segmenter_data import weak_labels

    target, weight = weak_labels(FER_LANDMARKS)
    hole = landmark_hole(FER_LANDMARKS)[0, 0].numpy() > 0
    assert target.sum() > 0 and (target <= hole).all()               # the core lies inside the landmark hole
    assert target.sum() < hole.sum()                                    # eroded: the uncertain rim is left out
    assert weight[:10].all() and not target[:20].any()                  # above the eyes: surely no mask
    assert (weight == 0).any()                                          # and something between is unlabelled
    assert (weight >= target).all()


def test_framing_is_cached_by_content(sets, tmp_path):
    paths = sorted((sets / "masks" / "without_mask").rglob("*.jpg"))
    detector = create_detector()
    first = frame_photos(paths, detector, cache=tmp_path)
    assert first.found.all() and len(list(tmp_path.glob("framed-*.safetensors"))) == 1
    again = frame_photos(paths, detector, cache=tmp_path)
    assert torch.equal(first.crops, again.crops) and torch.equal(first.matrices, again.matrices)
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(paths[0].read_bytes())
    frame_photos([copy], detector, cache=tmp_path)
    assert len(list(tmp_path.glob("framed-*.safetensors"))) == 2   # other photos, another entry
    Image.new("RGB", (64, 64), (128, 128, 128)).save(copy)          # same path, new content: framed again
    changed = frame_photos([copy], detector, cache=tmp_path)
    assert not changed.found[0] and "no face found" in changed.problems[0]


def test_the_shipped_hole_model_finds_painted_masks_and_leaves_bare_faces(sets):
    framer = FaceFramer("auto", device="cpu")
    photos = masked_photos(sets / "masks")
    framed = frame_photos([p.path for p in photos], framer.detector)
    assert framed.found.all()
    holes, used = framer.holes(framed.crops.unsqueeze(1).float().div(255), framed.points)
    for photo, hole, mode in zip(photos, holes, used):
        if photo.masked:
            assert mode.startswith("auto") and "no mask" not in mode, photo.path.name
            assert not hole[0, :14].any(), photo.path.name   # the eyes stay visible
        else:
            assert mode == "auto (no mask found)" and not hole.any(), photo.path.name


def test_the_hole_cut_reaches_the_rim_of_a_painted_mask():
    """A mask of each style painted on the sample photo, read through predict's path: of the pixels the mask
    covers more than half of, at most 1 % are left outside the hole cut (a rim left visible is copied into the
    face; here 2 of 562 pixels of an N95's strap), several times fewer than the hole model's mask alone
    leaves, and the cut hides the eyes of none."""
    from unveil.photo.framing import frame_face, warp_to_crop

    rgb = sample_photo()[0]
    framer = FaceFramer("auto", device="cpu")
    left = {}
    for k, style in enumerate(MASK_STYLES):
        painted, cover = wear_mask(rgb, framer.faces(rgb, "bare")[0][0], (style,), seed=k)
        framed = frame_face(painted, framer.faces(painted, style)[0][0])
        crop, points = torch.from_numpy(framed.crop)[None, None].float().div(255), torch.from_numpy(framed.points)[None]
        truth = torch.from_numpy(warp_to_crop(cover, framed.matrix) > 0.5)
        cut, mask = framer.holes(crop, points)[0][0, 0] > 0.5, framer.holes(crop, points, grown=False)[0][0, 0] > 0.5
        assert (truth & ~cut).sum() <= 0.01 * truth.sum(), style
        assert not cut[:14].any() and (cut | ~mask).all(), style
        left[style] = (int((truth & ~cut).sum()), int((truth & ~mask).sum()))
    assert 4 * sum(c for c, _ in left.values()) < sum(m for _, m in left.values()), left


def test_eval_holes_reports_detection_masks_and_iou(sets, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["eval-holes", str(sets / "masks"), str(sets / "pixels"), "--device", "cpu", "--out", str(out),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    masks, pixels = report["sets"]
    assert masks["masked"]["photos"] == 5 and masks["masked"]["detection_rate"] == 1.0
    assert masks["masked"]["mask_hole_rate"] == 1.0 and masks["bare"]["mask_hole_rate"] == 0.0
    assert masks["by_origin"]["masked/painted_n95"]["photos"] == 1
    assert pixels["kind"] == "pixel labels" and pixels["faces_found"] == 3 and pixels["iou_mean"] > 0.7
    assert pixels["outside_hole"] <= 0.01   # the hole cut reaches the painted masks' rims
    assert set(pixels["by_group"]) == {"testing/CWM"}
    for name in ("holes.json", "holes.md", "misses.html"):
        assert (out / name).exists()
    assert "| masked | 5 | 100.0 % | 100.0 % |" in (out / "holes.md").read_text()
    assert main(["eval-holes", str(sets / "masks"), "--hole", "lower-half", "--device", "cpu", "--out",
                 str(tmp_path / "half"), "--json"]) == 0
    half = json.loads(capsys.readouterr().out)["sets"][0]
    assert half["bare"]["mask_hole_rate"] == 1.0   # a fixed hole is a hole on every face: the rate says so


def test_eval_holes_names_a_folder_that_is_neither_kind(tmp_path, capsys):
    assert main(["eval-holes", str(tmp_path), "--device", "cpu", "--out", str(tmp_path / "o")]) == 2
    assert "no mask folders" in capsys.readouterr().err


@pytest.fixture(scope="module")
def posed(tmp_path_factory):
    """Class folders of bare photos in split folders, as KDEF's: the sample photo as is and moved."""
    rgb = sample_photo()[0]
    root = tmp_path_factory.mktemp("posed")
    moved = np.pad(np.asarray(Image.fromarray(rgb).resize((400, 400))), ((60, 40), (120, 80), (0, 0)), mode="edge")
    for name, image in {"train/happy/a.png": rgb, "train/neutral/b.png": moved, "val/happy/c.png": rgb[:, ::-1],
                        "val/neutral/d.png": moved[:, ::-1]}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(image)).save(root / name)
    return root


def test_eval_holes_reports_posed_photos_per_head_angle(posed, tmp_path, capsys):
    """Each photo bare, with a painted mask and behind a painted occluder, grouped by head angle."""
    assert main(["eval-holes", str(posed), "--split", "val", "--device", "cpu", "--out", str(tmp_path / "o"),
                 "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["sets"]
    assert record["kind"] == "posed" and record["split"] == "val"
    everything, kept = record["groups"]["all"], record["groups"][f"kept (yaw within {MAX_YAW:g}°)"]
    assert everything["photos"] == kept["photos"] == 2 and record["groups"]["yaw 0-15°"]["photos"] == 2
    assert everything["bare_given_a_hole"] == 0.0 and everything["masks"]["found_rate"] == 1.0
    assert everything["masks"]["iou_mean"] > 0.6 and 0 <= everything["masks"]["outside_hole"] < 0.5
    assert everything["occluders"]["detection_rate"] == 1.0 and everything["occluders"]["found_rate"] is not None
    assert f"| kept (yaw within {MAX_YAW:g}°) | 2 |" in (tmp_path / "o" / "holes.md").read_text()


def test_a_painted_hand_gets_a_hole_and_a_blurred_bare_face_none():
    import cv2

    from unveil.photo.masks import wear_occluder

    rgb = sample_photo()[0]
    framer = FaceFramer("auto", device="cpu")
    face = max(framer.detector.detect(rgb), key=lambda f: f.score)
    for style in ("hand", "phone"):   # the hole model before occluders were in its training missed the phone
        covered, cover = wear_occluder(rgb, face, (style,), seed=0)
        _, hole, used = framer.frame(covered, max(framer.detector.detect(covered), key=lambda f: f.score))
        assert used == "auto" and hole.mean() > 0.05 and not hole[..., :14, :].any(), style
    line = np.full((1, 25), 1 / 25)   # a 25-pixel horizontal smear: a moving head (the hole model before: a hole)
    for blurred in (cv2.GaussianBlur(rgb, (0, 0), 4), cv2.filter2D(rgb, -1, line)):
        found = max(framer.detector.detect(blurred), key=lambda f: f.score)
        assert framer.frame(blurred, found)[2] == "auto (no mask found)"


def test_a_tiny_hole_model_learns_presence_from_photos(sets, posed, synthetic_faces, tmp_path, monkeypatch):
    """Trained with a photos section on the fixture's sets (posed photos and occluders included), the
    presence head is trained and selected on photo val scores, and the run records what it saw."""
    from unveil.inpaint import segmenter_data
    from unveil.inpaint.segmenter import load_segmenter
    from unveil.inpaint.segmenter_train import SegmenterConfig, train_segmenter

    # The fixture is too small for the fixed split: every photo serves as train and as val here.
    real = segmenter_data.masked_photos
    monkeypatch.setattr(segmenter_data, "masked_photos", lambda root, split=None: real(root))
    cfg = from_dict(SegmenterConfig, {
        "device": "cpu", "data": {"limit": 256, "val_limit": 64},
        "model": {"args": {"widths": [8, 16, 32], "presence": True}},
        "masks": {"occluders": 0.3},
        "photos": {"masked_set": str(sets / "masks"), "pixel_set": str(sets / "pixels"), "posed_set": str(posed),
                   "painted": 1, "share": 0.5, "motion": 0.3},
        "train": {"epochs": 3, "batch_size": 32, "steps_per_epoch": 12, "select": "holes", "optim": {"lr": 0.01}}})
    history = train_segmenter(cfg, tmp_path / "run", faces=synthetic_faces)
    model = load_segmenter(tmp_path / "run" / "best")
    assert model.presence is not None and model.meta["photos"]["train_examples"] > 0
    assert history["select"] == "holes" and 0 <= history["best_score"] <= 1
    assert {f"val_{k}" for k in ("found", "false", "photo_iou", "iou", "holes", "posed_false", "posed_found",
                                 "occluder_found")} <= set(history["epochs"][-1])
