"""The comparison under identical conditions: one judge, the same test faces, the same metrics.

Every condition — occluded, each inpainter's reconstruction, full — is scored by the same classifier
weights on the same images with the same occlusion draw, so differences between conditions come from
what the classifier is shown and nothing else. `unveil compare` reports all of them; `unveil
eval-inpainter` is the same comparison with one inpainter.

    models = Models.open(device="auto", precision="auto")        # where models run, resolved once
    report = compare_to_folder(ComparisonSpec("synthetic", inpainters=("telea",)), models, Path("runs/cmp"))
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from unveil.classes import ClassMap, ClassView, class_view
from unveil.classify import open_classifier, predict_proba
from unveil.checkpoint import read_sidecar
from unveil.classify.fusion import OneReading, input_record
from unveil.classify.identity import classifier_record
from unveil.data import Faces, load_faces
from unveil.errors import UnveilError
from unveil.inpaint import BASELINES, Inpainter, open_inpainter
from unveil.io import check_replaceable, output_folder, write_json
from unveil.metrics import classification_report, image_quality
from unveil.occlusion import LowerHalf, Occlusion
from unveil.runtime import fused_for_inference, pick_device, resolve_precision
from unveil.shipped import FUSION, JUDGE, OCCLUDED, resolve_checkpoint, shipped_inpainters

from .gallery import build_rows, write_html, write_png
from .options import load_scored
from .report import write_comparison

log = logging.getLogger(__name__)

# What a comparison writes into its folder: only such a folder is replaced by the next run into it.
REPORT_FILES = {"metrics.json", "report.md", "accuracy.png", "confusion_*.png", "gallery.html", "gallery.png",
                "gallery", "wandb"}


@dataclass
class Judge:
    """A classifier that scores conditions: the model (folded for inference), its sidecar, its record, and
    the precision it runs in (resolved for its device)."""

    model: torch.nn.Module
    meta: dict
    path: str
    record: dict
    precision: str = "fp32"

    @property
    def trained_on(self) -> str:
        return self.meta.get("condition") or "unknown"

    def proba(self, images: torch.Tensor, tta: bool = False) -> torch.Tensor:
        return predict_proba(self.model, images, tta=tta, precision=self.precision)


@dataclass
class NamedInpainter:
    """An inpainter as the comparison sees it: a name, the model, where it came from, and its precision."""

    name: str
    model: Inpainter
    path: str | None = None
    precision: str = "fp32"

    def reconstruct(self, occluded: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return self.model.reconstruct(occluded, hole, precision=self.precision)


@dataclass(frozen=True)
class Models:
    """Where an evaluation's models come from and run (--device, --precision, --checkpoints): the device
    picked and the precision resolved once, here, for every judge and inpainter it opens."""

    device: torch.device
    precision: str                  # bf16 or fp32
    checkpoints: str | Path | None = None

    @classmethod
    def open(cls, device: str = "auto", precision: str = "auto",
             checkpoints: str | Path | None = None) -> Models:
        picked = pick_device(device)
        return cls(picked, resolve_precision(picked, precision), checkpoints)

    def judge(self, name_or_path: str) -> Judge:
        model, meta, path = open_classifier(name_or_path, self.device, self.checkpoints)
        return Judge(fused_for_inference(model), meta, str(path), classifier_record(path, meta), self.precision)

    def inpainters(self, specs: list[str],
                   train_faces: Callable[[], torch.Tensor] | None = None) -> list[NamedInpainter]:
        """Baseline names and generator checkpoints (paths or shipped names), in the order given; `train_faces()`
        fits mean_face."""
        out = []
        for spec in specs:
            model = fused_for_inference(open_inpainter(spec, self.device, train_faces, self.checkpoints))
            if spec in BASELINES:
                out.append(NamedInpainter(spec, model, precision=self.precision))
            else:
                path = str(resolve_checkpoint(spec, self.checkpoints))
                out.append(NamedInpainter(_checkpoint_name(spec), model, path, self.precision))
        names = [i.name for i in out]
        if len(set(names)) != len(names):
            raise UnveilError(f"two inpainters share a name: {names}")
        return out


def default_inpainters(checkpoints: str | Path | None = None) -> list[str]:
    """Every shipped generator, then the classical baselines."""
    return [str(p) for p in shipped_inpainters(checkpoints)] + BASELINES.names()


def _checkpoint_name(spec: str) -> str:
    """`checkpoints/inpainter_unet` -> inpainter_unet; a run's `runs/unet/best` -> unet."""
    path = Path(spec)
    stem = path.name.removesuffix(".safetensors").removesuffix(".json")
    return path.parent.name if stem in ("best", "last") and path.parent.name else stem


def condition_images(faces: Faces, occlusion: Occlusion, inpainters: list[NamedInpainter], device: torch.device,
                     seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The hole and every condition's images, from one occlusion draw (`Occlusion.over_faces`).

    Returns (hole, {"occluded": ..., <inpainter>: ..., "full": images}), all [N, 1, H, W] on `device`.
    """
    images = faces.float_images().to(device)
    occluded, hole = (x.to(device) for x in occlusion.over_faces(faces, seed))
    shown = {"occluded": occluded}
    for inp in inpainters:
        shown[inp.name] = inp.reconstruct(occluded, hole)
    shown["full"] = images
    return hole, shown


def judge_warnings(judge: Judge, inpainters: list[NamedInpainter]) -> list[str]:
    """Where the judge took part in a generator's training (guide, selector or conditioner)."""
    return [w for inp in inpainters for w in inp.model.judge_conflicts(judge.record)]


def compare(faces: Faces, judge: Judge, inpainters: list[NamedInpainter], occlusion: Occlusion,
            cross: list[Judge] = (), tta: bool = False, seed: int = 0, n_boot: int = 1000,
            use_lpips: bool = True, classes: ClassMap | None = None,
            one: OneReadingInputs | None = None) -> tuple[dict, dict]:
    """Score every condition with the judge; return (report, artefacts for the gallery).

    The report is JSON-able: data, occlusion, judge, warnings, the class view, conditions{name: metrics},
    and with `cross` the cross-condition matrix. Artefacts hold the condition images, hole and
    probabilities. `classes` (a map such as valence) scores everything in that coarser view.
    """
    device = next(judge.model.parameters()).device
    hole, shown = condition_images(faces, occlusion, inpainters, device, seed)
    images, labels = shown["full"], faces.labels.to(device)
    scores, artefacts = judge_conditions(shown, labels, judge, inpainters, cross, tta=tta, seed=seed, n_boot=n_boot,
                                         classes=classes, one=one)
    for name, x in shown.items():
        if name != "full":
            scores["conditions"][name].update(image_quality(x, images, hole, use_lpips))
    report = {"data": {"source": faces.source, "n": len(faces), "fingerprint": faces.fingerprint},
              "occlusion": str(occlusion), **scores}
    return report, {**artefacts, "hole": hole}


@dataclass
class OneReadingInputs:
    """What the one reading pools in a comparison: the upper-half reader, the fusion, and the inpainter whose
    reconstruction the judge reads (`unveil.classify.fusion.OneReading`)."""

    reader: Judge
    reading: OneReading
    inpainter: str

    @classmethod
    def open(cls, models: Models, reader: str, fusion: str | None, judge: Judge,
             inpainters: list[NamedInpainter]) -> OneReadingInputs | None:
        """The one reading over the fusion's own inpainter where it is compared, else the first generator;
        None where only classical fills are compared."""
        generators = [i for i in inpainters if i.path is not None]
        if not generators:
            return None
        fitted = read_sidecar(resolve_checkpoint(fusion, models.checkpoints), "fusion") if fusion else {}
        wanted = fitted.get("inputs", {}).get("inpainter", {}).get("weights_sha256")
        chosen = next((i for i in generators if wanted and input_record(i.path)["weights_sha256"] == wanted),
                      generators[0])
        reader_judge = models.judge(reader)
        used = {"reader": input_record(reader_judge.path), "judge": input_record(judge.path),
                "inpainter": input_record(chosen.path)}
        return cls(reader_judge, OneReading.open(fusion, used, models.checkpoints), chosen.name)

    def score(self, shown: dict[str, torch.Tensor], judged: torch.Tensor, tta: bool) -> torch.Tensor:
        """The one reading's probabilities [N, C] (canonical), every face having a hole."""
        read = self.reader.proba(shown["occluded"], tta)
        return self.reading(read, judged, judged, torch.ones(len(read), dtype=torch.bool))

    def record(self) -> dict:
        return {"how": self.reading.how, "reader": self.reader.record, "inpainter": self.inpainter}


def judge_conditions(shown: dict[str, torch.Tensor], labels: torch.Tensor, judge: Judge,
                     inpainters: list[NamedInpainter], cross: list[Judge] = (), tta: bool = False, seed: int = 0,
                     n_boot: int = 1000, classes: ClassMap | None = None,
                     one: OneReadingInputs | None = None) -> tuple[dict, dict]:
    """The judge's scores of every condition's faces (and with `cross`, every other classifier's), in
    the judge's class view; with the artefacts the gallery needs. `labels` are canonical. With `one`, the
    report opens with `one_reading`: the one answer per face, scored in the same view."""
    view = class_view(judge.meta, classes, judge.path)
    raw = {name: judge.proba(x, tta) for name, x in shown.items()}
    probs = {name: view.probs(p) for name, p in raw.items()}
    scored = view.labels(labels)
    report = {
        "tta": tta, "seed": seed, "precision": judge.precision, "class_view": view.record(),
        "judge": {**judge.record, "condition": judge.trained_on},
        "inpainters": {i.name: {"path": i.path, "arch": i.model.meta.get("arch"), "guide": i.model.meta.get("guide")}
                       for i in inpainters},
        "warnings": judge_warnings(judge, inpainters),
        "conditions": {name: classification_report(scored, p, n_boot=n_boot, seed=seed, classes=view.names)
                       for name, p in probs.items()},
    }
    if one is not None:
        fused = view.probs(one.score(shown, raw[one.inpainter], tta))
        report = {"one_reading": {**one.record(), **classification_report(scored, fused, n_boot=n_boot, seed=seed,
                                                                          classes=view.names)}, **report}
    if cross:
        report["cross"] = cross_matrix(judge, view, report["conditions"], cross, shown, labels, tta, n_boot, seed)
    artefacts = {"images": shown, "probs": probs, "labels": scored, "classes": view.names,
                 "explain": {name: view.explained_class(p) for name, p in raw.items()}}
    return report, artefacts


def cross_matrix(judge: Judge, view: ClassView, judge_scores: dict[str, dict], others: list[Judge],
                 shown: dict[str, torch.Tensor], labels: torch.Tensor, tta: bool, n_boot: int = 0,
                 seed: int = 0) -> dict:
    """Accuracy and macro-F1 (with 95 % intervals when `n_boot`) of each classifier (by training
    condition) on each test condition, all in the judge's class view; the judge's row reuses its scores."""
    rows, scores = [], []
    for clf in (judge, *others):
        rows.append({"classifier": clf.path, "trained_on": clf.trained_on, "occlusion": clf.meta.get("occlusion")})
        if clf is judge:
            scores.append(list(judge_scores.values()))
            continue
        theirs = class_view(clf.meta, view.mapping, clf.path)
        if theirs.names != view.names:
            raise UnveilError(f"{clf.path} predicts {len(theirs.names)} classes ({', '.join(theirs.names)}) and the "
                              f"judge {len(view.names)}: pass --classes with the map they share (e.g. valence)")
        scores.append([classification_report(theirs.labels(labels), theirs.probs(clf.proba(x, tta)), n_boot=n_boot,
                                             seed=seed, classes=theirs.names) for x in shown.values()])
    out = {"rows": rows, "columns": list(shown), "accuracy": [[s["accuracy"] for s in row] for row in scores],
           "macro_f1": [[s["macro_f1"] for s in row] for row in scores]}
    if all("ci95" in s for row in scores for s in row):
        out["ci95"] = [[s["ci95"] for s in row] for row in scores]
    return out


# --------------------------------------------------------------------------- the workflows


@dataclass(frozen=True)
class ComparisonSpec:
    """What `unveil compare` scores and how; `inpainters` None means every shipped generator and the baselines."""

    data: str
    inpainters: tuple[str, ...] | None = None
    judge: str = JUDGE
    cross: tuple[str, ...] = ()           # classifiers trained on other conditions: the cross matrix
    occlusion: str = "lower-half"
    split: str = "test"
    exclude_degenerate: bool = False      # leave out the faces `unveil data info --check` flags
    classes: ClassMap | None = None       # score in a coarser class view (e.g. valence)
    tta: bool = False
    seed: int = 0                         # the occlusion draw, the bootstrap and the gallery's sample
    n_boot: int = 1000
    use_lpips: bool = True
    per_class: int = 2                    # gallery faces per class
    reader: str = OCCLUDED                # the one reading: this upper-half reader pooled with the judge
    fusion: str | None = FUSION           # ... by this fusion (None: the equal-weight pool)


Load = Callable[[str, str], Faces]        # (source, split) -> faces


def compare_to_folder(spec: ComparisonSpec, models: Models, out: Path, load: Load | None = None,
                      use_wandb: bool = False) -> dict:
    """`run_comparison` into `out`, written as one set: the report, figures, gallery and W&B files replace a
    previous comparison's only when complete (an interrupted run leaves the previous report whole)."""
    with output_folder(out, REPORT_FILES, "a comparison") as folder:
        run = None
        if use_wandb:
            from .tracking import start_run

            run = start_run(folder, name=out.name, job_type="compare", config={
                "data": spec.data, "split": spec.split, "judge": spec.judge, "inpainters": spec.inpainters,
                "occlusion": spec.occlusion, "tta": spec.tta, "seed": spec.seed})
        try:
            return run_comparison(spec, models, folder, load, run)
        finally:
            if run is not None:
                run.finish()


def run_comparison(spec: ComparisonSpec, models: Models, out_dir: Path, load: Load | None = None,
                   wandb_run=None) -> dict:
    """Load everything, compare, and write report, figures and gallery to `out_dir` (and `wandb_run`).
    `load(source, split)` reads the faces (default `load_faces`)."""
    load = load or load_faces
    occ = Occlusion.parse(spec.occlusion)
    if occ.kind == "none":
        raise UnveilError("compare needs an occlusion (lower-half or mask), not 'none'")
    faces, excluded = load_scored(load, spec.data, spec.split, spec.exclude_degenerate)
    if len(faces) == 0:
        raise UnveilError(f"{spec.data}: the {spec.split} split is empty")
    judge = models.judge(spec.judge)
    specs = list(spec.inpainters) if spec.inpainters is not None else default_inpainters(models.checkpoints)
    inpainters = models.inpainters(specs, lambda: load(spec.data, "train").float_images())
    others = [models.judge(name) for name in spec.cross]
    log.info(f"comparing {len(inpainters) + 2} conditions on {len(faces)} faces of {faces.source} ({spec.split})")
    started = time.perf_counter()
    one = OneReadingInputs.open(models, spec.reader, spec.fusion, judge, inpainters)
    report, artefacts = compare(faces, judge, inpainters, occ, cross=others, tta=spec.tta, seed=spec.seed,
                                n_boot=spec.n_boot, use_lpips=spec.use_lpips, classes=spec.classes, one=one)
    report["data"]["split"] = spec.split
    if excluded:
        report["data"]["excluded_degenerate"] = excluded
    write_outputs(report, artefacts, faces.ids, judge, out_dir, f"occlusion {occ}", spec.per_class, spec.seed,
                  wandb_run)
    log.info(f"[compare] {len(report['conditions'])} conditions scored and written in "
             f"{time.perf_counter() - started:.1f} s")
    return report


def write_outputs(report: dict, artefacts: dict, ids: list[str], judge: Judge, out_dir: str | Path, shown: str,
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


# What eval-inpainter writes into its --out, and only that (the folder is replaced as one set).
INPAINTER_EVAL = ({"metrics.json", "samples.png"}, "an inpainter evaluation")


def evaluate_one_inpainter(name_or_path: str, judge_spec: str, models: Models, load: Load, data: str, split: str,
                           occlusion: str | None = None, tta: bool = False, seed: int = 0,
                           out: Path | None = None) -> dict:
    """`unveil eval-inpainter`: the comparison with one inpainter (`occlusion` None: the one it was trained
    under), reported from that inpainter's side; with `out`, metrics.json and a sample grid, as one set."""
    from unveil.inpaint.figures import write_samples

    if out is not None:
        check_replaceable(out, *INPAINTER_EVAL)  # before the work, not after it
    faces = load(data, split)
    if len(faces) == 0:
        raise UnveilError(f"{data}: the {split} split is empty")
    [inp] = models.inpainters([name_or_path], lambda: load(data, "train").float_images())
    occ = _inpainter_occlusion(occlusion, inp.model.meta)
    report, _ = compare(faces, models.judge(judge_spec), [inp], occ, tta=tta, seed=seed, n_boot=0, use_lpips=True)
    result = _inpainter_view(report, inp, name_or_path, split)
    if out is not None:
        with output_folder(out, *INPAINTER_EVAL) as folder:
            write_json(folder / "metrics.json", result)
            write_samples(folder / "samples.png", inp.model, faces, occ)
    return result


def _inpainter_occlusion(text: str | None, meta: dict) -> Occlusion:
    """The occlusion asked for, else the generator's training occlusion, else the lower half."""
    if text:
        return Occlusion.parse(text)
    return Occlusion.from_dict(meta["occlusion"]) if meta.get("occlusion") else LowerHalf()


def _inpainter_view(report: dict, inp: NamedInpainter, name_or_path: str, split: str) -> dict:
    recon, conditions = report["conditions"][inp.name], report["conditions"]
    quality = {k: recon.get(k) for k in ("psnr_hole", "ssim_hole", "l1_hole", "psnr_image", "ssim_image",
                                          "l1_image", "lpips", "lpips_missing") if k in recon}
    roles = {role: _brief(inp.model.meta.get(role)) for role in ("guide", "conditioning", "selector")}
    return {
        "inpainter": name_or_path, "kind": "checkpoint" if inp.path else "baseline", "arch": inp.model.name,
        "data": report["data"]["source"], "split": split, "n": report["data"]["n"],
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


def reconstruct_loader(device: torch.device, checkpoints: str | Path | None = None):
    """What the classifier stage's reconstructed condition is given: inpainter path -> its `reconstruct`."""
    return lambda spec: fused_for_inference(open_inpainter(spec, device, checkpoints=checkpoints)).reconstruct
