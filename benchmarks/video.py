"""Video speed: a 640x480 clip with one face, read end to end as `unveil predict clip.mp4` reads it
(decode -> track/detect -> align -> hole -> reconstruct -> classify -> draw -> encode). One table: frames
per second per stage and end to end.

    nice -n 10 python benchmarks/video.py                    # 10 s at 25 fps, the shipped models
    python benchmarks/video.py --every 10 --detect-side 256  # other tracking settings

The clip is made here from the sample photo (`pipelines.video.sample_clip`): the face moves, grows and
shrinks, and wears a synthetic mask through the middle of the clip. Target on this project's 2-core
CPU: >= 25 fps end to end. Measure on an otherwise idle machine: another job on the cores halves it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from unveil.classify import predict_proba
from unveil.photo.framing import frame_face
from unveil.pipelines.video_io import VideoFile
from unveil.pipelines.predict import Predictor
from unveil.pipelines.video import BATCH, EVERY, SMOOTH, STAGES, VideoOptions, VideoReader, sample_clip
from unveil.pipelines.face_tracker import DETECT_SIDE
from unveil.runtime import resolve_precision


def read_breakdown(predictor: Predictor, rgb: np.ndarray, batch: int, repeats: int = 5) -> dict[str, float]:
    """Seconds per face for the parts of the `read` stage, on `batch` copies of one frame's face."""
    face = max(predictor.detector.detect(rgb), key=lambda f: f.score)
    framed = [frame_face(rgb, face)] * batch
    full = torch.from_numpy(np.stack([f.crop for f in framed]))[:, None].float().div(255)
    points = torch.from_numpy(np.stack([f.points for f in framed]))
    holes, _ = predictor.framer.holes(full, points)
    occluded = full * (1 - holes)
    parts = {"hole": lambda: predictor.framer.holes(full, points),
             "reconstruct": lambda: predictor.inpainter.reconstruct(occluded, holes, precision=predictor.precision),
             "classify": lambda: (predict_proba(predictor.judge, torch.cat([full, occluded, occluded]),
                                                precision=predictor.precision),
                                  predict_proba(predictor.reader, occluded, precision=predictor.precision))}
    out = {}
    for name, work in parts.items():
        work()  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            work()
        out[name] = (time.perf_counter() - started) / repeats / batch
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--every", type=int, default=EVERY)
    parser.add_argument("--smooth", type=int, default=SMOOTH)
    parser.add_argument("--detect-side", type=int, default=DETECT_SIDE)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--hole", default="auto")
    args = parser.parse_args()
    predictor = Predictor(hole=args.hole)
    options = VideoOptions(args.every, args.smooth, args.detect_side, args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        clip = sample_clip(Path(tmp) / "clip.mp4", predictor.detector, args.seconds, args.fps)
        reader = VideoReader(predictor, options)
        with VideoFile(clip) as video:
            first = next(video.frames()).rgb
        with VideoFile(clip) as video:
            result = reader.run(video, Path(tmp) / "out")
    print(f"clip: {result.frames} frames, 640x480, one face; every {args.every}, detector side {args.detect_side}, "
          f"batch {args.batch}, hole {args.hole}, "
          f"precision {resolve_precision(predictor.device, predictor.precision)}, {torch.get_num_threads()} threads")
    print(f"{'stage':<28}{'ms/frame':>10}{'fps':>10}")
    for stage in STAGES:
        seconds = result.stages.get(stage, 0.0) / max(result.frames, 1)
        print(f"{stage:<28}{1000 * seconds:>10.2f}{1 / max(seconds, 1e-9):>10.1f}")
    for name, seconds in read_breakdown(predictor, first, args.batch).items():
        print(f"{'  read: ' + name + ' (alone)':<28}{1000 * seconds:>10.2f}{1 / max(seconds, 1e-9):>10.1f}")
    print(f"{'end to end':<28}{1000 / max(result.fps, 1e-9):>10.2f}{result.fps:>10.1f}   (target >= 25 fps)")
    print(f"face ids seen: {result.face_ids}; errors: {result.errors or 'none'}")


if __name__ == "__main__":
    main()
