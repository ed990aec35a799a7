"""Training a classifier: the stage's `Task` for the one training loop (`unveil.trainer`).

The whole data set stays on the device; each batch is augmented there and shown under the condition
(occlusion masks redrawn every batch), optionally as FGSM adversarial examples; validation reads the
fixed val faces under the same condition.

    model, history = fit_classifier(model, faces.split("train"), faces.split("val"), default_train())
    model = train_quick(load_faces("synthetic:n=3500"))          # seconds on the CPU, for tests
    result = train_from_config(load_classifier_config("configs/classifier_synthetic.yaml"))
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from unveil.classes import ClassView
from unveil.config import to_dict
from unveil.data import Faces
from unveil.data.faces import epoch_order
from unveil.distributed import is_main, shard_index, world
from unveil.errors import UnveilError
from unveil.io import write_json
from unveil.metrics import classification_report
from unveil.checkpoint import read_sidecar
from unveil.runtime import (autocast, fused_for_inference, pick_device, prepare_model, resolve_precision,
                            seed_everything)
from unveil.shipped import resolve_checkpoint
from unveil.trainer import OptimConfig, Trainer, TrainConfig, init_weights, run_folder

from .condition import Condition, LoadReconstruct
from .config import ClassifierConfig, DistillConfig, LossConfig
from .evaluate import evaluate, predict_proba
from .identity import classifier_record
from .losses import distillation_loss, fgsm_perturb, make_criterion, mix_batch
from .models import create_classifier, open_classifier, save_classifier

log = logging.getLogger(__name__)

VAL_SEED = 0  # masks of the fixed val (and test) faces: the same for every model, every epoch


class ClassifierTask:
    """One classifier, its training faces under a condition, and its validation (see `unveil.trainer.Task`)."""

    selected = "model"

    def __init__(self, model: nn.Module, train: Faces, val: Faces | None, cfg: TrainConfig, loss: LossConfig,
                 device: torch.device, condition: Condition, meta: dict | None = None, view: ClassView | None = None):
        if world()[1] > 1 and not train.sharded:
            train = train.select(shard_index(len(train)))  # this rank's shard
        if len(train) < 2:
            raise UnveilError(f"need at least 2 training faces, got {len(train)}")
        self.device, self.cfg, self.condition, self.meta = device, cfg, condition, meta
        self.view = view or ClassView()   # a class map trains on its groups: labels become group indices
        model = prepare_model(model, device)
        self.models = {"model": model}
        self.optim = {"model": ([model], cfg.optim)}
        self.net = torch.compile(model) if cfg.compile else model
        self.precision = resolve_precision(device, cfg.precision)
        self.train = train
        self.images, self.labels = train.images.to(device), self.view.labels(train.labels).to(device)
        # Soft labels (crowd votes) of a data mix, in the view's classes; else the labels themselves.
        soft = train.soft if train.soft is None or self.view.mapping is None else self.view.mapping.collapse(train.soft)
        self.targets = soft.to(device) if soft is not None else self.labels
        self.batch = min(cfg.batch_size, len(train))
        # The last partial batch is dropped (BatchNorm needs more than one face).
        self.steps_per_epoch = cfg.steps_per_epoch or len(train) // self.batch
        self.criterion = make_criterion(loss, self.labels, len(self.view.names))
        self.loss = loss
        self.teacher = load_teacher(loss.distill.teacher, self.view, device)
        self.augment = cfg.augment.build()
        self.val = val if val is not None and len(val) else None
        self.worn = train.worn.to(device) if train.worn is not None else None
        self.val_images = condition.over_set(self.val.float_images().to(device), VAL_SEED,
                                             self.val.worn) if self.val else None

    def batches(self, epoch: int, seed: int) -> Iterator[tuple]:
        gen = torch.Generator(device=self.device).manual_seed(seed)
        order = epoch_order(self.train, self.steps_per_epoch * self.batch, gen)
        for step in range(self.steps_per_epoch):
            # Fresh masks every batch; a resumed run draws the same ones (kept below 2**63 for any train.seed).
            yield order[step * self.batch:(step + 1) * self.batch], gen, (seed * 100_003 + step) % 2 ** 63

    def step(self, batch: tuple) -> Iterator[tuple[str, torch.Tensor, dict]]:
        index, gen, mask_seed = batch
        x, y, target = self.images[index].unsqueeze(1).float().div_(255), self.labels[index], self.targets[index]
        if self.augment is not None:
            x = self.augment(x, gen)
        # Mixed with partners at these positions in the batch: their labels or soft labels alike.
        full, partner, lam = mix_batch(x, torch.arange(len(y), device=y.device), self.loss)
        x = self.condition(full, seed=mask_seed, worn=None if self.worn is None else self.worn[index])
        if self.loss.adversarial_eps > 0:
            x = fgsm_perturb(self.net, x, target, self.criterion, self.loss.adversarial_eps, gen, self.precision)
        with autocast(self.device, self.precision):
            logits = self.net(x.contiguous(memory_format=torch.channels_last))
        loss = self.criterion(logits, target) if lam == 1.0 else (
            lam * self.criterion(logits, target) + (1 - lam) * self.criterion(logits, target[partner]))
        if self.teacher is not None:
            loss = self._distilled(loss, logits, full if self.loss.distill.sees == "full" else x)
        yield "model", loss, {"loss": loss.detach(), "accuracy": (logits.detach().argmax(1) == y).float().mean()}

    def _distilled(self, loss: torch.Tensor, logits: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """The labels' loss mixed with the teacher's, which reads `seen` (the full face, or the student's view)."""
        distill = self.loss.distill
        with torch.no_grad(), autocast(self.device, self.precision):
            teacher = self.teacher(seen.contiguous(memory_format=torch.channels_last))
        return (1 - distill.weight) * loss + distill.weight * distillation_loss(logits, teacher, distill.temperature)

    def validate(self, model: nn.Module) -> dict[str, float]:
        if self.val is None:
            return {}
        probs = predict_proba(model, self.val_images)
        labels = self.view.labels(self.val.labels)
        report = classification_report(labels, probs, n_boot=0, classes=self.view.names)
        nll = F.nll_loss(probs.clamp_min(1e-8).log(), labels.to(probs.device))
        scores = {"loss": float(nll), "accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
        right = probs.argmax(1).cpu() == labels.cpu()
        for k, name in enumerate(self.val.origins):   # a data mix: each part's own score beside the pooled one
            part = self.val.origin.cpu() == k
            if part.any():
                scores[f"accuracy@{name}"] = float(right[part].float().mean())
        return scores

    def save_best(self, path: Path, model: nn.Module, record: dict) -> None:
        save_classifier(path, model, {**(self.meta or {}), **self.condition.describe(), "seed": self.cfg.seed,
                                      "epochs": self.cfg.epochs, "best_epoch": record["epoch"],
                                      "metrics": {"val": record["val"]} if record["val"] else {}},
                        half=self.cfg.half)


def load_teacher(spec: str | None, view: ClassView, device: torch.device) -> nn.Module | None:
    """The frozen teacher of `loss.distill` (BatchNorm folded), or None; it must predict the student's classes."""
    if not spec:
        return None
    teacher, meta, path = open_classifier(spec, device)
    if list(meta["classes"]) != list(view.names):
        raise UnveilError(f"{path}: the distillation teacher predicts {', '.join(meta['classes'])}; the student "
                          f"learns {', '.join(view.names)}")
    return fused_for_inference(teacher).to(device)


def distill_record(cfg: DistillConfig) -> dict:
    """What a sidecar keeps about a distillation: the teacher's identity and the settings."""
    path = resolve_checkpoint(cfg.teacher)
    return {"teacher": classifier_record(path, read_sidecar(path, "classifier")), "weight": cfg.weight,
            "temperature": cfg.temperature, "sees": cfg.sees}


def fit_classifier(model: nn.Module, train: Faces, val: Faces | None, cfg: TrainConfig,
                   loss: LossConfig | None = None, device: torch.device | str = "cpu",
                   condition: Condition | None = None, out_dir: str | Path | None = None, meta: dict | None = None,
                   config: dict | None = None, resume: bool = False, progress: bool = True,
                   on_epoch_end: Callable[[int, dict], None] | None = None,
                   view: ClassView | None = None) -> tuple[nn.Module, dict]:
    """Train `model` on `train` shown under `condition`; select (and early-stop) on `val`.

    Returns the selected model (the EMA weights when `cfg.ema` > 0) in eval mode on `device`, and the
    trainer's history (`unveil.trainer.Trainer.fit`). Without `val` the last epoch is kept. With
    `out_dir`, the run folder gets `config.yaml` (`config`), `last.*`, `history.json` and `best.*` (a
    classifier checkpoint whose sidecar is `meta`, which must name `arch` and `arch_args`). With a
    class map's `view`, the model (built with as many outputs as groups) learns the groups.
    """
    device = torch.device(device)
    if out_dir is not None and "arch" not in (meta or {}):
        raise ValueError("fit_classifier with out_dir needs meta with 'arch' and 'arch_args' for best.*")
    task = ClassifierTask(model, train, val, cfg, loss or LossConfig(), device, condition or Condition(), meta, view)
    trainer = Trainer(task, cfg, cfg.select or "accuracy", out=out_dir, config=config, what="train-classifier",
                      progress=progress, device=device, on_epoch_end=on_epoch_end)
    history = trainer.fit(resume=resume)
    # Hand back the ordinary layout, as load_classifier does, so both predict bit for bit alike.
    final = trainer.selected_model.to(memory_format=torch.contiguous_format)
    return final.eval(), history


def train_quick(faces: Faces, arch: str = "tiny_cnn", epochs: int = 4, seed: int = 0,
                occlusion: str | None = None, device: str | torch.device = "cpu", adversarial_eps: float = 0.0,
                **arch_args) -> nn.Module:
    """A small classifier trained on `faces.split("train")` in seconds on the CPU, for tests of every
    stage; `occlusion` (e.g. "lower-half") trains on occluded faces, `adversarial_eps` > 0 makes it
    robust (FGSM adversarial training). Returns it in eval mode."""
    seed_everything(seed)
    model = create_classifier(arch, **arch_args)
    cfg = TrainConfig(epochs=epochs, batch_size=64, seed=seed, select="accuracy",
                      optim=OptimConfig("adamw", lr=4e-3, weight_decay=1e-4, schedule="onecycle", warmup=0.25))
    cfg.augment.degrees, cfg.augment.shift = 5.0, 0.05
    model, _ = fit_classifier(model, faces.split("train"), None, cfg, LossConfig(adversarial_eps=adversarial_eps),
                              device, Condition.build(occlusion), progress=False)
    return model


# --------------------------------------------------------------------------- a run from a config


def train_from_config(cfg: ClassifierConfig, out_dir: str | Path | None = None, resume: bool = False,
                      on_epoch_end: Callable[[int, dict], None] | None = None,
                      load_reconstruct: LoadReconstruct | None = None) -> dict:
    """A whole run: data, model, condition, training, final val (and test) reports, run folder.

    The run folder holds `config.yaml` (resolved), `last.*` (resume state), `best.*` (the selected
    classifier; its sidecar gets the final metrics), `history.json` (per-epoch curves) and
    `metrics.json`. Returns metrics.json's content.
    """
    out = Path(out_dir) if out_dir is not None else cfg.run_dir()
    with run_folder(out):  # held from the first check of the folder to the last file written
        return _train_run(cfg, out, resume, on_epoch_end, load_reconstruct)


def _train_run(cfg: ClassifierConfig, out: Path, resume: bool, on_epoch_end, load_reconstruct) -> dict:
    device = pick_device(cfg.device)
    seed_everything(cfg.train.seed)
    faces = cfg.data.load()
    train, val, test = _splits(faces, cfg)
    condition = Condition.from_config(cfg.condition, load_reconstruct)
    view = cfg.class_view()
    model, meta = _model_and_meta(cfg, view)
    if cfg.init:
        meta["init"] = init_weights(model, cfg.init, "classifier", cfg.model.arch,
                                    same={"classes": list(view.names), "class_map": view.record()["class_map"]})
    if cfg.loss.distill.teacher:
        meta["distill"] = distill_record(cfg.loss.distill)
    meta.update(data_source=faces.source, data_fingerprint=faces.fingerprint, train_faces=len(train))
    if is_main():
        log.info(f"[train-classifier] {cfg.name}: {cfg.model.arch} on {len(train)} faces ({faces.source}), condition "
                 f"{cfg.condition.name}, {view.describe()}, {cfg.train.epochs} epochs on {device}; run folder {out}")
    started = time.perf_counter()
    model, history = fit_classifier(model, train, val, cfg.train, cfg.loss, device, condition, out, meta,
                                    to_dict(cfg), resume, on_epoch_end=on_epoch_end, view=view)
    metrics = {"name": cfg.name, **condition.describe(), **view.record(), "best_epoch": history["best_epoch"],
               "epochs_run": history["epochs_run"], "stopped_early": history["stopped_early"],
               "seconds_per_epoch": history["seconds_per_epoch"], "train_faces": len(train)}
    for split, part in (("val", val), ("test", test)):
        if len(part) and (split == "val" or cfg.report_test):
            metrics[split] = evaluate(model, part, condition, seed=VAL_SEED, view=view)
            tta = evaluate(model, part, condition, tta=True, n_boot=0, seed=VAL_SEED, view=view)
            metrics[f"{split}_tta"] = {"accuracy": tta["accuracy"], "macro_f1": tta["macro_f1"]}
    if not is_main():
        return metrics  # rank 0 writes the run folder
    write_json(out / "metrics.json", metrics)
    save_classifier(out / "best", model, {**meta, **condition.describe(), "seed": cfg.train.seed,
                                          "epochs": cfg.train.epochs, "best_epoch": history["best_epoch"],
                                          "seconds_per_epoch": history["seconds_per_epoch"],
                                          "metrics": _sidecar_metrics(metrics)}, half=cfg.train.half)
    log.info(f"[train-classifier] done: {_summary(history, metrics, time.perf_counter() - started)}; "
             f"wrote {out / 'best.safetensors'}")
    return metrics


def _model_and_meta(cfg: ClassifierConfig, view: ClassView) -> tuple[nn.Module, dict]:
    """The untrained model and what its sidecar says about it. A class map gives the model one output
    per group, and the sidecar the map and the groups as its `classes` (checked on load)."""
    args = dict(cfg.model.args)
    meta = {"arch": cfg.model.arch, "arch_args": args, "name": cfg.name}
    if view.mapping is not None:
        args["num_classes"] = len(view.names)
        meta.update(classes=list(view.names), class_map=view.mapping.record())
    return create_classifier(cfg.model.arch, **args), meta


def _splits(faces: Faces, cfg: ClassifierConfig) -> tuple[Faces, Faces, Faces]:
    if len(faces.split("train")) == 0:
        raise UnveilError(f"{cfg.data.describe()}: no training faces")
    return cfg.data.splits(faces, cfg.train.seed)


def _sidecar_metrics(metrics: dict) -> dict:
    """The compact scores a checkpoint carries: accuracy, macro-F1, their intervals, per split."""
    out = {}
    for split in ("val", "test"):
        if split in metrics:
            r = metrics[split]
            out[split] = {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "n": r["n"],
                          "ci95": r.get("ci95"), "macro_roc_auc": r["macro_roc_auc"],
                          "tta_accuracy": metrics[f"{split}_tta"]["accuracy"]}
    return out


def _summary(history: dict, metrics: dict, seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    parts = [f"{history['epochs_run']} epochs in {f'{m}m{s:02d}s' if m else f'{seconds:.1f}s'}",
             f"{history['seconds_per_epoch']:.2f} s/epoch", f"best epoch {history['best_epoch']}"]
    for split in ("val", "test"):
        if split in metrics:
            parts.append(f"{split} accuracy {100 * metrics[split]['accuracy']:.2f} % "
                         f"(TTA {100 * metrics[f'{split}_tta']['accuracy']:.2f} %)")
    return ", ".join(parts)


__all__ = ["ClassifierTask", "fit_classifier", "train_quick", "train_from_config"]
