"""Video files and cameras: every face followed with an id, read on every frame through the photo path
(`Predictor.read_framed`: the same hole, reconstruction and classifiers, in batches of frames), its
readings smoothed over a short window, and written as

    NAME.mp4              the video annotated: boxes, face ids, the hole's outline, the one reading and the
                          two it pools, or "turned away" for a face turned beyond --max-yaw (H.264)
    NAME.timeline.csv     one row per face per frame: frame, time, face id, box, hole, head pose, turned
                          away or not, every reading's probabilities (smoothed over facing frames)
    NAME.timeline.png     one panel per face: the one reading's probabilities over time (facing frames only)

    reader = VideoReader(Predictor(), VideoOptions(every=5, smooth=5))
    with VideoFile("clip.mp4") as video:
        result = reader.run(video, out_folder / "000_clip")

Smoothing: each face's probabilities are the mean of its last `smooth` frames' readings (5 frames,
0.2 s at 25 fps, by default; 1 keeps each frame's own reading). Detection runs every `every` frames on
the frame shrunk to `detect_side` pixels (`face_tracker`); `detect_side=None` runs the photo
detector unchanged, so with `every=1` and `smooth=1` each frame reads exactly as `predict` reads it as a photo.
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from unveil import logs
from unveil.classes import CLASSES
from unveil.errors import DataError, UnveilError
from unveil.figures import save_png, timeline_chart
from unveil.io import atomic_path
from unveil.photo import DEFAULT_DETECTOR, create_detector
from unveil.photo.framing import frame_face

from .face_tracker import DETECT_SIDE, FaceTracker, video_detector_settings
from .predict import SEARCH_FACE, Predictor
from .video_io import Frame, H264Writer, VideoFile

READINGS = ("one_reading", "untouched", "occluded", "reconstructed", "upper_half_reader")   # the answer first
POSE = ("yaw", "pitch", "roll")
EVERY, SMOOTH, BATCH = 5, 5, 8
STAGES = ("decode", "track", "align", "read", "draw", "encode")
PALETTE = [(255, 210, 0), (0, 200, 255), (255, 80, 160), (120, 230, 60), (255, 140, 0), (170, 120, 255)]


@dataclass
class VideoOptions:
    every: int = EVERY                     # detect on every `every`-th frame, follow the faces in between
    smooth: int = SMOOTH                   # frames averaged per face (1: no smoothing)
    detect_side: int | None = DETECT_SIDE  # the detector's input size (longer side); None: the photo settings
    batch: int = BATCH                     # frames read by the models in one batch


@dataclass
class VideoResult:
    source: str
    frames: int = 0
    seconds: float = 0.0                                  # wall time, end to end
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    timeline: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def face_ids(self) -> list[int]:
        return sorted({row["face"] for row in self.timeline})

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)

    def to_json(self) -> dict:
        return {"source": self.source, "frames": self.frames, "faces": self.face_ids, "fps": round(self.fps, 2),
                "stage_seconds": {k: round(v, 3) for k, v in self.stages.items()}, "errors": self.errors,
                "outputs": self.outputs, "timeline": self.timeline}


class Stopwatch:
    """Seconds spent per stage, summed over the run."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


class Smoother:
    """Each face's readings averaged over its last `window` frames: [readings, classes] arrays by face id."""

    def __init__(self, window: int):
        self.window, self.history = max(1, int(window)), {}

    def add(self, face_id: int, probabilities: np.ndarray) -> np.ndarray:
        history = self.history.setdefault(face_id, deque(maxlen=self.window))
        history.append(probabilities)
        return np.mean(history, axis=0)


class VideoReader:
    """A video or a camera through the photo path, frame by frame (see the module's docstring)."""

    def __init__(self, predictor: Predictor, options: VideoOptions | None = None, detector: str = DEFAULT_DETECTOR):
        self.predictor, self.options = predictor, options or VideoOptions()
        if self.options.every < 1 or self.options.smooth < 1 or self.options.batch < 1:
            raise UnveilError(f"--every, --smooth and the batch must be whole numbers >= 1, got {self.options}")
        if self.options.detect_side is None:
            self.detector = predictor.detector
        else:
            settings = video_detector_settings(detector, self.options.detect_side)
            self.detector = create_detector(**settings, min_face=SEARCH_FACE, device=predictor.device)

    def run(self, source, stem: Path, progress: bool = True) -> VideoResult:
        """Read every frame of `source` (a `VideoFile` or a `Webcam`) and write STEM.mp4, STEM.timeline.csv
        and STEM.timeline.png. A file damaged part way keeps what was read before, with the error listed;
        a camera stops at Ctrl-C, keeping everything read."""
        result, watch, started = VideoResult(source.name), Stopwatch(), time.perf_counter()
        tracker = FaceTracker(self.detector, self.options.every, self.predictor.framer.min_face)
        smoother = Smoother(self.options.smooth)
        shown = logs.progress(what=source.name, total=source.total or None, unit="frame", enabled=progress)
        video, end = stem.with_name(stem.name + ".mp4"), 0.0
        if min(source.size) < SEARCH_FACE:
            raise DataError(f"{source.name}: its frames are {source.size[0]}x{source.size[1]} pixels, too small to "
                            f"hold a face (faces of {SEARCH_FACE} px and more are searched)")
        with atomic_path(video) as tmp, H264Writer(tmp, source.fps, source.size) as writer:
            try:
                for frames in self._batches(source, watch, result):
                    for frame, annotated in self._read(frames, tracker, smoother, watch, result):
                        with watch.stage("encode"):
                            writer.write(annotated, frame.time)  # the source's own time: variable rates kept
                        result.frames, end = result.frames + 1, frame.time
                    shown.update(len(frames))
            except KeyboardInterrupt:
                if not source.live:
                    raise
            finally:
                shown.close()
        short = source.shortfall(result.frames, end)
        if short and not result.errors:
            result.errors.append(f"{source.name}: {short} (cut short or damaged); what was read is kept")
        result.seconds, result.stages = time.perf_counter() - started, dict(watch.seconds)
        result.outputs = {"video": str(video), **write_timeline(result, stem)}
        return result

    def _batches(self, source, watch: Stopwatch, result: VideoResult):
        """Lists of `batch` frames; a frame that cannot be decoded ends the video with the error noted."""
        frames, batch = source.frames(), []
        while True:
            try:
                with watch.stage("decode"):
                    frame = next(frames, None)
            except DataError as exc:
                result.errors.append(str(exc))
                frame = None
            if frame is None:
                break
            batch.append(frame)
            if len(batch) == self.options.batch:
                yield batch
                batch = []
        if batch:
            yield batch

    def _read(self, frames: list[Frame], tracker: FaceTracker, smoother: Smoother, watch: Stopwatch,
              result: VideoResult):
        """Track and align each frame's faces, read them all in one batch, then yield (frame, annotated)."""
        framed, owners = [], []
        for frame in frames:
            with watch.stage("track"):
                tracks = tracker.update(frame.rgb)
            with watch.stage("align"):
                for track in tracks:
                    with contextlib.suppress(UnveilError):  # landmarks carried into a shape no transform fits
                        framed.append(frame_face(frame.rgb, track.face))
                        owners.append((frame.index, track.id))
        with watch.stage("read"):
            readings = self.predictor.read_framed(framed)
        by_frame = defaultdict(list)
        for (index, face_id), item, face in zip(owners, framed, readings):
            raw = np.array([list(face.readings[r].probabilities.values()) for r in READINGS])
            # A turned-away frame's reading is kept as read, never averaged into the face's smoothed one.
            probabilities = raw if face.turned_away else smoother.add(face_id, raw)
            by_frame[index].append((face_id, item, face, probabilities))
        for frame in frames:
            faces = by_frame[frame.index]
            result.timeline += [timeline_row(frame, face_id, face, p) for face_id, _, face, p in faces]
            with watch.stage("draw"):
                annotated = annotate_frame(frame.rgb, faces)
            yield frame, annotated


def timeline_row(frame: Frame, face_id: int, face, probabilities: np.ndarray) -> dict:
    return {"frame": frame.index, "time": round(frame.time, 3), "face": face_id,
            "box": [round(v, 1) for v in face.box], "hole": face.hole, "hole_fraction": round(face.hole_fraction, 4),
            "pose": face.pose.to_json() if face.pose else {k: float("nan") for k in POSE},
            "turned_away": face.turned_away, "readings": {r: {c: round(float(p), 4) for c, p in zip(CLASSES, row)}
                         for r, row in zip(READINGS, probabilities)}}


def annotate_frame(rgb: np.ndarray, faces: list) -> np.ndarray:
    """The frame with each face's box and id, its hole's outline, the one reading, and the two readings it
    pools: the judge's on the reconstruction and the upper-half reader's on the occluded face (smoothed)."""
    out = rgb.copy()
    for face_id, item, face, probabilities in faces:
        colour = PALETTE[(face_id - 1) % len(PALETTE)]
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
        cv2.polylines(out, hole_outline(face.crops["hole"], item.matrix), True, (255, 255, 255), 1, cv2.LINE_AA)
        lines = [f"face {face_id}"]
        if face.turned_away:
            lines.append(f"turned away (yaw {face.pose.yaw:+.0f})")
        else:
            for name, label in (("one_reading", "reading"), ("reconstructed", "judge/recon"),
                                ("upper_half_reader", "reader/occl")):
                row = probabilities[READINGS.index(name)]
                lines.append(f"{label}: {CLASSES[int(row.argmax())]} {row.max():.2f}")
        for k, text in enumerate(lines):
            _label(out, text, (x0, y1 + 14 + 15 * k) if k else (x0, max(12, y0 - 5)), colour)
    return out


def hole_outline(hole: np.ndarray, matrix: np.ndarray) -> list[np.ndarray]:
    """The hole's contours (uint8 crop, 255 = hidden) carried from the crop back into the frame."""
    contours, _ = cv2.findContours((hole > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    inverse = cv2.invertAffineTransform(matrix)
    return [np.round(c.reshape(-1, 2) @ inverse[:, :2].T + inverse[:, 2]).astype(np.int32) for c in contours]


def _label(image: np.ndarray, text: str, origin: tuple[int, int], colour) -> None:
    (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    x, y = origin
    cv2.rectangle(image, (x, y - height - 3), (x + width + 4, y + 3), (0, 0, 0), -1)
    cv2.putText(image, text, (x + 2, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)


def write_timeline(result: VideoResult, stem: Path) -> dict[str, str]:
    """STEM.timeline.csv (always, a header at least) and STEM.timeline.png (when a face was seen)."""
    table = stem.with_name(stem.name + ".timeline.csv")
    with atomic_path(table) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "time", "face", "x0", "y0", "x1", "y1", "hole", "hole_fraction", *POSE,
                         "turned_away", *(f"{r}.{c}" for r in READINGS for c in CLASSES)])
        for row in result.timeline:
            writer.writerow([row["frame"], row["time"], row["face"], *row["box"], row["hole"], row["hole_fraction"],
                             *(row["pose"][k] for k in POSE), int(row["turned_away"]),
                             *(row["readings"][r][c] for r in READINGS for c in CLASSES)])
    outputs = {"timeline_csv": str(table)}
    facing = [row for row in result.timeline if not row["turned_away"]]   # the chart: turned-away frames left out
    if facing:
        panels = []
        for face_id in sorted({row["face"] for row in facing}):
            rows = [row for row in facing if row["face"] == face_id]
            probabilities = np.array([list(row["readings"]["one_reading"].values()) for row in rows])
            panels.append((f"face {face_id}: the one reading", [row["time"] for row in rows],
                           probabilities))
        outputs["timeline_png"] = str(save_png(timeline_chart(panels, list(CLASSES)),
                                               stem.with_name(stem.name + ".timeline.png")))
    return outputs


def sample_clip(path: str | Path, detector, seconds: float = 10.0, fps: int = 25,
                size: tuple[int, int] = (640, 480)) -> Path:
    """A test clip made from the sample photo (`sample_photos`): the face moves and grows and shrinks, at
    a walking pace whatever the clip's length, and wears a synthetic surgical mask through the middle
    40 % of the clip (on, then off again)."""
    from .predict import sample_photos

    (bare, _), (masked, _) = sample_photos(detector)
    count = max(1, round(seconds * fps))
    with atomic_path(path) as tmp, H264Writer(tmp, fps, size) as writer:
        for k in range(count):
            worn = 0.3 <= k / count < 0.7
            writer.write(clip_frame(masked if worn else bare, k / fps, size))
    return Path(path)


def clip_frame(photo: np.ndarray, seconds: float, size: tuple[int, int]) -> np.ndarray:
    """The photo over a gray frame, `seconds` into the clip: scaled 0.7-1.0 (a 10 s cycle) and moved along
    a loop (5 s across, 10 s up and down)."""
    width, height = size
    turn = 2 * np.pi * seconds / 10
    scale = 0.85 + 0.15 * np.sin(turn)
    centre = (width / 2 + 0.12 * width * np.sin(2 * turn), height / 2 + 0.08 * height * np.cos(turn))
    middle = (photo.shape[1] / 2, photo.shape[0] / 2)
    matrix = np.array([[scale, 0, centre[0] - scale * middle[0]], [0, scale, centre[1] - scale * middle[1]]])
    return cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(128, 128, 128))


def read_videos(reader: VideoReader, jobs: list[tuple[Path, str]], folder: Path) -> list[VideoResult]:
    """Each (video file, output stem) read into `folder`; a file that cannot be opened is a result with
    its error, and the others still run."""
    results = []
    for path, stem in jobs:
        try:
            with VideoFile(path) as video:
                results.append(reader.run(video, folder / stem))
        except DataError as exc:
            results.append(VideoResult(str(path), errors=[str(exc)]))
    return results
