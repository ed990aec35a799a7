"""`unveil eval-holes`: how well faces and their masks are found on real photos (see `pipelines.hole_eval`)."""

from __future__ import annotations

import argparse
import json

from unveil.io import check_replaceable
from unveil.photo import DETECTORS, DEFAULT_DETECTOR
from unveil.photo.hole_sets import SPLITS

from .hole_eval import OUTPUTS, check_roots, evaluate_holes, markdown, write_outputs
from .options import add_max_yaw_argument, add_model_arguments, examples
from .predict import HOLES, FaceFramer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-holes", help="measure face detection and mask finding on photo sets",
                       description="For each set: a folder with with_mask/ and without_mask/ photos or crops "
                                   "(detection rate, share of masked faces given a mask hole, share of bare faces "
                                   "given one, per origin where manifest.csv names them), or a folder of "
                                   "pixel-labelled photos, .../images/NAME.jpg with .../masks/NAME_gt.png (IoU "
                                   "of the hole with the label, per group), or class folders of bare photos such "
                                   "as KDEF (each photo bare, with a painted mask and behind a painted hand, "
                                   "tissue, scarf or phone, per head angle). Every photo is framed as predict "
                                   "frames it. Writes holes.json, holes.md, misses.png and misses.html.",
                       epilog=examples(
                           "unveil eval-holes ../shared/data/masked-faces/real-crops ../shared/data/kdef --split val "
                           "--out runs/eval-holes-val",
                           "unveil eval-holes ../shared/data/masked-faces/synthetic-seg/testing --json"))
    p.add_argument("roots", nargs="+", metavar="SET",
                   help="photo sets (masked/bare folders, pixel-labelled, or class folders of bare photos)")
    p.add_argument("--split", choices=SPLITS, help="only this split of a masked/bare set (by duplicate group; "
                                                   "see unveil.photo.hole_sets); default: every photo")
    p.add_argument("--hole", default="auto", choices=HOLES, help="the hole mode to measure (default auto)")
    p.add_argument("--segmenter", default="segmenter", help="the hole model for --hole auto (shipped name or path)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS.names(),
                   help=f"the face detector (default {DEFAULT_DETECTOR})")
    add_max_yaw_argument(p)
    p.add_argument("--out", default="runs/eval-holes", help="folder for the report and the misses (runs/eval-holes)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    add_model_arguments(p)
    p.set_defaults(run=run_eval_holes)


def run_eval_holes(args: argparse.Namespace) -> int:
    check_roots(args.roots)
    check_replaceable(args.out, OUTPUTS, "eval-holes", args.roots)  # before any work: other files, an input
    framer = FaceFramer(args.hole, args.segmenter, args.checkpoints, args.device, args.precision, args.detector)
    report, misses = evaluate_holes(args.roots, framer, args.split, args.max_yaw)
    report["segmenter"] = args.segmenter if args.hole == "auto" else None
    paths = write_outputs(report, misses, args.out)
    print(json.dumps(report) if args.json else markdown(report) + f"\n-> {paths['markdown']}, {paths['html']}")
    return 0
