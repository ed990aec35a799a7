"""Training at the CPU's limit (bf16 where native) and fine-tuning: `--init` and distillation from a teacher."""

import json
from pathlib import Path

import pytest
import torch

from unveil.classify import create_classifier, load_classifier, save_classifier
from unveil.classify.condition import Condition
from unveil.classify.config import DistillConfig, LossConfig, load_classifier_config
from unveil.classify.evaluate import evaluate
from unveil.classify.losses import distillation_loss
from unveil.classify.train import ClassifierTask, fit_classifier, train_quick
from unveil.errors import UnveilError
from unveil.pipelines.cli import main
from unveil.runtime import native_bf16, resolve_precision
from unveil.trainer import OptimConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_CONFIG = ROOT / "configs" / "classifier_synthetic.yaml"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def teacher(synthetic_faces, tmp_path_factory):
    """A full-face tiny classifier, saved as a checkpoint."""
    path = tmp_path_factory.mktemp("teacher") / "teacher"
    save_classifier(path, train_quick(synthetic_faces, seed=0), {"arch": "tiny_cnn", "arch_args": {}})
    return path


def _short(precision: str = "auto", epochs: int = 4, seed: int = 0) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=64, seed=seed, precision=precision,
                       optim=OptimConfig("adamw", lr=4e-3, weight_decay=1e-4, schedule="onecycle", warmup=0.25))


# --------------------------------------------------------------------------- bf16 on the CPU


def test_training_takes_bf16_by_default_exactly_where_it_is_native(synthetic_faces):
    cpu = torch.device("cpu")
    assert TrainConfig().precision == "auto"
    assert resolve_precision(cpu, "auto") == ("bf16" if native_bf16(cpu) else "fp32")
    seen = []
    model = create_classifier("tiny_cnn")
    model.fc.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    for precision, dtype in (("auto", torch.bfloat16 if native_bf16(cpu) else torch.float32),
                             ("bf16", torch.bfloat16), ("fp32", torch.float32)):
        task = ClassifierTask(model, synthetic_faces.split("train").select(torch.arange(128)), None,
                              _short(precision), LossConfig(), cpu, Condition())
        seen.clear()
        index = torch.arange(64)
        name, loss, _ = next(task.step((index, torch.Generator().manual_seed(0), 0)))
        assert seen == [dtype] and loss.dtype == torch.float32  # the loss itself stays fp32
    with pytest.raises(ValueError, match="train.precision"):
        TrainConfig(precision="fp16")


def test_bf16_training_reaches_the_fp32_result(synthetic_faces):
    """The same short run in bf16 and in fp32 lands within noise of the other (700 faces: SE ~ 2 points)."""
    scored = synthetic_faces.select(torch.nonzero(synthetic_faces.splits > 0).flatten())
    accuracy = {}
    for precision in ("bf16", "fp32"):
        torch.manual_seed(0)
        model, _ = fit_classifier(create_classifier("tiny_cnn"), synthetic_faces.split("train").select(
            torch.arange(1400)), None, _short(precision, epochs=3), None, "cpu", progress=False)
        accuracy[precision] = evaluate(model, scored, Condition(), n_boot=0, precision="fp32")["accuracy"]
    assert accuracy["fp32"] > 0.4
    assert abs(accuracy["bf16"] - accuracy["fp32"]) < 0.08, accuracy


# --------------------------------------------------------------------------- --init


def test_init_starts_from_a_checkpoint_and_is_recorded(teacher, tmp_path, synthetic_faces):
    run = tmp_path / "tuned"
    # A learning rate too small to move the weights: the fine-tuned model is the one it started from.
    args = ["train-classifier", "--config", str(SYNTHETIC_CONFIG), "--out", str(run), "--init", str(teacher),
            "--set", "train.epochs=1", "--set", "data.limit=256", "--set", "train.optim.lr=1e-9",
            "--set", "loss.class_weights=none"]
    assert main(args) == 0
    tuned, meta = load_classifier(run / "best")
    start, _ = load_classifier(teacher)
    images = synthetic_faces.split("val").float_images()[:64]
    with torch.no_grad():
        assert torch.allclose(tuned(images).softmax(1), start(images).softmax(1), atol=0.05)
    assert meta["init"]["path"].startswith(str(teacher))
    assert len(meta["init"]["weights_sha256"]) == 64
    assert json.loads((run / "best.json").read_text())["init"] == meta["init"]
    assert "init:" in (run / "config.yaml").read_text()


def test_init_refuses_another_architecture_or_class_map(teacher, tmp_path):
    other_arch = load_classifier_config(SYNTHETIC_CONFIG, ["model.arch=shared_cnn", f"init={teacher}"])
    with pytest.raises(UnveilError, match="tiny_cnn classifier, this run trains a shared_cnn"):
        _train(other_arch, tmp_path / "a")
    valence = load_classifier_config(SYNTHETIC_CONFIG, ["class_map=valence", f"init={teacher}"])
    with pytest.raises(UnveilError, match="classes"):
        _train(valence, tmp_path / "b")
    wider = load_classifier_config(SYNTHETIC_CONFIG, ["model.args={image_size: 96}", f"init={teacher}"])
    with pytest.raises(UnveilError, match="init weights"):
        _train(wider, tmp_path / "c")


def _train(cfg, out):
    from unveil.classify.train import train_from_config

    return train_from_config(cfg, out)


# --------------------------------------------------------------------------- distillation


def test_distillation_loss_is_zero_for_the_teacher_and_scaled_by_t_squared():
    logits = torch.randn(8, 7)
    assert float(distillation_loss(logits, logits, 4.0)) == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(8, 7)
    kl = torch.nn.functional.kl_div(other.log_softmax(1), logits.log_softmax(1), reduction="batchmean",
                                    log_target=True)
    assert float(distillation_loss(other, logits, 1.0)) == pytest.approx(float(kl), rel=1e-5)
    with pytest.raises(ValueError, match="loss.distill"):
        DistillConfig(teacher="x", weight=1.5)


def test_a_distilled_reader_beats_an_undistilled_one(teacher, synthetic_faces):
    """The upper-half reader learns from few faces; the full-face teacher's soft targets ("privileged"
    distillation) lift it at the same number of epochs. Mean over three seeds, on val and test."""
    occluded = Condition.build("lower-half")
    scored = synthetic_faces.select(torch.nonzero(synthetic_faces.splits > 0).flatten())
    train = synthetic_faces.split("train")
    accuracy = {"plain": [], "distilled": []}
    for seed in (1, 2, 3):
        few = train.select(torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:700])
        for kind, spec in (("plain", None), ("distilled", str(teacher))):
            torch.manual_seed(seed)
            loss = LossConfig(distill=DistillConfig(teacher=spec, weight=0.7, temperature=4.0))
            model, _ = fit_classifier(create_classifier("tiny_cnn"), few, None, _short(seed=seed), loss, "cpu",
                                      occluded, progress=False)
            accuracy[kind].append(evaluate(model, scored, occluded, n_boot=0)["accuracy"])
    mean = {k: sum(v) / len(v) for k, v in accuracy.items()}
    assert mean["distilled"] > mean["plain"] + 0.01, accuracy


def test_distillation_is_recorded_and_checks_the_teacher_classes(teacher, tmp_path):
    run = tmp_path / "reader"
    args = ["train-classifier", "--config", str(SYNTHETIC_CONFIG), "--out", str(run), "--set", "train.epochs=1",
            "--set", "data.limit=256", "--set", "condition.name=occluded", "--set", f"loss.distill.teacher={teacher}",
            "--set", "loss.distill.weight=0.5"]
    assert main(args) == 0
    sidecar = json.loads((run / "best.json").read_text())
    assert sidecar["distill"]["weight"] == 0.5 and sidecar["distill"]["sees"] == "full"
    assert len(sidecar["distill"]["teacher"]["weights_sha256"]) == 64
    assert "teacher:" in (run / "config.yaml").read_text()
    valence = load_classifier_config(SYNTHETIC_CONFIG, ["class_map=valence", f"loss.distill.teacher={teacher}",
                                                        "train.epochs=1", "data.limit=256"])
    with pytest.raises(UnveilError, match="distillation teacher predicts"):
        _train(valence, tmp_path / "valence")
