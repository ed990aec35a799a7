"""`unveil train-inpainter` and `unveil eval-inpainter`.

    unveil train-inpainter --config configs/inpaint_synthetic_unet.yaml [--set train.epochs=3] [--out DIR] [--resume]
    unveil eval-inpainter runs/inpaint_synthetic_unet/best --data synthetic --split test \
        --classifier checkpoints/classifier_full --json

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
from pathlib import Path

import torch

from unveil.checkpoint import checkpoint_paths
from unveil.classes import CLASSES
from unveil.data import SPLIT_CHOICES
from unveil.errors import UnveilError
from unveil.io import write_json
from unveil.occlusion import Occlusion
from unveil.runtime import autocast, pick_device

from .data_commands import add_source_arguments, load_source


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train-inpainter", help="train an inpainting generator from a config",
                           description="Train an inpainting generator (unet, ra_unet, resnet_cgan) from a YAML "
                                       "config; writes config.yaml, history.json, metrics.json, samples/, best.* "
                                       "(the generator) and last.* (resume state) into the run folder.")
    train.add_argument("--config", required=True, help="a YAML config, e.g. configs/inpaint_synthetic_unet.yaml")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value (repeatable), e.g. --set train.epochs=3")
    train.add_argument("--out", help="run folder (default runs/CONFIG_NAME)")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last after its last epoch")
    train.add_argument("--device", help="override train.device (auto, cpu, cuda)")
    train.set_defaults(run=run_train)

    ev = sub.add_parser("eval-inpainter", help="score an inpainter: image quality and a judge's accuracy",
                        description="Reconstruct the occluded faces of a split, stitch them, and report hole and "
                                    "whole-image PSNR/SSIM/L1 (LPIPS where available) and the judge classifier's "
                                    "accuracy and macro-F1 on the stitched faces.")
    ev.add_argument("inpainter", metavar="CHECKPOINT_OR_BASELINE",
                    help="a generator checkpoint (path without extension) or telea, navier_stokes, mean_face")
    ev.add_argument("--data", required=True, help="data source (FER2013 folder, class folders, 'synthetic', ...)")
    ev.add_argument("--split", default="test", choices=SPLIT_CHOICES)
    ev.add_argument("--classifier", required=True, metavar="CHECKPOINT",
                    help="the JUDGE: a full-face classifier that never took part in the generator's training")
    ev.add_argument("--occlusion", help="default: the generator's training occlusion (lower-half for baselines)")
    ev.add_argument("--batch-size", type=int, default=1024)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--tta", action="store_true", help="flip/shift test-time augmentation for the judge")
    ev.add_argument("--json", action="store_true", help="print one JSON object on stdout and nothing else")
    ev.add_argument("--out", help="folder for metrics.json and a sample grid PNG")
    add_source_arguments(ev)
    ev.set_defaults(run=run_eval)


# --------------------------------------------------------------------------- train


def run_train(args: argparse.Namespace) -> int:
    from inpaint.train import load_inpaint_config, train_inpainter

    overrides = list(args.set)
    if args.device:
        overrides.append(f"train.device={args.device}")
    cfg = load_inpaint_config(args.config, overrides)
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    summary = train_inpainter(cfg, out, resume=args.resume)
    print(json.dumps({"run": str(out), "best": str(out / "best"), "best_epoch": summary["best_epoch"],
                      "val": summary["val"]}))
    return 0


# --------------------------------------------------------------------------- eval


def run_eval(args: argparse.Namespace) -> int:
    from classify.evaluate import predict_proba
    from inpaint import create_inpainter, load_inpainter
    from inpaint.classical import BASELINES
    from inpaint.classifiers import classifier_info, load_classifier, same_classifier
    from inpaint.evaluate import evaluate_inpainter

    device = pick_device(args.device)
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        print(f"warning: {message}", file=sys.stderr)

    # The inpainter: a baseline by name, or a checkpoint.
    if args.inpainter in BASELINES:
        inpainter = create_inpainter(args.inpainter)
        if args.inpainter == "mean_face":
            train = load_source(args, args.data, "train")
            if len(train) == 0:
                raise UnveilError(f"{args.data}: no train split to fit mean_face on")
            inpainter.fit(train.images)
        default_occlusion = "lower-half"
        kind = "baseline"
    else:
        if not checkpoint_paths(args.inpainter)[1].exists():
            known = ", ".join(BASELINES.names())
            raise UnveilError(f"{args.inpainter}: neither an inpainter checkpoint (no .json sidecar) nor a "
                              f"baseline name ({known})")
        inpainter = load_inpainter(args.inpainter, device)
        default_occlusion = inpainter.meta.get("occlusion_text") or str(Occlusion.from_dict(inpainter.meta["occlusion"]))
        kind = "checkpoint"
    inpainter = inpainter.to(device).eval()
    try:
        occlusion = Occlusion.parse(args.occlusion or default_occlusion)
    except ValueError as exc:
        raise UnveilError(f"--occlusion: {exc}") from None

    # The judge, and whether it took part in training.
    judge_model, judge_meta = load_classifier(args.classifier, device)
    judge = classifier_info(args.classifier, judge_meta)
    for role in ("guide", "selector", "conditioning"):
        reason = same_classifier(inpainter.meta.get(role), judge)
        if not reason:
            continue
        if role == "guide":
            warn(f"the judge {args.classifier} is this generator's GUIDE ({reason}): the generator was trained "
                 f"to please it, so its accuracy here is not an independent measure; judge with another classifier")
        elif role == "selector":
            warn(f"the judge {args.classifier} selected this generator's checkpoint ({reason}); prefer a third classifier")
        else:
            warn(f"the judge {args.classifier} is this generator's conditioning classifier ({reason})")

    faces = load_source(args, args.data, args.split)
    if len(faces) == 0:
        raise UnveilError(f"{args.data}: the {args.split} split is empty")
    images = faces.float_images().to(device)
    labels = faces.labels

    def judge_probs(x: torch.Tensor) -> torch.Tensor:
        return predict_proba(judge_model, x, batch_size=args.batch_size, tta=args.tta)

    result = evaluate_inpainter(inpainter, images, labels, occlusion, judge=judge_probs, batch_size=args.batch_size,
                                full_metrics=True, device=device,
                                autocast=(lambda: autocast(device)) if device.type == "cuda" else None)
    reference = _reference_accuracies(images, labels, occlusion, judge_probs, args.batch_size)

    report = {
        "inpainter": args.inpainter, "kind": kind, "arch": inpainter.meta.get("arch", args.inpainter),
        "data": faces.source, "split": args.split, "n": result["n"], "occlusion": str(occlusion),
        "accuracy": result["accuracy"], "macro_f1": result["macro_f1"],
        "psnr": result["psnr_hole"], "ssim": result["ssim_hole"], "l1": result["l1_hole"],
        "psnr_hole": result["psnr_hole"], "ssim_hole": result["ssim_hole"], "l1_hole": result["l1_hole"],
        "whole": {"psnr": result["psnr"], "ssim": result["ssim"], "l1": result["l1"], "lpips": result.get("lpips")},
        "lpips": result.get("lpips"), "lpips_missing": result.get("lpips_missing"),
        "judge": {k: judge[k] for k in ("path", "arch", "seed", "data_fingerprint", "weights_sha256")},
        "judge_accuracy": {"reconstructed": result["accuracy"], **reference},
        "per_class": result["judge_report"]["per_class"],
        "confusion": result["judge_report"]["confusion"],
        "guide": _brief(inpainter.meta.get("guide")), "conditioning": _brief(inpainter.meta.get("conditioning")),
        "selector": _brief(inpainter.meta.get("selector")),
        "judge_is_guide": any("GUIDE" in w for w in warnings),
        "warnings": warnings,
    }
    if args.out:
        out = Path(args.out)
        write_json(out / "metrics.json", report)
        _gallery(out / "samples.png", inpainter, faces, images, occlusion)
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
    return 0


def _brief(info: dict | None) -> dict | None:
    if not info:
        return None
    return {k: info.get(k) for k in ("path", "arch", "seed", "weights_sha256", "loss", "weight") if k in info}


@torch.no_grad()
def _reference_accuracies(images, labels, occlusion, judge_probs, batch_size) -> dict:
    """The judge on the full faces and on the occluded faces (same masks as the reconstructions)."""
    from unveil.metrics.classification import classification_report

    occluded = torch.cat([occlusion(images[i:i + batch_size], seed=occlusion.seed + b)[0]
                          for b, i in enumerate(range(0, images.shape[0], batch_size))])
    out = {}
    for name, x in (("full", images), ("occluded", occluded)):
        out[name] = classification_report(labels.cpu(), judge_probs(x).cpu(), n_boot=0)["accuracy"]
    return out


def _gallery(path: Path, inpainter, faces, images, occlusion) -> None:
    from inpaint.figures import sample_grid

    pick = torch.cat([(faces.labels == k).nonzero().squeeze(1)[:2] for k in range(len(CLASSES))]).to(images.device)
    full = images[pick]
    occluded, hole = occlusion(full, seed=occlusion.seed)
    recon = inpainter.reconstruct(occluded, hole).float().clamp(0, 1)
    sample_grid(path, occluded, recon, full, [CLASSES[int(k)] for k in faces.labels[pick.cpu()]])


def _print_table(r: dict) -> None:
    acc = r["judge_accuracy"]
    print(f"{r['inpainter']} on {r['data']} [{r['split']}, {r['n']} faces, occlusion {r['occlusion']}]")
    print(f"  hole:  PSNR {r['psnr_hole']:.2f} dB  SSIM {r['ssim_hole']:.3f}  L1 {r['l1_hole']:.4f}")
    lp = r["lpips"]
    print(f"  whole: PSNR {r['whole']['psnr']:.2f} dB  SSIM {r['whole']['ssim']:.3f}  L1 {r['whole']['l1']:.4f}  "
          f"LPIPS {'n/a' if lp is None else f'{lp:.4f}'}")
    print(f"  judge {r['judge']['path']} ({r['judge']['arch']}): accuracy {r['accuracy']:.4f}  macro-F1 "
          f"{r['macro_f1']:.4f}   [full {acc['full']:.4f}, occluded {acc['occluded']:.4f}]")
    for w in r["warnings"]:
        print(f"  WARNING: {w}")
