"""`unveil compare`: the report over occluded, reconstructed and full faces with one judge
(`pipelines.compare`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from unveil.inpaint import BASELINES
from unveil.shipped import JUDGE, OCCLUDED

from . import compare
from .options import (add_bootstrap_argument, add_class_map_argument, add_evaluation_arguments, add_exclude_argument,
                      class_map_option, count, examples, load_source, occlusion_text, seed_value, split_list)
from .report import summary_table

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare occluded, reconstructed and full faces with one classifier",
                       description="Score every condition — occluded, each inpainter's reconstruction "
                                   "(classical baselines included) and full — with the same classifier "
                                   "weights on the same test faces; write report.md, metrics.json, "
                                   "figures and gallery.html.",
                       epilog=examples(
                           "unveil compare --data ../shared/data/fer2013 --out runs/compare",
                           "unveil compare --data photos:../shared/data/kdef --split val --occlusion photo-mask "
                           "--inpainters inpainter_unet,telea"))
    p.add_argument("--classifier", default=JUDGE,
                   help=f"the judge: a checkpoint path or shipped name (default {JUDGE})")
    p.add_argument("--inpainters", help="comma-separated generator checkpoints (paths or shipped names) and/or "
                                        f"baselines ({', '.join(BASELINES.names())}); default: every shipped "
                                        "generator and the baselines")
    p.add_argument("--cross", help="comma-separated classifiers trained on other conditions, for the "
                                   "cross-condition matrix")
    p.add_argument("--occlusion", type=occlusion_text, default="lower-half",
                   help="lower-half[:...], mask[:...] or, for a photos: source, photo-mask[:styles=...] (painted on "
                        "each photo before alignment); default lower-half")
    p.add_argument("--per-class", type=count(1), default=2, help="gallery faces per class (default 2)")
    p.add_argument("--seed", type=seed_value, default=0, help="occlusion draw, bootstrap and gallery sample")
    add_bootstrap_argument(p)
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--reader", default=OCCLUDED,
                   help=f"the upper-half reader of the one reading (default {OCCLUDED}; on photos, "
                        f"classifier_photos_occluded, which the shipped fusion was fitted for)")
    p.add_argument("--no-wandb", action="store_true", help="do not log the gallery to W&B")
    add_class_map_argument(p)
    add_exclude_argument(p)
    add_evaluation_arguments(p, "output folder (default runs/compare-<time>)")
    p.set_defaults(run=run_compare_command)


def run_compare_command(args: argparse.Namespace) -> int:
    spec = compare.ComparisonSpec(
        data=args.data, inpainters=split_list(args.inpainters, None), judge=args.classifier,
        cross=split_list(args.cross), occlusion=args.occlusion, split=args.split,
        exclude_degenerate=args.exclude_degenerate, classes=class_map_option(args), tta=args.tta, seed=args.seed,
        n_boot=args.bootstrap, use_lpips=not args.no_lpips, per_class=args.per_class, reader=args.reader)
    out = Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    models = compare.Models.open(args.device, args.precision, args.checkpoints)
    report = compare.compare_to_folder(spec, models, out, lambda source, split: load_source(args, source, split),
                                       use_wandb=not args.no_wandb)
    stream = sys.stderr if args.json else sys.stdout
    print(summary_table(report), file=stream)
    for warning in report["warnings"]:
        log.warning(warning)
    print(f"report: {out / 'report.md'}  gallery: {out / 'gallery.html'}", file=stream)
    if args.json:
        print(json.dumps(report))
    return 0
