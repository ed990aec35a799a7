"""Guide versus judge: the expression-consistency loss from one classifier (the guide) must help a
second, independently trained classifier (the judge: other seed, other architecture) read the right
expression from the reconstructions; and the pipelines must notice when the judge is the guide.

The route that measured a gain (benchmarks/inpainter_ablation.py, docs/training.md, "Loss ablation"): a generator
conditioned on an occluded-face classifier's reading of the upper half, and a *robust* guide
(adversarially trained), whose gradients change the mouth rather than seed textures; the expression
term ramps in over the first half of training. Both generators are trained identically (seed, steps,
data, conditioning, masked L1 + the gradient/SSIM perceptual term); only the expression term differs.
The judge scores the val+test synthetic faces (700).
"""

import json

import pytest
import torch

from unveil.inpaint.evaluate import evaluate_inpainter
from unveil.inpaint.config import InpaintConfig
from unveil.inpaint.train import build_trainer
from unveil.config import apply_overrides, from_dict
from unveil.occlusion import LowerHalf

STEPS = 300


@pytest.fixture(scope="module")
def classifiers(synthetic_faces, tmp_path_factory):
    from unveil.classify import save_classifier
    from unveil.classify.train import train_quick

    folder = tmp_path_factory.mktemp("guide_judge")
    meta = {"arch": "tiny_cnn", "arch_args": {}, "data_fingerprint": synthetic_faces.fingerprint}
    guide = train_quick(synthetic_faces, arch="tiny_cnn", epochs=10, seed=0, adversarial_eps=0.01)
    save_classifier(folder / "guide", guide, {**meta, "seed": 0, "adversarial_eps": 0.01})
    occluded = train_quick(synthetic_faces, arch="tiny_cnn", epochs=6, seed=2, occlusion="lower-half")
    save_classifier(folder / "occluded", occluded, {**meta, "seed": 2, "condition": "occluded"})
    # The judge: a double-conv VGG-style network, another seed; never inside any loss.
    judge = train_quick(synthetic_faces, arch="vgg", epochs=5, seed=1, widths=(8, 16, 32), hidden=(32,))
    save_classifier(folder / "judge", judge, {"arch": "vgg", "arch_args": {"widths": [8, 16, 32], "hidden": [32]},
                                              "seed": 1, "data_fingerprint": synthetic_faces.fingerprint})
    return folder, judge


def train(faces, out, folder, expression: float):
    data = {"model": {"arch": "unet", "args": {"widths": [8, 16, 32]}, "conditioning": str(folder / "occluded")},
            "loss": {"perceptual": 0.5, "perceptual_kind": "gradient_ssim"},
            "train": {"epochs": 1, "steps_per_epoch": STEPS, "batch_size": 32, "ema": 0.99, "seed": 0,
                      "optim": {"lr": 2e-3, "warmup": 0.1}},
            "device": "cpu", "sample_every": 1, "data": {"val_limit": 70}}
    if expression:
        apply_overrides(data, [f"loss.expression={expression}", "loss.expression_kind=ce",
                               "loss.expression_warmup=0.5", f"loss.guide={folder / 'guide'}"])
    trainer = build_trainer(from_dict(InpaintConfig, data), out, faces=faces)
    trainer.fit()
    return trainer


@pytest.fixture(scope="module")
def pair(synthetic_faces, classifiers, tmp_path_factory):
    folder, _ = classifiers
    base = train(synthetic_faces, tmp_path_factory.mktemp("l1_perc"), folder, 0.0)
    expr = train(synthetic_faces, tmp_path_factory.mktemp("l1_perc_expr"), folder, 0.3)
    return base, expr


def test_expression_loss_helps_an_independent_judge(synthetic_faces, classifiers, pair):
    from unveil.classify.evaluate import predict_proba
    from unveil.inpaint import create_inpainter

    _, judge = classifiers
    held = synthetic_faces.select(torch.cat([(synthetic_faces.splits == s).nonzero().squeeze(1) for s in (1, 2)]))
    images, labels = held.float_images(), held.labels
    judged = lambda inpainter: evaluate_inpainter(inpainter, images, labels, LowerHalf(),  # noqa: E731
                                                  judge=lambda x: predict_proba(judge, x))
    base, expr = (judged(trainer.task.inpainter(trainer.selected_model)) for trainer in pair)
    mean_face = judged(create_inpainter("mean_face").fit(synthetic_faces.split("train").images))
    print({name: {m: round(r[m], 4) for m in ("accuracy", "psnr_hole", "ssim_hole")}
           for name, r in (("base", base), ("expr", expr), ("mean_face", mean_face))})
    # Measured at this seed: 0.413 -> 0.493 (docs/training.md, loss ablation: +5 to +20 points over seeds 0-2
    # with a plain guide; without the conditioning or the warm-up the term is mostly gamed).
    assert expr["accuracy"] - base["accuracy"] > 0.02, (base["accuracy"], expr["accuracy"])
    # The expression term must not wreck the reconstruction: a sharp mouth of the wrong class costs
    # PSNR that a blur does not (measured -1.05 dB here), but it stays well above the mean face.
    assert expr["psnr_hole"] > base["psnr_hole"] - 1.5
    assert expr["psnr_hole"] > mean_face["psnr_hole"] + 1.0


def test_sidecar_records_the_guide_and_eval_warns(pair, classifiers, capsys):
    from unveil.pipelines.cli import main

    folder, _ = classifiers
    guide, judge_path = folder / "guide", folder / "judge"
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
