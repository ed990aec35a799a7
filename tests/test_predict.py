"""`unveil predict` on real photos: the sample photo, masked versions of it, blank and unreadable files,
and the command line agreeing with the Python API. Uses the shipped FER2013 models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from unveil.photo import align_face, create_detector, transform_points
from unveil.photo.masks import wear_mask
from unveil.photo.framing import warp_to_crop
from unveil.pipelines.cli import main
from unveil.pipelines.predict import Predictor, sample_photo

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return sample_photo()[0]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(hole="lower-half", device="cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, astronaut):
    """One real photo, one blank image and one file that is not an image."""
    root = tmp_path_factory.mktemp("photos")
    Image.fromarray(astronaut).save(root / "a_real.jpg", quality=92)
    Image.new("RGB", (320, 240), (128, 128, 128)).save(root / "b_blank.png")
    (root / "c_broken.jpg").write_bytes(b"these bytes are not a JPEG")
    return root


def test_the_sample_photo_gives_one_face_framed_like_fer2013(predictor, astronaut):
    result = predictor.predict(astronaut, name="astronaut")
    assert result.errors == [] and len(result.faces) == 1
    face = result.faces[0]
    assert face.hole == "lower-half" and face.hole_fraction == pytest.approx(0.5)
    for name in ("untouched", "occluded", "reconstructed", "upper_half_reader"):
        probs = face.readings[name].probabilities
        assert sum(probs.values()) == pytest.approx(1, abs=1e-3) and len(face.readings[name].top) == 3
    assert face.readings["untouched"].top[0][0] == "happy"  # she smiles
    # Her eyes land in the upper half of the aligned crop, where FER2013 keeps them.
    [detected] = predictor.detector.detect(astronaut)
    _, matrix = align_face(astronaut, detected)
    eyes = transform_points(matrix, detected.landmarks[:2])
    assert (eyes[:, 1] < 24).all() and (eyes[:, 1] > 8).all()


def test_a_folder_gives_one_result_and_two_clear_messages(folder, tmp_path, capsys):
    code = main(["predict", str(folder), "--hole", "lower-half", "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # stdout holds the JSON only
    assert code == 0
    by_name = {p["source"].split("/")[-1]: p for p in report["photos"]}
    assert len(by_name["a_real.jpg"]["faces"]) == 1 and by_name["a_real.jpg"]["errors"] == []
    assert by_name["a_real.jpg"]["picture"] and (tmp_path / "predictions.json").exists()
    assert by_name["b_blank.png"]["faces"] == [] and "no face found" in by_name["b_blank.png"]["errors"][0]
    assert "cannot read it as an image" in by_name["c_broken.jpg"]["errors"][0]
    messages = [line for line in captured.err.splitlines() if line.startswith("unveil: ")]
    assert len(messages) == 2 and all("b_blank.png" in m or "c_broken.jpg" in m for m in messages)


def test_nothing_processed_is_a_failure(folder, tmp_path, capsys):
    assert main(["predict", str(folder / "b_blank.png"), str(folder / "c_broken.jpg"), "--hole", "lower-half",
                 "--out", str(tmp_path)]) != 0
    assert "no face found" in capsys.readouterr().err


def test_a_face_too_small_to_use_is_named(predictor, astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((128, 128), Image.Resampling.BOX))
    result = predictor.predict(np.pad(small, ((100, 100), (100, 100), (0, 0)), mode="edge"), name="small")
    assert result.faces == [] and len(result.errors) == 1
    assert "too small to use" in result.errors[0] or "no face found" in result.errors[0]


def test_command_line_and_python_api_agree(predictor, astronaut, tmp_path, capsys):
    assert main(["predict", "--hole", "lower-half", "--out", str(tmp_path), "--json", "--device", "cpu"]) == 0
    photos = json.loads(capsys.readouterr().out)["photos"]
    assert [p["source"] for p in photos] == ["astronaut", "astronaut_masked"]
    assert all(len(p["faces"]) == 1 for p in photos)
    cli = photos[0]["faces"][0]
    api = predictor.predict(astronaut).faces[0].to_json()
    assert cli["box"] == api["box"] and cli["hole"] == api["hole"]
    for name, reading in api["readings"].items():
        for emotion, p in reading["probabilities"].items():
            assert cli["readings"][name]["probabilities"][emotion] == pytest.approx(p, abs=2e-3)


def test_masked_photos_are_found_and_the_landmark_hole_covers_the_mask(astronaut):
    detector = create_detector()
    [face] = detector.detect(astronaut)
    predictor = Predictor(hole="landmarks", device="cpu")
    for seed, style in enumerate(("surgical", "cloth", "n95", "black")):
        masked, cover = wear_mask(astronaut, face, (style,), seed=seed)
        result = predictor.predict(masked, name=style)
        assert len(result.faces) == 1, (style, result.errors)
        # The mask, mapped into the crop, lies mostly inside the landmark hole.
        crop_cover = _cover_in_crop(masked, cover, detector)
        hole = torch.from_numpy(result.faces[0].crops["hole"] > 127)
        assert (hole & crop_cover).sum() > 0.6 * crop_cover.sum(), style


def _cover_in_crop(masked: np.ndarray, cover: np.ndarray, detector) -> torch.Tensor:
    [face] = detector.detect(masked)
    _, matrix = align_face(masked, face)
    return torch.from_numpy(warp_to_crop(cover, matrix) > 0.5)


def test_predict_walks_class_folders_and_names_an_empty_one(folder, tmp_path, capsys):
    """Folders as users have them (one per class, nested): every photo is found; a folder with no photo
    is one clear line, not silence."""
    nested = tmp_path / "by_class"
    (nested / "happy" / "day1").mkdir(parents=True)
    (nested / "sad").mkdir()
    (nested / "happy" / "day1" / "a.jpg").write_bytes((folder / "a_real.jpg").read_bytes())
    (nested / "sad" / "b.png").write_bytes((folder / "b_blank.png").read_bytes())
    assert main(["predict", str(nested), "--hole", "lower-half", "--out", str(tmp_path / "out"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["source"].split("by_class/")[1] for p in report["photos"]] == ["happy/day1/a.jpg", "sad/b.png"]
    assert (tmp_path / "out" / "000_happy_day1_a_jpg.png").exists()
    (tmp_path / "empty" / "happy").mkdir(parents=True)
    assert main(["predict", str(tmp_path / "empty"), "--out", str(tmp_path / "o2")]) == 2
    assert "no photos found" in capsys.readouterr().err


def test_min_face_lets_a_user_read_smaller_faces(astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((160, 160), Image.Resampling.BOX))
    photo = np.pad(small, ((100, 100), (100, 100), (0, 0)), mode="edge")
    strict = Predictor(hole="lower-half", device="cpu").predict(photo, name="small")
    assert strict.faces == [] and "too small to use" in strict.errors[0] and "--min-face" in strict.errors[0]
    lenient = Predictor(hole="lower-half", device="cpu", min_face=24).predict(photo, name="small")
    assert len(lenient.faces) == 1 and lenient.errors == []


def test_the_one_reading_comes_first_in_python_json_and_the_terminal(predictor, astronaut, tmp_path, capsys):
    """A face with a hole: the one reading is the shipped fusion of the reader and the judge on the
    reconstruction (the models it was fitted for), first among the readings, first in the JSON and the
    first line under each face in the terminal."""
    from unveil.classify.fusion import load_fusion
    from unveil.shipped import FUSION, shipped_checkpoint

    face = predictor.predict(astronaut).faces[0]
    assert list(face.readings)[0] == "one_reading" and predictor.one_reading.calibrated
    fusion, _ = load_fusion(shipped_checkpoint(FUSION))
    reader = torch.tensor([list(face.readings["upper_half_reader"].probabilities.values())])
    judge = torch.tensor([list(face.readings["reconstructed"].probabilities.values())])
    fused = dict(zip(face.readings["one_reading"].probabilities, fusion(reader, judge)[0].tolist()))
    assert all(abs(fused[c] - p) < 2e-3 for c, p in face.readings["one_reading"].probabilities.items())
    assert face.to_json()["reading"] == {"class": face.reading[0], "probability": face.reading[1], "how": face.how,
                                         "reliable": True}
    assert main(["predict", "--out", str(tmp_path / "out"), "--hole", "lower-half"]) == 0   # the sample photos
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].strip().startswith("READING:") and "pooled by fusion" in lines[2]


def test_a_grown_hole_covers_every_pixel_within_its_margin_and_no_more():
    from unveil.pipelines.predict import grow_hole

    hole = torch.zeros(1, 1, 48, 48)
    hole[..., 30:36, 10:20] = 1
    grown = grow_hole(hole, 2)
    assert torch.equal(grown[..., 28:38, 8:22], torch.ones(1, 1, 10, 14))
    assert grown.sum() == 10 * 14 and torch.equal(grow_hole(hole, 0), hole)


def test_a_face_turned_beyond_the_limit_is_reported_but_marked_unreliable(predictor, astronaut, tmp_path, capsys):
    """With the limit under the face's own yaw: the face keeps its box, pose, hole and readings, its reading
    is marked turned away in Python, JSON, the terminal and the picture; --max-yaw 90 keeps it."""
    from unveil.pipelines.predict import TURNED_AWAY

    facing = predictor.predict(astronaut).faces[0]
    assert not facing.turned_away and abs(facing.pose.yaw) < 20
    assert set(facing.to_json()["pose"]) == {"yaw", "pitch", "roll"}
    limit, predictor.max_yaw = predictor.max_yaw, abs(facing.pose.yaw) / 2
    try:
        turned = predictor.predict(astronaut, picture=tmp_path / "turned.png").faces[0]
    finally:
        predictor.max_yaw = limit
    assert turned.turned_away and turned.box == facing.box and turned.readings == facing.readings
    assert turned.to_json()["reading"]["reliable"] is False and turned.to_json()["reading"]["note"] == TURNED_AWAY
    yaw = f"{abs(facing.pose.yaw) / 2:.3f}"
    assert main(["predict", "--out", str(tmp_path / "out"), "--hole", "lower-half", "--max-yaw", yaw]) == 0
    out = capsys.readouterr().out
    assert f"READING: {TURNED_AWAY}" in out and "yaw" in out
    assert main(["predict", "--out", str(tmp_path / "out2"), "--hole", "lower-half", "--max-yaw", "90"]) == 0
    assert TURNED_AWAY not in capsys.readouterr().out
    assert main(["predict", "--max-yaw", "-5"]) == 2
    assert "--max-yaw: must be between 0 and 180 degrees" in capsys.readouterr().err
