"""`unveil train-classifier`, `eval-classifier`, `baseline svm` and `saliency`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from unveil.checkpoint import checkpoint_paths
from unveil.classes import CLASSES
from unveil.data import SPLIT_CHOICES
from unveil.errors import UnveilError
from unveil.io import write_json
from unveil.runtime import fused_for_inference, pick_device, resolve_precision
from unveil.shipped import resolve_checkpoint

from .options import add_model_arguments, add_source_arguments, load_source
from .figures import save_png

OCCLUSION_HELP = "none (default), lower-half[:start_row=24,fill=0] or mask[:styles=surgical+n95,seed=0]"


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train-classifier", help="train a classifier from a YAML config",
                           description="Train a classifier from configs/classifier_*.yaml; the run folder gets "
                                       "config.yaml, history.json, metrics.json, last.* (resume) and best.*.")
    train.add_argument("--config", required=True, help="a YAML config, e.g. configs/classifier_synthetic.yaml")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value (repeatable), e.g. --set train.epochs=3")
    train.add_argument("--data", help="the data source (shortcut for --set data.source=SOURCE)")
    train.add_argument("--out", help="run folder (default: the config's out, else runs/classifier/<name>)")
    train.add_argument("--resume", action="store_true", help="continue the run in the run folder from last.*")
    train.add_argument("--half", action="store_true", help="store best.* in fp16, for shipping")
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    train.add_argument("--json", action="store_true", help="print the final metrics as one JSON object on stdout")
    train.set_defaults(run=run_train)

    ev = sub.add_parser("eval-classifier", help="evaluate a classifier checkpoint on a split",
                        description="Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix, "
                                    "one-vs-rest ROC-AUC and bootstrap 95 % intervals; writes metrics.json, "
                                    "report.md and confusion.png.")
    ev.add_argument("checkpoint", help="a classifier checkpoint (NAME, NAME.safetensors or NAME.json)")
    ev.add_argument("--data", required=True, help="a FER2013 folder/CSV/archive, class folders, or 'synthetic'")
    ev.add_argument("--split", default="test", choices=SPLIT_CHOICES)
    ev.add_argument("--occlusion", default="none", help=OCCLUSION_HELP)
    ev.add_argument("--inpainter", help="reconstruct the occluded faces with this inpainter checkpoint first")
    ev.add_argument("--tta", action="store_true", help="test-time augmentation: flip and 2-pixel shifts")
    ev.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the intervals (0: none)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the masks and of the bootstrap")
    ev.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
    ev.add_argument("--out", help="folder for the report files (default runs/eval/<checkpoint>-<split>-...)")
    ev.add_argument("--record", action="store_true",
                    help="also store accuracy and macro-F1 in the checkpoint's sidecar under metrics.<split> "
                         "(only under the checkpoint's own training condition)")
    add_model_arguments(ev)
    add_source_arguments(ev)
    ev.set_defaults(run=run_eval)

    base = sub.add_parser("baseline", help="classical baselines")
    base_sub = base.add_subparsers(dest="baseline_command", metavar="KIND", required=True)
    svm = base_sub.add_parser("svm", help="PCA (150) + RBF SVM, C and gamma by CV on a training subset",
                              description="Fit PCA + RBF SVM on a random training subset (C and gamma chosen by "
                                          "cross-validation on it only) and report on --split.")
    svm.add_argument("--data", required=True)
    svm.add_argument("--occlusion", default="none", help=OCCLUSION_HELP + "; applied to training and test faces")
    svm.add_argument("--train-size", type=int, default=5000, help="training faces for the fit and the CV (5000)")
    svm.add_argument("--components", type=int, default=150, help="PCA components (150)")
    svm.add_argument("--folds", type=int, default=3, help="cross-validation folds (3)")
    svm.add_argument("--split", default="test", choices=SPLIT_CHOICES, help="where to report (default test)")
    svm.add_argument("--seed", type=int, default=0)
    svm.add_argument("--jobs", type=int, default=1, help="parallel CV fits (-1: all cores)")
    svm.add_argument("--n-boot", type=int, default=1000)
    svm.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
    svm.add_argument("--out", help="folder for the report files (default runs/baseline/svm-<occlusion>)")
    svm.add_argument("--save", help="also save the fitted baseline (safetensors + JSON) under this name")
    add_source_arguments(svm)
    svm.set_defaults(run=run_svm)

    sal = sub.add_parser("saliency", help="Grad-CAM overlays of a classifier on a few faces, as PNG")
    sal.add_argument("checkpoint")
    sal.add_argument("--data", required=True)
    sal.add_argument("--split", default="test", choices=SPLIT_CHOICES)
    sal.add_argument("--n", type=int, default=16, help="faces (default 16)")
    sal.add_argument("--occlusion", default="none", help=OCCLUSION_HELP)
    sal.add_argument("--seed", type=int, default=0, help="which faces, and their masks")
    sal.add_argument("--out", required=True, help="the PNG file to write")
    add_model_arguments(sal)
    add_source_arguments(sal)
    sal.set_defaults(run=run_saliency)


# --------------------------------------------------------------------------- train-classifier


def run_train(args: argparse.Namespace) -> int:
    from unveil.classify.config import load_classifier_config
    from unveil.classify.train import train_from_config

    from .compare import reconstruct_loader

    overrides = list(args.set)
    if args.data:
        overrides.append(f"data.source={json.dumps(args.data)}")
    if args.half:
        overrides.append("train.half=true")
    if args.device:
        overrides.append(f"device={args.device}")
    cfg = load_classifier_config(args.config, overrides)
    loader = reconstruct_loader(pick_device(cfg.device))
    metrics = train_from_config(cfg, args.out, resume=args.resume, load_reconstruct=loader)
    if args.json:
        print(json.dumps(metrics))
    return 0


# --------------------------------------------------------------------------- eval-classifier


def _load_model(spec: str, device: torch.device, checkpoints: str | None):
    """A classifier by path or shipped name, folded for inference."""
    from unveil.classify.models import load_classifier

    path = resolve_checkpoint(spec, checkpoints)
    model, meta = load_classifier(path, device)
    return fused_for_inference(model), meta, path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "x"


def run_eval(args: argparse.Namespace) -> int:
    from unveil.classify.condition import Condition
    from unveil.classify.evaluate import evaluate, write_report

    from .compare import reconstruct_loader

    device = pick_device(args.device)
    model, meta, path = _load_model(args.checkpoint, device, args.checkpoints)
    faces = load_source(args, args.data, args.split)
    if len(faces) == 0:
        raise UnveilError(f"{args.data}: no faces in split {args.split!r}")
    condition = Condition.build(args.occlusion, args.inpainter, reconstruct_loader(device, args.checkpoints))
    report = evaluate(model, faces, condition, tta=args.tta, n_boot=args.n_boot, seed=args.seed,
                      precision=args.precision)
    info = {"checkpoint": str(checkpoint_paths(path)[0]), "data": faces.source, "split": args.split,
            **condition.describe(), "tta": args.tta, "precision": resolve_precision(device, args.precision),
            "trained_condition": meta.get("condition", "full"), "trained_occlusion": meta.get("occlusion", "none")}
    name = checkpoint_paths(path)[0].stem
    default = f"{name}-{args.split}-{_slug(info['occlusion'])}" + ("-recon" if args.inpainter else "") + ("-tta" if args.tta else "")
    out = Path(args.out) if args.out else Path("runs") / "eval" / default
    paths = write_report(report, out, f"{name} on {args.split} ({info['condition']}, occlusion {info['occlusion']})", info)
    if args.record:
        _record(path, meta, info, report)
    if args.json:
        print(json.dumps({**info, **report}))
    else:
        print(_summary(report, info))
    print(f"wrote {paths['json']}, {paths['markdown'].name}, {paths['png'].name}", file=sys.stderr)
    return 0


def _record(checkpoint: str, meta: dict, info: dict, report: dict) -> None:
    """Store this split's scores in the checkpoint's sidecar (its weights are untouched)."""
    same = (info["condition"] == meta.get("condition", "full") and info["occlusion"] == meta.get("occlusion", "none")
            and info["inpainter"] == meta.get("inpainter"))
    if not same:
        raise UnveilError(f"--record stores scores under the checkpoint's own training condition "
                          f"({meta.get('condition', 'full')}, occlusion {meta.get('occlusion', 'none')}); "
                          f"this evaluation used {info['condition']}, occlusion {info['occlusion']}")
    entry = {"tta_accuracy": report["accuracy"]} if info["tta"] else {
        "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "n": report["n"],
        "ci95": report.get("ci95"), "macro_roc_auc": report["macro_roc_auc"]}
    metrics = dict(meta.get("metrics") or {})
    metrics[info["split"]] = {**metrics.get(info["split"], {}), **entry}
    write_json(checkpoint_paths(checkpoint)[1], {**meta, "metrics": metrics})


def _summary(report: dict, info: dict) -> str:
    ci = report.get("ci95", {})
    span = lambda k: f" [{100 * ci[k][0]:.2f}, {100 * ci[k][1]:.2f}]" if k in ci else ""  # noqa: E731
    lines = [f"{Path(info['checkpoint']).stem} on {info['split']} ({report['n']} faces, condition {info['condition']}, "
             f"occlusion {info['occlusion']}{', TTA' if info['tta'] else ''}; trained {info['trained_condition']})",
             f"accuracy  {100 * report['accuracy']:.2f} %{span('accuracy')}",
             f"macro-F1  {100 * report['macro_f1']:.2f} %{span('macro_f1')}"]
    if report.get("macro_roc_auc") is not None:
        lines.append(f"ROC-AUC   {report['macro_roc_auc']:.4f} (macro, one-vs-rest)")
    lines.append(f"{'class':<10}{'prec':>7}{'recall':>8}{'F1':>7}{'n':>7}")
    for name, row in report["per_class"].items():
        lines.append(f"{name:<10}{row['precision']:>7.3f}{row['recall']:>8.3f}{row['f1']:>7.3f}{row['support']:>7}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- baseline svm


def run_svm(args: argparse.Namespace) -> int:
    from unveil.classify.baseline import fit_svm_baseline
    from unveil.classify.condition import Condition
    from unveil.classify.evaluate import write_report
    from unveil.metrics import classification_report

    if args.train_size < 2 * args.folds:
        raise UnveilError(f"--train-size {args.train_size} is too small for {args.folds}-fold cross-validation")
    faces = load_source(args, args.data)
    train, test = faces.split("train"), faces.split(args.split)
    if len(train) == 0 or len(test) == 0:
        raise UnveilError(f"{args.data}: need faces in the train and {args.split} splits")
    condition = Condition.build(args.occlusion)
    # Different mask seeds for the two sets, so no training mask is reused on a test face.
    train_images = condition.over_set(train.float_images(), seed=args.seed + 1_000)
    test_images = condition.over_set(test.float_images(), seed=args.seed)
    print(f"[baseline svm] PCA({args.components}) + RBF SVM on {min(args.train_size, len(train))} of {len(train)} "
          f"training faces, {args.folds}-fold CV over C and gamma ...", file=sys.stderr)
    baseline, search = fit_svm_baseline(train_images, train.labels, args.train_size, args.components,
                                        folds=args.folds, seed=args.seed, n_jobs=args.jobs)
    report = classification_report(test.labels, baseline.predict_proba(test_images), n_boot=args.n_boot, seed=args.seed)
    info = {"model": "pca_rbf_svm", "data": faces.source, "split": args.split, **condition.describe(), **search}
    out = Path(args.out) if args.out else Path("runs") / "baseline" / f"svm-{_slug(info['occlusion'])}"
    paths = write_report(report, out, f"PCA + RBF SVM on {args.split} (occlusion {info['occlusion']})", info)
    if args.save:
        saved = baseline.save(args.save, {"data_fingerprint": faces.fingerprint, **condition.describe(), **search,
                                          "metrics": {args.split: {"accuracy": report["accuracy"],
                                                                   "macro_f1": report["macro_f1"]}}})
        print(f"saved the baseline to {saved}", file=sys.stderr)
    if args.json:
        print(json.dumps({**info, **report}))
    else:
        print(f"best C {search['best_params']['C']:g}, gamma {search['best_params']['gamma']:.3g} "
              f"(CV accuracy {100 * search['cv_accuracy']:.2f} % on {search['train_size']} faces)")
        print(_summary(report, {**info, "checkpoint": "svm", "tta": False, "trained_condition": info["condition"]}))
    print(f"wrote {paths['json']}, {paths['markdown'].name}, {paths['png'].name}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- saliency


def run_saliency(args: argparse.Namespace) -> int:
    from unveil.classify.condition import Condition
    from unveil.classify.evaluate import predict_proba
    from unveil.classify.saliency import grad_cam, overlay

    if args.n < 1:
        raise UnveilError("--n must be at least 1")
    device = pick_device(args.device)
    model, meta, _ = _load_model(args.checkpoint, device, args.checkpoints)
    faces = load_source(args, args.data, args.split)
    if len(faces) == 0:
        raise UnveilError(f"{args.data}: no faces in split {args.split!r}")
    pick = torch.randperm(len(faces), generator=torch.Generator().manual_seed(args.seed))[: args.n]
    chosen = faces.select(pick.sort().values)
    images = Condition.build(args.occlusion)(chosen.float_images(), seed=args.seed).to(device)
    preds = predict_proba(model, images, precision=args.precision).argmax(1).cpu()
    heat = grad_cam(model, images, preds.to(device))
    tiles = [(to_rgb(images[i]), overlay(images[i:i + 1], heat[i:i + 1])[0],
              f"{CLASSES[int(chosen.labels[i])][:7]}>{CLASSES[int(preds[i])][:7]}") for i in range(len(chosen))]
    path = _save_rgb_grid(tiles, args.out)
    correct = int((preds == chosen.labels.cpu()).sum())
    print(f"wrote {path} ({len(chosen)} faces, {correct} predicted right; occlusion {args.occlusion}; "
          f"Grad-CAM of the predicted class)")
    return 0


def to_rgb(image: torch.Tensor) -> np.ndarray:
    """float [1, H, W] in [0, 1] -> uint8 [H, W, 3]."""
    gray = (image.detach().float().clamp(0, 1).cpu().numpy()[0] * 255).round().astype(np.uint8)
    return np.repeat(gray[..., None], 3, -1)


def _save_rgb_grid(tiles: list[tuple[np.ndarray, np.ndarray, str]], out: str, per_row: int = 8, scale: int = 3) -> Path:
    """Pairs (face, overlay) with a caption 'true>predicted' under each pair, `per_row` pairs a row."""
    h, w = tiles[0][0].shape[:2]
    pair_w, cell_h = 2 * w * scale + 2, h * scale + 14
    cols = min(per_row, len(tiles))
    rows = (len(tiles) + per_row - 1) // per_row
    canvas = Image.new("RGB", (cols * (pair_w + 6), rows * (cell_h + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (face, heat, caption) in enumerate(tiles):
        x, y = (k % per_row) * (pair_w + 6), (k // per_row) * (cell_h + 4)
        for j, img in enumerate((face, heat)):
            tile = Image.fromarray(img).resize((w * scale, h * scale), Image.Resampling.NEAREST)
            canvas.paste(tile, (x + j * (w * scale + 2), y))
        draw.text((x + 2, y + h * scale + 1), caption, fill="black")
    return save_png(canvas, out)
