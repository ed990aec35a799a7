"""Guide versus judge: the expression-consistency loss from one classifier (the guide) must help a
second, independently trained classifier (the judge: other seed, other architecture) read the right
expression from the reconstructions; and the pipelines must notice when the judge is the guide.

Both generators are trained identically (seed, steps, data, masked L1 + the gradient/SSIM perceptual
term); only the expression term differs. The judge scores the val+test synthetic faces (700).
"""

import json

import pytest
import torch

from inpaint.evaluate import evaluate_inpainter
from inpaint.train import InpaintConfig, InpaintTrainer
from unveil.config import apply_overrides, from_dict
from unveil.occlusion import Occlusion

STEPS = 240


@pytest.fixture(scope="module")
def classifiers(synthetic_faces, tmp_path_factory):
    from classify import save_classifier
    from classify.train import train_quick

    folder = tmp_path_factory.mktemp("guide_judge")
    guide = train_quick(synthetic_faces, arch="tiny_cnn", epochs=5, seed=0)
    save_classifier(folder / "guide", guide, {"arch": "tiny_cnn", "arch_args": {}, "seed": 0,
                                              "data_fingerprint": synthetic_faces.fingerprint})
    # The judge: a double-conv VGG-style network, another seed; never inside any loss.
    judge = train_quick(synthetic_faces, arch="vgg", epochs=5, seed=1, widths=(8, 16, 32), hidden=(32,))
    save_classifier(folder / "judge", judge, {"arch": "vgg", "arch_args": {"widths": [8, 16, 32], "hidden": [32]},
                                              "seed": 1, "data_fingerprint": synthetic_faces.fingerprint})
    return folder / "guide", folder / "judge", judge


def train(faces, out, guide, expression: float):
    data = {"model": {"arch": "unet", "args": {"widths": [8, 16, 32]}},
            "loss": {"perceptual": 0.5, "perceptual_kind": "gradient_ssim"},
            "train": {"epochs": 1, "steps_per_epoch": STEPS, "batch_size": 32, "lr": 2e-3, "warmup_epochs": 0.1,
                      "ema": 0.99, "device": "cpu", "sample_every": 1, "seed": 0},
            "data": {"val_limit": 70}}
    if expression:
        apply_overrides(data, [f"loss.expression={expression}", "loss.expression_kind=ce", f"loss.guide={guide}"])
    trainer = InpaintTrainer(from_dict(InpaintConfig, data).validate(), out, faces=faces)
    trainer.fit()
    return trainer


@pytest.fixture(scope="module")
def pair(synthetic_faces, classifiers, tmp_path_factory):
    guide, _, _ = classifiers
    base = train(synthetic_faces, tmp_path_factory.mktemp("l1_perc"), guide, 0.0)
    expr = train(synthetic_faces, tmp_path_factory.mktemp("l1_perc_expr"), guide, 0.3)
    return base, expr


@pytest.mark.xfail(strict=False, reason=(
    "open problem, measured on this 240-step tiny U-Net: the expression term games its guide instead of drawing "
    "the expression (kl: guide accuracy 0.166 -> 0.413 on the reconstructions, independent judge 0.156 -> 0.170, "
    "hole PSNR 18.2 -> 16.1 dB; see benchmarks/inpainter_ablation.py); kept as the target"))
def test_expression_loss_helps_an_independent_judge(synthetic_faces, classifiers, pair):
    from classify.evaluate import predict_proba

    _, _, judge = classifiers
    held = synthetic_faces.select(torch.cat([(synthetic_faces.splits == s).nonzero().squeeze(1) for s in (1, 2)]))
    images, labels = held.float_images(), held.labels
    scores = {}
    for name, trainer in zip(("base", "expr"), pair):
        result = evaluate_inpainter(trainer.inpainter(), images, labels, Occlusion(),
                                    judge=lambda x: predict_proba(judge, x))
        scores[name] = result
    print({k: {m: round(v[m], 4) for m in ("accuracy", "macro_f1", "psnr_hole", "ssim_hole")} for k, v in scores.items()})
    gain = scores["expr"]["accuracy"] - scores["base"]["accuracy"]
    assert gain > 0.03, {k: (v["accuracy"], v["psnr_hole"]) for k, v in scores.items()}
    # The expression term must not wreck the reconstruction itself.
    assert scores["expr"]["psnr_hole"] > scores["base"]["psnr_hole"] - 1.5


def test_sidecar_records_the_guide_and_eval_warns(pair, classifiers, capsys):
    from pipelines.cli import main

    guide, judge_path, _ = classifiers
    _, expr = pair
    meta = json.loads((expr.out / "best.json").read_text())
    assert meta["guide"]["path"] == str(guide) and meta["guide"]["arch"] == "tiny_cnn"
    assert meta["guide"]["seed"] == 0 and meta["guide"]["weights_sha256"] and meta["guide"]["loss"] == "ce"
    for judge, warned in ((guide, True), (judge_path, False)):
        code = main(["eval-inpainter", str(expr.out / "best"), "--data", "synthetic:n=3500,seed=0",
                     "--split", "val", "--classifier", str(judge), "--json"])
        captured = capsys.readouterr()
        assert code == 0
        report = json.loads(captured.out)
        assert report["judge_is_guide"] is warned
        assert ("GUIDE" in captured.err) is warned and bool(report["warnings"]) is warned
