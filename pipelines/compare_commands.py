"""`unveil compare`: the report over occluded, reconstructed and full faces with one judge."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from unveil.classes import ClassMap, parse_aliases
from unveil.errors import UnveilError
from unveil.inpaint import BASELINES
from unveil.io import atomic_folder, check_replaceable
from unveil.occlusion import Occlusion
from unveil.runtime import pick_device
from unveil.shipped import JUDGE, OCCLUDED, shipped_inpainters

from . import compare as cmp
from .gallery import build_rows, write_html, write_png
from .options import (add_class_map_argument, add_evaluation_arguments, add_exclude_argument, add_model_arguments,
                      class_map_option, count, load_scored, load_source, occlusion_text, seed_value)
from .report import summary_table, write_comparison


# What a comparison writes into its folder: only such a folder is replaced by the next run into it.
REPORT_FILES = {"metrics.json", "report.md", "accuracy.png", "confusion_*.png", "gallery.html", "gallery.png",
                "gallery", "wandb"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare occluded, reconstructed and full faces with one classifier",
                       description="Score every condition — occluded, each inpainter's reconstruction "
                                   "(classical baselines included) and full — with the same classifier "
                                   "weights on the same test faces; write report.md, metrics.json, "
                                   "figures and gallery.html.")
    p.add_argument("--classifier", help=f"the judge: a checkpoint path or shipped name (default {JUDGE})")
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
    p.add_argument("--bootstrap", type=count(0), default=1000,
                   help="bootstrap resamples for the 95 %% intervals (0: none)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--no-wandb", action="store_true", help="do not log the gallery to W&B")
    add_class_map_argument(p)
    add_exclude_argument(p)
    add_evaluation_arguments(p, "output folder (default runs/compare-<time>)")
    p.set_defaults(run=run_compare_command)
    _register_photos(sub)


def _register_photos(sub: argparse._SubParsersAction) -> None:
    from .predict import HOLES

    p = sub.add_parser("eval-photos", help="score real photos of masked faces (class folders) like compare",
                       description="A test set of real photos: ROOT/<class>/<photo>. Each photo's most confident "
                                   "face is detected, aligned as FER2013 frames its faces and given its hole; the "
                                   "judge then scores the occluded crops and each inpainter's reconstruction, and "
                                   "the --cross classifiers (the upper-half reader by default) score every "
                                   "condition. No full condition: the truth is under the mask. Writes the same "
                                   "report, figures and gallery as compare.",
                       epilog="example: unveil eval-photos my_masked_photos/ --hole landmarks --classes valence")
    p.add_argument("root", metavar="ROOT", help="a folder of class folders of photos (angry/, happy/, ...)")
    p.add_argument("--hole", default="landmarks", choices=HOLES,
                   help="landmarks (default: every face here is masked): placed from the nose and mouth points, "
                        "whatever the mask looks like; auto: the shipped segmenter finds the mask (best on "
                        "surgical masks, misses many others on photos); lower-half: the lower half of the crop")
    p.add_argument("--classifier", help=f"the judge: a checkpoint path or shipped name (default {JUDGE})")
    p.add_argument("--inpainters", help="comma-separated generators and/or baselines (default: every shipped "
                                        "generator, telea and navier_stokes)")
    p.add_argument("--cross", default=OCCLUDED, help=f"comma-separated other classifiers (default {OCCLUDED})")
    p.add_argument("--per-class", type=count(1), default=2, help="gallery faces per class (default 2)")
    p.add_argument("--seed", type=seed_value, default=0, help="bootstrap and gallery sample")
    p.add_argument("--bootstrap", type=count(0), default=1000, help="bootstrap resamples (0: none)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation for the classifiers")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    p.add_argument("--out", help="output folder (default runs/photos-<time>)")
    p.add_argument("--alias", action="append", metavar="NAME=CLASS", help="map a folder name to a class")
    add_class_map_argument(p)
    add_model_arguments(p)
    p.set_defaults(run=run_photos_command)


def run_photos_command(args: argparse.Namespace) -> int:
    from .photo_eval import frame_photo_set, score_photo_set
    from .predict import FaceFramer

    # Generators and the baselines that need no training faces (mean_face does: name it with a checkpoint set).
    specs = _split_list(args.inpainters) or [s for s in default_inpainters(args.checkpoints) if s != "mean_face"]
    out = Path(args.out or f"runs/photos-{time.strftime('%Y%m%d-%H%M%S')}")
    check_replaceable(out, REPORT_FILES, "a comparison")
    framer = FaceFramer(args.hole, checkpoints=args.checkpoints, device=args.device, precision=args.precision)
    photos = frame_photo_set(args.root, framer, parse_aliases(args.alias))
    judge = cmp.load_judge(args.classifier or JUDGE, framer.device, args.checkpoints)
    inpainters = cmp.load_inpainters(specs, framer.device, None, args.checkpoints)
    others = [cmp.load_judge(spec, framer.device, args.checkpoints) for spec in _split_list(args.cross)]
    report, artefacts = score_photo_set(photos, judge, inpainters, others, tta=args.tta, seed=args.seed,
                                        n_boot=args.bootstrap, precision=args.precision, classes=class_map_option(args))
    with atomic_folder(out) as folder:
        write_outputs(report, artefacts, photos.ids, judge, folder, f"photos, hole {args.hole}", args.per_class,
                      args.seed)
    for line in photos.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    stream = sys.stderr if args.json else sys.stdout
    print(summary_table(report), file=stream)
    print(f"report: {out / 'report.md'}  gallery: {out / 'gallery.html'}", file=stream)
    if args.json:
        print(json.dumps(report))
    return 0


def default_inpainters(checkpoints: str | None = None) -> list[str]:
    """Every shipped generator, then the classical baselines."""
    return [str(p) for p in shipped_inpainters(checkpoints)] + BASELINES.names()


def run_compare_command(args: argparse.Namespace) -> int:
    judge = args.classifier or JUDGE
    specs = _split_list(args.inpainters) if args.inpainters else default_inpainters(args.checkpoints)
    out = Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    check_replaceable(out, REPORT_FILES, "a comparison")
    # The report, figures, gallery and W&B files must agree: written as one folder that replaces `out`
    # only when complete (an interrupted run leaves the previous report whole, and no stale figures).
    with atomic_folder(out) as folder:
        run = None
        if not args.no_wandb:
            from .tracking import start_run

            run = start_run(folder, name=out.name, job_type="compare", config={
                "data": args.data, "split": args.split, "judge": judge, "inpainters": specs,
                "occlusion": args.occlusion, "tta": args.tta, "seed": args.seed})
        try:
            report = run_comparison(
                data=args.data, judge_spec=judge, inpainter_specs=specs, occlusion=args.occlusion,
                split=args.split, out_dir=folder, cross=_split_list(args.cross), tta=args.tta,
                per_class=args.per_class, seed=args.seed, n_boot=args.bootstrap, use_lpips=not args.no_lpips,
                wandb_run=run, device=args.device, precision=args.precision, checkpoints=args.checkpoints,
                load=lambda source, split: load_source(args, source, split), classes=class_map_option(args),
                exclude_degenerate=args.exclude_degenerate)
        finally:
            if run is not None:
                run.finish()
    stream = sys.stderr if args.json else sys.stdout
    print(summary_table(report), file=stream)
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"report: {out / 'report.md'}  gallery: {out / 'gallery.html'}", file=stream)
    if args.json:
        print(json.dumps(report))
    return 0


def _split_list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def run_comparison(data: str, judge_spec: str, inpainter_specs: list[str], occlusion: str, split: str,
                   out_dir: str | Path, cross: list[str] = (), tta: bool = False, per_class: int = 2,
                   seed: int = 0, n_boot: int = 1000, use_lpips: bool = True, wandb_run=None,
                   device: str = "auto", precision: str = "auto", checkpoints: str | None = None,
                   load=None, classes: ClassMap | None = None, exclude_degenerate: bool = False) -> dict:
    """Load everything, compare, and write report, figures and gallery to `out_dir` (and `wandb_run`).
    `classes` scores in a coarser class view; `exclude_degenerate` leaves the flagged faces out."""
    from unveil.data import load_faces
    load = load or (lambda source, part: load_faces(source, part))
    dev = pick_device(device)
    occ = Occlusion.parse(occlusion)
    if occ.kind == "none":
        raise UnveilError("compare needs an occlusion (lower-half or mask), not 'none'")
    faces, excluded = load_scored(load, data, split, exclude_degenerate)
    if len(faces) == 0:
        raise UnveilError(f"{data}: the {split} split is empty")
    judge = cmp.load_judge(judge_spec, dev, checkpoints)
    inpainters = cmp.load_inpainters(inpainter_specs, dev, lambda: load(data, "train").float_images(), checkpoints)
    others = [cmp.load_judge(spec, dev, checkpoints) for spec in cross]
    print(f"comparing {len(inpainters) + 2} conditions on {len(faces)} faces of {faces.source} ({split})",
          file=sys.stderr)
    started = time.perf_counter()
    report, artefacts = cmp.compare(faces, judge, inpainters, occ, cross=others, tta=tta, seed=seed,
                                    n_boot=n_boot, use_lpips=use_lpips, precision=precision, classes=classes)
    report["data"]["split"] = split
    if excluded:
        report["data"]["excluded_degenerate"] = excluded
    write_outputs(report, artefacts, faces.ids, judge, out_dir, f"occlusion {occ}", per_class, seed, wandb_run)
    print(f"[compare] {len(report['conditions'])} conditions scored and written in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return report


def write_outputs(report: dict, artefacts: dict, ids: list[str], judge: cmp.Judge, out_dir: str | Path, shown: str,
                  per_class: int = 2, seed: int = 0, wandb_run=None) -> None:
    """A comparison's report, figures and gallery (HTML and PNG) into `out_dir`, and to `wandb_run`."""
    out = Path(out_dir)
    paths = write_comparison(report, out)
    conditions = list(report["conditions"])
    reference = _best_reconstruction(report)
    rows = build_rows(artefacts, ids, judge.model, reference, per_class=per_class, seed=seed)
    title = f"Unveil gallery — judge {Path(judge.path).name}, {shown}, faces judged on {reference}"
    write_html(rows, conditions, out, title)
    write_png(rows, conditions, out / "gallery.png")
    if wandb_run is not None:
        from .tracking import log_gallery

        log_gallery(wandb_run, rows, conditions, report, paths["accuracy"])


def _best_reconstruction(report: dict) -> str:
    """The reconstruction the judge reads best (the gallery's reference); occluded if there is none."""
    recon = [n for n in report["conditions"] if n not in ("occluded", "full")]
    return max(recon, key=lambda n: report["conditions"][n]["accuracy"]) if recon else "occluded"
