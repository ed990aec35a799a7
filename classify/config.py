"""Classifier experiment configs: one YAML file in `configs/` -> these dataclasses, read by the one
typed config loader (`unveil.config`); the sections every stage shares come from `unveil.trainer`.

    cfg = load_classifier_config("configs/classifier_fer_full.yaml", ["train.epochs=3"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from unveil.classes import ClassMap, ClassView
from unveil.config import check_args, check_choice, load_config
from unveil.occlusion import Occlusion
from unveil.trainer import AugmentConfig, ExperimentConfig, OptimConfig, TrainConfig

from .models import CLASSIFIERS

CONDITIONS = ("full", "occluded", "reconstructed")
LOSSES = ("ce", "focal")
CLASS_WEIGHTS = ("none", "balanced", "sqrt")
SELECT_METRICS = ("accuracy", "macro_f1")
TEACHER_SEES = ("full", "same")


@dataclass
class ModelConfig:
    arch: str = "shared_cnn"
    args: dict = field(default_factory=dict)  # keyword arguments of the registered builder

    def __post_init__(self):
        check_choice("model.arch", self.arch, CLASSIFIERS.names())
        check_args("model.args", CLASSIFIERS, self.arch, self.args)


@dataclass
class ConditionConfig:
    """What the classifier sees: `full` faces, `occluded` ones, or faces `reconstructed` by an inpainter."""

    name: str = "full"
    occlusion: str = "lower-half"   # unveil.occlusion text form; used by occluded and reconstructed
    inpainter: str | None = None    # inpainter checkpoint, for reconstructed

    def __post_init__(self):
        check_choice("condition.name", self.name, CONDITIONS)
        try:
            Occlusion.parse(self.occlusion, seeded=False)  # masks come from train.seed
        except ValueError as exc:
            raise ValueError(f"condition.occlusion: {exc}") from None
        if self.name == "reconstructed" and not self.inpainter:
            raise ValueError("condition reconstructed needs condition.inpainter: PATH (an inpainter checkpoint)")


@dataclass
class DistillConfig:
    """Knowledge distillation (Hinton et al. 2015): the student also matches a frozen teacher's softened
    probabilities. With `sees: full` the teacher reads the whole face while the student learns under its
    own condition: "privileged" distillation, the full-face judge teaching the upper-half reader."""

    teacher: str | None = None    # a classifier checkpoint (path or shipped name); none: no distillation
    weight: float = 0.5           # loss = (1 - weight) * the labels' loss + weight * T^2 KL(teacher || student)
    temperature: float = 4.0
    sees: str = "full"            # full: the whole face (privileged); same: what the student sees

    def __post_init__(self):
        check_choice("loss.distill.sees", self.sees, TEACHER_SEES)
        if not 0 <= self.weight <= 1 or not self.temperature > 0:
            raise ValueError(f"need 0 <= loss.distill.weight <= 1 and loss.distill.temperature > 0, got "
                             f"{self.weight}, {self.temperature}")


@dataclass
class LossConfig:
    name: str = "ce"
    class_weights: str = "none"   # from training frequencies: balanced = N / (C n_c); sqrt = its square root
    label_smoothing: float = 0.0
    focal_gamma: float = 2.0
    # Adversarial training (FGSM with a random start, Wong et al. 2020) within this L-inf radius in
    # [0, 1] pixel units; 0 disables. A robust guide's gradients point at faces, not textures.
    adversarial_eps: float = 0.0
    # Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019): Beta(alpha, alpha) mixing of two faces and
    # their labels; 0 disables. With both on, each mixed batch uses one of them (half the time each).
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 1.0         # share of batches that are mixed
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self):
        check_choice("loss.name", self.name, LOSSES)
        check_choice("loss.class_weights", self.class_weights, CLASS_WEIGHTS)
        if not 0 <= self.label_smoothing < 1 or self.focal_gamma < 0:
            raise ValueError(f"need 0 <= loss.label_smoothing < 1 and loss.focal_gamma >= 0, got "
                             f"{self.label_smoothing}, {self.focal_gamma}")
        if not 0 <= self.adversarial_eps < 0.5:
            raise ValueError(f"loss.adversarial_eps must be in [0, 0.5), got {self.adversarial_eps}")
        if self.mixup < 0 or self.cutmix < 0 or not 0 <= self.mix_prob <= 1:
            raise ValueError(f"need loss.mixup, loss.cutmix >= 0 and 0 <= loss.mix_prob <= 1 (got {self.mixup}, "
                             f"{self.cutmix}, {self.mix_prob})")


def default_train() -> TrainConfig:
    """The classifier's defaults: SGD with one-cycle, selection on val accuracy."""
    return TrainConfig(epochs=10, batch_size=128, select="accuracy",
                       optim=OptimConfig(name="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4,
                                         schedule="onecycle", warmup=0.2),
                       augment=AugmentConfig())


@dataclass
class ClassifierConfig(ExperimentConfig):
    """One classifier experiment: the shared sections (name, data, train, device, out), and the model,
    the condition it is trained under and its loss."""

    name: str = "classifier"
    train: TrainConfig = field(default_factory=default_train)
    model: ModelConfig = field(default_factory=ModelConfig)
    condition: ConditionConfig = field(default_factory=ConditionConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    report_test: bool = True      # evaluate the selected model once on the test split, if it has faces
    # Train on coarser classes (unveil.classes.ClassMap): none (the 7 canonical ones), valence (negative /
    # neutral / positive), "GROUP=CLASS+CLASS,..." or a mapping {group: [classes]}. Recorded in the sidecar.
    class_map: str | dict | None = None

    def __post_init__(self):
        super().__post_init__()
        parts = [p.label() for p in self.data.mix]
        if self.train.select.startswith("accuracy@"):   # one part of a data mix selects, not the pooled val
            check_choice("train.select's part", self.train.select.removeprefix("accuracy@"), parts)
        else:
            check_choice("train.select", self.train.select, SELECT_METRICS)
        outputs = ClassMap.parse(self.class_map, "class_map")
        wanted = self.model.args.get("num_classes")
        if outputs is not None and wanted is not None and wanted != len(outputs.names):
            raise ValueError(f"model.args.num_classes is {wanted} but class_map {outputs.name} has "
                             f"{len(outputs.names)} groups; leave num_classes out, the map sets it")

    def class_view(self) -> ClassView:
        """The classes this experiment trains on and reports: canonical, or the map's groups."""
        return ClassView(ClassMap.parse(self.class_map, "class_map"))


def load_classifier_config(path: str | Path, overrides: list[str] | None = None) -> ClassifierConfig:
    """Read a classifier YAML config with `key.sub=value` overrides; errors name the file and the key."""
    return load_config(ClassifierConfig, path, overrides)
