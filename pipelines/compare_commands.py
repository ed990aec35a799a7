"""`unveil compare`: the report over occluded, reconstructed and full faces with one judge."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from unveil.data import SPLIT_CHOICES
from unveil.errors import UnveilError
from unveil.occlusion import Occlusion
from unveil.runtime import pick_device

from . import compare as cmp
from .data_commands import add_source_arguments, load_source
from .gallery import build_rows, write_html
from .report import summary_table, write_comparison

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED_JUDGE = "classifier_full"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare occluded, reconstructed and full faces with one classifier",
                       description="Score every condition — occluded, each inpainter's reconstruction "
                                   "(classical baselines included) and full — with the same classifier "
                                   "weights on the same test faces; write report.md, metrics.json, "
                                   "figures and gallery.html.")
    p.add_argument("--data", required=True, help="a data source (FER2013 folder/CSV/archives, 'synthetic', ...)")
    p.add_argument("--classifier", help="the judge checkpoint (default: the shipped full-face classifier)")
    p.add_argument("--inpainters", help="comma-separated generator checkpoints and/or baselines "
                                        f"({', '.join(cmp.BASELINES)}); default: every shipped generator "
                                        "and the baselines")
    p.add_argument("--cross", help="comma-separated classifiers trained on other conditions, for the "
                                   "cross-condition matrix")
    p.add_argument("--occlusion", default="lower-half", help="lower-half[:...] or mask[:...] (default lower-half)")
    p.add_argument("--split", default="test", choices=SPLIT_CHOICES)
    p.add_argument("--out", help="output folder (default runs/compare-<time>)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
    p.add_argument("--tta", action="store_true", help="test-time augmentation for the classifier")
    p.add_argument("--per-class", type=int, default=2, help="gallery faces per class (default 2)")
    p.add_argument("--seed", type=int, default=0, help="occlusion draw, bootstrap and gallery sample")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95 %% intervals")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--no-wandb", action="store_true", help="do not log the gallery to W&B")
    p.add_argument("--device", default="auto")
    add_source_arguments(p)
    p.set_defaults(run=run_compare_command)


def default_inpainters() -> list[str]:
    shipped = sorted(str(p.with_suffix("")) for p in CHECKPOINTS.glob("inpainter_*.json"))
    return shipped + list(cmp.BASELINES)


def run_compare_command(args: argparse.Namespace) -> int:
    judge_path = args.classifier or str(CHECKPOINTS / SHIPPED_JUDGE)
    if not args.classifier and not (CHECKPOINTS / f"{SHIPPED_JUDGE}.json").exists():
        raise UnveilError(f"no shipped judge at {CHECKPOINTS / SHIPPED_JUDGE}.json yet; pass --classifier CKPT")
    specs = _split_list(args.inpainters) if args.inpainters else default_inpainters()
    out = Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    run = None
    if not args.no_wandb:
        from .tracking import start_run

        run = start_run(out, name=out.name, job_type="compare", config={
            "data": args.data, "split": args.split, "judge": judge_path, "inpainters": specs,
            "occlusion": args.occlusion, "tta": args.tta, "seed": args.seed})
    try:
        report = run_comparison(
            data=args.data, judge_path=judge_path, inpainter_specs=specs, occlusion=args.occlusion,
            split=args.split, out_dir=out, cross=_split_list(args.cross), tta=args.tta,
            per_class=args.per_class, seed=args.seed, n_boot=args.bootstrap, use_lpips=not args.no_lpips,
            wandb_run=run, device=args.device, load=lambda source, split: load_source(args, source, split))
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


def run_comparison(data: str, judge_path: str, inpainter_specs: list[str], occlusion: str, split: str,
                   out_dir: str | Path, cross: list[str] = (), tta: bool = False, per_class: int = 2,
                   seed: int = 0, n_boot: int = 1000, use_lpips: bool = True, wandb_run=None,
                   device: str = "auto", load=None) -> dict:
    """Load everything, compare, and write report, figures and gallery to `out_dir` (and `wandb_run`)."""
    from unveil.data import load_faces

    load = load or (lambda source, part: load_faces(source, part))
    dev = pick_device(device)
    occ = Occlusion.parse(occlusion)
    if occ.kind == "none":
        raise UnveilError("compare needs an occlusion (lower-half or mask), not 'none'")
    faces = load(data, split)
    if len(faces) == 0:
        raise UnveilError(f"{data}: the {split} split is empty")
    needs_fit = any(s == "mean_face" for s in inpainter_specs)
    train = load(data, "train") if needs_fit else None
    judge = cmp.load_judge(judge_path, dev)
    inpainters = cmp.resolve_inpainters(inpainter_specs, train, dev)
    others = [cmp.load_judge(path, dev) for path in cross]
    print(f"comparing {len(inpainters) + 2} conditions on {len(faces)} faces of {faces.source} ({split})",
          file=sys.stderr)
    report, artefacts = cmp.compare(faces, judge, inpainters, occ, cross=others, tta=tta, seed=seed,
                                    n_boot=n_boot, use_lpips=use_lpips, device=dev)
    report["data"]["split"] = split
    out = Path(out_dir)
    paths = write_comparison(report, out)
    conditions = list(report["conditions"])
    reference = _best_reconstruction(report)
    rows = build_rows(artefacts, faces.ids, judge.model, reference, per_class=per_class, seed=seed)
    title = f"Unveil gallery — judge {Path(judge_path).name}, occlusion {occ}, faces judged on {reference}"
    write_html(rows, conditions, out, title)
    if wandb_run is not None:
        from .tracking import log_gallery

        log_gallery(wandb_run, rows, conditions, report, paths["accuracy"])
    return report


def _best_reconstruction(report: dict) -> str:
    """The reconstruction the judge reads best (the gallery's reference); occluded if there is none."""
    recon = [n for n in report["conditions"] if n not in ("occluded", "full")]
    return max(recon, key=lambda n: report["conditions"][n]["accuracy"]) if recon else "occluded"
