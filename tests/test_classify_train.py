"""Training, inference, checkpoints, resume and the classifier commands, on synthetic faces (CPU, seconds)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unveil.classify import create_classifier, load_classifier, save_classifier
from unveil.classify.condition import Condition
from unveil.classify.config import LossConfig, default_train, load_classifier_config
from unveil.classify.evaluate import evaluate, predict_proba, tta_views
from unveil.classify.train import fit_classifier, train_from_config, train_quick
from unveil.pipelines.cli import main
from unveil.classes import NUM_CLASSES
from unveil.errors import UnveilError

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_CONFIG = ROOT / "configs" / "classifier_synthetic.yaml"
SOURCE = "synthetic:n=3500,seed=0"  # the synthetic_faces fixture's source: decoded once, then cached
CHANCE = 1 / NUM_CLASSES


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def quick_model(synthetic_faces):
    return train_quick(synthetic_faces, seed=0)


@pytest.fixture(scope="module")
def checkpoint(quick_model, synthetic_faces, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "quick"
    save_classifier(path, quick_model, {"arch": "tiny_cnn", "arch_args": {}, "condition": "full",
                                        "occlusion": "none", "data_fingerprint": synthetic_faces.fingerprint})
    return path


def test_quick_model_beats_chance_and_hiding_the_lower_half_hurts(quick_model, synthetic_faces):
    test = synthetic_faces.split("test")
    full = evaluate(quick_model, test, n_boot=0)["accuracy"]
    hidden = evaluate(quick_model, test, Condition.build("lower-half"), n_boot=0)["accuracy"]
    assert full > 4 * CHANCE  # ~0.85 after a few seconds of training
    assert hidden < full - 0.2
    assert not quick_model.training


def test_training_on_occluded_faces_reads_the_upper_half(quick_model, synthetic_faces):
    occluded_model = train_quick(synthetic_faces, occlusion="lower-half", seed=1)
    test, hide = synthetic_faces.split("test"), Condition.build("lower-half")
    on_hidden = evaluate(occluded_model, test, hide, n_boot=0)["accuracy"]
    assert on_hidden > 2 * CHANCE
    assert on_hidden > evaluate(quick_model, test, hide, n_boot=0)["accuracy"] + 0.1


def test_predict_proba(quick_model, synthetic_faces):
    images = synthetic_faces.split("val").float_images()[:100]
    probs = predict_proba(quick_model, images, batch_size=32)
    assert probs.shape == (100, NUM_CLASSES) and probs.dtype == torch.float32
    assert torch.allclose(probs.sum(1), torch.ones(100), atol=1e-5)
    assert torch.allclose(probs, predict_proba(quick_model, images, batch_size=1000), atol=1e-6)
    tta = predict_proba(quick_model, images, tta=True)
    assert tta.shape == probs.shape and torch.allclose(tta.sum(1), torch.ones(100), atol=1e-5)
    assert predict_proba(quick_model, images[:0]).shape == (0, NUM_CLASSES)
    quick_model.train()
    predict_proba(quick_model, images[:4])
    assert quick_model.training  # the caller's mode is restored
    quick_model.eval()


def test_tta_views_are_flips_and_shifts():
    x = torch.arange(48 * 48, dtype=torch.float32).view(1, 1, 48, 48)
    views = tta_views(x)
    assert len(views) == 10 and all(v.shape == x.shape for v in views)
    assert torch.equal(views[0], x) and torch.equal(views[5], x.flip(-1))
    assert torch.equal(views[1][..., 2:, :], x[..., :-2, :])  # content moved down by 2 pixels


def test_checkpoint_round_trip_gives_identical_predictions(quick_model, checkpoint, synthetic_faces):
    images = synthetic_faces.split("test").float_images()
    model, meta = load_classifier(checkpoint)
    assert meta["arch"] == "tiny_cnn" and meta["classes"][3] == "happy"
    assert torch.equal(predict_proba(model, images), predict_proba(quick_model, images))
    half_path = checkpoint.with_name("quick_fp16")
    save_classifier(half_path, quick_model, {"arch": "tiny_cnn", "arch_args": {}}, half=True)
    size = lambda path: path.with_suffix(".safetensors").stat().st_size  # noqa: E731
    assert size(half_path) < 0.6 * size(checkpoint)
    half_model, _ = load_classifier(half_path)
    agree = (predict_proba(half_model, images).argmax(1) == predict_proba(model, images).argmax(1)).float().mean()
    assert agree > 0.98


def test_fit_selects_on_val(synthetic_faces):
    train = synthetic_faces.split("train").select(torch.arange(300))
    val = synthetic_faces.split("val")
    torch.manual_seed(0)
    cfg = default_train()
    cfg.epochs, cfg.batch_size, cfg.ema = 4, 64, 0.9
    cfg.optim.schedule, cfg.optim.lr = "constant", 0.3  # high: val accuracy goes up and down
    loss = LossConfig(name="focal", class_weights="balanced")
    model, history = fit_classifier(create_classifier("tiny_cnn"), train, val, cfg, loss, progress=False)
    records = history["epochs"]
    assert len(records) == 4 and not history["stopped_early"]
    best = max(records, key=lambda r: r["val_accuracy"])  # the first of equals
    assert history["best_epoch"] == best["epoch"] and history["best_score"] == best["val_accuracy"]
    again = evaluate(model, val, n_boot=0)["accuracy"]
    assert again == pytest.approx(best["val_accuracy"])  # the returned model is the selected one


def test_mixup_and_cutmix_train_a_classifier(synthetic_faces):
    from unveil.classify.losses import mix_batch

    x, y = torch.rand(16, 1, 48, 48), torch.arange(16) % 7
    torch.manual_seed(0)
    mixed, partner, lam = mix_batch(x, y, LossConfig(cutmix=1.0))
    kept = (mixed == x).float().mean()  # CutMix's label weight is the share of pixels kept
    assert lam == pytest.approx(float(kept), abs=0.02) and partner.shape == y.shape
    assert mix_batch(x, y, LossConfig()) == (x, y, 1.0)  # off: the batch as it was
    cfg = default_train()
    cfg.epochs, cfg.batch_size = 4, 64
    cfg.optim.name, cfg.optim.lr = "adamw", 4e-3
    model, _ = fit_classifier(create_classifier("tiny_cnn"), synthetic_faces.split("train"), None, cfg,
                              LossConfig(mixup=0.4, cutmix=1.0), progress=False)
    test = synthetic_faces.split("test")
    assert evaluate(model, test, n_boot=0)["accuracy"] > 3 * CHANCE


def test_fit_stops_early(synthetic_faces):
    train = synthetic_faces.split("train").select(torch.arange(200))
    # Identical val faces: accuracy is 0 or 1, so it can improve at most twice; with patience 1 the
    # run must stop by the third of its six epochs.
    val = synthetic_faces.split("val").select(torch.zeros(20, dtype=torch.long))
    cfg = default_train()
    cfg.epochs, cfg.batch_size, cfg.patience = 6, 64, 1
    _, history = fit_classifier(create_classifier("tiny_cnn"), train, val, cfg, progress=False)
    assert history["stopped_early"] and len(history["epochs"]) <= 3


def _interrupt_after(epochs):
    def hook(epoch, record):
        if epoch + 1 == epochs:
            raise KeyboardInterrupt
    return hook


def test_resume_continues_from_the_saved_epoch(tmp_path):
    overrides = ["train.epochs=4", "data.limit=300", "train.ema=0.9", "train.patience=0"]
    cfg = load_classifier_config(SYNTHETIC_CONFIG, overrides)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_from_config(cfg, run, on_epoch_end=_interrupt_after(2))
    assert json.loads((run / "last.json").read_text())["epoch"] == 2
    assert len(json.loads((run / "history.json").read_text())) == 2
    assert (run / "best.json").exists() and not (run / "metrics.json").exists()

    with pytest.raises(UnveilError, match="--resume"):  # never overwrite a run by accident
        train_from_config(cfg, run)
    with pytest.raises(UnveilError, match="train.epochs"):  # nor resume it with another config
        other = load_classifier_config(SYNTHETIC_CONFIG, [*overrides[1:], "train.epochs=5"])
        train_from_config(other, run, resume=True)

    args = ["train-classifier", "--config", str(SYNTHETIC_CONFIG), "--out", str(run), "--resume"]
    assert main(args + [a for o in overrides for a in ("--set", o)]) == 0
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert json.loads((run / "last.json").read_text())["epoch"] == 4
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 4 and {"val", "test"} <= set(metrics)
    sidecar = json.loads((run / "best.json").read_text())
    assert sidecar["metrics"]["test"]["accuracy"] == metrics["test"]["accuracy"]
    for key in ("arch", "arch_args", "classes", "condition", "occlusion", "data_fingerprint", "seed", "epochs",
                "seconds_per_epoch"):
        assert key in sidecar

    # The interrupted-and-resumed run retraces an uninterrupted one.
    straight = tmp_path / "straight"
    train_from_config(cfg, straight)
    reference = json.loads((straight / "history.json").read_text())
    for a, b in zip(history, reference):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=1e-9)


def test_occluded_condition_redraws_masks(synthetic_faces):
    images = synthetic_faces.split("val").float_images()[:16]
    cond = Condition.build("mask")
    a, b = cond(images, seed=1), cond(images, seed=2)
    assert not torch.equal(a, b)  # another batch or epoch, other masks
    assert torch.equal(a, cond(images, seed=1))
    assert cond.describe() == {"condition": "occluded", "occlusion": "mask", "inpainter": None}
    assert Condition.build("none").describe()["condition"] == "full"


def test_reconstructed_condition_calls_the_reconstruct_it_is_given(synthetic_faces, tmp_path):
    """The classifier stage never imports the inpaint stage: a reconstructed condition calls whatever
    `reconstruct` the caller's loader returns, on occluded faces and their hole."""
    calls = []

    def reconstruct(occluded, hole):
        calls.append(occluded.shape[0])
        return occluded + 0.5 * hole

    cfg = load_classifier_config(SYNTHETIC_CONFIG, ["train.epochs=1", "data.limit=200", "report_test=false",
                                                    "condition.name=reconstructed",
                                                    "condition.inpainter=some/inpainter"])
    with pytest.raises(UnveilError, match="needs a way to load the inpainter"):
        train_from_config(cfg, tmp_path / "refused")
    metrics = train_from_config(cfg, tmp_path / "run", load_reconstruct=lambda path: reconstruct)
    assert calls and metrics["condition"] == "reconstructed" and metrics["inpainter"] == "some/inpainter"
    assert "test" not in metrics
    sidecar = json.loads((tmp_path / "run" / "best.json").read_text())
    assert sidecar["condition"] == "reconstructed" and sidecar["occlusion"] == "lower-half"


def test_reconstructed_condition_with_the_real_inpaint_stage(synthetic_faces, tmp_path):
    from unveil import inpaint
    from unveil.pipelines.compare import reconstruct_loader

    train_images = synthetic_faces.split("train").float_images()
    inpainter = inpaint.create_inpainter("mean_face").fit(train_images)
    inpaint.save_inpainter(tmp_path / "mean_face", inpainter, {"arch": "mean_face", "arch_args": {}})
    cfg = load_classifier_config(SYNTHETIC_CONFIG, ["train.epochs=1", "data.limit=200", "condition.name=reconstructed",
                                                    f"condition.inpainter={tmp_path / 'mean_face'}"])
    loader = reconstruct_loader(torch.device("cpu"))
    metrics = train_from_config(cfg, tmp_path / "run", load_reconstruct=loader)
    assert metrics["condition"] == "reconstructed" and 0 <= metrics["test"]["accuracy"] <= 1
    cond = Condition.build("lower-half", str(tmp_path / "mean_face"), loader)
    faces = synthetic_faces.split("test").float_images()[:8]
    out = cond(faces)
    assert torch.equal(out[..., :24, :], faces[..., :24, :])  # the visible half is kept
    assert not torch.equal(out[..., 24:, :], torch.zeros_like(out[..., 24:, :]))  # the hole is filled


def test_eval_classifier_json_on_stdout(checkpoint, tmp_path):
    out = tmp_path / "eval"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "unveil.pipelines.cli", "eval-classifier", str(checkpoint),
                           "--data", SOURCE, "--split", "test", "--json", "--bootstrap", "100", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # exactly one JSON object, nothing else
    assert {"accuracy", "macro_f1", "per_class", "confusion", "roc_auc", "ci95"} <= set(report)
    assert report["accuracy"] > 4 * CHANCE and report["trained_condition"] == "full" and report["n"] == 350
    assert sum(map(sum, report["confusion"])) == 350
    for name in ("metrics.json", "report.md", "confusion.png"):
        assert (out / name).stat().st_size > 0
    assert "| happy |" in (out / "report.md").read_text()


def test_eval_classifier_occlusion_tta_and_record(checkpoint, tmp_path, capsys):
    args = ["eval-classifier", str(checkpoint), "--data", SOURCE, "--split", "val", "--bootstrap", "0", "--json"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    full = json.loads(capsys.readouterr().out)
    assert main(args + ["--out", str(tmp_path / "b"), "--occlusion", "lower-half"]) == 0
    hidden = json.loads(capsys.readouterr().out)
    assert hidden["occlusion"] == "lower-half" and hidden["accuracy"] < full["accuracy"]
    assert main(args + ["--out", str(tmp_path / "c"), "--tta"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] is True
    assert main(args + ["--out", str(tmp_path / "d"), "--record"]) == 0
    sidecar = json.loads(checkpoint.with_suffix(".json").read_text())
    assert sidecar["metrics"]["val"]["accuracy"] == full["accuracy"]
    # recording under another condition than the training one is refused
    assert main(args + ["--out", str(tmp_path / "e"), "--record", "--occlusion", "lower-half"]) == 2
    assert main(["eval-classifier", str(tmp_path / "missing"), "--data", SOURCE]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_saliency_command_writes_png(checkpoint, tmp_path, capsys):
    out = tmp_path / "cam.png"
    assert main(["saliency", str(checkpoint), "--data", SOURCE, "--n", "5", "--out", str(out),
                 "--occlusion", "lower-half"]) == 0
    from PIL import Image

    with Image.open(out) as img:
        assert img.mode == "RGB" and img.width > 5 * 2 * 48
    assert "5 faces" in capsys.readouterr().out


def test_ema_averages_parameters_with_warm_up_and_copies_buffers():
    from unveil.runtime import EMA

    live = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    ema = EMA(live, decay=0.999)
    start = live[0].weight.detach().clone()
    with torch.no_grad():
        live[0].weight.add_(1.0)
    live(torch.rand(4, 1, 8, 8))  # train mode: moves the batch-norm running statistics
    ema.update(live)
    step = 1 - 2 / 11  # warm-up: the first update moves most of the way, not 0.1 %
    assert torch.allclose(ema.model[0].weight, start + step)
    assert torch.equal(ema.model[1].running_mean, live[1].running_mean)
    assert ema.updates == 1 and not ema.model[0].weight.requires_grad


@pytest.mark.parametrize("warmup", [0.0, 0.1, 0.25, 0.9])
@pytest.mark.parametrize("total", [1, 2, 3, 4, 10, 1000])
def test_one_cycle_schedule_runs_any_short_length(warmup, total):
    """torch's one-cycle divides by the warm-up steps less one: one warm-up step (4 steps at 0.25) crashed."""
    from unveil.trainer import OptimConfig, make_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    schedule = make_scheduler(opt, OptimConfig(name="sgd", lr=0.1, schedule="onecycle", warmup=warmup), total)
    rates = [opt.param_groups[0]["lr"]]
    for _ in range(total - 1):
        opt.step()
        schedule.step()
        rates.append(opt.param_groups[0]["lr"])
    assert all(0 < r <= 0.1 + 1e-9 for r in rates)


def test_a_reader_trained_on_the_hole_mix_reads_mask_shaped_holes(synthetic_faces):
    """The upper-half reader for real masks trains on lower-half holes and synthetic masks of every style
    (configs/classifier_photos_reader.yaml): on mask-shaped holes it reads better than a reader that only
    ever saw the lower-half hole, and it still reads the lower-half hole."""
    from unveil.occlusion import MASK_STYLES, Occlusion

    test = synthetic_faces.split("test")
    lower_only = train_quick(synthetic_faces, occlusion="lower-half", seed=1)
    mixed = train_quick(synthetic_faces, occlusion="mixed:lower=0.4", seed=1)
    masks, lower = Condition.build("mask"), Condition.build("lower-half")
    on_masks = {name: evaluate(m, test, masks, n_boot=0)["accuracy"] for name, m in
                (("lower", lower_only), ("mixed", mixed))}
    assert on_masks["mixed"] > on_masks["lower"] + 0.03, on_masks
    assert evaluate(mixed, test, lower, n_boot=0)["accuracy"] > 2 * CHANCE
    shipped = Occlusion.parse(load_classifier_config(ROOT / "configs" / "classifier_photos_reader.yaml")
                              .condition.occlusion)
    assert shipped.kind == "mixed" and set(shipped.styles) == set(MASK_STYLES) and 0 < shipped.lower < 1
