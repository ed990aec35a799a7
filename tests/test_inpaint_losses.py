"""Inpainting losses: values on hand-made inputs, gradients, the perceptual fallback, the guide's freezing."""

import pytest
import torch

from unveil.classify import create_classifier
from unveil.inpaint.losses import (ExpressionLoss, GradientSSIMLoss, PerceptualLoss, discriminator_adversarial_loss,
                            generator_adversarial_loss, masked_l1)
from unveil.occlusion import LowerHalf


def faces(n=4, seed=0):
    return torch.rand(n, 1, 48, 48, generator=torch.Generator().manual_seed(seed))


def test_masked_l1_weights_the_hole():
    target = torch.zeros(1, 1, 4, 4)
    hole = torch.zeros_like(target)
    hole[..., 2:, :] = 1
    pred = torch.ones_like(target)
    assert float(masked_l1(pred, target, hole, hole_weight=6, valid_weight=1)) == pytest.approx((6 + 1) / 2)
    pred_hole_only = hole.clone()
    assert float(masked_l1(pred_hole_only, target, hole, 6, 1)) == pytest.approx(3.0)


@pytest.mark.parametrize("kind", ["lsgan", "hinge"])
def test_adversarial_losses(kind):
    real, fake = torch.full((2, 1, 10, 10), 1.0), torch.full((2, 1, 10, 10), -1.0)
    # A perfect critic: the discriminator loss is at its minimum, the generator's is high.
    d_best = discriminator_adversarial_loss(real, fake, kind)
    d_worst = discriminator_adversarial_loss(fake, real, kind)
    assert d_best < d_worst
    assert generator_adversarial_loss(real, kind) < generator_adversarial_loss(fake, kind)
    with pytest.raises(ValueError, match="lsgan"):
        generator_adversarial_loss(real, "wgan")


def test_perceptual_fallback_is_announced_and_differentiable(capsys, monkeypatch):
    import unveil.metrics.image as image

    monkeypatch.setattr(image, "lpips_available", lambda: (False, "no weights here; copy them"))
    loss = PerceptualLoss("auto")
    assert loss.kind == "gradient_ssim"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LPIPS unavailable" in err and "gradient+SSIM" in err
    with pytest.raises(RuntimeError, match="no weights"):
        PerceptualLoss("lpips")
    full = faces()
    occluded, hole = LowerHalf()(full)
    pred = occluded.clone().requires_grad_(True)
    value = loss(pred, full, hole)
    value.backward()
    assert value > 0 and pred.grad[hole.bool()].abs().sum() > 0
    assert float(GradientSSIMLoss()(full, full, hole)) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("kind", ["ce", "kl", "feature"])
def test_expression_loss_freezes_the_guide(kind):
    torch.manual_seed(0)
    guide = create_classifier("tiny_cnn")
    guide.train()
    loss = ExpressionLoss(guide, kind, temperature=2.0).train()
    assert not guide.training and not any(p.requires_grad for p in guide.parameters())
    full = faces()
    stitched = (full * 0.5).requires_grad_(True)
    value = loss(stitched, full, torch.tensor([0, 1, 2, 3]))
    value.backward()
    assert torch.isfinite(value) and stitched.grad.abs().sum() > 0
    assert all(p.grad is None for p in guide.parameters())
    if kind != "ce":  # reconstruction == truth -> nothing left to pull
        assert float(loss(full, full, torch.tensor([0, 1, 2, 3]))) == pytest.approx(0.0, abs=1e-5)
