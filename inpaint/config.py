"""Inpainter experiment configs: one YAML file in `configs/` -> these dataclasses, read by the one typed
config loader (`unveil.config`); the sections every stage shares come from `unveil.trainer`.

    cfg = load_inpaint_config("configs/inpaint_fer_unet.yaml", ["train.epochs=3"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from unveil.config import check_args, check_choice, load_config
from unveil.occlusion import Occlusion
from unveil.trainer import AugmentConfig, ExperimentConfig, OptimConfig, TrainConfig

from .discriminators import DISCRIMINATORS
from .generators import GENERATORS
from .losses import ADVERSARIAL_KINDS, EXPRESSION_KINDS, PERCEPTUAL_KINDS

# Selection metrics on the val split, and whether lower is better.
SELECT_METRICS = {"psnr_hole": False, "ssim_hole": False, "l1_hole": True, "selector_accuracy": False}


@dataclass
class ModelConfig:
    arch: str = "unet"
    args: dict = field(default_factory=dict)
    conditioning: str | None = None    # occluded-face classifier checkpoint -> expression conditioning
    conditioning_features: str = "probabilities"   # probabilities | embedding (its pre-logits, normalised)
    embed_conditioner: bool = True     # store its weights in the generator checkpoint (self-contained)
    feather: int = 0                   # stitching seam width (0: hard seam)

    def __post_init__(self):
        check_choice("model.arch", self.arch, GENERATORS.names())
        check_args("model.args", GENERATORS, self.arch, self.args)
        check_choice("model.conditioning_features", self.conditioning_features, ("probabilities", "embedding"))
        if self.feather < 0:
            raise ValueError(f"model.feather must be >= 0, got {self.feather}")


@dataclass
class DiscriminatorConfig:
    arch: str = "patchgan"
    args: dict = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=2e-4, momentum=0.5,
                                                                   warmup=0.025, min_lr_ratio=0.02))

    def __post_init__(self):
        check_choice("discriminator.arch", self.arch, DISCRIMINATORS.names())
        check_args("discriminator.args", DISCRIMINATORS, self.arch, self.args)


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

    def __post_init__(self):
        check_choice("loss.adversarial_kind", self.adversarial_kind, ADVERSARIAL_KINDS)
        check_choice("loss.perceptual_kind", self.perceptual_kind, PERCEPTUAL_KINDS)
        check_choice("loss.expression_kind", self.expression_kind, EXPRESSION_KINDS)
        weights = (self.hole_l1, self.valid_l1, self.adversarial, self.perceptual, self.expression)
        if min(weights) < 0 or not 0 <= self.expression_warmup <= 1 or self.expression_temperature <= 0:
            raise ValueError("loss weights must be >= 0, expression_warmup in [0, 1] and expression_temperature > 0")
        if self.expression > 0 and not self.guide:
            raise ValueError("loss.expression > 0 needs loss.guide (a full-face classifier checkpoint)")
        if self.expression > 0 and self.adversarial <= 0 and self.perceptual <= 0:
            raise ValueError("the expression term must be paired with an adversarial or perceptual term that keeps "
                             "the hole looking like a face (set loss.adversarial or loss.perceptual > 0)")


def default_train() -> TrainConfig:
    """The generators' defaults: AdamW with a warmed-up cosine, selection on the val hole PSNR."""
    return TrainConfig(epochs=30, batch_size=128, select="psnr_hole",
                       optim=OptimConfig(name="adamw", lr=1e-3, momentum=0.9, schedule="cosine",
                                         warmup=0.025, min_lr_ratio=0.02),
                       augment=AugmentConfig(degrees=8.0, scale=(0.92, 1.08), shift=0.04))


@dataclass
class InpaintConfig(ExperimentConfig):
    """One inpainter experiment: the shared sections (name, data, train, device, out), and the
    occlusion it learns to fill, the generator, the discriminator and the losses."""

    name: str = "inpainter"
    train: TrainConfig = field(default_factory=default_train)
    occlusion: str = "lower-half"      # Occlusion text form; masks are redrawn every step
    model: ModelConfig = field(default_factory=ModelConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    selector: str | None = None        # an independent classifier for train.select: selector_accuracy
    sample_every: int = 5              # sample grid PNG every N epochs (and the last one)

    def __post_init__(self):
        super().__post_init__()
        check_choice("train.select", self.train.select, tuple(SELECT_METRICS))
        if self.train.select == "selector_accuracy" and not self.selector:
            raise ValueError("train.select selector_accuracy needs selector: an independent val classifier")
        if self.sample_every < 1:
            raise ValueError(f"sample_every must be >= 1, got {self.sample_every}")
        try:
            Occlusion.parse(self.occlusion, seeded=False)  # masks come from train.seed
        except ValueError as exc:
            raise ValueError(f"occlusion: {exc}") from None


def load_inpaint_config(path: str | Path, overrides: list[str] | None = None) -> InpaintConfig:
    """Read an inpainter YAML config with `key.sub=value` overrides; errors name the file and the key."""
    return load_config(InpaintConfig, path, overrides)
