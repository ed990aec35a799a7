"""`unveil train-segmenter` and `unveil eval-segmenter`: the hole model behind `predict --hole auto`
(`inpaint.segmenter`, trained by `inpaint.segmenter_train`)."""

from __future__ import annotations

import argparse
import json

from unveil.distributed import init_from_env, is_main
from unveil.errors import UnveilError
from unveil.io import check_replaceable, output_folder, write_json
from unveil.runtime import pick_device

from .options import add_evaluation_arguments, add_train_command, examples, load_source, seed_value, train_overrides

# What eval-segmenter writes into its --out, and only that (the folder is replaced as one set).
SEGMENTER_EVAL = ({"metrics.json"}, "a segmenter evaluation")


def register(sub: argparse._SubParsersAction) -> None:
    add_train_command(sub, "train-segmenter", "train the mask segmenter behind predict --hole auto",
                      "Train the small U-Net that marks the pixels a face mask hides, on faces wearing synthetic "
                      "masks; the run folder gets best.* (the segmenter).", "configs/segmenter_fer.yaml",
                      run_train)

    p = sub.add_parser("eval-segmenter", help="score a mask segmenter on faces wearing held-out synthetic masks",
                       description="Put synthetic masks (drawn from --seed) on the faces of a split, leave a fifth "
                                   "bare, and report the segmenter's mean IoU on the masked faces and the share of "
                                   "pixels it marks on the bare ones.",
                       epilog=examples(
                           "unveil eval-segmenter --data ../shared/data/fer2013 --split val",
                           "unveil eval-segmenter runs/segmenter/best --data synthetic --json"))
    p.add_argument("segmenter", nargs="?", default="segmenter", help="a checkpoint path or shipped name (default "
                                                                       "the shipped segmenter)")
    p.add_argument("--seed", type=seed_value, default=1, help="the masks' seed (training validated on seed 0)")
    add_evaluation_arguments(p, "folder for metrics.json")
    p.set_defaults(run=run_eval)


def run_train(args: argparse.Namespace) -> int:
    init_from_env()  # under torchrun: one data-parallel rank per process
    from unveil.inpaint.segmenter_train import load_segmenter_config, train_segmenter

    from unveil.config import to_dict

    from .tracking import live_training

    cfg = load_segmenter_config(args.config, train_overrides(args))
    with live_training("segmenter", cfg.run_dir(), cfg.train.select or "iou", config=to_dict(cfg),
                       enabled=not args.no_wandb and is_main()) as live:
        history = train_segmenter(cfg, cfg.run_dir(), resume=args.resume, on_epoch_end=live)
        live.summarize({"best_epoch": history["best_epoch"], "val": history["best"]})
    if args.json and is_main():
        print(json.dumps({"run": str(cfg.run_dir()), "best": history["best"]}))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from unveil.inpaint.segmenter_train import evaluate_segmenter

    if args.out:
        check_replaceable(args.out, *SEGMENTER_EVAL)  # before the work, not after it
    faces = load_source(args, args.data, args.split)
    if len(faces) == 0:
        raise UnveilError(f"{args.data}: the {args.split} split is empty")
    scores = evaluate_segmenter(args.segmenter, faces, args.seed, pick_device(args.device), args.precision,
                                args.checkpoints)
    result = {"segmenter": args.segmenter, "data": faces.source, "split": args.split, "seed": args.seed, **scores}
    if args.out:
        with output_folder(args.out, *SEGMENTER_EVAL) as folder:
            write_json(folder / "metrics.json", result)
    print(json.dumps(result) if args.json else
          f"{args.segmenter} on {result['masked_faces']} masked and {result['bare_faces']} bare faces of "
          f"{faces.source} ({args.split}, masks seed {args.seed}): mean IoU {result['iou']:.4f}, "
          f"pixels marked on bare faces {100 * result['bare_marked']:.2f} %")
    return 0
