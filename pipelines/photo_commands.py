"""`unveil eval-photos`: real photos of masked faces scored as `compare` scores a data set
(`pipelines.photo_eval`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from unveil.classes import parse_aliases
from unveil.shipped import PHOTO_JUDGE, PHOTO_READER

from .options import (add_bootstrap_argument, add_class_map_argument, add_model_arguments, class_map_option, count,
                      examples, seed_value, split_list)
from .predict import HOLES
from .report import summary_table

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-photos", help="score real photos of masked faces (class folders) like compare",
                       description="A test set of real photos: ROOT/<class>/<photo>. Each photo's most confident "
                                   "face is detected, aligned as FER2013 frames its faces and given its hole; the "
                                   "judge then scores the occluded crops and each inpainter's reconstruction, and "
                                   "the --cross classifiers (the upper-half reader by default) score every "
                                   "condition. No full condition: the truth is under the mask. Writes the same "
                                   "report, figures and gallery as compare.",
                       epilog=examples(
                           "unveil eval-photos my_masked_photos/ --hole landmarks --classes valence",
                           "unveil eval-photos my_masked_photos/ --hole auto --inpainters inpainter_unet,telea --out "
                           "runs/my-photos"))
    p.add_argument("root", metavar="ROOT", help="a folder of class folders of photos (angry/, happy/, ...)")
    p.add_argument("--hole", default="landmarks", choices=HOLES,
                   help="landmarks (default: every face here is masked): placed from the nose and mouth points, "
                        "whatever the mask looks like; auto: the shipped segmenter finds the mask (best on "
                        "surgical masks, misses many others on photos); lower-half: the lower half of the crop")
    p.add_argument("--classifier", default=PHOTO_JUDGE,
                   help=f"the judge: a checkpoint path or shipped name (default {PHOTO_JUDGE}, the judge of photos)")
    p.add_argument("--inpainters", help="comma-separated generators and/or baselines (default: every shipped "
                                        "generator, telea and navier_stokes)")
    p.add_argument("--cross", default=PHOTO_READER,
                   help=f"comma-separated other classifiers (default {PHOTO_READER}, the upper-half reader of photos)")
    p.add_argument("--per-class", type=count(1), default=2, help="gallery faces per class (default 2)")
    p.add_argument("--seed", type=seed_value, default=0, help="bootstrap and gallery sample")
    add_bootstrap_argument(p)
    p.add_argument("--tta", action="store_true", help="test-time augmentation for the classifiers")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    p.add_argument("--out", help="output folder (default runs/photos-<time>)")
    p.add_argument("--alias", action="append", metavar="NAME=CLASS", help="map a folder name to a class")
    add_class_map_argument(p)
    add_model_arguments(p)
    p.set_defaults(run=run_eval_photos)


def run_eval_photos(args: argparse.Namespace) -> int:
    from .compare import Models
    from .photo_eval import PhotoEvalSpec, evaluate_photos

    spec = PhotoEvalSpec(args.root, args.hole, args.classifier, split_list(args.inpainters, None),
                         split_list(args.cross), parse_aliases(args.alias), class_map_option(args), args.tta,
                         args.seed, args.bootstrap, args.per_class)
    out = Path(args.out or f"runs/photos-{time.strftime('%Y%m%d-%H%M%S')}")
    report = evaluate_photos(spec, Models.open(args.device, args.precision, args.checkpoints), out)
    for line in report["data"]["skipped"]:
        log.info(f"skipped: {line}")
    stream = sys.stderr if args.json else sys.stdout
    print(summary_table(report), file=stream)
    print(f"report: {out / 'report.md'}  gallery: {out / 'gallery.html'}", file=stream)
    if args.json:
        print(json.dumps(report))
    return 0
