"""`unveil predict`: expressions on your own photos (see `pipelines.predict`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from unveil.errors import DataError
from unveil.inpaint import BASELINES
from unveil.io import write_json
from unveil.photo import DEFAULT_DETECTOR, DETECTORS
from unveil.photo.read import photos_in

from .options import add_model_arguments, count
from .predict import HOLES, MIN_USABLE_FACE, SEARCH_FACE, Predictor, sample_photos


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="read the expression on your own photos (masked faces welcome)",
                       description="For every face in every photo: detect it and its landmarks, align it as "
                                   "FER2013 frames its faces, find the hidden lower face, reconstruct it and "
                                   "classify the untouched, the occluded and the reconstructed crop. Without "
                                   "IMAGE, runs on a sample photo that ships with scikit-image, as it is and wearing a "
                                   "synthetic surgical mask.")
    p.add_argument("images", nargs="*", metavar="IMAGE|DIR", help="photos, or folders of photos (searched with "
                                                                  "their subfolders, e.g. one per class)")
    p.add_argument("--inpainter", default="inpainter_unet",
                   help=f"a generator (shipped name or checkpoint) or a baseline ({', '.join(BASELINES.names())}); "
                        "default inpainter_unet")
    p.add_argument("--hole", default="auto", choices=HOLES,
                   help="auto (default): the shipped hole model decides whether the face wears a mask and marks "
                        "its pixels (trained on real and painted masks; see the README's photo section); "
                        "landmarks: placed from the nose and mouth points, as a mask would sit; lower-half: the "
                        "lower half of the aligned crop")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS.names(),
                   help=f"the face detector (default {DEFAULT_DETECTOR}: it finds far more masked faces than mtcnn)")
    p.add_argument("--min-face", type=float, default=MIN_USABLE_FACE, metavar="PX",
                   help=f"the smallest face read, in pixels (default {MIN_USABLE_FACE}; at least {SEARCH_FACE}): "
                        "a smaller face holds little detail for a 48x48 crop, so its readings are less sure")
    p.add_argument("--out", default="runs/predict", help="folder for one annotated PNG per photo (runs/predict)")
    p.add_argument("--top", type=count(1), default=3, help="emotions listed per reading (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout and nothing else")
    add_model_arguments(p)
    p.set_defaults(run=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    paths = photos_in(args.images) if args.images else []
    if args.images and not paths:
        raise DataError(f"{', '.join(args.images)}: no photos found (searched with subfolders for image files)")
    predictor = Predictor(args.inpainter, args.hole, checkpoints=args.checkpoints, device=args.device,
                          precision=args.precision, top=max(1, args.top), detector=args.detector,
                          min_face=args.min_face)
    out = Path(args.out)
    jobs = [(path, None) for path in paths] if args.images else sample_photos(predictor.detector)
    results = []
    for k, (source, name) in enumerate(jobs):
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", _shown_name(source, name, args.images)).strip("_") or "photo"
        results.append(predictor.predict(source, picture=out / f"{k:03d}_{stem}.png", name=name))
    for result in results:
        for error in result.errors:
            print(f"unveil: {error}", file=sys.stderr)
    report = {"hole": args.hole, "inpainter": args.inpainter, "photos": [r.to_json() for r in results]}
    write_json(out / "predictions.json", report)
    print(json.dumps(report) if args.json else photo_table(results))
    return 0 if any(r.faces for r in results) else 1


def _shown_name(source, name: str | None, given: list[str]) -> str:
    """A photo's name for its picture: the path below the folder it was found in (class/photo.jpg)."""
    if name is not None:
        return name
    path = Path(source)
    for root in map(Path, given):
        if root.is_dir() and path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name


def photo_table(results) -> str:
    lines = []
    for result in results:
        lines.append(f"{result.source}: {len(result.faces)} face(s)"
                     + (f"  -> {result.picture}" if result.picture else ""))
        for k, face in enumerate(result.faces, 1):
            lines.append(f"  face {k} at {[round(v) for v in face.box]}, hole {face.hole} "
                         f"({100 * face.hole_fraction:.0f} % of the crop)")
            for name, label in (("untouched", "untouched crop (shows the mask, if any)"),
                                ("occluded", "occluded (hole blacked out)"), ("reconstructed", "reconstructed"),
                                ("upper_half_reader", "upper-half reader on the occluded crop")):
                top = ", ".join(f"{c} {p:.2f}" for c, p in face.readings[name].top)
                lines.append(f"    {label:<42} {top}")
    return "\n".join(lines)
