"""The mask segmenter behind `unveil predict --hole auto`: a tiny one learns the synthetic masks on the
CPU, and the shipped one reaches the IoU its sidecar and docs/turned-faces.md report."""

from __future__ import annotations

import json

import pytest
import torch

from unveil.config import from_dict, to_dict
from unveil.inpaint.segmenter import hole_iou, load_segmenter
from unveil.inpaint.segmenter_train import MasksConfig, SegmenterConfig, masked, score, train_segmenter
from unveil.shipped import shipped_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")
README_IOU = 0.949  # docs/turned-faces.md: PrivateTest faces, masks and occluders drawn from seed 1, fp32


def test_masks_come_with_bare_faces_and_a_stretched_range():
    faces = torch.rand(100, 1, 48, 48) * 0.5 + 0.2
    images, hole = masked(faces, MasksConfig(bare=0.3), seed=3)
    bare = hole.flatten(1).amax(1) == 0
    assert 0.15 < bare.float().mean() < 0.45
    assert torch.allclose(images.flatten(1).amin(1), torch.zeros(100), atol=1e-6)
    assert torch.allclose(images.flatten(1).amax(1), torch.ones(100), atol=1e-6)
    assert hole_iou(hole, hole).eq(1).all()


def test_a_tiny_segmenter_learns_the_masks(synthetic_faces, tmp_path):
    cfg = from_dict(SegmenterConfig, {"device": "cpu", "data": {"limit": 640, "val_limit": 128},
                                      "model": {"args": {"widths": [8, 16, 32]}},
                                      "train": {"epochs": 3, "batch_size": 64, "steps_per_epoch": 40,
                                                "optim": {"lr": 4e-3}}})
    history = train_segmenter(cfg, tmp_path / "run", faces=synthetic_faces)
    assert history["best_score"] > 0.8, history["epochs"]
    model = load_segmenter(tmp_path / "run" / "best")
    images, hole = masked(synthetic_faces.split("test").float_images()[:128], cfg.masks, seed=11)
    assert score(model.predict(images), hole)["iou"] > 0.8
    # Fine-tuning from it (`init:`) starts where it ended: at a learning rate too small to move it, it scores as well.
    tuned = from_dict(SegmenterConfig, {**to_dict(cfg), "init": str(tmp_path / "run" / "best"),
                                        "train": {**to_dict(cfg.train), "epochs": 1, "steps_per_epoch": 2,
                                                  "optim": {"lr": 1e-9}}})
    assert train_segmenter(tuned, tmp_path / "tuned", faces=synthetic_faces)["best_score"] > 0.8
    assert len(load_segmenter(tmp_path / "tuned" / "best").meta["init"]["weights_sha256"]) == 64


@pytest.mark.slow
def test_the_shipped_segmenter_reaches_its_readme_iou(fer_dir):
    from unveil.data import load_faces

    path = shipped_checkpoint("segmenter")
    segmenter = load_segmenter(path)
    faces = load_faces(str(fer_dir), "test")
    masks = MasksConfig(**segmenter.meta["masks"])
    images, hole = masked(faces.float_images(), masks, seed=1)
    result = score(segmenter.predict(images, precision="fp32"), hole)
    assert result["iou"] >= README_IOU - 0.0005, result
    assert result["bare_marked"] < 0.005
    recorded = json.loads(path.with_suffix(".json").read_text())["metrics"]["test"]["iou"]
    assert result["iou"] == pytest.approx(recorded, abs=1e-4)
