"""Generators, discriminator, stitching, classical baselines and the Inpainter wrapper (fast, CPU)."""

import pytest
import torch

from unveil.inpaint import (BASELINES, DISCRIMINATORS, GENERATORS, create_discriminator, create_generator,
                     create_inpainter, load_inpainter, save_inpainter, stitch)
from unveil.errors import UnveilError
from unveil.occlusion import LowerHalf, Occlusion
from unveil.shipped import CHECKPOINT_BUDGET

OCCLUSIONS = ["lower-half", "mask"]


def faces(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 48, 48, generator=g)


@pytest.mark.parametrize("occlusion", OCCLUSIONS)
@pytest.mark.parametrize("cond_dim", [0, 7])
@pytest.mark.parametrize("name", GENERATORS.names())
def test_generator_forward_backward(name, cond_dim, occlusion):
    torch.manual_seed(0)
    G = create_generator(name, cond_dim=cond_dim)
    occluded, hole = Occlusion.parse(occlusion)(faces())
    cond = torch.softmax(torch.randn(2, 7), 1) if cond_dim else None
    out = G(occluded, hole, cond)
    assert out.shape == (2, 1, 48, 48)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    out.mean().backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"


@pytest.mark.parametrize("name", GENERATORS.names())
def test_generator_budget(name):
    """Three generators + three classifiers fit the checkpoint budget in fp16: about 1.5 M parameters each at
    most, the three generators within a third of it."""
    n = sum(p.numel() for p in create_generator(name).parameters())
    assert 0.3e6 < n <= 1.5e6 and 3 * 2 * n < CHECKPOINT_BUDGET / 3, n


@pytest.mark.parametrize("name", GENERATORS.names())
def test_generator_cannot_see_hidden_pixels(name):
    G = create_generator(name).eval()
    a, b = faces(seed=1), faces(seed=2)
    _, hole = LowerHalf()(a)
    mixed = torch.where(hole.bool(), b, a)  # same visible half, different hidden half
    assert torch.equal(G(a, hole), G(mixed, hole))


def test_conditioning_is_checked():
    G = create_generator("unet", cond_dim=7)
    occluded, hole = LowerHalf()(faces())
    with pytest.raises(ValueError, match="cond"):
        G(occluded, hole)
    with pytest.raises(ValueError, match="cond_dim=0"):
        create_generator("unet")(occluded, hole, torch.zeros(2, 7))


@pytest.mark.parametrize("occlusion", OCCLUSIONS)
@pytest.mark.parametrize("name", DISCRIMINATORS.names())
def test_discriminator_forward_backward(name, occlusion):
    D = create_discriminator(name)
    full = faces()
    occluded, hole = Occlusion.parse(occlusion)(full)
    candidate = full.clone().requires_grad_(True)
    logits = D(occluded, hole, candidate)
    assert logits.shape == (2, 1, 10, 10) and torch.isfinite(logits).all()
    logits.mean().backward()
    assert candidate.grad is not None and candidate.grad.abs().sum() > 0
    assert all(p.grad is not None for p in D.parameters())


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnveilError, match="ra_unet"):
        create_generator("unett")
    with pytest.raises(UnveilError, match="patchgan"):
        create_discriminator("nope")
    with pytest.raises(UnveilError, match="telea"):
        create_inpainter("nope")


# --------------------------------------------------------------------------- stitching


@pytest.mark.parametrize("feather", [0, 1, 3])
@pytest.mark.parametrize("occlusion", OCCLUSIONS)
def test_stitch_keeps_visible_pixels_exact(occlusion, feather):
    full = faces(4)
    occluded, hole = Occlusion.parse(occlusion)(full)
    generated = faces(4, seed=9)
    for visible in (occluded, full):
        out = stitch(generated, visible, hole, feather=feather)
        keep = hole == 0
        assert torch.equal(out[keep], full[keep])       # bit for bit
        if feather == 0:
            assert torch.equal(out[~keep], generated[~keep])


def test_stitch_feather_blends_only_near_the_seam():
    full = faces(1)
    occluded, hole = LowerHalf()(full)
    generated = torch.ones_like(full)
    out = stitch(generated, occluded, hole, feather=2)
    assert torch.equal(out[..., 27:, :], generated[..., 27:, :])   # beyond 2 px from the seam: untouched
    assert not torch.equal(out[..., 24:26, :], generated[..., 24:26, :])


# --------------------------------------------------------------------------- classical baselines


@pytest.mark.parametrize("occlusion", OCCLUSIONS)
@pytest.mark.parametrize("name", BASELINES.names())
def test_baselines_run(name, occlusion):
    full = faces(3)
    occluded, hole = Occlusion.parse(occlusion)(full)
    inpainter = create_inpainter(name)
    if name == "mean_face":
        with pytest.raises(RuntimeError, match="fit"):
            inpainter.reconstruct(occluded, hole)
        inpainter.fit((faces(10, seed=5)[:, 0] * 255).to(torch.uint8))
    out = inpainter.reconstruct(occluded, hole)
    assert out.shape == full.shape and torch.isfinite(out).all()
    assert torch.equal(out[hole == 0], full[hole == 0])


def test_opencv_baselines_fill_smoothly():
    """On a smooth face-like gradient, Telea and Navier-Stokes beat the zero fill by far."""
    ramp = torch.linspace(0.2, 0.8, 48).view(1, 1, 1, 48).expand(2, 1, 48, 48).contiguous()
    occluded, hole = LowerHalf()(ramp)
    for name in ("telea", "navier_stokes"):
        out = create_inpainter(name).reconstruct(occluded, hole)
        assert (out - ramp).abs()[hole.bool()].mean() < 0.1


def test_mean_face_checkpoint_round_trip(tmp_path):
    train = faces(20, seed=3)
    inpainter = create_inpainter("mean_face").fit(train)
    save_inpainter(tmp_path / "mean", inpainter, {"arch": "mean_face", "arch_args": {}})
    loaded = load_inpainter(tmp_path / "mean")
    occluded, hole = LowerHalf()(faces())
    assert torch.equal(loaded.reconstruct(occluded, hole), inpainter.reconstruct(occluded, hole))
    assert torch.allclose(loaded.generator.mean, train.mean(0, keepdim=True))


def test_generator_checkpoint_round_trip_identical(tmp_path):
    torch.manual_seed(0)
    G = create_generator("ra_unet", widths=(8, 16, 32)).eval()
    from unveil.inpaint import Inpainter

    inpainter = Inpainter(G)
    save_inpainter(tmp_path / "g", inpainter, {"arch": "ra_unet", "arch_args": {"widths": [8, 16, 32]}})
    loaded = load_inpainter(tmp_path / "g")
    occluded, hole = Occlusion.parse("mask")(faces(3))
    assert torch.equal(loaded.reconstruct(occluded, hole), inpainter.reconstruct(occluded, hole))


def test_load_inpainter_rejects_other_checkpoints(tmp_path):
    from unveil.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "c", {"w": torch.zeros(1)}, {"kind": "classifier", "arch": "tiny_cnn"})
    with pytest.raises(UnveilError, match="not an inpainter"):
        load_inpainter(tmp_path / "c")


def test_ssim_matches_scikit_image():
    """The one SSIM (metric and loss alike) is scikit-image's Gaussian-window SSIM."""
    from skimage.metrics import structural_similarity

    from unveil.metrics.image import ssim

    gen = torch.Generator().manual_seed(0)
    a = torch.rand(3, 1, 48, 48, generator=gen)
    b = (a + 0.2 * torch.randn(a.shape, generator=gen)).clamp(0, 1)
    want = [structural_similarity(a[i, 0].numpy(), b[i, 0].numpy(), gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=1.0) for i in range(3)]
    assert torch.allclose(ssim(a, b), torch.tensor(want, dtype=torch.float32), atol=1e-5)
    assert torch.allclose(ssim(a, a), torch.ones(3))


def test_class_conditional_patchgan_reads_the_label():
    from unveil.inpaint import create_discriminator

    torch.manual_seed(0)
    d = create_discriminator("patchgan", ndf=8, num_classes=7)
    x = torch.rand(4, 1, 48, 48)
    hole = torch.zeros_like(x)
    hole[..., 24:, :] = 1
    a, b = d(x, hole, x, torch.zeros(4, dtype=torch.long)), d(x, hole, x, torch.full((4,), 3))
    assert a.shape == (4, 1, 10, 10) and not torch.allclose(a, b)  # the same face scored for another class
    with pytest.raises(ValueError, match="labels"):
        d(x, hole, x)
