"""`unveil train-classifier`, `eval-classifier`, `baseline svm` and `saliency`."""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import torch

from unveil.checkpoint import checkpoint_paths, update_sidecar
from unveil.classes import ClassView, class_view
from unveil.classify import open_classifier
from unveil.data import SPLIT_CHOICES
from unveil.data.mix import majority_faces
from unveil.distributed import init_from_env, is_main
from unveil.errors import UnveilError
from unveil.figures import save_png
from unveil.io import check_replaceable, check_writable
from unveil.runtime import fused_for_inference, pick_device, resolve_precision

from .options import (add_bootstrap_argument, add_class_map_argument, add_evaluation_arguments, add_exclude_argument,
                      add_model_arguments, add_source_arguments, add_train_command, class_map_option, count, examples,
                      load_scored, load_source, occlusion_text, seed_value, train_overrides)

log = logging.getLogger(__name__)

OCCLUSION_HELP = ("none (default), lower-half[:start_row=24,fill=0], mask[:styles=surgical+n95] or, on a photos:DIR "
                  "source, photo-mask[:styles=...] (painted on the photo); masks drawn from --seed")


def register(sub: argparse._SubParsersAction) -> None:
    add_train_command(sub, "train-classifier", "train a classifier from a YAML config",
                      "Train a classifier from configs/classifier_*.yaml; the run folder gets config.yaml, "
                      "history.json, metrics.json, last.* (resume) and best.*.", "configs/classifier_synthetic.yaml",
                      run_train)
    for add in (_register_eval, _register_baseline, _register_saliency):
        add(sub)


def _register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-classifier", help="evaluate a classifier checkpoint on a split",
                       description="Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix, "
                                   "one-vs-rest ROC-AUC and bootstrap 95 % intervals; writes metrics.json, "
                                   "report.md and confusion.png.",
                       epilog=examples(
                           "unveil eval-classifier classifier_full --data ../shared/data/fer2013 --split test",
                           "unveil eval-classifier classifier_occluded --data ../shared/data/fer2013 --occlusion "
                           "lower-half --bootstrap 0 --json"))
    p.add_argument("checkpoint", help="a classifier checkpoint: a path (NAME, NAME.safetensors or NAME.json) "
                                      "or a shipped name such as classifier_full")
    p.add_argument("--occlusion", type=occlusion_text, default="none", help=OCCLUSION_HELP)
    p.add_argument("--inpainter", help="reconstruct the occluded faces with this inpainter checkpoint first")
    add_bootstrap_argument(p)
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the masks and of the bootstrap")
    p.add_argument("--votes", help="a FER+ votes CSV: also report accuracy against the crowd's majority label "
                                   "(faces with one clear majority among the seven classes)")
    p.add_argument("--record", action="store_true",
                   help="also store accuracy and macro-F1 in the checkpoint's sidecar under metrics.<split> "
                        "(only under the checkpoint's own training condition and classes)")
    add_class_map_argument(p)
    add_exclude_argument(p)
    add_evaluation_arguments(p, "folder for the report files (default runs/eval/<checkpoint>-<split>-...)")
    p.set_defaults(run=run_eval)


def _register_baseline(sub: argparse._SubParsersAction) -> None:
    from unveil.classify.baseline import CLASSICAL

    p = sub.add_parser("baseline", help="a classical model on flattened faces: " + ", ".join(CLASSICAL.names()),
                       description="Fit PCA (whitened) + MODEL on a random training subset, its hyper-parameters "
                                   "chosen by cross-validation on that subset only, and report on --split with the "
                                   "same metrics and bootstrap intervals as every classifier.",
                       epilog=examples(
                           "unveil baseline logreg --data ../shared/data/fer2013 --occlusion lower-half"))
    p.add_argument("model", choices=CLASSICAL.names(), metavar="MODEL",
                   help="svm (RBF), logreg (multinomial), naive_bayes (Gaussian), random_forest, kmeans "
                        "(each cluster labelled with its training faces' majority class)")
    p.add_argument("--data", required=True)
    p.add_argument("--occlusion", type=occlusion_text, default="none",
                   help=OCCLUSION_HELP + "; applied to training and test faces")
    p.add_argument("--train-size", type=count(2), default=5000, help="training faces for the fit and the CV (5000)")
    p.add_argument("--components", type=count(1), default=150, help="PCA components (150)")
    p.add_argument("--folds", type=count(2), default=3, help="cross-validation folds (3)")
    p.add_argument("--split", default="test", choices=SPLIT_CHOICES, help="where to report (default test)")
    p.add_argument("--seed", type=seed_value, default=0)
    p.add_argument("--jobs", type=int, default=1, help="parallel CV fits (-1: all cores)")
    add_bootstrap_argument(p)
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
    p.add_argument("--out", help="folder for the report files (default runs/baseline/<model>-<occlusion>)")
    p.add_argument("--save", help="also save the fitted baseline (safetensors + JSON) under this name")
    add_class_map_argument(p)
    add_source_arguments(p)
    p.set_defaults(run=run_baseline)


def _register_saliency(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("saliency", help="Grad-CAM overlays of a classifier on a few faces, as PNG",
                       epilog=examples(
                           "unveil saliency classifier_full --data ../shared/data/fer2013 --n 16 --out runs/saliency"))
    p.add_argument("checkpoint", help="a classifier checkpoint: a path or a shipped name")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test", choices=SPLIT_CHOICES)
    p.add_argument("--n", type=count(1), default=16, help="faces (default 16)")
    p.add_argument("--occlusion", type=occlusion_text, default="none", help=OCCLUSION_HELP)
    p.add_argument("--seed", type=seed_value, default=0, help="which faces, and their masks")
    p.add_argument("--out", required=True, help="the PNG file to write")
    add_model_arguments(p)
    add_source_arguments(p)
    p.set_defaults(run=run_saliency)


# --------------------------------------------------------------------------- train-classifier


def run_train(args: argparse.Namespace) -> int:
    init_from_env()  # under torchrun: one data-parallel rank per process
    from unveil.classify.config import load_classifier_config
    from unveil.classify.train import train_from_config

    from .compare import reconstruct_loader

    from unveil.config import to_dict

    from .tracking import live_training

    cfg = load_classifier_config(args.config, train_overrides(args))
    loader = reconstruct_loader(pick_device(cfg.device))
    with live_training("classifier", cfg.run_dir(), cfg.train.select, config=to_dict(cfg),
                       enabled=not args.no_wandb and is_main()) as live:
        metrics = train_from_config(cfg, cfg.run_dir(), resume=args.resume, load_reconstruct=loader, on_epoch_end=live)
        live.summarize(metrics)
    if args.json and is_main():
        print(json.dumps(metrics))
    return 0


# --------------------------------------------------------------------------- eval-classifier


def _model_and_faces(args: argparse.Namespace):
    """(device, the classifier folded for inference, its sidecar, its path, the faces of --split, and
    the record of the faces --exclude-degenerate left out or None)."""
    device = pick_device(args.device)
    model, meta, path = open_classifier(args.checkpoint, device, args.checkpoints)
    model = fused_for_inference(model)
    faces, excluded = load_scored(lambda source, split: load_source(args, source, split), args.data, args.split,
                                  getattr(args, "exclude_degenerate", False))
    if len(faces) == 0:
        raise UnveilError(f"{args.data}: no faces in split {args.split!r}")
    return device, model, meta, path, faces, excluded


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "x"


def run_eval(args: argparse.Namespace) -> int:
    from unveil.classify.condition import Condition
    from unveil.classify.evaluate import REPORT_FILES, evaluate, write_report

    from .compare import reconstruct_loader

    device, model, meta, path, faces, excluded = _model_and_faces(args)
    view = class_view(meta, class_map_option(args), str(path))
    condition = Condition.build(args.occlusion, args.inpainter, reconstruct_loader(device, args.checkpoints))
    info = {"checkpoint": str(checkpoint_paths(path)[0]), "data": faces.source, "split": args.split,
            **condition.describe(), "tta": args.tta, "precision": resolve_precision(device, args.precision),
            "trained_condition": meta.get("condition", "full"), "trained_occlusion": meta.get("occlusion", "none"),
            **view.record(), **({"excluded_degenerate": excluded} if excluded else {})}
    name = checkpoint_paths(path)[0].stem
    default = (f"{name}-{args.split}-{_slug(info['occlusion'])}" + ("-recon" if args.inpainter else "")
               + ("-tta" if args.tta else "") + (f"-{_slug(view.mapping.name)}" if view.mapping else "")
               + ("-no-degenerate" if excluded else ""))
    out = Path(args.out) if args.out else Path("runs") / "eval" / default
    check_replaceable(out, REPORT_FILES, "an evaluation report")  # before the work, not after it
    if args.record:
        _check_record(path, meta, info, view, faces)
    report = evaluate(model, faces, condition, tta=args.tta, n_boot=args.bootstrap, seed=args.seed,
                      precision=args.precision, view=view)
    if args.votes:   # the same model against the crowd's majority, where the crowd has one
        crowd = evaluate(model, majority_faces(faces, Path(args.votes)), condition, tta=args.tta, n_boot=args.bootstrap,
                         seed=args.seed, precision=args.precision, view=view)
        report["votes_majority"] = {k: crowd[k] for k in ("accuracy", "macro_f1", "n", "ci95") if k in crowd}
    title = f"{name} on {args.split} ({info['condition']}, occlusion {info['occlusion']}; {view.describe()})"
    paths = write_report(report, out, title, info)
    if args.record:
        _record(path, meta, info, report)
    if args.json:
        print(json.dumps({**info, **report}))
    else:
        print(_summary(report, info))
    log.info(f"wrote {paths['json']}, {paths['markdown'].name}, {paths['png'].name}")
    return 0


def _check_record(checkpoint: Path, meta: dict, info: dict, view: ClassView, faces) -> None:
    """--record stores a score in the sidecar only where it belongs: the checkpoint's own classes, training
    condition and data (by fingerprint), the whole split, and never in a shipped checkpoint."""
    sidecar = check_writable(checkpoint_paths(checkpoint)[1])
    if view.collapse or "excluded_degenerate" in info:
        raise UnveilError(f"--record stores the checkpoint's own {len(meta['classes'])}-class scores on the whole "
                          f"split; a view collapsed from them, or a split less its flagged faces, is reported, "
                          f"not recorded")
    same = (info["condition"] == meta.get("condition", "full") and info["occlusion"] == meta.get("occlusion", "none")
            and info["inpainter"] == meta.get("inpainter"))
    if not same:
        raise UnveilError(f"--record stores scores under the checkpoint's own training condition "
                          f"({meta.get('condition', 'full')}, occlusion {meta.get('occlusion', 'none')}); "
                          f"this evaluation used {info['condition']}, occlusion {info['occlusion']}")
    recorded = meta.get("data_fingerprint")
    if recorded != faces.fingerprint:
        raise UnveilError(f"{sidecar}: --record stores scores only on the data the checkpoint was trained on "
                          f"(its data fingerprint {str(recorded)[:12]}..., {faces.source} "
                          f"{faces.fingerprint[:12]}...); "
                          f"this evaluation is reported, not recorded")


def _record(checkpoint: Path, meta: dict, info: dict, report: dict) -> None:
    """Store this split's scores in the checkpoint's sidecar (its weights are untouched)."""
    entry = {"tta_accuracy": report["accuracy"]} if info["tta"] else {
        "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "n": report["n"],
        "ci95": report.get("ci95"), "macro_roc_auc": report["macro_roc_auc"]}
    metrics = dict(meta.get("metrics") or {})
    metrics[info["split"]] = {**metrics.get(info["split"], {}), **entry}
    update_sidecar(checkpoint, {"metrics": metrics})


def _summary(report: dict, info: dict) -> str:
    ci = report.get("ci95", {})
    span = lambda k: f" [{100 * ci[k][0]:.2f}, {100 * ci[k][1]:.2f}]" if k in ci else ""  # noqa: E731
    lines = [f"{Path(info['checkpoint']).stem} on {info['split']} ({report['n']} faces, condition {info['condition']}, "
             f"occlusion {info['occlusion']}{', TTA' if info['tta'] else ''}; trained {info['trained_condition']})",
             f"classes   {len(report['classes'])}: {', '.join(report['classes'])}"
             + (" (collapsed from the 7-class probabilities)" if info.get("collapsed_from_canonical") else ""),
             *([f"left out {info['excluded_degenerate']['excluded']} flagged faces (--exclude-degenerate: "
                f"{info['excluded_degenerate']['criteria']})"] if info.get("excluded_degenerate") else []),
             f"accuracy  {100 * report['accuracy']:.2f} %{span('accuracy')}",
             f"macro-F1  {100 * report['macro_f1']:.2f} %{span('macro_f1')}"]
    if report.get("macro_roc_auc") is not None:
        lines.append(f"ROC-AUC   {report['macro_roc_auc']:.4f} (macro, one-vs-rest)")
    if "votes_majority" in report:
        crowd = report["votes_majority"]
        lines.append(f"crowd     {100 * crowd['accuracy']:.2f} % against the votes' majority label "
                     f"({crowd['n']} faces with one)")
    lines.append(f"{'class':<10}{'prec':>7}{'recall':>8}{'F1':>7}{'n':>7}")
    for name, row in report["per_class"].items():
        lines.append(f"{name:<10}{row['precision']:>7.3f}{row['recall']:>8.3f}{row['f1']:>7.3f}{row['support']:>7}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- baseline svm


def run_baseline(args: argparse.Namespace) -> int:
    from unveil.classify.baseline import CLASSICAL, fit_baseline
    from unveil.classify.condition import Condition
    from unveil.classify.evaluate import REPORT_FILES, scored, write_report

    if args.jobs == 0:
        raise UnveilError("--jobs must be a number of parallel fits (1, 2, ...) or -1 for all cores, not 0")
    if args.train_size < 2 * args.folds:
        raise UnveilError(f"--train-size {args.train_size} is too small for {args.folds}-fold cross-validation")
    view = class_view({}, class_map_option(args), f"baseline {args.model}")
    condition = Condition.build(args.occlusion)
    name = (f"{args.model}-{_slug(condition.describe()['occlusion'])}"
            + (f"-{_slug(view.mapping.name)}" if view.mapping else ""))
    out = Path(args.out) if args.out else Path("runs") / "baseline" / name
    check_replaceable(out, REPORT_FILES, "an evaluation report")  # before the work, not after it
    if args.save:
        _check_new_checkpoint(args.save, "--save")
    faces = load_source(args, args.data)
    train, test = faces.split("train"), faces.split(args.split)
    if len(train) == 0 or len(test) == 0:
        raise UnveilError(f"{args.data}: need faces in the train and {args.split} splits")
    # Different mask seeds for the two sets, so no training mask is reused on a test face.
    train_images = condition.over_faces(train, seed=args.seed + 1_000)
    test_images = condition.over_faces(test, seed=args.seed)
    family = CLASSICAL.create(args.model)
    log.info(f"[baseline {args.model}] {family.model} ({args.components} components) on "
             f"{min(args.train_size, len(train))} of {len(train)} training faces, {args.folds}-fold CV ...")
    baseline, search = fit_baseline(args.model, train_images, train.labels, args.train_size, args.components,
                                    folds=args.folds, seed=args.seed, n_jobs=args.jobs)
    report = scored(test.labels, baseline.predict_proba(test_images), view, n_boot=args.bootstrap, seed=args.seed)
    info = {"data": faces.source, "split": args.split, **condition.describe(), **search, **view.record()}
    paths = write_report(report, out, f"{family.model} on {args.split} (occlusion {info['occlusion']}; "
                                      f"{view.describe()})", info)
    if args.save:
        saved = baseline.save(args.save, {"data_fingerprint": faces.fingerprint, **condition.describe(), **search,
                                          "metrics": {args.split: {"accuracy": report["accuracy"],
                                                                   "macro_f1": report["macro_f1"]}}})
        log.info(f"saved the baseline to {saved}")
    if args.json:
        print(json.dumps({**info, **report}))
    else:
        params = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in search["best_params"].items())
        print(f"best {params} (CV accuracy {100 * search['cv_accuracy']:.2f} % on {search['train_size']} faces)")
        print(_summary(report, {**info, "checkpoint": args.model, "tta": False,
                                "trained_condition": info["condition"]}))
    log.info(f"wrote {paths['json']}, {paths['markdown'].name}, {paths['png'].name}")
    return 0


def _check_new_checkpoint(path: str, option: str) -> None:
    """A checkpoint a command saves is a new one: an existing one (a classifier, a shipped model) is never
    replaced by it."""
    found = [p for p in checkpoint_paths(path) if p.exists()]
    if found:
        raise UnveilError(f"{found[0]}: already exists; {option} writes a new checkpoint and never replaces one: "
                          f"choose another name")
    check_writable(checkpoint_paths(path)[0])


# --------------------------------------------------------------------------- saliency


def run_saliency(args: argparse.Namespace) -> int:
    from unveil.classify.condition import Condition
    from unveil.classify.saliency import saliency_grid

    device, model, _, _, faces, _ = _model_and_faces(args)
    pick = torch.randperm(len(faces), generator=torch.Generator().manual_seed(args.seed))[: args.n]
    chosen = faces.select(pick.sort().values)
    images = Condition.build(args.occlusion)(chosen.float_images(), seed=args.seed).to(device)
    picture, right = saliency_grid(model, images, chosen.labels, args.precision)
    path = save_png(picture, args.out)
    print(f"wrote {path} ({len(chosen)} faces, {right} predicted right; occlusion {args.occlusion}; "
          f"Grad-CAM of the predicted class)")
    return 0
