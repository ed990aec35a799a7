"""The one reading: a fusion of the upper-half reader and the judge on the reconstruction, fitted on
validation faces, never worse than its better input where one input is noise; its sidecar names its inputs."""

from __future__ import annotations

import json

import pytest
import torch

from unveil.classes import NUM_CLASSES
from unveil.classify.fusion import Fusion, OneReading, fit_fusion, load_fusion, save_fusion
from unveil.errors import UnveilError


def _readings(n: int, seed: int, right: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(informative reader probs, pure-noise judge probs, labels): the reader's top class is right on
    about `right` of the faces; the judge knows nothing."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=gen)
    logits = torch.randn(n, NUM_CLASSES, generator=gen)
    knows = torch.rand(n, generator=gen) < right
    logits[knows, labels[knows]] += 3.0
    noise = torch.randn(n, NUM_CLASSES, generator=gen) * 2
    return logits.softmax(1), noise.softmax(1), labels


def _nll(probs, labels):
    return float(torch.nn.functional.nll_loss(probs.clamp_min(1e-6).log(), labels))


def _accuracy(probs, labels):
    return float((probs.argmax(1) == labels).float().mean())


@pytest.mark.parametrize("noisy", ["judge", "reader"])
def test_the_fusion_is_never_worse_than_its_better_input_when_one_input_is_noise(noisy):
    good, noise, labels = _readings(3000, 0, 0.6)
    order = (good, noise) if noisy == "judge" else (noise, good)
    fusion = fit_fusion(*order, labels)
    fitted = fusion(*order)
    assert _nll(fitted, labels) <= _nll(good, labels) + 1e-3            # on the faces it was fitted on
    weight_on_noise = fusion.weights[1 if noisy == "judge" else 0]
    assert abs(float(weight_on_noise)) < 0.1 * abs(float(fusion.weights[0 if noisy == "judge" else 1]))
    good_t, noise_t, labels_t = _readings(3000, 1, 0.6)                  # fresh faces, never fitted on
    order_t = (good_t, noise_t) if noisy == "judge" else (noise_t, good_t)
    assert _accuracy(fusion(*order_t), labels_t) >= _accuracy(good_t, labels_t) - 0.01
    assert _nll(fusion(*order_t), labels_t) <= _nll(good_t, labels_t) + 0.01


def test_two_informative_inputs_fuse_above_either():
    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, NUM_CLASSES, (4000,), generator=gen)
    one_hot = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
    a = (torch.randn(4000, NUM_CLASSES, generator=gen) * 1.5 + one_hot * 1.5).softmax(1)   # independent errors
    b = (torch.randn(4000, NUM_CLASSES, generator=gen) * 1.5 + one_hot * 1.5).softmax(1)
    fusion = fit_fusion(a[:2000], b[:2000], labels[:2000])
    fused = _accuracy(fusion(a[2000:], b[2000:]), labels[2000:])
    assert fused > max(_accuracy(a[2000:], labels[2000:]), _accuracy(b[2000:], labels[2000:])) + 0.03


def test_a_saved_fusion_names_its_inputs_and_loads_back(tmp_path):
    good, noise, labels = _readings(500, 0, 0.6)
    fusion = fit_fusion(good, noise, labels)
    inputs = {k: {"name": k, "weights_sha256": f"{i}" * 64} for i, k in enumerate(("reader", "judge", "inpainter"))}
    save_fusion(tmp_path / "fusion", fusion, {"name": "fusion", "inputs": inputs})
    loaded, meta = load_fusion(tmp_path / "fusion")
    assert torch.allclose(loaded(good, noise), fusion(good, noise))
    sidecar = json.loads((tmp_path / "fusion.json").read_text())
    assert sidecar["kind"] == "fusion" and sidecar["inputs"] == inputs
    with pytest.raises(UnveilError, match="fitted for"):
        save_fusion(tmp_path / "other", fusion, {"inputs": {"reader": inputs["reader"]}})
    calibrated = OneReading(loaded, meta, inputs)
    assert calibrated.calibrated and "pooled by fusion" in calibrated.how
    other = OneReading(loaded, meta, {**inputs, "judge": {"name": "x", "weights_sha256": "f" * 64}})
    assert not other.calibrated and "another judge" in other.how
    assert torch.allclose(other.fusion.weights, torch.tensor([0.5, 0.5]))


def test_a_face_without_a_hole_is_read_by_the_judge_whole():
    reading = OneReading(Fusion(), None, {})
    reader = torch.full((2, NUM_CLASSES), 1 / NUM_CLASSES)
    whole = torch.nn.functional.one_hot(torch.tensor([3, 5]), NUM_CLASSES).float()
    out = reading(reader, reader, whole, torch.tensor([False, True]))
    assert torch.equal(out[0], whole[0]) and torch.allclose(out[1], reader[1])


def test_the_shipped_fusion_names_the_shipped_models_it_was_fitted_for_by_sha256():
    from unveil.checkpoint import read_sidecar, weights_digest
    from unveil.shipped import FUSION, shipped_checkpoint

    meta = read_sidecar(shipped_checkpoint(FUSION), "fusion")
    for role in ("reader", "judge", "inpainter"):
        record = meta["inputs"][role]
        assert record["weights_sha256"] == weights_digest(shipped_checkpoint(record["name"])), role
    assert all(part["split"] == "val" for part in meta["fitted_on"])   # never fitted on a test split


def test_compare_opens_its_report_with_the_one_reading(tmp_path, capsys):
    """compare scores the one reading on the same faces as every condition, first in its table; with
    models the shipped fusion was not fitted for, it says it pools them with equal weights."""
    from unveil.pipelines.cli import main

    assert main(["compare", "--data", "synthetic:n=300,seed=4", "--split", "test", "--inpainters",
                 "inpainter_unet,telea", "--bootstrap", "0", "--no-wandb", "--json", "--out",
                 str(tmp_path / "cmp")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["one_reading"]["inpainter"] == "inpainter_unet"
    assert report["one_reading"]["n"] == report["conditions"]["occluded"]["n"]
    from unveil.checkpoint import read_sidecar
    from unveil.shipped import FUSION, shipped_checkpoint

    fitted_for = read_sidecar(shipped_checkpoint(FUSION))["inputs"]
    same = (fitted_for["judge"]["weights_sha256"] == report["judge"]["weights_sha256"]
            and fitted_for["reader"]["weights_sha256"] == report["one_reading"]["reader"]["weights_sha256"])
    assert ("pooled by fusion" if same else "equal-weight pool") in report["one_reading"]["how"]
    table = (tmp_path / "cmp" / "report.md").read_text()
    assert table.index("| one reading |") < table.index("| occluded |")
