"""Classifier families (one-channel 48x48 input in [0, 1]), registered by name.

Every model exposes `forward_features` (the last convolutional map, for Grad-CAM), `forward_head`
(with `pre_logits=True` giving the embedding used for feature matching) and `forward` (logits).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from unveil.checkpoint import load_checkpoint, load_model, save_checkpoint
from unveil.classes import CLASSES, NUM_CLASSES
from unveil.errors import UnveilError
from unveil.registry import Registry
from unveil.shipped import resolve_checkpoint

CLASSIFIERS: Registry[nn.Module] = Registry("classifier")


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def conv_stage(cin: int, cout: int, convs: int, dropout: float) -> nn.Sequential:
    """`convs` conv-BN-ReLU layers, then 2x2 max-pooling and dropout."""
    layers = [conv_bn(cin if i == 0 else cout, cout) for i in range(convs)]
    return nn.Sequential(*layers, nn.MaxPool2d(2), nn.Dropout(dropout))


class ConvClassifier(nn.Module):
    """Stacked conv stages and a dense head; the family behind both registered classifiers.

    Args:
        widths: filters per stage; each stage halves the resolution.
        convs_per_stage: conv layers per stage.
        hidden: widths of the dense layers before the output.
        dropout: after each conv stage (`conv_dropout`) and each dense layer (`dropout`).

    Shape:
        input [N, 1, 48, 48] in [0, 1] -> logits [N, num_classes].
    """

    def __init__(self, widths: tuple[int, ...], convs_per_stage: int, hidden: tuple[int, ...],
                 dropout: float = 0.5, conv_dropout: float = 0.25, num_classes: int = NUM_CLASSES,
                 image_size: int = 48):
        super().__init__()
        chans = (1, *widths)
        self.stages = nn.Sequential(*[conv_stage(chans[i], chans[i + 1], convs_per_stage, conv_dropout)
                                      for i in range(len(widths))])
        side = image_size // 2 ** len(widths)
        dims = (widths[-1] * side * side, *hidden)
        dense = []
        for i in range(len(hidden)):
            dense += [nn.Linear(dims[i], dims[i + 1]), nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True),
                      nn.Dropout(dropout)]
        self.embed = nn.Sequential(nn.Flatten(), *dense)
        self.fc = nn.Linear(dims[-1], num_classes)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # Centre the [0, 1] input here so every checkpoint carries its own normalisation.
        return self.stages((x - 0.5) / 0.25)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        embedding = self.embed(features)
        return embedding if pre_logits else self.fc(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# Default sizes keep every shipped checkpoint together under `unveil.shipped.CHECKPOINT_BUDGET` (fp16):
# shared_cnn 0.88 M parameters (1.8 MB), vgg 3.5 M (7 MB).

@CLASSIFIERS.register("shared_cnn")
def shared_cnn(hidden: tuple[int, ...] = (128,), dropout: float = 0.5, conv_dropout: float = 0.25,
               **kwargs) -> ConvClassifier:
    """The reconstruct-then-classify study's CNN: stages of 32, 64, 128 filters and a dense head."""
    return ConvClassifier((32, 64, 128), 2, tuple(hidden), dropout, conv_dropout, **kwargs)


@CLASSIFIERS.register("vgg")
def vgg(widths: tuple[int, ...] = (48, 96, 192, 384), hidden: tuple[int, ...] = (256,),
        dropout: float = 0.5, conv_dropout: float = 0.1, **kwargs) -> ConvClassifier:
    """VGG-style FER2013 network: 4 double-conv stages with BN, after Khaled & Ravikumar 2021
    (73.28 % single-network FER2013 accuracy); `widths=(64, 128, 256, 512)` is their full width."""
    return ConvClassifier(tuple(widths), 2, tuple(hidden), dropout, conv_dropout, **kwargs)


@CLASSIFIERS.register("tiny_cnn")
def tiny_cnn(dropout: float = 0.1, conv_dropout: float = 0.0, **kwargs) -> ConvClassifier:
    """A few-thousand-parameter CNN for tests and the CPU quickstart."""
    return ConvClassifier((8, 16, 32), 1, (32,), dropout, conv_dropout, **kwargs)


def create_classifier(name: str, **kwargs) -> nn.Module:
    return CLASSIFIERS.create(name, **kwargs)


def save_classifier(path: str | Path, model: nn.Module, meta: dict, half: bool = False) -> Path:
    """Checkpoint a classifier; `meta` must hold `arch` and `arch_args` so it can be rebuilt."""
    if "arch" not in meta:
        raise ValueError("classifier checkpoint metadata needs 'arch' (and 'arch_args')")
    meta = {"kind": "classifier", "classes": list(CLASSES), "arch_args": {}, **meta}
    return save_checkpoint(path, model.state_dict(), meta, half=half)


def open_classifier(name_or_path: str | Path, device: str | torch.device = "cpu",
                    checkpoints: str | Path | None = None) -> tuple[nn.Module, dict, Path]:
    """What a user names: a classifier checkpoint path, or a shipped name such as `classifier_full`
    (looked up in `checkpoints`, default the package's). Returns (the model in eval mode, its sidecar,
    the checkpoint's resolved path); fold it with `unveil.runtime.fused_for_inference` to score with it."""
    path = resolve_checkpoint(name_or_path, checkpoints)
    model, meta = load_classifier(path, device)
    return model, meta, path


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a classifier from its sidecar and load its weights; returns (model in eval mode, meta)."""
    tensors, meta = load_checkpoint(path, device, kind="classifier")
    model = load_model(lambda: create_classifier(meta["arch"], **meta.get("arch_args") or {}), tensors, path)
    outputs = getattr(model, "num_classes", len(CLASSES))
    if outputs != len(meta["classes"]):  # the sidecar's class list (canonical or a map's groups) names the outputs
        raise UnveilError(f"{path}: the model predicts {outputs} classes but the sidecar names {len(meta['classes'])} "
                          f"({', '.join(meta['classes'])})")
    return model.to(device).eval(), meta
