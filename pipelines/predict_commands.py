"""`unveil predict`: expressions on your own photos (see `pipelines.predict`)."""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

from unveil.errors import DataError
from unveil.inpaint import BASELINES
from unveil.io import check_replaceable, output_folder, write_json
from unveil.photo import DEFAULT_DETECTOR, DETECTORS
from unveil.photo.read import photos_in

from .face_tracker import DETECT_SIDE
from .options import add_max_yaw_argument, add_model_arguments, count, examples
from .predict import HOLES, INPAINTER, MIN_USABLE_FACE, SEARCH_FACE, Predictor, photo_table, sample_photos
from .video import EVERY, SMOOTH, VideoOptions, VideoReader, read_videos
from .video_io import VIDEO_EXTENSIONS, Webcam, check_encoder, is_video

log = logging.getLogger(__name__)

# what predict writes: an --out holding more is refused
OUTPUTS = {"[0-9]*_*.png", "[0-9]*_*.mp4", "[0-9]*_*.timeline.csv", "predictions.json"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="read the expression on your own photos (masked faces welcome)",
                       description="For every face in every photo: detect it and its landmarks, align it as "
                                   "FER2013 frames its faces, find the hidden lower face, reconstruct it and "
                                   "classify the untouched, the occluded and the reconstructed crop. Without "
                                   "IMAGE, runs on a sample photo that ships with scikit-image, as it is and wearing a "
                                   "synthetic surgical mask.",
                       epilog=examples(
                           "unveil predict                      # the sample photo, bare and wearing a mask",
                           "unveil predict photo.jpg --out runs/predict",
                           "unveil predict my_photos/ --json > readings.json",
                           "unveil predict clip.mp4 --out runs/video",
                           "unveil predict --webcam --seconds 10"))
    p.add_argument("images", nargs="*", metavar="IMAGE|VIDEO|DIR",
                   help="photos, folders of photos (searched with their subfolders, e.g. one per class), or video "
                        f"files ({', '.join(VIDEO_EXTENSIONS)})")
    p.add_argument("--inpainter", default=INPAINTER,
                   help=f"a generator (shipped name or checkpoint) or a baseline ({', '.join(BASELINES.names())}); "
                        f"default {INPAINTER}, the one the shipped fusion was fitted for")
    p.add_argument("--hole", default="auto", choices=HOLES,
                   help="auto (default): the shipped hole model decides whether the face wears a mask and marks "
                        "its pixels (trained on real and painted masks, faces at every head angle and other "
                        "occluders; see docs/photos.md and docs/turned-faces.md); "
                        "landmarks: placed from the nose and mouth points, as a mask would sit; lower-half: the "
                        "lower half of the aligned crop")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS.names(),
                   help=f"the face detector (default {DEFAULT_DETECTOR}: it finds far more masked faces than mtcnn)")
    p.add_argument("--min-face", type=float, default=MIN_USABLE_FACE, metavar="PX",
                   help=f"the smallest face read, in pixels (default {MIN_USABLE_FACE}; at least {SEARCH_FACE}): "
                        "a smaller face holds little detail for a 48x48 crop, so its readings are less sure")
    add_max_yaw_argument(p)
    p.add_argument("--out", default="runs/predict", help="folder for one annotated PNG per photo (runs/predict)")
    p.add_argument("--top", type=count(1), default=3, help="emotions listed per reading (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout and nothing else")
    add_video_arguments(p)
    add_model_arguments(p)
    p.set_defaults(run=run_predict)


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--webcam", nargs="?", type=count(0), const=0, default=None, metavar="N",
                   help="also read camera N (default 0), until Ctrl-C or --seconds")
    p.add_argument("--seconds", type=_seconds, default=None, help="with --webcam: stop after this many seconds")
    p.add_argument("--every", type=count(1), default=EVERY,
                   help=f"video: detect faces on every K-th frame and follow them in between (default {EVERY})")
    p.add_argument("--smooth", type=count(1), default=SMOOTH,
                   help=f"video: average each face's readings over its last N frames (default {SMOOTH}; 1: none)")
    p.add_argument("--detect-side", type=count(64), default=DETECT_SIDE, metavar="PX",
                   help=f"video: frames are shrunk to this longer side for the detector (default {DETECT_SIDE})")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def run_predict(args: argparse.Namespace) -> int:
    if args.webcam is None:
        return predict_all(args, None)
    with Webcam(args.webcam, args.seconds) as camera:  # opened first: a missing camera costs no model loading
        return predict_all(args, camera)


def predict_all(args: argparse.Namespace, camera: Webcam | None) -> int:
    paths = photos_in(args.images) if args.images else []
    if args.images and not paths:
        raise DataError(f"{', '.join(args.images)}: no photos found (searched with subfolders for image files)")
    videos = [p for p in paths if is_video(p)]
    if videos or camera is not None:
        check_encoder()
    check_replaceable(args.out, OUTPUTS, "predict", paths)  # before any work: other files, or an input, refused
    predictor = Predictor(args.inpainter, args.hole, checkpoints=args.checkpoints, device=args.device,
                          precision=args.precision, top=max(1, args.top), detector=args.detector,
                          min_face=args.min_face, max_yaw=args.max_yaw)
    photos = [(p, None) for p in paths if not is_video(p)]
    if not args.images and camera is None:
        photos = sample_photos(predictor.detector)
    inputs = photos + [(v, None) for v in videos]
    names = [_stem(k, source, name, args.images) for k, (source, name) in enumerate(inputs)]
    with output_folder(args.out, OUTPUTS, "predict", paths) as folder:  # written as one set, never mixed with an older
        results = [predictor.predict(source, picture=folder / f"{stem}.png", name=name)
                   for (source, name), stem in zip(photos, names)]
        clips = run_videos(args, predictor, folder, list(zip(videos, names[len(photos):])), camera)
        _moved_to(args.out, results, clips)
        report = {"hole": args.hole, "inpainter": args.inpainter, "photos": [r.to_json() for r in results],
                  "videos": [c.to_json() for c in clips]}
        write_json(folder / "predictions.json", report)
    for error in [e for r in results + clips for e in r.errors]:
        log.info(f"unveil: {error}")
    print(json.dumps(report) if args.json else "\n".join(filter(None, [photo_table(results), video_table(clips)])))
    return 0 if any(r.faces for r in results) or any(c.frames for c in clips) else 1


def run_videos(args: argparse.Namespace, predictor: Predictor, folder: Path, jobs: list[tuple[Path, str]],
               camera: Webcam | None) -> list:
    if not jobs and camera is None:
        return []
    options = VideoOptions(every=args.every, smooth=args.smooth, detect_side=args.detect_side)
    reader = VideoReader(predictor, options, args.detector)
    clips = read_videos(reader, jobs, folder)
    if camera is not None:
        clips.append(reader.run(camera, folder / f"{len(jobs):03d}_webcam{args.webcam}"))
    return clips


def _moved_to(out: str, photos: list, clips: list) -> None:
    """Results name their files where they will be once the output folder is in place."""
    for result in photos:
        result.picture = result.picture and str(Path(out) / Path(result.picture).name)
    for clip in clips:
        clip.outputs = {k: str(Path(out) / Path(v).name) for k, v in clip.outputs.items()}


def _stem(k: int, source, name: str | None, given: list[str]) -> str:
    return f"{k:03d}_" + (re.sub(r"[^A-Za-z0-9_-]+", "_", _shown_name(source, name, given)).strip("_") or "photo")


def _shown_name(source, name: str | None, given: list[str]) -> str:
    """A photo's name for its picture: the path below the folder it was found in (class/photo.jpg)."""
    if name is not None:
        return name
    path = Path(source)
    for root in map(Path, given):
        if root.is_dir() and path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name


def video_table(clips) -> str:
    return "\n".join(f"{c.source}: not read" if not c.frames else
                     f"{c.source}: {c.frames} frames, face ids {c.face_ids or 'none'}, {c.fps:.1f} fps end to end"
                     + (f"  -> {c.outputs['video']}" if c.outputs else "") for c in clips)


