"""Train an inpainting generator: `unveil train-inpainter --config configs/inpaint_*.yaml`.

The loop (readable in one sitting, after nanoGPT):

    for each epoch:
        for each step:  faces from the resident training set (uint8 on the device)
                        -> augment the FULL face on the device (unveil.augment)
                        -> occlude on the fly (lower half, or face masks redrawn every step)
                        -> [conditioner reads the occluded face -> class distribution]
                        -> G(occluded, hole, cond) -> stitch under the real visible pixels
                        -> discriminator_step  (loss, metrics)   if the adversarial term is on
                        -> generator_step      (loss, metrics)
        validate on the val split -> selection score -> `best` checkpoint
        training state -> `last` (resume), history.json, sample grid every N epochs

Guide versus judge. The expression-consistency loss reads the reconstruction with a frozen *guide*
classifier; a generator trained against a classifier learns to fool it. So the guide is never used
to select the checkpoint: selection uses the hole PSNR (default; also `ssim_hole`, `l1_hole`) or,
with `select.metric: selector_accuracy`, the val accuracy of an independent *selector* classifier,
which must not be the guide (checked: same weights, path, or arch+seed+data are refused). Judge a
generator in reports with a third classifier, neither the guide nor the selector:
`unveil eval-inpainter` warns when the judge is the guide (or the selector).

Run folder: config.yaml (resolved), history.json (per epoch), metrics.json (final), samples/*.png,
best.safetensors/.json (the selected generator, an inpainter checkpoint), last.safetensors/.json
(training state, every epoch, for --resume).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml

from unveil.augment import Augment
from unveil.classes import CLASSES
from unveil.classify import load_classifier, predict_proba
from unveil.classify.identity import classifier_record, same_classifier
from unveil.config import from_dict, to_dict
from unveil.data import Faces, load_faces
from unveil.errors import UnveilError
from unveil.io import write_json, write_text
from unveil.occlusion import Occlusion
from unveil.runtime import (EMA, Progress, autocast, load_training_state, pick_device, prepare_model,
                            save_training_state, seed_everything, warmup_cosine)

from .discriminators import DISCRIMINATORS, create_discriminator
from .evaluate import evaluate_inpainter
from .figures import write_samples
from .generators import GENERATORS, create_generator
from .inpainter import Inpainter, load_inpainter, save_inpainter
from .losses import (ADVERSARIAL_KINDS, EXPRESSION_KINDS, PERCEPTUAL_KINDS, ExpressionLoss, PerceptualLoss,
                     discriminator_adversarial_loss, generator_adversarial_loss, masked_l1)
from .stitch import stitch

SELECT_METRICS = {"psnr_hole": "max", "ssim_hole": "max", "l1_hole": "min", "selector_accuracy": "max"}
SCHEDULES = ("cosine", "constant")


# --------------------------------------------------------------------------- config


@dataclass
class DataConfig:
    source: str = "synthetic"          # any `unveil.data` source: synthetic[:n=,seed=], a FER2013 folder...
    train_split: str = "train"
    val_split: str = "val"             # selection happens here, never on test
    normalize: bool = True
    limit: int | None = None           # use only the first N training faces (tiny runs)
    val_limit: int | None = None


@dataclass
class ModelConfig:
    arch: str = "unet"
    args: dict = field(default_factory=dict)
    conditioning: str | None = None    # occluded-face classifier checkpoint -> expression conditioning
    embed_conditioner: bool = True     # store its weights in the generator checkpoint (self-contained)
    feather: int = 0                   # stitching seam width (0: hard seam)


@dataclass
class DiscriminatorConfig:
    arch: str = "patchgan"
    args: dict = field(default_factory=dict)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)


@dataclass
class LossConfig:
    hole_l1: float = 6.0               # masked L1 weight inside the hole
    valid_l1: float = 1.0              # ... and on the visible rest (raw output)
    adversarial: float = 0.0           # 0: no discriminator
    adversarial_kind: str = "lsgan"    # lsgan | hinge
    perceptual: float = 0.0
    perceptual_kind: str = "auto"      # auto (LPIPS if cached, else gradient_ssim) | lpips | gradient_ssim
    expression: float = 0.0            # expression consistency from the frozen guide
    expression_kind: str = "ce"        # ce | kl | feature
    expression_temperature: float = 1.0
    expression_warmup: float = 0.0     # fraction of training before the expression term reaches full weight
    guide: str | None = None           # full-face classifier checkpoint (the GUIDE, never the judge)


@dataclass
class AugmentConfig:
    flip: bool = True
    degrees: float = 8.0
    scale: tuple[float, float] = (0.92, 1.08)
    shift: float = 0.04


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "cosine"           # cosine (with linear warm-up) | constant
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.02
    ema: float = 0.0                   # EMA decay of the generator's weights; 0 switches it off
    seed: int = 0
    device: str = "auto"
    steps_per_epoch: int | None = None  # default: training faces // batch_size
    sample_every: int = 5              # sample grid PNG every N epochs (and the last one)
    save_half: bool = False            # store `best` in fp16 (shipped checkpoints)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class SelectConfig:
    metric: str = "psnr_hole"          # psnr_hole | ssim_hole | l1_hole | selector_accuracy
    classifier: str | None = None      # the selector (an independent full-face classifier, not the guide)


@dataclass
class InpaintConfig:
    name: str = "inpainter"
    occlusion: str = "lower-half"      # Occlusion text form; masks are redrawn every step
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    select: SelectConfig = field(default_factory=SelectConfig)

    def validate(self, where: str = "config") -> "InpaintConfig":
        def bad(msg: str) -> UnveilError:
            return UnveilError(f"{where}: {msg}")

        if self.model.arch not in GENERATORS:
            raise bad(f"model.arch {self.model.arch!r} is not a trainable generator; valid: {', '.join(GENERATORS.names())}")
        if self.discriminator.arch not in DISCRIMINATORS:
            raise bad(f"discriminator.arch {self.discriminator.arch!r} unknown; valid: {', '.join(DISCRIMINATORS.names())}")
        checks = [("loss.adversarial_kind", self.loss.adversarial_kind, ADVERSARIAL_KINDS),
                  ("loss.perceptual_kind", self.loss.perceptual_kind, PERCEPTUAL_KINDS),
                  ("loss.expression_kind", self.loss.expression_kind, EXPRESSION_KINDS),
                  ("select.metric", self.select.metric, tuple(SELECT_METRICS)),
                  ("train.schedule", self.train.schedule, SCHEDULES)]
        for key, value, valid in checks:
            if value not in valid:
                raise bad(f"{key} {value!r} unknown; valid: {', '.join(valid)}")
        if self.loss.expression > 0 and not self.loss.guide:
            raise bad("loss.expression > 0 needs loss.guide (a full-face classifier checkpoint)")
        if self.loss.expression > 0 and self.loss.adversarial <= 0 and self.loss.perceptual <= 0:
            raise bad("the expression term must be paired with an adversarial or perceptual term that keeps "
                      "the hole looking like a face (set loss.adversarial or loss.perceptual > 0)")
        if self.select.metric == "selector_accuracy" and not self.select.classifier:
            raise bad("select.metric selector_accuracy needs select.classifier (an independent val classifier)")
        if self.loss.guide and self.loss.expression <= 0:
            print(f"warning: {where}: loss.guide is set but loss.expression is 0, so the guide is unused",
                  file=sys.stderr)
        if self.train.epochs < 1 or self.train.batch_size < 2:
            raise bad("train.epochs must be >= 1 and train.batch_size >= 2")
        try:
            Occlusion.parse(self.occlusion)
        except ValueError as exc:
            raise bad(f"occlusion: {exc}") from None
        return self


def load_inpaint_config(path: str | Path, overrides: list[str] | None = None) -> InpaintConfig:
    from unveil.config import apply_overrides, load_yaml

    data = apply_overrides(load_yaml(path), overrides)
    return from_dict(InpaintConfig, data, where=str(path)).validate(str(path))


# --------------------------------------------------------------------------- helpers


class _RNGState:
    """Adapts a torch.Generator to the optimizer-like state_dict protocol used by training states."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"].to(torch.uint8).cpu())


def _lr_factor(cfg: TrainConfig, total_steps: int, steps_per_epoch: int):
    if cfg.schedule == "constant":
        return lambda step: 1.0
    return warmup_cosine(total_steps, int(cfg.warmup_epochs * steps_per_epoch), cfg.min_lr_ratio)


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")


# --------------------------------------------------------------------------- trainer


class InpaintTrainer:
    """Builds everything a run needs from an `InpaintConfig`, and trains it.

    `generator_step` and `discriminator_step` each return `(loss, metrics)` (as in LaMa); the loop in
    `fit` owns the optimisers, the schedule, EMA, validation, checkpoints and resume.
    """

    def __init__(self, cfg: InpaintConfig, out_dir: str | Path, faces: Faces | None = None,
                 log=sys.stderr):
        self.cfg = cfg.validate()
        self.out = Path(out_dir)
        self.log = log
        self.device = pick_device(cfg.train.device)
        seed_everything(cfg.train.seed)
        self.occlusion = Occlusion.parse(cfg.occlusion)
        self.augment = Augment(flip=cfg.train.augment.flip, degrees=cfg.train.augment.degrees,
                               scale=tuple(cfg.train.augment.scale), shift=cfg.train.augment.shift)

        # Data: decoded once, resident on the device as uint8.
        all_faces = faces if faces is not None else load_faces(cfg.data.source, normalize=cfg.data.normalize)
        self.train_faces = all_faces.split(cfg.data.train_split)
        self.val_faces = all_faces.split(cfg.data.val_split)
        if cfg.data.limit:
            self.train_faces = self.train_faces.select(torch.arange(min(cfg.data.limit, len(self.train_faces))))
        if cfg.data.val_limit:
            self.val_faces = self.val_faces.select(torch.arange(min(cfg.data.val_limit, len(self.val_faces))))
        if len(self.train_faces) < cfg.train.batch_size or len(self.val_faces) == 0:
            raise UnveilError(f"{cfg.data.source}: {len(self.train_faces)} training / {len(self.val_faces)} val faces "
                              f"is too few for batch size {cfg.train.batch_size}")
        self.fingerprint = all_faces.fingerprint
        self.train_faces = self.train_faces.to(self.device)
        self.val_faces = self.val_faces.to(self.device)
        self.steps_per_epoch = cfg.train.steps_per_epoch or len(self.train_faces) // cfg.train.batch_size

        # Classifiers: conditioner (input), guide (loss), selector (val score). Never the same one twice.
        self.conditioner, self.conditioning_info = self._classifier(cfg.model.conditioning)
        self.guide, self.guide_info = self._classifier(cfg.loss.guide if cfg.loss.expression > 0 else None)
        self.selector, self.selector_info = self._classifier(
            cfg.select.classifier if cfg.select.metric == "selector_accuracy" else None)
        reason = same_classifier(self.guide_info, self.selector_info)
        if reason:
            raise UnveilError(f"select.classifier is the guide ({reason}): a guide cannot select its own "
                              f"generator; use an independently trained classifier or select by psnr_hole")
        if self.guide_info:
            self.guide_info.update(loss=cfg.loss.expression_kind, weight=cfg.loss.expression)

        # Models and optimisers.
        g_args = dict(cfg.model.args)
        if self.conditioner is not None:
            g_args["cond_dim"] = len(CLASSES)
        self.g_args = g_args
        self.G = prepare_model(create_generator(cfg.model.arch, **g_args), self.device)
        self.D = (prepare_model(create_discriminator(cfg.discriminator.arch, **cfg.discriminator.args), self.device)
                  if cfg.loss.adversarial > 0 else None)
        self.ema = EMA(self.G, cfg.train.ema) if cfg.train.ema > 0 else None
        self.opt_g = torch.optim.AdamW(self.G.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas),
                                       weight_decay=cfg.train.weight_decay)
        self.opt_d = (torch.optim.Adam(self.D.parameters(), lr=cfg.discriminator.lr, betas=tuple(cfg.discriminator.betas))
                      if self.D is not None else None)
        total = cfg.train.epochs * self.steps_per_epoch
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, _lr_factor(cfg.train, total, self.steps_per_epoch))
        self.sched_d = (torch.optim.lr_scheduler.LambdaLR(self.opt_d, _lr_factor(cfg.train, total, self.steps_per_epoch))
                        if self.opt_d is not None else None)

        # Losses, chosen by typed config fields.
        self.perceptual = PerceptualLoss(cfg.loss.perceptual_kind).to(self.device) if cfg.loss.perceptual > 0 else None
        self.expression = (ExpressionLoss(self.guide, cfg.loss.expression_kind, cfg.loss.expression_temperature)
                           if self.guide is not None else None)

        # Randomness: one CPU generator (batch order, mask seeds), one on the device (augmentation).
        self.rng = torch.Generator().manual_seed(cfg.train.seed)
        self.rng_device = torch.Generator(self.device).manual_seed(cfg.train.seed + 1)
        self.epoch, self.history, self.best = 0, [], None

    # ----------------------------------------------------------------- pieces

    def _classifier(self, path: str | None) -> tuple[nn.Module | None, dict | None]:
        if not path:
            return None, None
        model, meta = load_classifier(path, self.device)
        return prepare_model(model, self.device).eval().requires_grad_(False), classifier_record(path, meta)

    def _conditioning(self, occluded: torch.Tensor) -> torch.Tensor | None:
        if self.conditioner is None:
            return None
        with torch.no_grad(), autocast(self.device):
            return torch.softmax(self.conditioner(occluded).float(), 1)

    def make_batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Augment full faces on the device, then occlude them (masks redrawn on every call)."""
        full = self.train_faces.images[index.to(self.device)].unsqueeze(1).float().div_(255)
        full = self.augment(full, generator=self.rng_device).clamp_(0, 1)
        seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=self.rng))
        occluded, hole = self.occlusion(full, seed=seed)
        return {"full": full, "occluded": occluded, "hole": hole,
                "labels": self.train_faces.labels[index.to(self.device)], "cond": self._conditioning(occluded)}

    def discriminator_step(self, batch: dict, stitched: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """D learns real (true face) vs fake (stitched reconstruction), both given the visible half."""
        with autocast(self.device):
            real = self.D(batch["occluded"], batch["hole"], batch["full"])
            fake = self.D(batch["occluded"], batch["hole"], stitched.detach())
        loss = discriminator_adversarial_loss(real, fake, self.cfg.loss.adversarial_kind)
        return loss, {"d_loss": loss.item(), "d_real": real.float().mean().item(), "d_fake": fake.float().mean().item()}

    def generator_step(self, batch: dict, raw: torch.Tensor, stitched: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Weighted sum of the configured terms on the raw output (L1) and the stitched face (the rest)."""
        lc = self.cfg.loss
        full, hole = batch["full"], batch["hole"]
        l1 = masked_l1(raw.float(), full, hole, lc.hole_l1, lc.valid_l1)
        loss, metrics = l1, {"l1": l1.item()}
        if self.D is not None:
            with autocast(self.device):
                logits = self.D(batch["occluded"], hole, stitched)
            adv = generator_adversarial_loss(logits, lc.adversarial_kind)
            loss = loss + lc.adversarial * adv
            metrics["adv"] = adv.item()
        if self.perceptual is not None:
            perc = self.perceptual(stitched.float(), full, hole)
            loss = loss + lc.perceptual * perc
            metrics["perc"] = perc.item()
        if self.expression is not None:
            with autocast(self.device):
                expr = self.expression(stitched, full, batch["labels"])
            loss = loss + lc.expression * self._expression_ramp() * expr
            metrics["expr"] = expr.item()
        metrics["loss"] = loss.item()
        return loss, metrics

    def _expression_ramp(self) -> float:
        """0 -> 1 linearly over the first `expression_warmup` of training: the guide's gradients only
        once the generator draws faces, so they sharpen a mouth instead of seeding textures."""
        warmup = self.cfg.loss.expression_warmup * self.cfg.train.epochs * self.steps_per_epoch
        return min(1.0, self.sched_g.last_epoch / warmup) if warmup > 0 else 1.0

    def train_step(self, batch: dict) -> dict:
        self.G.train()
        with autocast(self.device):
            raw = self.G(batch["occluded"], batch["hole"], batch["cond"])
        stitched = stitch(raw.float(), batch["occluded"], batch["hole"], self.cfg.model.feather)
        metrics: dict[str, float] = {}
        if self.D is not None:
            self.D.requires_grad_(True)
            d_loss, d_metrics = self.discriminator_step(batch, stitched)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            self.sched_d.step()
            self.D.requires_grad_(False)  # the generator's step must not leave gradients in D
            metrics.update(d_metrics)
        g_loss, g_metrics = self.generator_step(batch, raw, stitched)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.sched_g.step()
        if self.ema is not None:
            self.ema.update(self.G)
        metrics.update(g_metrics)
        return metrics

    # ----------------------------------------------------------------- evaluation

    def eval_generator(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.G

    def inpainter(self, generator: nn.Module | None = None) -> Inpainter:
        return Inpainter(generator or self.eval_generator(), self.conditioner, self.cfg.model.feather,
                         self.sidecar())

    def validate(self, inpainter: Inpainter | None = None, precise: bool = False) -> dict:
        inpainter = inpainter or self.inpainter()
        selector = (lambda x: predict_proba(self.selector, x)) if self.selector is not None else None
        metrics = evaluate_inpainter(inpainter, self.val_faces.float_images(), self.val_faces.labels, self.occlusion,
                                     judge=selector, precision="fp32" if precise else "auto")
        if "accuracy" in metrics:
            metrics["selector_accuracy"] = metrics.pop("accuracy")
            metrics["selector_macro_f1"] = metrics.pop("macro_f1")
            metrics.pop("judge_report", None)
        return metrics

    def sidecar(self, metrics: dict | None = None) -> dict[str, Any]:
        """Everything `load_inpainter` and the pipelines need to know about this generator."""
        return {
            "kind": "inpainter", "arch": self.cfg.model.arch, "arch_args": self.g_args,
            "classes": list(CLASSES), "occlusion": self.occlusion.to_dict(), "occlusion_text": str(self.occlusion),
            "stitch": {"feather": self.cfg.model.feather},
            "guide": self.guide_info, "conditioning": self.conditioning_info, "selector": self.selector_info,
            "data_source": self.cfg.data.source, "data_fingerprint": self.fingerprint,
            "seed": self.cfg.train.seed,
            "loss": to_dict(self.cfg.loss),
            "selection": {"metric": self.cfg.select.metric, "split": self.cfg.data.val_split},
            "epochs_trained": self.epoch, "metrics": metrics or {},
        }

    # ----------------------------------------------------------------- checkpoints

    def _state_parts(self):
        modules = {"generator": self.G, "discriminator": self.D, "ema": self.ema.model if self.ema else None}
        optimizers = {"opt_g": self.opt_g, "sched_g": self.sched_g, "rng": _RNGState(self.rng),
                      "rng_device": _RNGState(self.rng_device)}
        if self.opt_d is not None:
            optimizers.update(opt_d=self.opt_d, sched_d=self.sched_d)
        return modules, optimizers

    def save_state(self) -> None:
        modules, optimizers = self._state_parts()
        save_training_state(self.out / "last", modules, optimizers,
                            {"epoch": self.epoch, "history": self.history, "best": self.best,
                             "ema_updates": self.ema.updates if self.ema else 0, "config": to_dict(self.cfg)})

    def load_state(self) -> None:
        modules, optimizers = self._state_parts()
        meta = load_training_state(self.out / "last", modules, optimizers, self.device)
        if meta.get("config") != json.loads(json.dumps(to_dict(self.cfg))):
            print(f"warning: resuming {self.out} with a config that differs from the saved one", file=self.log)
        self.epoch, self.history, self.best = meta["epoch"], meta["history"], meta["best"]
        if self.ema is not None:
            self.ema.updates = meta.get("ema_updates", 0)

    def save_best(self, metrics: dict) -> None:
        save_inpainter(self.out / "best", self.inpainter(), self.sidecar(metrics), half=self.cfg.train.save_half,
                       embed_conditioner=self.cfg.model.embed_conditioner)

    def save_samples(self, epoch: int) -> Path:
        """A PNG grid: occluded | reconstruction | original rows, two val faces per class."""
        return write_samples(self.out / "samples" / f"epoch_{epoch:03d}.png", self.inpainter(), self.val_faces,
                             self.occlusion)

    # ----------------------------------------------------------------- the loop

    def fit(self, resume: bool = False, stop_after: int | None = None) -> dict:
        """Train to `train.epochs` (or stop after epoch `stop_after`, resumable later); return the summary."""
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        write_text(self.out / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
        if resume:
            if not (self.out / "last.json").exists():
                raise UnveilError(f"{self.out}: nothing to resume (no last.json); run without --resume")
            self.load_state()
            print(f"resuming {self.out} after epoch {self.epoch}", file=self.log)
        better = (lambda a, b: a > b) if SELECT_METRICS[cfg.select.metric] == "max" else (lambda a, b: a < b)
        progress = Progress(cfg.train.epochs, f"inpainter {cfg.model.arch}", start_epoch=self.epoch, stream=self.log)
        n = len(self.train_faces)
        for epoch in range(self.epoch, min(cfg.train.epochs, stop_after or cfg.train.epochs)):
            progress.begin_epoch()
            started = time.perf_counter()
            bs = cfg.train.batch_size
            laps = math.ceil(self.steps_per_epoch * bs / n)  # whole permutations, never a short batch
            order = torch.cat([torch.randperm(n, generator=self.rng) for _ in range(laps)])
            sums: dict[str, list[float]] = {}
            for step in range(self.steps_per_epoch):
                batch = self.make_batch(order[step * bs:(step + 1) * bs])
                for key, value in self.train_step(batch).items():
                    sums.setdefault(key, []).append(value)
            train_seconds = time.perf_counter() - started
            val = self.validate()
            self.epoch = epoch + 1
            score = val[cfg.select.metric]
            record = {"epoch": self.epoch, **{k: _mean(v) for k, v in sums.items()},
                      **{f"val_{k}": v for k, v in val.items()}, "lr": self.sched_g.get_last_lr()[0],
                      "train_seconds": train_seconds,
                      "train_images_per_s": self.steps_per_epoch * cfg.train.batch_size / max(train_seconds, 1e-9)}
            self.history.append(record)
            if self.best is None or better(score, self.best["score"]):
                self.best = {"epoch": self.epoch, "score": score, "metric": cfg.select.metric}
                self.save_best({"val": val, "selection": self.best})
            if self.epoch % cfg.train.sample_every == 0 or self.epoch == cfg.train.epochs:
                self.save_samples(self.epoch)
            self.save_state()
            write_json(self.out / "history.json", self.history)
            shown = {k: record[k] for k in ("loss", "l1", "adv", "d_loss", "expr", "perc") if k in record}
            progress.end_epoch(epoch, **shown, val_psnr_hole=val["psnr_hole"], **{cfg.select.metric: score})
        return self.finish()

    def finish(self) -> dict:
        """Re-evaluate `best` as it was saved (fp16 if shipped) in fp32, and record it in its sidecar."""
        best = load_inpainter(self.out / "best", self.device)
        val = self.validate(best, precise=True)
        meta = dict(best.meta)
        meta["metrics"] = {"val": val, "selection": self.best, "precision": "fp32 inference on the saved weights"}
        meta["epochs_trained"] = self.epoch
        # Rewrite only the sidecar: the weights on disk are the ones just evaluated.
        write_json(self.out / "best.json", meta)
        last = self.history[-1] if self.history else {}
        summary = {"name": self.cfg.name, "arch": self.cfg.model.arch, "run": str(self.out),
                   "best_epoch": self.best["epoch"] if self.best else None, "selection": self.best,
                   "val": val, "epochs": self.epoch, "train_seconds_per_epoch": last.get("train_seconds"),
                   "train_images_per_s": last.get("train_images_per_s"),
                   "guide": self.guide_info, "conditioning": self.conditioning_info, "selector": self.selector_info}
        write_json(self.out / "metrics.json", summary)
        print(f"[inpainter {self.cfg.model.arch}] done: best epoch {summary['best_epoch']}, val hole PSNR "
              f"{val['psnr_hole']:.2f} dB, SSIM {val['ssim_hole']:.3f} -> {self.out / 'best'}", file=self.log)
        return summary


def train_inpainter(cfg: InpaintConfig, out_dir: str | Path, resume: bool = False, faces: Faces | None = None,
                    log=sys.stderr, stop_after: int | None = None) -> dict:
    """Train from a config; returns the run's summary (also in OUT/metrics.json)."""
    return InpaintTrainer(cfg, out_dir, faces=faces, log=log).fit(resume=resume, stop_after=stop_after)


__all__ = ["InpaintConfig", "InpaintTrainer", "load_inpaint_config", "train_inpainter"]
