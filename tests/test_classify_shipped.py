"""The shipped FER2013 classifiers in checkpoints/: they load, fit the size budget, and (where ../shared
holds FER2013) reproduce on the CPU the PrivateTest accuracy their training run wrote into the sidecar.
Skipped cleanly while no classifier has been shipped yet."""

import json
from pathlib import Path

import pytest
import torch

from unveil.classify import load_classifier
from unveil.classify.condition import Condition
from unveil.classify.evaluate import evaluate
from unveil.checkpoint import checkpoint_paths
from unveil.classes import CLASSES
from unveil.shipped import CHECKPOINT_BUDGET

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED = sorted(p.with_suffix("") for p in CHECKPOINTS.glob("classifier_*.json"))
FULL = CHECKPOINTS / "classifier_full"
TOLERANCE = 0.005  # half a point: bf16 on the GPU vs fp32 on the CPU, fp16 storage


def shipped_or_skip(path: Path) -> tuple[torch.nn.Module, dict]:
    if not checkpoint_paths(path)[1].exists():
        pytest.skip(f"{path.name} has not been shipped yet (train it with configs/classifier_fer_*.yaml)")
    return load_classifier(path)


def test_full_classifier_loads():
    model, meta = shipped_or_skip(FULL)
    assert meta["kind"] == "classifier" and meta["classes"] == list(CLASSES)
    assert meta["condition"] == "full"
    assert model(torch.rand(2, 1, 48, 48)).shape == (2, len(CLASSES))


@pytest.mark.parametrize("path", SHIPPED or [FULL], ids=lambda p: p.name)
def test_shipped_sidecar_is_complete(path):
    _, meta = shipped_or_skip(path)
    for key in ("arch", "arch_args", "classes", "condition", "occlusion", "data_fingerprint", "seed", "epochs",
                "seconds_per_epoch", "metrics"):
        assert key in meta, f"{path.name}: sidecar lacks {key}"
    assert checkpoint_paths(path)[0].stat().st_size < 10e6, "store shipped weights in fp16"


def test_shipped_checkpoints_fit_the_budget():
    total = sum(f.stat().st_size for f in CHECKPOINTS.glob("*") if f.is_file())
    assert total < CHECKPOINT_BUDGET, f"checkpoints/ holds {total / 1e6:.1f} MB of {CHECKPOINT_BUDGET / 1e6:.0f} MB"


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED or [FULL], ids=lambda p: p.name)
def test_private_test_accuracy_matches_the_sidecar(path, fer_dir):
    model, meta = shipped_or_skip(path)
    recorded = (meta.get("metrics") or {}).get("test", {}).get("accuracy")
    if recorded is None:
        pytest.skip(f"{path.name}: the sidecar has no test accuracy (unveil eval-classifier ... --record)")
    from unveil.data import load_faces

    faces = load_faces(str(fer_dir), "test")
    assert len(faces) == 3589  # PrivateTest
    condition = Condition.build(meta.get("occlusion"), meta.get("inpainter"))
    accuracy = evaluate(model, faces, condition, n_boot=0)["accuracy"]
    assert accuracy == pytest.approx(recorded, abs=TOLERANCE), json.dumps(meta["metrics"]["test"])
