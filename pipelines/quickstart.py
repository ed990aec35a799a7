"""`unveil quickstart`: the main job on the built-in synthetic faces, end to end, within 3 minutes.

It trains the judge and an occluded-face classifier (and a guide, where the config names one), then
the three generators briefly, and runs `compare` — each stage through the same config files and
functions as its own command.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from unveil.config import from_dict, load_yaml
from unveil.errors import UnveilError
from unveil.io import check_replaceable, make_folder, record_outputs, write_json

from .compare import ComparisonSpec, Models, run_comparison
from .options import examples
from .predict import Predictor, photo_table, sample_photos
from .report import summary_table

log = logging.getLogger(__name__)

@dataclass
class Stage:
    config: str = ""                              # an experiment config (shipped ones by configs/NAME.yaml)
    set: list[str] = field(default_factory=list)  # overrides; {out}, {data}, {occlusion} are filled in

    def __post_init__(self):
        if not self.config:
            raise ValueError("a stage needs config: an experiment config file")


@dataclass
class CompareOptions:
    baselines: list[str] = field(default_factory=lambda: ["telea", "mean_face"])
    per_class: int = 2
    bootstrap: int = 1000
    split: str = "test"   # the faces scored; `benchmarks/quickstart_recipe.py` chooses recipes on val


@dataclass
class QuickstartConfig:
    data: str = "synthetic:n=3500,seed=0"
    occlusion: str = "lower-half"
    classifiers: dict[str, Stage] = field(default_factory=dict)   # must include `judge`
    inpainters: dict[str, Stage] = field(default_factory=dict)
    compare: CompareOptions = field(default_factory=CompareOptions)
    photos: bool = True   # end with the shipped FER2013 models on the sample photo, bare and masked


def load_quickstart(path: str | Path) -> QuickstartConfig:
    raw = load_yaml(path)
    cfg = from_dict(QuickstartConfig, {k: v for k, v in raw.items() if k not in ("classifiers", "inpainters")},
                    where=str(path))
    for group in ("classifiers", "inpainters"):
        stages = {name: from_dict(Stage, spec, where=f"{path}: {group}.{name}")
                  for name, spec in (raw.get(group) or {}).items()}
        setattr(cfg, group, stages)
    if "judge" not in cfg.classifiers:
        raise UnveilError(f"{path}: classifiers must include 'judge'")
    if cfg.compare.split not in ("val", "test"):   # checked before minutes of training, never the train faces
        raise UnveilError(f"{path}: compare.split must be 'val' or 'test', not {cfg.compare.split!r}")
    return cfg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quickstart", help="the whole study on synthetic faces within 3 minutes",
                       description="Train a small judge, an occluded-face classifier, a guide and the "
                                   "three generators on the built-in synthetic faces, then compare occluded, "
                                   "reconstructed and full faces; prints the table and where the report is.",
                       epilog=examples(
                           "unveil quickstart",
                           "unveil quickstart --out runs/quickstart --no-wandb"))
    p.add_argument("--config", default="configs/quickstart.yaml",
                   help="the quickstart config (default: the shipped one)")
    p.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    p.add_argument("--data", help="override the config's data source")
    p.add_argument("--no-wandb", action="store_true", help="do not log to W&B (offline by default)")
    p.set_defaults(run=run_quickstart_command)


def run_quickstart_command(args: argparse.Namespace) -> int:
    cfg = load_quickstart(args.config)
    if args.data:
        cfg.data = args.data
    out = Path(args.out)
    report = quickstart(cfg, out, use_wandb=not args.no_wandb)
    print(summary_table(report))
    print(f"report: {out / 'compare' / 'report.md'}\ngallery: {out / 'compare' / 'gallery.html'}")
    if cfg.photos:
        print("\nThe shipped FER2013 models on a sample photo (unveil predict), bare and with a synthetic mask:")
        print(photo_table(shipped_models_on_sample(out / "predict")))
    return 0


def shipped_models_on_sample(out: Path):
    """`unveil predict` on the sample photos: the FER2013 judge, generator and segmenter at work."""
    predictor = Predictor(hole="auto")
    return [predictor.predict(rgb, picture=out / f"{name}.png", name=name)
            for rgb, name in sample_photos(predictor.detector)]


def _fresh(out: Path, cfg: QuickstartConfig) -> None:
    """Start from an empty folder: a previous quickstart's is replaced, a folder holding anything else (your
    files beside a quickstart's among them) is refused."""
    owned = {*cfg.classifiers, *cfg.inpainters, "compare", "predict", "timings.json", "wandb"}
    check_replaceable(out, owned, "a quickstart")
    if out.is_dir() and any(out.iterdir()):
        log.info(f"[quickstart] replacing the previous quickstart in {out}")
        shutil.rmtree(out)
    record_outputs(make_folder(out), owned)  # first: an interrupted quickstart is replaced by the next one


def quickstart(cfg: QuickstartConfig, out: Path, use_wandb: bool = True) -> dict:
    from unveil.classify.config import load_classifier_config
    from unveil.classify.train import train_from_config
    from unveil.inpaint.config import SELECT_METRICS, load_inpaint_config
    from unveil.inpaint.train import train_inpainter

    from .tracking import LiveTraining

    _fresh(out, cfg)
    started = time.perf_counter()
    fill = {"out": str(out), "data": cfg.data, "occlusion": cfg.occlusion}
    run = None
    if use_wandb:
        from .tracking import start_run

        run = start_run(out, name="quickstart", job_type="quickstart",
                        config={"data": cfg.data, "occlusion": cfg.occlusion})
    timings = {}
    try:
        # Each stage live in the one W&B run on its own epoch axis, as train-NAME/...: the comparison logs NAME/...
        for name, stage in cfg.classifiers.items():
            overrides = [f"data.source={cfg.data}", *_filled(stage.set, fill)]
            clf_cfg = load_classifier_config(stage.config, overrides)
            live = LiveTraining(f"train-{name}", out / name, clf_cfg.train.select, run=run, enabled=run is not None)
            timings[name] = _timed(train_from_config, clf_cfg, out / name, resume=False, on_epoch_end=live)
        for name, stage in cfg.inpainters.items():
            overrides = [f"data.source={cfg.data}", f"occlusion={cfg.occlusion}", *_filled(stage.set, fill)]
            inp_cfg = load_inpaint_config(stage.config, overrides)
            live = LiveTraining(f"train-{name}", out / name, inp_cfg.train.select, SELECT_METRICS[inp_cfg.train.select],
                                run=run, enabled=run is not None)
            timings[name] = _timed(train_inpainter, inp_cfg, out / name, on_epoch_end=live)
        spec = ComparisonSpec(
            data=cfg.data, judge=str(out / "judge" / "best"),
            inpainters=(*(str(out / n / "best") for n in cfg.inpainters), *cfg.compare.baselines),
            cross=tuple(str(out / n / "best") for n in cfg.classifiers if n not in ("judge", "guide")),
            occlusion=cfg.occlusion, split=cfg.compare.split, per_class=cfg.compare.per_class,
            n_boot=cfg.compare.bootstrap)
        report = run_comparison(spec, Models.open(), out / "compare", wandb_run=run)
    finally:
        if run is not None:
            run.finish()
    timings["total"] = time.perf_counter() - started
    write_json(out / "timings.json", timings)
    log.info(f"[quickstart] done in {timings['total']:.0f} s")
    return report


def _filled(overrides: list[str], fill: dict) -> list[str]:
    return [o.format(**fill) for o in overrides]


def _timed(work, *args, **kwargs) -> float:
    start = time.perf_counter()
    work(*args, **kwargs)
    return time.perf_counter() - start
