"""Classifier experiment configs: one YAML file in `configs/` -> these dataclasses (unknown keys raise).

    cfg = load_classifier_config("configs/classifier_fer_full.yaml", ["train.epochs=3"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from unveil.config import load_config
from unveil.errors import UnveilError
from unveil.occlusion import Occlusion

from .models import CLASSIFIERS

CONDITIONS = ("full", "occluded", "reconstructed")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "constant")
LOSSES = ("ce", "focal")
CLASS_WEIGHTS = ("none", "balanced", "sqrt")
SELECT_METRICS = ("accuracy", "macro_f1")


def _check(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


@dataclass
class ModelConfig:
    arch: str = "shared_cnn"
    args: dict = field(default_factory=dict)  # keyword arguments of the registered builder

    def __post_init__(self):
        _check("model.arch", self.arch, CLASSIFIERS.names())


@dataclass
class DataConfig:
    source: str = "synthetic"   # anything unveil.data.load_faces reads
    normalize: bool = True      # per-image min-max stretch, as for every model Unveil trains
    limit: int = 0              # train on the first N training faces only (0: all), for quick runs
    report_test: bool = True    # evaluate the selected model once on the test split, if it has faces


@dataclass
class ConditionConfig:
    """What the classifier sees: `full` faces, `occluded` ones, or faces `reconstructed` by an inpainter."""

    name: str = "full"
    occlusion: str = "lower-half"   # unveil.occlusion text form; used by occluded and reconstructed
    inpainter: str | None = None    # inpainter checkpoint, for reconstructed

    def __post_init__(self):
        _check("condition.name", self.name, CONDITIONS)
        try:
            Occlusion.parse(self.occlusion)
        except ValueError as exc:
            raise ValueError(f"condition.occlusion: {exc}") from None
        if self.name == "reconstructed" and not self.inpainter:
            raise ValueError("condition reconstructed needs condition.inpainter: PATH (an inpainter checkpoint)")


@dataclass
class AugmentConfig:
    """unveil.augment.Augment's settings; applied on the device before the condition's occlusion."""

    enabled: bool = True
    flip: bool = True
    degrees: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.1
    erase: float = 0.0

    def __post_init__(self):
        self.scale = tuple(float(s) for s in self.scale)
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"augment.scale must be [low, high] with 0 < low <= high, got {list(self.scale)}")


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.01              # the peak learning rate
    momentum: float = 0.9         # SGD momentum / AdamW beta1 (one-cycle cycles it down to 0.85)
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    warmup: float = 0.2           # fraction of all steps spent warming up (one-cycle and cosine)
    grad_clip: float = 0.0        # max gradient norm; 0 disables

    def __post_init__(self):
        _check("optim.name", self.name, OPTIMIZERS)
        _check("optim.schedule", self.schedule, SCHEDULES)
        if self.lr <= 0 or not 0 <= self.warmup < 1:
            raise ValueError(f"need lr > 0 and 0 <= warmup < 1 (got lr={self.lr}, warmup={self.warmup})")


@dataclass
class LossConfig:
    name: str = "ce"
    class_weights: str = "none"   # from training frequencies: balanced = N / (C n_c); sqrt = its square root
    label_smoothing: float = 0.0
    focal_gamma: float = 2.0

    def __post_init__(self):
        _check("loss.name", self.name, LOSSES)
        _check("loss.class_weights", self.class_weights, CLASS_WEIGHTS)
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"loss.label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass
class TrainConfig:
    """How to fit: everything `fit_classifier` needs besides the model, the data and the condition."""

    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    ema: float = 0.0              # EMA decay of the weights (e.g. 0.999); 0 disables. Validated and shipped if on
    patience: int = 0             # early stopping after this many epochs without a better val score; 0 disables
    select: str = "accuracy"      # val metric that selects the best epoch
    eval_batch_size: int = 0      # validation batch; 0: what suits the device (unveil.runtime)
    compile: bool = False         # torch.compile the training forward (CUDA)
    half: bool = False            # store best.* in fp16 (shipping); last.* is always fp32
    # Adversarial training (FGSM with a random start, Wong et al. 2020) within this L-inf radius in
    # [0, 1] pixel units; 0 disables. A robust guide's gradients point at faces, not textures.
    adversarial_eps: float = 0.0
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        _check("train.select", self.select, SELECT_METRICS)
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 0 or not 0 <= self.ema < 1:
            raise ValueError(f"need epochs >= 1, batch_size >= 1, patience >= 0 and 0 <= ema < 1 (got epochs="
                             f"{self.epochs}, batch_size={self.batch_size}, patience={self.patience}, ema={self.ema})")
        if not 0 <= self.adversarial_eps < 0.5:
            raise ValueError(f"train.adversarial_eps must be in [0, 0.5), got {self.adversarial_eps}")


@dataclass
class ClassifierConfig:
    """One classifier experiment: model, data, condition, training, and where the run folder goes."""

    name: str = "classifier"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    condition: ConditionConfig = field(default_factory=ConditionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "auto"
    out: str | None = None        # run folder; default runs/classifier/<name>

    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / "classifier" / self.name


def load_classifier_config(path: str | Path, overrides: list[str] | None = None) -> ClassifierConfig:
    """Read a classifier YAML config with `key.sub=value` overrides; errors name the file and the key."""
    cfg = load_config(ClassifierConfig, path, overrides)
    for part in ("model", "data", "condition", "train"):  # a nested key given as a scalar
        if isinstance(getattr(cfg, part), (str, int, float, list)):
            raise UnveilError(f"{path}: '{part}' must be a mapping")
    for part in ("optim", "loss", "augment"):
        if isinstance(getattr(cfg.train, part), (str, int, float, list)):
            raise UnveilError(f"{path}: 'train.{part}' must be a mapping")
    return cfg
