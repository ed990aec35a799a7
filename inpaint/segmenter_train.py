"""Training and scoring the mask segmenter: the stage's `Task` for the one training loop.

    unveil train-segmenter --config configs/segmenter_fer.yaml
    unveil eval-segmenter segmenter --data ../shared/data/fer2013 --split test

Every batch puts freshly drawn synthetic masks (`unveil.occlusion.face_mask`: every style, colour,
texture and placement, with extra placement jitter) on the augmented faces, leaves a fraction bare,
and stretches each face to 0..255 as `unveil predict` stretches an aligned photo crop, mask included.
With a `photos` section, a share of every batch comes from aligned photo crops instead
(`inpaint.segmenter_data`: real masked and bare faces, masks painted on photos, pixel-labelled masks),
and every face, FER2013 or photo, is made to look taken from a photo (`unveil.augment.PhotoLike`).
The loss is binary cross-entropy plus soft Dice over the labelled pixels, plus, for a segmenter with
a presence head, binary cross-entropy of "wears a mask". The val score is the mean IoU of the masked
FER2013 faces (`iou`), or with photos (`holes`) the mean of that, the photo crops' IoU, the share of
real masked faces found and the share of real bare faces not flagged, and with a posed set the share of
its bare faces (every head angle) not flagged and of its painted masks and occluders found.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from unveil.checkpoint import checkpoint_paths
from unveil.config import check_args, check_choice, from_dict, load_config, to_dict
from unveil.data import Faces
from unveil.distributed import shard_index, world
from unveil.errors import UnveilError
from unveil.augment import PhotoLike
from unveil.occluders import paint_occluder
from unveil.occlusion import MASK_STYLES, face_mask
from unveil.runtime import autocast, pick_device, prepare_model, seed_everything
from unveil.shipped import resolve_checkpoint
from unveil.trainer import AugmentConfig, ExperimentConfig, OptimConfig, Trainer, TrainConfig, init_weights

from .segmenter import SEGMENTERS, hole_iou, load_segmenter, save_segmenter
from .segmenter_data import HoleExamples, PhotosConfig, photo_examples

log = logging.getLogger(__name__)

VAL_SEED = 0


@dataclass
class MasksConfig:
    styles: list[str] = field(default_factory=lambda: list(MASK_STYLES))
    jitter: float = 1.5          # placement jitter of face_mask (1: its default range)
    bare: float = 0.2            # fraction of faces shown without a mask (their hole is empty)
    occluders: float = 0.0       # fraction of the covered faces behind a hand, tissue, scarf or phone instead

    def __post_init__(self):
        for style in self.styles:
            check_choice("masks.styles", style, MASK_STYLES)
        if not self.styles or self.jitter < 0 or not 0 <= self.bare < 1 or not 0 <= self.occluders <= 1:
            raise ValueError("masks needs at least one style, jitter >= 0, 0 <= bare < 1 and 0 <= occluders <= 1")


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
    photos: PhotosConfig = field(default_factory=PhotosConfig)

    def __post_init__(self):
        super().__post_init__()
        check_choice("train.select", self.train.select, ("iou", "holes"))
        if self.train.select == "holes" and not self.photos.used:
            raise ValueError("train.select: holes needs a photos section (masked_set or pixel_set)")


def load_segmenter_config(path: str | Path, overrides: list[str] | None = None) -> SegmenterConfig:
    return load_config(SegmenterConfig, path, overrides)


def masked(images: torch.Tensor, masks: MasksConfig, seed: int, degrade: PhotoLike | None = None,
           generator: torch.Generator | None = None, share: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Faces wearing synthetic masks (a `bare` fraction without), a `share` of them made photo-like by
    `degrade` when given, stretched per image to 0..1.

    Shape:
        images: [N, 1, H, W] in [0, 1] -> (faces, hole) both [N, 1, H, W].
    """
    faces, hole = face_mask(images, masks.styles, seed=seed, jitter=masks.jitter)
    if masks.occluders > 0:
        covered, behind = paint_occluder(images, seed=seed + 1)
        other = torch.rand(len(images), generator=torch.Generator().manual_seed(seed + 2)) < masks.occluders
        other = other.to(images.device).view(-1, 1, 1, 1)
        faces, hole = torch.where(other, covered, faces), torch.where(other, behind, hole)
    bare = (torch.rand(len(images), generator=torch.Generator().manual_seed(seed)) < masks.bare)
    bare = bare.to(images.device).view(-1, 1, 1, 1)
    faces, hole = torch.where(bare, images, faces), torch.where(bare, torch.zeros_like(hole), hole)
    if degrade is not None:
        pick = torch.rand(len(faces), device=faces.device, generator=generator) < share
        faces = torch.where(pick.view(-1, 1, 1, 1), degrade(faces, generator), faces)
    return stretch(faces), hole


def stretch(faces: torch.Tensor) -> torch.Tensor:
    """Each face min-max stretched to 0..1, as every aligned crop is."""
    lo, hi = faces.amin((2, 3), keepdim=True), faces.amax((2, 3), keepdim=True)
    return (faces - lo) / (hi - lo).clamp_min(1e-6)


def segmentation_loss(logits: torch.Tensor, presence: torch.Tensor | None, target: torch.Tensor,
                      weight: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice over the labelled pixels (`weight` 1), plus the presence head's
    binary cross-entropy when there is one.

    Shape:
        logits, target, weight: [N, 1, H, W]; presence, masked: [N].
    """
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="sum") / weight.sum().clamp_min(1)
    p = logits.sigmoid() * weight
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + (target * weight).sum() + 1)
    if presence is None:
        return bce + dice
    return bce + dice + F.binary_cross_entropy_with_logits(presence.float(), masked.float())


def score(predicted: torch.Tensor, hole: torch.Tensor) -> dict[str, float]:
    """Mean IoU over the masked faces, and the share of pixels wrongly marked on the bare ones."""
    has_mask = hole.flatten(1).amax(1) > 0
    iou = hole_iou(predicted, hole)[has_mask]
    false = predicted[~has_mask].mean() if (~has_mask).any() else predicted.new_zeros(())
    return {"iou": float(iou.mean()) if len(iou) else float("nan"), "bare_marked": float(false),
            "masked_faces": int(has_mask.sum()), "bare_faces": int((~has_mask).sum())}


def evaluate_segmenter(name_or_path: str, faces: Faces, seed: int, device: torch.device, precision: str = "auto",
                       checkpoints: str | Path | None = None) -> dict:
    """`unveil eval-segmenter`: the segmenter's `score` on `faces` wearing synthetic masks drawn from `seed`
    as its training drew them (the sidecar's `masks`), a bare fraction left without."""
    segmenter = load_segmenter(name_or_path, device, checkpoints)
    sidecar = checkpoint_paths(resolve_checkpoint(name_or_path, checkpoints))[1]
    masks = from_dict(MasksConfig, segmenter.meta.get("masks"), where=f"{sidecar}: masks")  # typed, keys named
    images, hole = masked(faces.float_images().to(device), masks, seed)
    return {"masks": segmenter.meta.get("masks"), **score(segmenter.predict(images, precision=precision), hole)}


class SegmenterTask:
    """See `unveil.trainer.Task`. A batch is (faces, target, weight, masked): [N, 1, H, W] x 3 and [N]."""

    selected = "segmenter"

    def __init__(self, cfg: SegmenterConfig, faces: Faces, device: torch.device):
        self.cfg, self.device = cfg, device
        cfg.data.check_bare("train-segmenter")
        train, val, _ = cfg.data.splits(faces, cfg.train.seed)
        if world()[1] > 1 and not train.sharded:
            train = train.select(shard_index(len(train)))  # this rank's shard
        if len(train) < cfg.train.batch_size or len(val) == 0:
            raise UnveilError(f"{cfg.data.source}: {len(train)} training / {len(val)} val faces is too few")
        self.images = train.images.to(device)
        self.val_faces, self.val_hole = masked(val.float_images().to(device), cfg.masks, VAL_SEED)
        self.photos = self.val_photos = self.degrade = None
        if cfg.photos.used:
            self.photos = _to(photo_examples(cfg.photos, "train"), device)
            self.val_photos = _to(photo_examples(cfg.photos, "val"), device)
            self.degrade = PhotoLike(motion=cfg.photos.motion)
        self.steps_per_epoch = cfg.train.steps_per_epoch or len(train) // cfg.train.batch_size
        model = SEGMENTERS.create(cfg.model.arch, **cfg.model.args)
        init = init_weights(model, cfg.init, "segmenter", cfg.model.arch) if cfg.init else None
        model = prepare_model(model, device)
        self.models, self.optim = {"segmenter": model}, {"segmenter": ([model], cfg.train.optim)}
        self.augment = cfg.train.augment.build()
        self.meta = {"arch": cfg.model.arch, "arch_args": cfg.model.args, "data_source": faces.source,
                     "data_fingerprint": faces.fingerprint, "masks": to_dict(cfg.masks), "seed": cfg.train.seed,
                     "init": init}
        if cfg.photos.used:
            self.meta["photos"] = {**to_dict(cfg.photos), "train_examples": len(self.photos)}

    def batches(self, epoch: int, seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
        gen = torch.Generator(self.device).manual_seed(seed)
        bs = self.cfg.train.batch_size
        n_photo = round(bs * self.cfg.photos.share) if self.photos is not None else 0
        n, n_fer = len(self.images), bs - n_photo
        order = torch.cat([torch.randperm(n, device=self.device, generator=gen)
                           for _ in range(-(-self.steps_per_epoch * n_fer // n))])
        for step in range(self.steps_per_epoch):
            faces = self.images[order[step * n_fer:(step + 1) * n_fer]].unsqueeze(1).float().div_(255)
            if self.augment is not None:
                faces = self.augment(faces, gen)
            faces, hole = masked(faces, self.cfg.masks, seed * 100_003 + step, self.degrade, gen,
                                 self.cfg.photos.degrade)
            batch = (faces, hole, torch.ones_like(hole), hole.flatten(1).amax(1) > 0)
            if n_photo:
                batch = tuple(torch.cat([a, b]) for a, b in zip(batch, self._photo_batch(n_photo, gen)))
            yield batch

    def _photo_batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        """n photo examples, augmented: the same geometry for the face and its labels, then photo-like."""
        pick = torch.randint(len(self.photos), (n,), device=self.device, generator=gen)
        photos = self.photos
        stack = torch.stack([photos.images[pick], photos.target[pick] * 255, photos.weight[pick] * 255], 1)
        stack = stack.float().div_(255)
        if self.augment is not None:
            stack = self.augment(stack, gen)
        faces = stretch(self.degrade(stack[:, :1], gen))
        return faces, (stack[:, 1:2] > 0.5).float(), (stack[:, 2:3] > 0.5).float(), self.photos.masked[pick]

    def step(self, batch: tuple[torch.Tensor, ...]) -> Iterator[tuple[str, torch.Tensor, dict]]:
        faces, target, weight, wears = batch
        with autocast(self.device, self.cfg.train.precision):
            logits, presence = self.models["segmenter"](faces.contiguous(memory_format=torch.channels_last))
        loss = segmentation_loss(logits, presence, target, weight, wears)
        yield "segmenter", loss, {"loss": loss.detach()}

    def validate(self, model: nn.Module) -> dict[str, float]:
        result = score(model.predict(self.val_faces), self.val_hole)
        if self.val_photos is not None:
            result.update(photo_score(model, self.val_photos))
            result["holes"] = holes_score(result)
        return result

    def save_best(self, path: Path, model: nn.Module, record: dict) -> None:
        save_segmenter(path, model, {**self.meta, "best_epoch": record["epoch"], "metrics": {"val": record["val"]}},
                       half=self.cfg.train.half)


def photo_score(model: nn.Module, examples: HoleExamples) -> dict[str, float]:
    """On aligned photo crops: the share of real masked faces found and of real bare faces flagged, the
    mean IoU on the crops with exact labels (painted and pixel-labelled masks), and with a posed set the
    share of its bare faces (every head angle) flagged and of its painted masks and occluders found."""
    hole, found = model.find(examples.images.unsqueeze(1).float().div(255))
    kind = lambda *names: torch.tensor([k in names for k in examples.kinds], device=found.device)  # noqa: E731
    real, exact = kind("real"), ~kind("real", "posed-bare")
    iou = hole_iou(hole[exact], examples.target[exact].unsqueeze(1).float())
    scores = {"found": _share(found[real & examples.masked]), "false": _share(found[real & ~examples.masked]),
              "photo_iou": float(iou.mean()) if len(iou) else float("nan")}
    if kind("posed-bare").any():
        scores.update(posed_false=_share(found[kind("posed-bare")]), posed_found=_share(found[kind("posed")]),
                      occluder_found=_share(found[kind("occluder")]))
    return scores


def holes_score(result: dict[str, float]) -> float:
    """`train.select: holes`: the mean of what the hole model must get right, each in [0, 1] (nan left out)."""
    parts = [result["iou"], result["photo_iou"], result["found"], 1 - result["false"]]
    if "posed_false" in result:
        parts += [1 - result["posed_false"], result["posed_found"], result["occluder_found"]]
    parts = [v for v in parts if v == v]
    return sum(parts) / len(parts)


def _share(flags: torch.Tensor) -> float:
    return float(flags.float().mean()) if len(flags) else float("nan")


def _to(examples: HoleExamples, device: torch.device) -> HoleExamples:
    return HoleExamples(examples.images.to(device), examples.target.to(device), examples.weight.to(device),
                        examples.masked.to(device), examples.kinds)


def train_segmenter(cfg: SegmenterConfig, out_dir: str | Path, resume: bool = False,
                    faces: Faces | None = None, on_epoch_end: Callable[[int, dict], None] | None = None) -> dict:
    """Train from a config; returns the history (the run folder holds best.*, last.*, history.json).
    `on_epoch_end(epoch, record)` is called after each epoch (live logging)."""
    device = pick_device(cfg.device)
    seed_everything(cfg.train.seed)
    faces = faces if faces is not None else cfg.data.load()
    task = SegmenterTask(cfg, faces, device)
    select = cfg.train.select or "iou"
    trainer = Trainer(task, cfg.train, select, out=out_dir, config=to_dict(cfg), what="train-segmenter", device=device,
                      on_epoch_end=on_epoch_end)
    history = trainer.fit(resume=resume)
    log.info(f"[train-segmenter] done: best epoch {history['best_epoch']}, val {select} {history['best_score']:.4f} "
             f"-> {Path(out_dir) / 'best'}")
    return history
