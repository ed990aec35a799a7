"""Training an inpainting generator: the stage's `Task` for the one training loop (`unveil.trainer`).

    unveil train-inpainter --config configs/inpaint_*.yaml

Each step takes faces from the resident training set, augments the FULL face on the device, occludes
it (lower half, or masks redrawn every step), lets the conditioner read the occluded face, and
reconstructs it; the discriminator's loss (if the adversarial term is on) and then the generator's
are yielded to the trainer, which steps their optimisers in that order.

Guide versus judge. The expression-consistency loss reads the reconstruction with a frozen *guide*;
a generator trained against a classifier learns to fool it. So the guide never selects the
checkpoint: selection uses the val hole PSNR (default; also `ssim_hole`, `l1_hole`) or, with
`train.select: selector_accuracy`, the val accuracy of an independent *selector*, which must not be
the guide. Judge a generator in reports with a third classifier (`unveil eval-inpainter` and
`unveil compare` warn when the judge is the guide, the selector or the conditioner).

Run folder: config.yaml, history.json, metrics.json, samples/*.png, best.* (the selected generator,
an inpainter checkpoint), last.* (everything to resume).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from unveil.checkpoint import update_sidecar
from unveil.classes import CLASSES
from unveil.classify import open_classifier, predict_proba
from unveil.classify.identity import classifier_record, same_classifier
from unveil.config import to_dict
from unveil.data import Faces
from unveil.data.faces import epoch_order
from unveil.distributed import is_main, shard_index, world
from unveil.errors import UnveilError
from unveil.io import write_json
from unveil.occlusion import Occlusion
from unveil.runtime import autocast, fused_for_inference, pick_device, prepare_model, seed_everything
from unveil.trainer import Trainer, init_weights, run_folder

from .config import SELECT_METRICS, InpaintConfig
from .discriminators import create_discriminator
from .evaluate import evaluate_inpainter
from .figures import write_samples
from .generators import create_generator
from .inpainter import GENERATOR_PREFIX, Inpainter, conditioning, load_inpainter, save_inpainter
from .losses import (ExpressionLoss, PerceptualLoss, discriminator_adversarial_loss, generator_adversarial_loss,
                     masked_l1)
from .stitch import stitch

log = logging.getLogger(__name__)

OWN_HOLE_SHARE = 0.5   # faces with a hole of their own (data.mix holes:) cut by it in half their batches


def load_frozen(path: str | None, device: torch.device) -> tuple[nn.Module | None, dict | None]:
    """A frozen classifier (guide, conditioner or selector) and its identity record, or (None, None)."""
    if not path:
        return None, None
    model, meta, path = open_classifier(path, device)
    return prepare_model(model, device).eval().requires_grad_(False), classifier_record(path, meta)


class InpaintTask:
    """A generator (and discriminator), its losses and classifiers, and its validation (see `unveil.trainer.Task`)."""

    selected = "generator"

    def __init__(self, cfg: InpaintConfig, faces: Faces, device: torch.device):
        self.cfg, self.device = cfg, device
        self.occlusion = Occlusion.parse(cfg.occlusion)
        self.augment = cfg.train.augment.build()
        self.train_faces, self.val_faces = self._splits(faces)
        self.fingerprint = faces.fingerprint
        self.steps_per_epoch = cfg.train.steps_per_epoch or len(self.train_faces) // cfg.train.batch_size
        self._load_classifiers()
        self.g_args = {**self._conditioning_args(), **cfg.model.args}
        generator = create_generator(cfg.model.arch, **self.g_args)
        self.init = (init_weights(generator, cfg.init, "inpainter", cfg.model.arch, prefix=GENERATOR_PREFIX)
                     if cfg.init else None)
        generator = prepare_model(generator, device)
        self.models = {"generator": generator}
        self.optim = {"generator": ([generator], cfg.train.optim)}
        self.D = None
        if cfg.loss.adversarial > 0:
            self.D = prepare_model(create_discriminator(cfg.discriminator.arch, **cfg.discriminator.args), device)
            self.models["discriminator"] = self.D
            self.optim["discriminator"] = ([self.D], cfg.discriminator.optim)
        self.perceptual = PerceptualLoss(cfg.loss.perceptual_kind).to(device) if cfg.loss.perceptual > 0 else None
        # The guide only scores (no weights saved): BatchNorm folded, one pass less forward and backward.
        self.expression = (ExpressionLoss(fused_for_inference(self.guide), cfg.loss.expression_kind,
                                          cfg.loss.expression_temperature) if self.guide is not None else None)

    def _splits(self, faces: Faces) -> tuple[Faces, Faces]:
        """Training and val faces, resident on the device as uint8 (decoded once)."""
        data = self.cfg.data
        data.check_bare("train-inpainter")
        train, val, _ = data.splits(faces, self.cfg.train.seed)
        if world()[1] > 1 and not train.sharded:
            train = train.select(shard_index(len(train)))  # this rank's shard
        if len(train) < self.cfg.train.batch_size or len(val) == 0:
            raise UnveilError(f"{data.source}: {len(train)} training / {len(val)} val faces is too few for "
                              f"batch size {self.cfg.train.batch_size}")
        return train.to(self.device), val.to(self.device)

    def _load_classifiers(self) -> None:
        """Conditioner (input), guide (loss), selector (val score): never the same one twice."""
        cfg = self.cfg
        self.conditioner, self.conditioning_info = load_frozen(cfg.model.conditioning, self.device)
        # What training batches read it with: BatchNorm folded (the unfolded one is what gets saved).
        self.reader = fused_for_inference(self.conditioner) if self.conditioner is not None else None
        if self.conditioning_info:
            self.conditioning_info["features"] = cfg.model.conditioning_features
        self.guide, self.guide_info = load_frozen(cfg.loss.guide if cfg.loss.expression > 0 else None, self.device)
        selector = cfg.selector if cfg.train.select == "selector_accuracy" else None
        self.selector, self.selector_info = load_frozen(selector, self.device)
        reason = same_classifier(self.guide_info, self.selector_info)
        if reason:
            raise UnveilError(f"selector is the guide ({reason}): a guide cannot select its own generator; "
                              f"use an independently trained classifier or select by psnr_hole")
        if self.guide_info:
            self.guide_info.update(loss=cfg.loss.expression_kind, weight=cfg.loss.expression)

    def _conditioning_args(self) -> dict:
        """The generator's conditioning input: seven probabilities, or the conditioner's embedding
        (its size read off the conditioner) through 16 learned planes."""
        if self.conditioner is None:
            return {}
        if self.cfg.model.conditioning_features == "probabilities":
            return {"cond_dim": len(CLASSES)}
        probe = torch.zeros(2, 1, 48, 48, device=self.device)
        return {"cond_dim": conditioning(self.conditioner, probe, "embedding").shape[1], "cond_planes": 16}

    def inpainter(self, generator: nn.Module) -> Inpainter:
        return Inpainter(generator, self.conditioner, self.cfg.model.feather, self.sidecar())

    # ----------------------------------------------------------------- steps

    def batches(self, epoch: int, seed: int) -> Iterator[dict]:
        rng = torch.Generator().manual_seed(seed)                       # batch order and mask seeds
        rng_device = torch.Generator(self.device).manual_seed(seed + 1)  # augmentation
        bs = self.cfg.train.batch_size
        # Whole permutations (never a short batch), or a data mix's parts by their shares.
        order = epoch_order(self.train_faces, self.steps_per_epoch * bs, rng).to(self.device)
        for step in range(self.steps_per_epoch):
            index = order[step * bs:(step + 1) * bs]
            full = self.train_faces.images[index].unsqueeze(1).float().div_(255)
            if self.augment is not None:
                full = self.augment(full, generator=rng_device).clamp_(0, 1)
            occluded, hole = self.occlusion(full, seed=int(torch.randint(0, 2 ** 31 - 1, (1,), generator=rng)))
            if self.train_faces.holes is not None:
                occluded, hole = self._own_holes(full, occluded, hole, index, rng)
            with autocast(self.device, self.cfg.train.precision):
                cond = conditioning(self.reader, occluded, self.cfg.model.conditioning_features)
            yield {"full": full, "occluded": occluded, "hole": hole, "labels": self.train_faces.labels[index],
                   "cond": cond, "progress": (epoch * self.steps_per_epoch + step) / (self.cfg.train.epochs *
                                                                                    self.steps_per_epoch)}

    def _own_holes(self, full: torch.Tensor, occluded: torch.Tensor, hole: torch.Tensor, index: torch.Tensor,
                   rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Faces that carry a hole of their own (`Faces.holes`: a mask painted on their photo) are cut by it
        with probability OWN_HOLE_SHARE, in place of the drawn hole. Their hole is where the mask lay before
        augmentation, so it shifts a little against the face, as a real mask sits differently each time."""
        own = self.train_faces.holes[index].unsqueeze(1).to(full.dtype)
        coin = torch.rand(len(index), generator=rng).to(full.device) < OWN_HOLE_SHARE
        pick = (coin & (own.flatten(1).amax(1) > 0)).view(-1, 1, 1, 1)
        return torch.where(pick, full * (1 - own), occluded), torch.where(pick, own, hole)

    def step(self, batch: dict) -> Iterator[tuple[str, torch.Tensor, dict]]:
        with autocast(self.device, self.cfg.train.precision):
            raw = self.models["generator"](batch["occluded"], batch["hole"], batch["cond"])
        stitched = stitch(raw.float(), batch["occluded"], batch["hole"], self.cfg.model.feather)
        if self.D is not None:
            yield ("discriminator", *self.discriminator_loss(batch, stitched))
        yield ("generator", *self.generator_loss(batch, raw, stitched))

    def discriminator_loss(self, batch: dict, stitched: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """D learns real (true face) vs fake (stitched reconstruction), both given the visible half."""
        self.D.requires_grad_(True)
        labels = batch["labels"] if self.D.num_classes else None
        with autocast(self.device, self.cfg.train.precision):
            real = self.D(batch["occluded"], batch["hole"], batch["full"], labels)
            fake = self.D(batch["occluded"], batch["hole"], stitched.detach(), labels)
        loss = discriminator_adversarial_loss(real, fake, self.cfg.loss.adversarial_kind)
        return loss, {"d_loss": loss.detach(), "d_real": real.detach().float().mean(),
                      "d_fake": fake.detach().float().mean()}

    def generator_loss(self, batch: dict, raw: torch.Tensor, stitched: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Weighted sum of the configured terms on the raw output (L1) and the stitched face (the rest)."""
        lc = self.cfg.loss
        full, hole = batch["full"], batch["hole"]
        loss = masked_l1(raw.float(), full, hole, lc.hole_l1, lc.valid_l1)
        metrics = {"l1": loss.detach()}
        if self.D is not None:
            self.D.requires_grad_(False)  # the generator's step leaves no gradients in D
            labels = batch["labels"] if self.D.num_classes else None
            with autocast(self.device, self.cfg.train.precision):
                adv = generator_adversarial_loss(self.D(batch["occluded"], hole, stitched, labels), lc.adversarial_kind)
            loss, metrics["adv"] = loss + lc.adversarial * adv, adv.detach()
        if self.perceptual is not None:
            perc = self.perceptual(stitched.float(), full, hole)
            loss, metrics["perc"] = loss + lc.perceptual * perc, perc.detach()
        if self.expression is not None:
            with autocast(self.device, self.cfg.train.precision):
                expr = self.expression(stitched, full, batch["labels"])
            # 0 -> 1 over the first `expression_warmup` of training: the guide's gradients only once the
            # generator draws faces, so they sharpen a mouth instead of seeding textures.
            ramp = min(1.0, batch["progress"] / lc.expression_warmup) if lc.expression_warmup > 0 else 1.0
            loss, metrics["expr"] = loss + lc.expression * ramp * expr, expr.detach()
        metrics["loss"] = loss.detach()
        return loss, metrics

    # ----------------------------------------------------------------- validation and checkpoints

    def validate(self, generator: nn.Module, precise: bool = False) -> dict[str, float]:
        selector = (lambda x: predict_proba(self.selector, x)) if self.selector is not None else None
        return self.score(self.inpainter(generator), precise, selector)

    def score(self, inpainter: Inpainter, precise: bool, selector=None) -> dict[str, float]:
        """Val metrics of an inpainter; `precise` in fp32 (else bf16 where native), `selector` read too."""
        metrics = evaluate_inpainter(inpainter, self.val_faces.float_images(), self.val_faces.labels, self.occlusion,
                                     judge=selector, precision="fp32" if precise else "auto")
        if "accuracy" in metrics:
            metrics["selector_accuracy"] = metrics.pop("accuracy")
            metrics["selector_macro_f1"] = metrics.pop("macro_f1")
            metrics.pop("judge_report", None)
        return metrics

    def sidecar(self, metrics: dict | None = None, epochs: int | None = None) -> dict[str, Any]:
        """Everything `load_inpainter` and the pipelines need to know about this generator."""
        cfg = self.cfg
        return {
            "kind": "inpainter", "arch": cfg.model.arch, "arch_args": self.g_args,
            "classes": list(CLASSES), "occlusion": self.occlusion.to_dict(), "occlusion_text": str(self.occlusion),
            "stitch": {"feather": cfg.model.feather},
            "guide": self.guide_info, "conditioning": self.conditioning_info, "selector": self.selector_info,
            "data_source": cfg.data.describe(), "data_fingerprint": self.fingerprint, "seed": cfg.train.seed,
            "loss": to_dict(cfg.loss), "selection": {"metric": cfg.train.select, "split": "val"},
            "epochs_trained": epochs, "metrics": metrics or {}, "init": self.init,
        }

    def save_best(self, path: Path, generator: nn.Module, record: dict) -> None:
        selection = {k: record[k] for k in ("epoch", "score", "metric")}
        inpainter = Inpainter(generator, self.conditioner, self.cfg.model.feather)
        save_inpainter(path, inpainter, self.sidecar({"val": record["val"], "selection": selection}, record["epoch"]),
                       half=self.cfg.train.half, embed_conditioner=self.cfg.model.embed_conditioner)

    def samples(self, out: Path, epoch: int) -> None:
        """A PNG grid every `sample_every` epochs and after the last: occluded | reconstruction | original."""
        if epoch % self.cfg.sample_every == 0 or epoch == self.cfg.train.epochs:
            generator = self.models["generator"]
            write_samples(out / "samples" / f"epoch_{epoch:03d}.png", self.inpainter(generator), self.val_faces,
                          self.occlusion)


def build_trainer(cfg: InpaintConfig, out_dir: str | Path, faces: Faces | None = None,
                  on_epoch_end: Callable[[int, dict], None] | None = None) -> Trainer:
    """The task and its trainer for a config (`faces` spares loading the config's source; `on_epoch_end(epoch,
    record)` is called after each epoch, for live logging)."""
    device = pick_device(cfg.device)
    seed_everything(cfg.train.seed)
    faces = faces if faces is not None else cfg.data.load()
    task = InpaintTask(cfg, faces, device)
    return Trainer(task, cfg.train, cfg.train.select, minimize=SELECT_METRICS[cfg.train.select], out=out_dir,
                   config=to_dict(cfg), what=f"inpainter {cfg.model.arch}", device=device, on_epoch_end=on_epoch_end)


def train_inpainter(cfg: InpaintConfig, out_dir: str | Path, resume: bool = False, faces: Faces | None = None,
                    stop_after: int | None = None, on_epoch_end: Callable[[int, dict], None] | None = None) -> dict:
    """Train from a config; returns the run's summary (also in OUT/metrics.json)."""
    with run_folder(out_dir):  # held from the first check of the folder to the last file written
        trainer = build_trainer(cfg, out_dir, faces, on_epoch_end)
        history = trainer.fit(resume=resume, stop_after=stop_after)
        return finish(trainer.task, Path(out_dir), history) if is_main() else {"best": history["best"]}


def finish(task: InpaintTask, out: Path, history: dict) -> dict:
    """Re-evaluate `best` as it was saved (fp16 if shipped) in fp32, and record it in its sidecar."""
    best = load_inpainter(out / "best", task.device)
    val = task.score(best, precise=True, selector=(lambda x: predict_proba(task.selector, x))
                     if task.selector is not None else None)
    update_sidecar(out / "best", {"epochs_trained": history["epochs_run"], "metrics": {  # the weights just evaluated
        "val": val, "selection": history["best"], "precision": "fp32 inference on the saved weights"}})
    last = history["epochs"][-1] if history["epochs"] else {}
    summary = {"name": task.cfg.name, "arch": task.cfg.model.arch, "run": str(out), "best_epoch": history["best_epoch"],
               "selection": history["best"], "val": val, "epochs": history["epochs_run"],
               "train_seconds_per_epoch": last.get("train_seconds"),
               "train_images_per_s": last.get("train_images_per_s"),
               "guide": task.guide_info, "conditioning": task.conditioning_info, "selector": task.selector_info}
    write_json(out / "metrics.json", summary)
    log.info(f"[inpainter {task.cfg.model.arch}] done: best epoch {summary['best_epoch']}, val hole PSNR "
             f"{val['psnr_hole']:.2f} dB, SSIM {val['ssim_hole']:.3f} -> {out / 'best'}")
    return summary


__all__ = ["InpaintTask", "build_trainer", "train_inpainter"]
