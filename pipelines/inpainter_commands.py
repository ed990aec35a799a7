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
import sys

from unveil.distributed import init_from_env, is_main
from unveil.checkpoint import checkpoint_paths
from unveil.config import from_dict
from unveil.errors import UnveilError
from unveil.io import check_replaceable, output_folder, write_json
from unveil.occlusion import LowerHalf, Occlusion
from unveil.runtime import pick_device
from unveil.shipped import JUDGE, resolve_checkpoint

from .options import (add_evaluation_arguments, add_train_command, load_source, occlusion_text, seed_value,
                      train_overrides)

# What each evaluation writes into its --out, and only that (the folder is replaced as one set).
INPAINTER_EVAL = ({"metrics.json", "samples.png"}, "an inpainter evaluation")
SEGMENTER_EVAL = ({"metrics.json"}, "a segmenter evaluation")


def register(sub: argparse._SubParsersAction) -> None:
    add_train_command(sub, "train-inpainter", "train an inpainting generator from a config",
                      "Train an inpainting generator (unet, ra_unet, resnet_cgan) from a YAML config; writes "
                      "config.yaml, history.json, metrics.json, samples/, best.* (the generator) and last.* "
                      "(resume state) into the run folder.", "configs/inpaint_synthetic_unet.yaml", run_train)

    p = sub.add_parser("eval-inpainter", help="score an inpainter: image quality and a judge's accuracy",
                       description="Reconstruct the occluded faces of a split, stitch them, and report hole and "
                                   "whole-image PSNR/SSIM/L1 (LPIPS where available) and the judge classifier's "
                                   "accuracy and macro-F1 on the stitched, the occluded and the full faces.")
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
    _register_segmenter(sub)


def _register_segmenter(sub: argparse._SubParsersAction) -> None:
    add_train_command(sub, "train-segmenter", "train the mask segmenter behind predict --hole auto",
                      "Train the small U-Net that marks the pixels a face mask hides, on faces wearing synthetic "
                      "masks; the run folder gets best.* (the segmenter).", "configs/segmenter_fer.yaml",
                      run_train_segmenter)

    p = sub.add_parser("eval-segmenter", help="score a mask segmenter on faces wearing held-out synthetic masks",
                       description="Put synthetic masks (drawn from --seed) on the faces of a split, leave a fifth "
                                   "bare, and report the segmenter's mean IoU on the masked faces and the share of "
                                   "pixels it marks on the bare ones.")
    p.add_argument("segmenter", nargs="?", default="segmenter", help="a checkpoint path or shipped name (default "
                                                                       "the shipped segmenter)")
    p.add_argument("--seed", type=seed_value, default=1, help="the masks' seed (training validated on seed 0)")
    add_evaluation_arguments(p, "folder for metrics.json")
    p.set_defaults(run=run_eval_segmenter)


# --------------------------------------------------------------------------- train


def run_train(args: argparse.Namespace) -> int:
    init_from_env()  # under torchrun: one data-parallel rank per process
    from unveil.inpaint.config import load_inpaint_config
    from unveil.inpaint.train import train_inpainter

    cfg = load_inpaint_config(args.config, train_overrides(args))
    summary = train_inpainter(cfg, cfg.run_dir(), resume=args.resume)
    if args.json and is_main():
        print(json.dumps(summary))
    return 0


def run_train_segmenter(args: argparse.Namespace) -> int:
    init_from_env()  # under torchrun: one data-parallel rank per process
    from unveil.inpaint.segmenter_train import load_segmenter_config, train_segmenter

    cfg = load_segmenter_config(args.config, train_overrides(args))
    history = train_segmenter(cfg, cfg.run_dir(), resume=args.resume)
    if args.json:
        print(json.dumps({"run": str(cfg.run_dir()), "best": history["best"]}))
    return 0


def run_eval_segmenter(args: argparse.Namespace) -> int:
    from unveil.inpaint.segmenter import load_segmenter
    from unveil.inpaint.segmenter_train import MasksConfig, masked, score

    if args.out:
        check_replaceable(args.out, *SEGMENTER_EVAL)  # before the work, not after it
    device = pick_device(args.device)
    segmenter = load_segmenter(args.segmenter, device, args.checkpoints)
    faces = load_source(args, args.data, args.split)
    if len(faces) == 0:
        raise UnveilError(f"{args.data}: the {args.split} split is empty")
    sidecar = checkpoint_paths(resolve_checkpoint(args.segmenter, args.checkpoints))[1]
    masks = from_dict(MasksConfig, segmenter.meta.get("masks"), where=f"{sidecar}: masks")  # typed, keys named
    images, hole = masked(faces.float_images().to(device), masks, args.seed)
    result = {"segmenter": args.segmenter, "data": faces.source, "split": args.split, "seed": args.seed,
              "masks": segmenter.meta.get("masks"), **score(segmenter.predict(images, precision=args.precision), hole)}
    if args.out:
        with output_folder(args.out, *SEGMENTER_EVAL) as folder:
            write_json(folder / "metrics.json", result)
    print(json.dumps(result) if args.json else
          f"{args.segmenter} on {result['masked_faces']} masked and {result['bare_faces']} bare faces of "
          f"{faces.source} ({args.split}, masks seed {args.seed}): mean IoU {result['iou']:.4f}, "
          f"pixels marked on bare faces {100 * result['bare_marked']:.2f} %")
    return 0


# --------------------------------------------------------------------------- eval


def run_eval(args: argparse.Namespace) -> int:
    """The comparison (`pipelines.compare`) with one inpainter, reported from that inpainter's side."""
    from unveil.inpaint.figures import write_samples

    from . import compare as cmp

    if args.out:
        check_replaceable(args.out, *INPAINTER_EVAL)  # before the work, not after it
    device = pick_device(args.device)
    faces = load_source(args, args.data, args.split)
    if len(faces) == 0:
        raise UnveilError(f"{args.data}: the {args.split} split is empty")
    [inp] = cmp.load_inpainters([args.inpainter], device,
                                lambda: load_source(args, args.data, "train").float_images(), args.checkpoints)
    occlusion = _occlusion(args.occlusion, inp.model.meta)
    judge = cmp.load_judge(args.classifier, device, args.checkpoints)
    report, _ = cmp.compare(faces, judge, [inp], occlusion, tta=args.tta, seed=args.seed, n_boot=0, use_lpips=True,
                            precision=args.precision)
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    result = _inpainter_view(report, inp, args)
    if args.out:
        with output_folder(args.out, *INPAINTER_EVAL) as folder:
            write_json(folder / "metrics.json", result)
            write_samples(folder / "samples.png", inp.model, faces, occlusion)
    print(json.dumps(result) if args.json else _table(result))
    return 0


def _occlusion(text: str | None, meta: dict) -> Occlusion:
    """--occlusion, else the generator's training occlusion, else the lower half."""
    if text:
        return Occlusion.parse(text)
    return Occlusion.from_dict(meta["occlusion"]) if meta.get("occlusion") else LowerHalf()


def _inpainter_view(report: dict, inp, args: argparse.Namespace) -> dict:
    recon, conditions = report["conditions"][inp.name], report["conditions"]
    quality = {k: recon.get(k) for k in ("psnr_hole", "ssim_hole", "l1_hole", "psnr_image", "ssim_image",
                                          "l1_image", "lpips", "lpips_missing") if k in recon}
    roles = {role: _brief(inp.model.meta.get(role)) for role in ("guide", "conditioning", "selector")}
    return {
        "inpainter": args.inpainter, "kind": "checkpoint" if inp.path else "baseline", "arch": inp.model.name,
        "data": report["data"]["source"], "split": args.split, "n": report["data"]["n"],
        "occlusion": report["occlusion"], "precision": report["precision"],
        "accuracy": recon["accuracy"], "macro_f1": recon["macro_f1"], **quality,
        "judge": {k: report["judge"][k] for k in ("path", "arch", "seed", "condition", "weights_sha256")},
        "judge_accuracy": {"reconstructed": recon["accuracy"], "full": conditions["full"]["accuracy"],
                           "occluded": conditions["occluded"]["accuracy"]},
        "per_class": recon["per_class"], "confusion": recon["confusion"], **roles,
        "judge_is_guide": any("GUIDE" in w for w in report["warnings"]), "warnings": report["warnings"],
    }


def _brief(info: dict | None) -> dict | None:
    if not info:
        return None
    return {k: info.get(k) for k in ("path", "arch", "seed", "weights_sha256", "loss", "weight") if k in info}


def _table(r: dict) -> str:
    acc, lp = r["judge_accuracy"], r.get("lpips")
    lines = [f"{r['inpainter']} on {r['data']} [{r['split']}, {r['n']} faces, occlusion {r['occlusion']}]",
             f"  hole:  PSNR {r['psnr_hole']:.2f} dB  SSIM {r['ssim_hole']:.3f}  L1 {r['l1_hole']:.4f}",
             f"  image: PSNR {r['psnr_image']:.2f} dB  SSIM {r['ssim_image']:.3f}  L1 {r['l1_image']:.4f}  "
             f"LPIPS {'n/a' if lp is None else f'{lp:.4f}'}",
             f"  judge {r['judge']['path']} ({r['judge']['arch']}): accuracy {r['accuracy']:.4f}  macro-F1 "
             f"{r['macro_f1']:.4f}   [full {acc['full']:.4f}, occluded {acc['occluded']:.4f}]"]
    return "\n".join(lines + [f"  WARNING: {w}" for w in r["warnings"]])
