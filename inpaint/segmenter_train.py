"""Training and scoring the mask segmenter: the stage's `Task` for the one training loop.

    unveil train-segmenter --config configs/segmenter_fer.yaml
    unveil eval-segmenter segmenter --data ../shared/data/fer2013 --split test

Every batch puts freshly drawn synthetic masks (`unveil.occlusion.face_mask`: every style, colour,
texture and placement, with extra placement jitter) on the augmented faces, leaves a fraction bare,
and stretches each face to 0..255 as `unveil predict` stretches an aligned photo crop, mask included.
The loss is binary cross-entropy plus soft Dice; the val score is the mean IoU of the masked faces.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from unveil.config import check_args, check_choice, load_config, to_dict
from unveil.data import Faces, load_faces
from unveil.distributed import shard_index, world
from unveil.errors import UnveilError
from unveil.occlusion import MASK_STYLES, face_mask
from unveil.runtime import autocast, pick_device, prepare_model, seed_everything
from unveil.trainer import AugmentConfig, ExperimentConfig, OptimConfig, Trainer, TrainConfig

from .segmenter import SEGMENTERS, hole_iou, save_segmenter

VAL_SEED = 0


@dataclass
class MasksConfig:
    styles: list[str] = field(default_factory=lambda: list(MASK_STYLES))
    jitter: float = 1.5          # placement jitter of face_mask (1: its default range)
    bare: float = 0.2            # fraction of faces shown without a mask (their hole is empty)

    def __post_init__(self):
        for style in self.styles:
            check_choice("masks.styles", style, MASK_STYLES)
        if not self.styles or self.jitter < 0 or not 0 <= self.bare < 1:
            raise ValueError("masks needs at least one style, jitter >= 0 and 0 <= bare < 1")


@dataclass
class SegmenterModelConfig:
    arch: str = "mask_unet"
    args: dict = field(default_factory=dict)

    def __post_init__(self):
        check_choice("model.arch", self.arch, SEGMENTERS.names())
        check_args("model.args", SEGMENTERS, self.arch, self.args)


def default_train() -> TrainConfig:
    return TrainConfig(epochs=8, batch_size=128, select="iou",
                       optim=OptimConfig(name="adamw", lr=2e-3, weight_decay=1e-4, schedule="cosine", warmup=0.05),
                       augment=AugmentConfig(degrees=10.0, scale=(0.9, 1.1), shift=0.06))


@dataclass
class SegmenterConfig(ExperimentConfig):
    name: str = "segmenter"
    train: TrainConfig = field(default_factory=default_train)
    model: SegmenterModelConfig = field(default_factory=SegmenterModelConfig)
    masks: MasksConfig = field(default_factory=MasksConfig)

    def __post_init__(self):
        super().__post_init__()
        check_choice("train.select", self.train.select, ("iou",))


def load_segmenter_config(path: str | Path, overrides: list[str] | None = None) -> SegmenterConfig:
    return load_config(SegmenterConfig, path, overrides)


def masked(images: torch.Tensor, masks: MasksConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Faces wearing synthetic masks (a `bare` fraction without), stretched per image to 0..1.

    Shape:
        images: [N, 1, H, W] in [0, 1] -> (faces, hole) both [N, 1, H, W].
    """
    faces, hole = face_mask(images, masks.styles, seed=seed, jitter=masks.jitter)
    bare = (torch.rand(len(images), generator=torch.Generator().manual_seed(seed)) < masks.bare)
    bare = bare.to(images.device).view(-1, 1, 1, 1)
    faces, hole = torch.where(bare, images, faces), torch.where(bare, torch.zeros_like(hole), hole)
    lo, hi = faces.amin((2, 3), keepdim=True), faces.amax((2, 3), keepdim=True)
    return (faces - lo) / (hi - lo).clamp_min(1e-6), hole


def segmentation_loss(logits: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice over the batch (defined when some faces are bare)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), hole)
    p = logits.float().sigmoid()
    dice = 1 - (2 * (p * hole).sum() + 1) / (p.sum() + hole.sum() + 1)
    return bce + dice


def score(predicted: torch.Tensor, hole: torch.Tensor) -> dict[str, float]:
    """Mean IoU over the masked faces, and the share of pixels wrongly marked on the bare ones."""
    has_mask = hole.flatten(1).amax(1) > 0
    iou = hole_iou(predicted, hole)[has_mask]
    false = predicted[~has_mask].mean() if (~has_mask).any() else predicted.new_zeros(())
    return {"iou": float(iou.mean()) if len(iou) else float("nan"), "bare_marked": float(false),
            "masked_faces": int(has_mask.sum()), "bare_faces": int((~has_mask).sum())}


class SegmenterTask:
    """See `unveil.trainer.Task`."""

    selected = "segmenter"

    def __init__(self, cfg: SegmenterConfig, faces: Faces, device: torch.device):
        self.cfg, self.device = cfg, device
        train, val, _ = cfg.data.splits(faces, cfg.train.seed)
        if world()[1] > 1 and not train.sharded:
            train = train.select(shard_index(len(train)))  # this rank's shard
        if len(train) < cfg.train.batch_size or len(val) == 0:
            raise UnveilError(f"{cfg.data.source}: {len(train)} training / {len(val)} val faces is too few")
        self.images = train.images.to(device)
        self.val_faces, self.val_hole = masked(val.float_images().to(device), cfg.masks, VAL_SEED)
        self.steps_per_epoch = cfg.train.steps_per_epoch or len(train) // cfg.train.batch_size
        model = prepare_model(SEGMENTERS.create(cfg.model.arch, **cfg.model.args), device)
        self.models, self.optim = {"segmenter": model}, {"segmenter": ([model], cfg.train.optim)}
        self.augment = cfg.train.augment.build()
        self.meta = {"arch": cfg.model.arch, "arch_args": cfg.model.args, "data_source": faces.source,
                     "data_fingerprint": faces.fingerprint, "masks": to_dict(cfg.masks), "seed": cfg.train.seed}

    def batches(self, epoch: int, seed: int) -> Iterator[tuple[torch.Tensor, int]]:
        gen = torch.Generator(self.device).manual_seed(seed)
        n, bs = len(self.images), self.cfg.train.batch_size
        order = torch.cat([torch.randperm(n, device=self.device, generator=gen)
                           for _ in range(-(-self.steps_per_epoch * bs // n))])
        for step in range(self.steps_per_epoch):
            faces = self.images[order[step * bs:(step + 1) * bs]].unsqueeze(1).float().div_(255)
            if self.augment is not None:
                faces = self.augment(faces, gen)
            yield masked(faces, self.cfg.masks, seed * 100_003 + step)

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> Iterator[tuple[str, torch.Tensor, dict]]:
        faces, hole = batch
        with autocast(self.device):
            logits = self.models["segmenter"](faces.contiguous(memory_format=torch.channels_last))
        loss = segmentation_loss(logits, hole)
        yield "segmenter", loss, {"loss": loss.detach()}

    def validate(self, model: nn.Module) -> dict[str, float]:
        return score(model.predict(self.val_faces), self.val_hole)

    def save_best(self, path: Path, model: nn.Module, record: dict) -> None:
        save_segmenter(path, model, {**self.meta, "best_epoch": record["epoch"], "metrics": {"val": record["val"]}},
                       half=self.cfg.train.half)


def train_segmenter(cfg: SegmenterConfig, out_dir: str | Path, resume: bool = False,
                    faces: Faces | None = None) -> dict:
    """Train from a config; returns the history (the run folder holds best.*, last.*, history.json)."""
    device = pick_device(cfg.device)
    seed_everything(cfg.train.seed)
    faces = faces if faces is not None else load_faces(cfg.data.source, normalize=cfg.data.normalize)
    task = SegmenterTask(cfg, faces, device)
    trainer = Trainer(task, cfg.train, "iou", out=out_dir, config=to_dict(cfg), what="train-segmenter", device=device)
    history = trainer.fit(resume=resume)
    print(f"[train-segmenter] done: best epoch {history['best_epoch']}, val IoU {history['best_score']:.4f} "
          f"-> {Path(out_dir) / 'best'}", file=sys.stderr)
    return history
