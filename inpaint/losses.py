"""Inpainting losses: plain functions and modules; the trainer picks them from typed config fields.

* `masked_l1` — L1 with the hole weighted more than the visible rest;
* `generator_adversarial_loss` / `discriminator_adversarial_loss` — LSGAN or hinge;
* `PerceptualLoss` — LPIPS (AlexNet) when its weights are in the local torch cache, otherwise the
  classifier-free fallback `GradientSSIMLoss` (multi-scale image-gradient L1 + (1 - SSIM) on the hole);
* `ExpressionLoss` — expression consistency read by a frozen *guide* classifier: `ce`, `kl` or
  `feature`.

Why the perceptual fallback does not use the guide's conv features: the perceptual term is there to
keep the hole looking like a face *without* a classifier in the loop. Feature matching in the guide
would put a second copy of the guide's gradients into the loss (the very gradients that learn to
fool it), and the loss ablation could no longer tell the two terms apart. Gradient matching fights
the blur of L1 (a blurry average mouth has weak gradients where the real mouth has strong ones) and
SSIM rewards local structure and contrast; both are cheap and need no download.

Images are float [N, 1, H, W] in [0, 1]; `hole` is 0/1 of the same shape, 1 = hidden.
"""

from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from unveil.metrics.image import ssim

log = logging.getLogger(__name__)

ADVERSARIAL_KINDS = ("lsgan", "hinge")
PERCEPTUAL_KINDS = ("auto", "lpips", "gradient_ssim")
EXPRESSION_KINDS = ("ce", "kl", "feature")


# --------------------------------------------------------------------------- reconstruction


def masked_l1(pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor,
              hole_weight: float = 6.0, valid_weight: float = 1.0) -> torch.Tensor:
    """Mean of `|pred - target|` weighted `hole_weight` inside the hole and `valid_weight` outside.

    The visible term (on the raw generator output, before stitching) teaches the network to carry
    the visible face through, which keeps the seam consistent; the hole term is what matters.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); hole = torch.ones_like(x)
        >>> float(masked_l1(x + 0.5, x, hole, hole_weight=2.0))
        1.0
    """
    hole = hole.to(pred.dtype)
    weight = hole * hole_weight + (1 - hole) * valid_weight
    return ((pred - target).abs() * weight).mean()


# --------------------------------------------------------------------------- adversarial


def generator_adversarial_loss(fake_logits: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """The generator's side: LSGAN (Mao et al. 2017) `(D(fake) - 1)^2`, hinge `-D(fake)`."""
    fake_logits = fake_logits.float()
    if kind == "lsgan":
        return ((fake_logits - 1) ** 2).mean()
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; valid: {', '.join(ADVERSARIAL_KINDS)}")


def discriminator_adversarial_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                                   kind: str = "lsgan") -> torch.Tensor:
    """The discriminator's side: LSGAN `(D(real) - 1)^2 + D(fake)^2` (halved), or hinge."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    if kind == "lsgan":
        return 0.5 * (((real_logits - 1) ** 2).mean() + (fake_logits ** 2).mean())
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; valid: {', '.join(ADVERSARIAL_KINDS)}")


# --------------------------------------------------------------------------- gradients


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along x and y, zero-padded to the input size."""
    dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return dx, dy


class GradientSSIMLoss(nn.Module):
    """Classifier-free perceptual fallback: multi-scale gradient L1 plus (1 - SSIM), on the hole.

    Gradients are compared at full, 1/2 and 1/4 resolution (the edges of a mouth and its broader
    shading), inside the hole; SSIM over the windows centred in the hole. The gradient part is
    scaled by 4 so that both parts have a similar size at the start of training.
    """

    kind = "gradient_ssim"

    def __init__(self, scales: int = 3):
        super().__init__()
        self.scales = scales

    def forward(self, pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        pred, target, hole = pred.float(), target.float(), hole.float()
        structure = (1 - ssim(pred, target, hole)).mean()
        grad = pred.new_zeros(())
        for s in range(self.scales):
            if s:
                pred, target, hole = (F.avg_pool2d(t, 2) for t in (pred, target, hole))
            region = (hole > 0).float()
            for dp, dt in zip(image_gradients(pred), image_gradients(target)):
                grad = grad + ((dp - dt).abs() * region).sum() / region.sum().clamp_min(1)
        return 4 * grad / self.scales + structure

    def extra_repr(self) -> str:
        return f"scales={self.scales}"


class _LPIPSLoss(nn.Module):
    kind = "lpips"

    def __init__(self):
        super().__init__()
        from unveil.metrics.image import LPIPS

        self.lpips = LPIPS()

    def forward(self, pred, target, hole):
        return self.lpips(pred, target).mean()


def PerceptualLoss(kind: str = "auto") -> nn.Module:  # named as the module it builds
    """LPIPS if `kind` is "lpips", or "auto" and LPIPS can run offline; otherwise `gradient_ssim`.

    With "auto" and no LPIPS, one line on stderr says why and what is used instead. The returned
    module has `.kind` ("lpips" or "gradient_ssim") and is called as `loss(pred, target, hole)` on
    the stitched reconstruction and the true face.
    """
    if kind not in PERCEPTUAL_KINDS:
        raise ValueError(f"unknown perceptual loss {kind!r}; valid: {', '.join(PERCEPTUAL_KINDS)}")
    if kind in ("auto", "lpips"):
        from unveil.metrics.image import lpips_available

        ok, why = lpips_available()
        if ok:
            return _LPIPSLoss()
        if kind == "lpips":
            raise RuntimeError(f"perceptual loss 'lpips' asked for, but {why}")
        log.info(f"perceptual loss: LPIPS unavailable ({why.split(';')[0]}); using the gradient+SSIM fallback")
    return GradientSSIMLoss()


# --------------------------------------------------------------------------- expression consistency


class ExpressionLoss(nn.Module):
    """Expression consistency read by a frozen guide classifier.

    Modes:
        ce: cross-entropy of the guide on the stitched reconstruction against the true label.
        kl: KL(guide(full face) || guide(reconstruction)) at temperature `temperature` (times T^2),
            which pulls towards the guide's whole belief, not only its top class.
        feature: mean squared distance between the guide's normalised embeddings (pre-logits) and
            last conv maps of the reconstruction and the true face.

    The guide is put in eval mode and frozen here; gradients flow only into the image. Never judge
    a generator with its guide: use a classifier trained independently (other seed, other arch).

    Shape:
        stitched, full: [N, 1, H, W]; labels: [N] -> scalar.
    """

    def __init__(self, guide: nn.Module, kind: str = "ce", temperature: float = 1.0):
        super().__init__()
        if kind not in EXPRESSION_KINDS:
            raise ValueError(f"unknown expression loss {kind!r}; valid: {', '.join(EXPRESSION_KINDS)}")
        if kind == "feature" and not (hasattr(guide, "forward_features") and hasattr(guide, "forward_head")):
            raise ValueError("expression loss 'feature' needs a guide with forward_features/forward_head")
        self.guide = guide.eval().requires_grad_(False)
        self.kind, self.temperature = kind, float(temperature)

    def train(self, mode: bool = True) -> "ExpressionLoss":
        super().train(mode)
        self.guide.eval()  # frozen: batch-norm statistics and dropout never change
        return self

    def forward(self, stitched: torch.Tensor, full: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "ce":
            return F.cross_entropy(self.guide(stitched).float(), labels)
        if self.kind == "kl":
            t = self.temperature
            with torch.no_grad():
                target = F.log_softmax(self.guide(full).float() / t, 1)
            pred = F.log_softmax(self.guide(stitched).float() / t, 1)
            return F.kl_div(pred, target, log_target=True, reduction="batchmean") * t * t
        fs, ff = self.guide.forward_features(stitched), None
        with torch.no_grad():
            ff = self.guide.forward_features(full)
            ef = self.guide.forward_head(ff, pre_logits=True)
        es = self.guide.forward_head(fs, pre_logits=True)
        return _normalised_mse(fs, ff) + _normalised_mse(es, ef)


def _normalised_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MSE between per-sample L2-normalised feature vectors (scale-free across layers)."""
    a, b = a.float().flatten(1), b.float().flatten(1)
    return (F.normalize(a, dim=1) - F.normalize(b, dim=1)).pow(2).sum(1).mean()


__all__ = ["ADVERSARIAL_KINDS", "PERCEPTUAL_KINDS", "EXPRESSION_KINDS", "masked_l1",
           "generator_adversarial_loss", "discriminator_adversarial_loss", "image_gradients", "GradientSSIMLoss",
           "PerceptualLoss", "ExpressionLoss"]
