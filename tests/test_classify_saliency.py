"""Grad-CAM: shape and range, and it finds the mouth when only the mouth tells the classes apart."""

import numpy as np
import pytest
import torch

from unveil.classify import create_classifier
from unveil.classify.config import default_train
from unveil.classify.saliency import colormap, grad_cam, overlay
from unveil.classify.train import fit_classifier
from unveil.data import Faces

MOUTH_ROWS, MOUTH_COLS = slice(31, 39), slice(14, 34)


pytestmark = pytest.mark.usefixtures("one_thread")


def mouth_only_faces(n=640, seed=0):
    """Noisy faces whose upper part is random; class 0 has a dark mouth bar, class 1 a bright one."""
    g = torch.Generator().manual_seed(seed)
    images = 0.5 + 0.15 * torch.randn(n, 48, 48, generator=g)
    eyes = torch.rand(n, 1, generator=g)  # eye brightness carries no class information
    images[:, 14:20, 10:20] = eyes.view(n, 1, 1)
    images[:, 14:20, 28:38] = eyes.view(n, 1, 1)
    labels = torch.arange(n) % 2
    images[:, MOUTH_ROWS, MOUTH_COLS] = torch.where(labels == 1, 0.9, 0.1).view(n, 1, 1)
    uint8 = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return Faces(uint8, labels, torch.zeros(n, dtype=torch.int8), [str(i) for i in range(n)])


def test_grad_cam_shape_and_range():
    torch.manual_seed(0)
    model = create_classifier("tiny_cnn").train()
    images = torch.rand(5, 1, 48, 48)
    heat = grad_cam(model, images)
    assert heat.shape == images.shape and heat.dtype == torch.float32
    assert heat.min() >= 0 and heat.max() <= 1
    assert model.training  # mode restored
    fixed = grad_cam(model, images, target=3)
    per_image = grad_cam(model, images, target=torch.tensor([3, 3, 3, 3, 3]))
    assert torch.allclose(fixed, per_image)
    assert not any(p.grad is not None for p in model.parameters())  # no gradients left behind


def test_grad_cam_finds_the_mouth():
    faces = mouth_only_faces()
    torch.manual_seed(0)
    model = create_classifier("tiny_cnn", num_classes=2)
    cfg = default_train()
    cfg.epochs, cfg.batch_size = 3, 64
    cfg.optim.name, cfg.optim.lr = "adamw", 4e-3
    cfg.augment.enabled = False
    model, _ = fit_classifier(model, faces, None, cfg, progress=False)

    test = mouth_only_faces(64, seed=1)
    images = test.float_images()
    assert (model(images).argmax(1) == test.labels).float().mean() > 0.95
    heat = grad_cam(model, images, target=test.labels)
    mouth = heat[:, 0, MOUTH_ROWS, MOUTH_COLS].mean()
    upper = heat[:, 0, :24].mean()
    assert heat.flatten(1).std(1).min() > 0  # not uniform
    assert mouth > 2 * upper


def test_overlay_and_colormap():
    assert colormap(np.array([0.0, 1.0])).tolist() == [[0, 0, 128], [128, 0, 0]]
    images = torch.rand(3, 1, 48, 48)
    rgb = overlay(images, torch.zeros_like(images), alpha=0.0)
    assert rgb.shape == (3, 48, 48, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], (images[:, 0] * 255).round().numpy().astype(np.uint8))
