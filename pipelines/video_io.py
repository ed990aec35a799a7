"""Frames in and out: video files decoded with PyAV (its wheel ships FFmpeg's codecs, libx264 included),
cameras read with OpenCV, and the annotated video encoded as H.264 mp4.

    with VideoFile("clip.mp4") as video:                  # a file (or Webcam(0): a camera)
        for frame in video.frames():                      # Frame(index, time, rgb uint8 [H, W, 3])
            ...
    with H264Writer("out.mp4", video.fps, video.size) as out:
        out.write(rgb)

Every failure is a ``DataError`` naming the file or camera: a damaged file, a codec the wheel lacks, a
camera that cannot be opened.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from unveil.errors import DataError

__all__ = ["VIDEO_EXTENSIONS", "Frame", "VideoFile", "Webcam", "H264Writer", "is_video", "check_encoder"]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v")
ENCODER = "libx264"


@dataclass
class Frame:
    index: int          # 0, 1, 2, ... in the order decoded
    time: float         # seconds from the first frame
    rgb: np.ndarray     # uint8 [H, W, 3]


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


class _Source:
    """What `VideoFile` and `Webcam` share: `with source:` closes it (each has its own `close`)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def shortfall(self, frames: int, end: float) -> str | None:
        """What the source announced and did not give, after `frames` frames up to `end` s (None: nothing)."""
        return None


class VideoFile(_Source):
    """A video file's first video stream, decoded frame by frame (FFmpeg's own threads)."""

    live = False

    def __init__(self, path: str | Path):
        import av

        self.path, self.name = Path(path), str(path)
        if not self.path.is_file():
            raise DataError(f"{path}: {'not a regular file' if os.path.exists(path) else 'no such file'}")
        try:
            self.container = av.open(str(path), "r")
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read it as a video ({_reason(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise DataError(f"{path}: holds no video stream (damaged, or not a video)")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 25.0
        self.size = (self.stream.codec_context.width, self.stream.codec_context.height)
        # Matroska announces its duration in the container only; None where neither says.
        seconds = self.stream.duration and float(self.stream.duration * self.stream.time_base)
        self.seconds = seconds or (self.container.duration and self.container.duration / 1e6) or None
        self.total = self.stream.frames or (round(self.seconds * self.fps) if self.seconds else None)

    def frames(self) -> Iterator[Frame]:
        import av

        index, start = 0, None
        try:
            for decoded in self.container.decode(self.stream):
                when = decoded.time if decoded.time is not None else index / self.fps
                start = when if start is None else start
                yield Frame(index, when - start, decoded.to_ndarray(format="rgb24"))
                index += 1
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise DataError(f"{self.name}: damaged after frame {index} ({_reason(exc)})") from None
        if index == 0:
            raise DataError(f"{self.name}: no frame could be decoded")

    def shortfall(self, frames: int, end: float) -> str | None:
        """The header's frame count where it has one (one short is rounding), else its duration: a count
        estimated from a duration would misjudge a variable frame rate."""
        if self.stream.frames:
            if frames < self.stream.frames - 1:
                return f"ended after {frames} of the {self.stream.frames} frames its header announces"
        elif self.seconds and end + 2 / self.fps < self.seconds:
            return (f"ended after {frames} frames, at {end:.2f} s of the {self.seconds:.2f} s its header "
                    f"announces")
        return None

    def close(self) -> None:
        self.container.close()


class Webcam(_Source):
    """A camera through OpenCV's capture; frames until `seconds` have passed (None: until Ctrl-C)."""

    live = True
    total = None

    def __init__(self, index: int = 0, seconds: float | None = None):
        self.name, self.seconds = f"camera {index}", seconds
        quiet = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our one line says it, not OpenCV's warnings
        try:
            self.capture = cv2.VideoCapture(index)
        finally:
            cv2.utils.logging.setLogLevel(quiet)
        if not self.capture.isOpened():
            self.capture.release()
            raise DataError(f"{self.name}: cannot be opened (no such camera, it is in use, or access is denied)")
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 25.0
        width, height = self.capture.get(cv2.CAP_PROP_FRAME_WIDTH), self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
        self.size = (int(width), int(height))

    def frames(self) -> Iterator[Frame]:
        start, index = time.perf_counter(), 0
        while self.seconds is None or time.perf_counter() - start < self.seconds:
            ok, bgr = self.capture.read()
            if not ok:
                if index == 0:
                    raise DataError(f"{self.name}: opened, but gave no frame")
                return
            yield Frame(index, time.perf_counter() - start, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1

    def close(self) -> None:
        self.capture.release()


def check_encoder() -> None:
    """Refuse early, before any work, when the installed PyAV cannot write H.264."""
    import av

    if ENCODER not in av.codecs_available:
        raise DataError(f"the installed PyAV has no {ENCODER} (H.264) encoder: reinstall it from its wheel "
                        f"(pip install --force-reinstall av)")


class H264Writer:
    """RGB frames to an H.264 mp4 (yuv420p, so any player reads it; odd sizes lose their last row or column).
    Each frame keeps the time it is given (a variable-frame-rate source stays in time), else k / fps."""

    TIME_BASE = Fraction(1, 90_000)   # the MPEG clock: exact for 24, 25, 30 and 30000/1001 fps

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], crf: int = 23, preset: str = "veryfast"):
        import av

        check_encoder()
        self.path, self.fps = Path(path), fps
        self.width, self.height = size[0] // 2 * 2, size[1] // 2 * 2
        if self.width < 2 or self.height < 2:
            raise DataError(f"{path}: cannot write a {size[0]}x{size[1]} video (H.264 needs 2x2 pixels at least)")
        try:
            self.container = av.open(str(path), "w", format="mp4")
            self.stream = self.container.add_stream(ENCODER, rate=Fraction(fps).limit_denominator(1001))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot write an H.264 video ({_reason(exc)})") from None
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.codec_context.time_base = self.TIME_BASE
        self.stream.options = {"crf": str(crf), "preset": preset}
        self.frames, self.pts = 0, -1

    def write(self, rgb: np.ndarray, time: float | None = None) -> None:
        """Append a frame shown at `time` s (None: the next frame at the nominal rate)."""
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: self.height, : self.width]), format="rgb24")
        when = self.frames / self.fps if time is None else time
        self.pts = max(self.pts + 1, round(when / self.TIME_BASE))  # strictly increasing, as the muxer needs
        frame.pts, frame.time_base = self.pts, self.TIME_BASE
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))  # the frames still inside the encoder
        self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None:
            self.close()
        else:
            self.container.close()


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
