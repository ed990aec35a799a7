"""`unveil train-inpainter` and `unveil eval-inpainter`.

    unveil train-inpainter --config configs/inpaint_synthetic_unet.yaml [--set train.epochs=3] [--out DIR] [--resume]
    unveil eval-inpainter runs/inpaint_synthetic_unet/best --data synthetic --split test --classifier JUDGE --json

eval-inpainter takes a generator checkpoint or a classical baseline's name (telea, navier_stokes,
mean_face — fitted on the source's train split). Every accuracy it reports is the named judge's, on
the stitched faces; the same judge's accuracy on the full and on the occluded faces is reported
beside it. With --json, stdout carries exactly one JSON object. When the judge is the generator's
guide (the classifier inside its loss) it warns on stderr and in the JSON: such a number measures
how well the generator learned to please that classifier, not the expression it drew.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from unveil.distributed import init_from_env, is_main
from unveil.shipped import JUDGE

from .options import (add_evaluation_arguments, add_train_command, examples, load_source, occlusion_text, seed_value,
                      train_overrides)

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    add_train_command(sub, "train-inpainter", "train an inpainting generator from a config",
                      "Train an inpainting generator (unet, ra_unet, resnet_cgan) from a YAML config; writes "
                      "config.yaml, history.json, metrics.json, samples/, best.* (the generator) and last.* "
                      "(resume state) into the run folder.", "configs/inpaint_synthetic_unet.yaml", run_train)

    p = sub.add_parser("eval-inpainter", help="score an inpainter: image quality and a judge's accuracy",
                       description="Reconstruct the occluded faces of a split, stitch them, and report hole and "
                                   "whole-image PSNR/SSIM/L1 (LPIPS where available) and the judge classifier's "
                                   "accuracy and macro-F1 on the stitched, the occluded and the full faces.",
                       epilog=examples(
                           "unveil eval-inpainter inpainter_unet --data ../shared/data/fer2013 --split val",
                           "unveil eval-inpainter telea --data synthetic --occlusion mask --json"))
    p.add_argument("inpainter", metavar="CHECKPOINT_OR_BASELINE",
                   help="a generator checkpoint (a path, or a shipped name such as inpainter_unet) or "
                        "telea, navier_stokes, mean_face")
    p.add_argument("--classifier", default=JUDGE, metavar="CHECKPOINT",
                   help=f"the JUDGE: a full-face classifier that never took part in the generator's training "
                        f"(default: the shipped {JUDGE})")
    p.add_argument("--occlusion", type=occlusion_text,
                   help="default: the generator's training occlusion (lower-half for baselines)")
    p.add_argument("--seed", type=seed_value, default=0, help="the masks' seed (default 0)")
    add_evaluation_arguments(p, "folder for metrics.json and a sample grid PNG")
    p.set_defaults(run=run_eval)


def run_train(args: argparse.Namespace) -> int:
    init_from_env()  # under torchrun: one data-parallel rank per process
    from unveil.inpaint.config import load_inpaint_config
    from unveil.inpaint.train import train_inpainter

    from unveil.config import to_dict
    from unveil.inpaint.config import SELECT_METRICS

    from .tracking import live_training

    cfg = load_inpaint_config(args.config, train_overrides(args))
    with live_training("inpainter", cfg.run_dir(), cfg.train.select, SELECT_METRICS[cfg.train.select], to_dict(cfg),
                       enabled=not args.no_wandb and is_main()) as live:
        summary = train_inpainter(cfg, cfg.run_dir(), resume=args.resume, on_epoch_end=live)
        live.summarize(summary)
    if args.json and is_main():
        print(json.dumps(summary))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """The comparison (`pipelines.compare`) with one inpainter, reported from that inpainter's side."""
    from .compare import Models, evaluate_one_inpainter

    models = Models.open(args.device, args.precision, args.checkpoints)
    result = evaluate_one_inpainter(args.inpainter, args.classifier, models,
                                    lambda source, split: load_source(args, source, split), args.data, args.split,
                                    args.occlusion, args.tta, args.seed, Path(args.out) if args.out else None)
    for warning in result["warnings"]:
        log.warning(warning)
    print(json.dumps(result) if args.json else _table(result))
    return 0


def _table(r: dict) -> str:
    acc, lp = r["judge_accuracy"], r.get("lpips")
    lines = [f"{r['inpainter']} on {r['data']} [{r['split']}, {r['n']} faces, occlusion {r['occlusion']}]",
             f"  hole:  PSNR {r['psnr_hole']:.2f} dB  SSIM {r['ssim_hole']:.3f}  L1 {r['l1_hole']:.4f}",
             f"  image: PSNR {r['psnr_image']:.2f} dB  SSIM {r['ssim_image']:.3f}  L1 {r['l1_image']:.4f}  "
             f"LPIPS {'n/a' if lp is None else f'{lp:.4f}'}",
             f"  judge {r['judge']['path']} ({r['judge']['arch']}): accuracy {r['accuracy']:.4f}  macro-F1 "
             f"{r['macro_f1']:.4f}   [full {acc['full']:.4f}, occluded {acc['occluded']:.4f}]"]
    return "\n".join(lines + [f"  WARNING: {w}" for w in r["warnings"]])
