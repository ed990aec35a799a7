"""Classifier losses: class-weighted cross-entropy or focal loss with label smoothing, and FGSM
adversarial examples for robust classifiers (guides)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from unveil.classes import NUM_CLASSES
from unveil.runtime import autocast

from .config import LossConfig


def class_weights(labels: torch.Tensor, num_classes: int = NUM_CLASSES, mode: str = "balanced") -> torch.Tensor:
    """Per-class loss weights from training frequencies: `balanced` is n / (M n_c) over the M classes
    present (scikit-learn's `compute_class_weight("balanced")`), `sqrt` its square root (milder),
    `none` all ones. Classes with no faces get weight 1 (they never occur in the loss anyway).

    Shape:
        labels: int [N] -> float32 [C] on the labels' device.
    """
    if mode == "none":
        return torch.ones(num_classes, device=labels.device)
    counts = torch.bincount(labels.long(), minlength=num_classes).float()
    present = int((counts > 0).sum())
    weights = torch.where(counts > 0, len(labels) / (present * counts.clamp_min(1)), torch.ones_like(counts))
    return weights.sqrt() if mode == "sqrt" else weights


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None,
                        label_smoothing: float = 0.0, focal_gamma: float = 0.0) -> torch.Tensor:
    """Cross-entropy, or focal loss (Lin et al. 2017) when `focal_gamma` > 0, with class weights and
    label smoothing; a weighted mean over the batch like `F.cross_entropy(weight=...)`. The targets are
    class indices or soft labels (crowd votes, rows summing to 1); a one-hot soft label gives the index's
    loss (smoothing under class weights aside, which PyTorch weights per class), and a face's weight is its
    soft label's mean class weight.

    Shape:
        logits: [N, C]; targets: int [N] or float [N, C] -> scalar.
    """
    logits = logits.float()
    if focal_gamma <= 0 and not targets.is_floating_point():
        return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    log_p = logits.log_softmax(1)
    num_classes = logits.shape[1]
    target = targets.float() if targets.is_floating_point() else F.one_hot(targets, num_classes).float()
    smoothed = target * (1 - label_smoothing) + label_smoothing / num_classes
    focus = (1 - log_p.exp()).pow(focal_gamma) if focal_gamma > 0 else 1.0
    per_face = -(smoothed * focus * log_p).sum(1)
    w = target @ weight if weight is not None else torch.ones_like(per_face)
    return (w * per_face).sum() / w.sum()


def make_criterion(cfg: LossConfig, train_labels: torch.Tensor,
                   num_classes: int = NUM_CLASSES) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    weight = class_weights(train_labels, num_classes, cfg.class_weights) if cfg.class_weights != "none" else None
    gamma = cfg.focal_gamma if cfg.name == "focal" else 0.0
    return lambda logits, y: classification_loss(logits, y, weight, cfg.label_smoothing, gamma)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 KL(softmax(teacher / T) || softmax(student / T)), the batch mean (Hinton et al. 2015): the
    T^2 keeps its gradients on the scale of the labels' loss whatever the temperature.

    Shape:
        student, teacher: logits [N, C] -> scalar.
    """
    t = temperature
    return F.kl_div((student.float() / t).log_softmax(1), (teacher.float() / t).log_softmax(1),
                    reduction="batchmean", log_target=True) * t * t


def fgsm_perturb(net: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion, eps: float,
                 generator: torch.Generator | None = None, precision: str = "auto") -> torch.Tensor:
    """One FGSM step of 1.25 eps from a uniform random start, projected onto the L-inf ball of radius
    `eps` around `x` and onto [0, 1] ("fast is better than free", Wong et al. 2020): adversarial
    training at twice the cost of plain training instead of PGD's many steps."""
    start = torch.rand(x.shape, device=x.device, generator=generator).mul_(2 * eps).sub_(eps)
    delta = start.requires_grad_(True)
    with autocast(x.device, precision):
        loss = criterion(net((x + delta).contiguous(memory_format=torch.channels_last)), y)
    grad, = torch.autograd.grad(loss, delta)
    delta = (delta.detach() + 1.25 * eps * grad.sign()).clamp_(-eps, eps)
    return (x + delta).clamp_(0, 1)


def mix_batch(x: torch.Tensor, y: torch.Tensor, cfg: LossConfig) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix of a batch with a shuffled copy of itself (`cfg.mixup`, `cfg.cutmix`: Beta
    alphas; 0 off). Returns the mixed faces, the partner labels and the weight `lam` of the original
    labels (1.0 when the batch is left alone). Draws from torch's global generator, which the trainer
    seeds per epoch, so a resumed run mixes the same way.

    Shape:
        x: [N, 1, H, W]; y: [N] -> ([N, 1, H, W], [N], float).
    """
    kinds = [k for k, alpha in (("mixup", cfg.mixup), ("cutmix", cfg.cutmix)) if alpha > 0]
    if not kinds or float(torch.rand(())) >= cfg.mix_prob:
        return x, y, 1.0
    kind = kinds[int(torch.randint(len(kinds), ()))]
    alpha = cfg.mixup if kind == "mixup" else cfg.cutmix
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(y)).to(y.device)
    if kind == "mixup":
        return lam * x + (1 - lam) * x[perm], y[perm], lam
    h, w = x.shape[-2:]
    ch, cw = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
    top, left = int(torch.randint(h - ch + 1, ())), int(torch.randint(w - cw + 1, ()))
    x = x.clone()
    x[..., top:top + ch, left:left + cw] = x[perm][..., top:top + ch, left:left + cw]
    return x, y[perm], 1 - ch * cw / (h * w)  # the label weight is the share of pixels actually kept
