"""Video in `unveil predict`: a short clip made from the sample photo (moving, scaling, a synthetic mask
worn then removed), read with the shipped models. The tracked face keeps one id, the timeline is the
photo path's readings smoothed, the outputs parse, and bad input is one named line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from unveil.classes import CLASSES
from unveil.errors import DataError
from unveil.io import MANIFEST
from unveil.pipelines.video_io import H264Writer, VideoFile
from unveil.pipelines.cli import main
from unveil.pipelines.predict import Predictor
from unveil.pipelines.video import READINGS, VideoOptions, VideoReader, sample_clip

pytestmark = pytest.mark.usefixtures("one_thread")
FPS, SECONDS = 10, 1.2   # 12 frames, the mask worn on frames 4-7


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(hole="auto", device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory, predictor):
    return sample_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", predictor.detector, SECONDS, FPS)


def read(predictor, clip, stem, **options):
    with VideoFile(clip) as video:
        return VideoReader(predictor, VideoOptions(**options)).run(video, stem, progress=False)


def frames_of(path) -> list:
    with VideoFile(path) as video:
        return list(video.frames())


def test_the_tracked_face_keeps_one_id_through_the_mask(predictor, clip, tmp_path):
    result = read(predictor, clip, tmp_path / "clip", every=4)
    assert result.frames == round(SECONDS * FPS) and not result.errors
    assert result.face_ids == [1]
    assert [row["frame"] for row in result.timeline] == list(range(result.frames))  # one reading per frame
    masked = [row["hole"] == "auto" for row in result.timeline]
    assert any(masked[4:8]) and not any(masked[:3] + masked[9:])  # the mask is found while worn, only then


def test_the_timeline_is_the_photo_readings_smoothed(predictor, clip, tmp_path):
    """Detecting on every frame with the photo detector, the timeline is the running mean of what
    `predict` reads on each frame as a photo, over the smoothing window."""
    window = 3
    result = read(predictor, clip, tmp_path / "clip", every=1, smooth=window, detect_side=None)
    photos = [predictor.predict(frame.rgb).faces[0] for frame in frames_of(clip)]
    per_frame = np.array([[list(face.readings[r].probabilities.values()) for r in READINGS] for face in photos])
    timeline = np.array([[list(row["readings"][r].values()) for r in READINGS] for row in result.timeline])
    for k in range(len(photos)):
        expected = per_frame[max(0, k - window + 1): k + 1].mean(0)
        np.testing.assert_allclose(timeline[k], expected, atol=2e-3)
    np.testing.assert_allclose(timeline.sum(-1), 1.0, atol=2e-3)


def test_tracking_follows_the_face_as_detecting_every_frame_finds_it(predictor, clip, tmp_path):
    """Between detections (on a shrunk frame) the followed box stays on the face the photo detector finds
    on every frame, and on the bare frames the readings barely move. (Under the mask the reconstruction's
    reading moves with small changes of alignment whichever way the face was found.)"""
    tracked = read(predictor, clip, tmp_path / "a", every=4, smooth=1)
    detected = read(predictor, clip, tmp_path / "b", every=1, smooth=1, detect_side=None)
    boxes = [torch.tensor([r["box"] for r in run.timeline]) for run in (tracked, detected)]
    overlap = box_iou(*boxes)
    assert overlap.diagonal().min() > 0.75
    values = [np.array([list(row["readings"]["reconstructed"].values()) for row in r.timeline])
              for r in (tracked, detected)]
    bare = [row["hole"] == "auto (no mask found)" for row in detected.timeline]
    assert sum(bare) >= 6 and np.abs(values[0] - values[1]).sum(1)[bare].mean() < 0.15   # total variation


def test_the_command_writes_the_video_the_timeline_and_the_plot(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(clip), "--out", str(out), "--json", "--every", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    (video,) = report["videos"]
    assert video["frames"] == round(SECONDS * FPS) and video["faces"] == [1]
    decoded = frames_of(video["outputs"]["video"])
    assert len(decoded) == video["frames"] and decoded[0].rgb.shape == (480, 640, 3)
    with open(video["outputs"]["timeline_csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == video["frames"] and {r["face"] for r in rows} == {"1"}
    for reading in READINGS:
        assert abs(sum(float(rows[0][f"{reading}.{c}"]) for c in CLASSES) - 1) < 2e-3
    assert Image.open(video["outputs"]["timeline_png"]).size[0] > 0
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "000_clip_mp4.mp4", "000_clip_mp4.timeline.csv",
                                                     "000_clip_mp4.timeline.png", "predictions.json"]


def test_a_damaged_or_non_video_file_is_one_named_line(clip, tmp_path, capsys):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    text = tmp_path / "notes.mp4"
    text.write_text("these bytes are not a video\n" * 50)
    for bad in (cut, text):
        with pytest.raises(DataError, match=str(bad)):
            VideoFile(bad)
    assert main(["predict", str(cut), str(text), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"unveil: {cut}: " in err and f"unveil: {text}: " in err and "Traceback" not in err


def write_video(path, frames: list[np.ndarray], times: list[float] | None = None, codec: str = "libx264",
                container: str | None = None):
    """Frames (uint8 [H, W, 3]) as a video, each shown at its time in `times` (None: FPS frames a second)."""
    import av
    from fractions import Fraction

    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p" if codec == "libx264" else "bgr24"
        if times:
            stream.codec_context.time_base = Fraction(1, 1000)
        for k, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=stream.pix_fmt)
            if times:
                frame.pts, frame.time_base = round(1000 * times[k]), Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("container, announced", [("avi", "of the 30 frames its header announces"),
                                                  ("matroska", "s of the 3.00 s its header announces")])
def test_a_video_cut_short_keeps_its_frames_and_says_so(predictor, tmp_path, container, announced):
    """AVI announces its frame count, Matroska only its duration: either way, a file cut in half says so."""
    noise = np.random.default_rng(0)
    # noise: every frame costs about as many bytes, so half the file is about half the frames
    path = write_video(tmp_path / "noise.video", [noise.integers(0, 256, (48, 64, 3), dtype=np.uint8)
                                                  for _ in range(30)], container=container)
    cut = tmp_path / f"cut.{'avi' if container == 'avi' else 'mkv'}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = read(predictor, cut, tmp_path / "cut")
    assert 0 < result.frames < 30 and result.face_ids == []
    (error,) = result.errors
    assert error.startswith(f"{cut}: ended after {result.frames} ") and announced in error
    assert error.endswith("(cut short or damaged); what was read is kept")
    assert (tmp_path / "cut.mp4").stat().st_size > 0 and (tmp_path / "cut.timeline.csv").exists()
    whole = read(predictor, path, tmp_path / "whole")
    assert whole.frames == 30 and whole.errors == []  # the whole file: no word


def test_a_variable_frame_rate_keeps_each_frames_time(predictor, tmp_path):
    times = [0.0, 0.04, 0.08, 0.5, 0.54, 1.5, 1.54, 1.58]   # bursts and pauses, as phones record
    path = write_video(tmp_path / "vfr.mp4", [np.full((48, 64, 3), 30 * k, np.uint8) for k in range(8)], times)
    result = read(predictor, path, tmp_path / "out")
    assert [round(frame.time, 3) for frame in frames_of(path)] == times
    assert [round(frame.time, 3) for frame in frames_of(result.outputs["video"])] == times


def test_frames_too_small_for_a_face_are_named(predictor, tmp_path):
    path = write_video(tmp_path / "tiny.avi", [np.full((1, 1, 3), 50 * k, np.uint8) for k in range(3)],
                       codec="rawvideo")
    with pytest.raises(DataError, match=f"{path}: its frames are 1x1 pixels, too small to hold a face"):
        read(predictor, path, tmp_path / "tiny")
    with pytest.raises(DataError, match="cannot write a 1x1 video"):
        H264Writer(tmp_path / "tiny.mp4", FPS, (1, 1))


def test_a_camera_that_cannot_be_opened_is_one_line(tmp_path, capsys):
    assert main(["predict", "--webcam", "97", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["unveil: error: camera 97: cannot be opened (no such camera, it is in use, or access is denied)"]
    assert not (tmp_path / "out").exists()


def test_turned_away_frames_are_kept_marked_never_smoothed_and_left_out_of_the_chart(predictor, clip, tmp_path):
    """With the yaw limit at 0 every frame's face counts as turned away: each row keeps its pose and the
    frame's own readings (nothing averaged in), the CSV marks it, and no chart is drawn."""
    limit, predictor.max_yaw = predictor.max_yaw, 0.0
    try:
        result = read(predictor, clip, tmp_path / "clip", every=1, smooth=3, detect_side=None)
        photos = [predictor.predict(frame.rgb).faces[0] for frame in frames_of(clip)]
    finally:
        predictor.max_yaw = limit
    assert result.timeline and all(row["turned_away"] for row in result.timeline)
    for row, face in zip(result.timeline, photos):
        assert row["pose"] == face.pose.to_json()
        for r in READINGS:
            np.testing.assert_allclose(list(row["readings"][r].values()),
                                       list(face.readings[r].probabilities.values()), atol=2e-3)
    assert "timeline_png" not in result.outputs
    with open(result.outputs["timeline_csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["turned_away"] for row in rows} == {"1"} and all(abs(float(row["yaw"])) < 90 for row in rows)
