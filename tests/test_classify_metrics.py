"""unveil.metrics' classification scores and classify's class weights against scikit-learn, on fixed inputs."""

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from sklearn.utils.class_weight import compute_class_weight

from unveil.classify.losses import class_weights, classification_loss
from unveil.classes import CLASSES
from unveil.metrics import bootstrap_intervals, classification_report, confusion_matrix

C = len(CLASSES)


def fixed_predictions(n=400, seed=0, missing_class=None):
    """Labels, probabilities and predictions that are right about 60 % of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, n)
    if missing_class is not None:
        labels[labels == missing_class] = (missing_class + 1) % C
    logits = rng.normal(size=(n, C))
    logits[np.arange(n), labels] += rng.choice([0.0, 2.5], n, p=[0.4, 0.6])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return labels, probs.astype(np.float32)


@pytest.mark.parametrize("missing_class", [None, 1])
def test_report_matches_sklearn(missing_class):
    labels, probs = fixed_predictions(missing_class=missing_class)
    preds = probs.argmax(1)
    report = classification_report(torch.from_numpy(labels), torch.from_numpy(probs), n_boot=200)

    assert report["accuracy"] == pytest.approx(skm.accuracy_score(labels, preds))
    assert report["macro_f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro", zero_division=0))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, preds, labels=list(range(C)), zero_division=0)
    for k, name in enumerate(CLASSES):
        row = report["per_class"][name]
        assert row["precision"] == pytest.approx(precision[k])
        assert row["recall"] == pytest.approx(recall[k])
        assert row["f1"] == pytest.approx(f1[k])
        assert row["support"] == support[k]
    assert report["confusion"] == skm.confusion_matrix(labels, preds, labels=list(range(C))).tolist()
    for k, name in enumerate(CLASSES):
        if missing_class == k:
            assert report["roc_auc"][name] is None  # one-vs-rest AUC is undefined without positives
        else:
            assert report["roc_auc"][name] == pytest.approx(skm.roc_auc_score(labels == k, probs[:, k]))
    if missing_class is None:
        assert report["macro_roc_auc"] == pytest.approx(skm.roc_auc_score(labels, probs, multi_class="ovr"))


def test_roc_auc_with_ties_matches_sklearn():
    labels, probs = fixed_predictions(n=300, seed=3)
    coarse = np.round(probs, 1)  # many tied scores
    coarse = coarse / coarse.sum(1, keepdims=True).clip(1e-6)
    report = classification_report(torch.from_numpy(labels), torch.from_numpy(coarse), n_boot=0)
    for k, name in enumerate(CLASSES):
        assert report["roc_auc"][name] == pytest.approx(skm.roc_auc_score(labels == k, coarse[:, k]))


def test_confusion_matrix_batched_matches_single():
    labels, probs = fixed_predictions(n=100)
    y, p = torch.from_numpy(labels), torch.from_numpy(probs.argmax(1))
    batched = confusion_matrix(torch.stack([y, y.flip(0)]), torch.stack([p, p.flip(0)]))
    assert torch.equal(batched[0], confusion_matrix(y, p))
    assert torch.equal(batched[1], confusion_matrix(y.flip(0), p.flip(0)))


def test_bootstrap_interval_contains_point_estimate():
    labels, probs = fixed_predictions(n=500, seed=1)
    y, p = torch.from_numpy(labels), torch.from_numpy(probs.argmax(1))
    report = classification_report(y, torch.from_numpy(probs), n_boot=500, seed=0)
    for key in ("accuracy", "macro_f1"):
        lo, hi = report["ci95"][key]
        assert lo < report[key] < hi
        assert hi - lo < 0.15  # 500 faces: a few points either side
    again = bootstrap_intervals(y, p, n_boot=500, seed=0)
    assert again == report["ci95"]  # seeded, so reproducible


@pytest.mark.parametrize("counts", [[10, 3, 40, 7, 7, 20, 13], [5, 0, 5, 50, 5, 5, 5]])
def test_class_weights_match_sklearn(counts):
    labels = torch.repeat_interleave(torch.arange(C), torch.tensor(counts))
    present = [k for k in range(C) if counts[k]]
    expected = compute_class_weight("balanced", classes=np.array(present), y=labels.numpy())
    weights = class_weights(labels, C, "balanced")
    assert torch.allclose(weights[present], torch.tensor(expected, dtype=torch.float32))
    assert torch.allclose(class_weights(labels, C, "sqrt")[present], weights[present].sqrt())
    assert torch.equal(class_weights(labels, C, "none"), torch.ones(C))
    if 0 in counts:
        assert weights[counts.index(0)] == 1


def test_focal_loss_reduces_to_weighted_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(64, C, generator=g), torch.randint(0, C, (64,), generator=g)
    weight = torch.rand(C, generator=g) + 0.5
    ce = torch.nn.functional.cross_entropy(logits, targets, weight=weight, label_smoothing=0.1)
    # gamma -> 0 is cross-entropy (the focal branch at a tiny gamma, the CE branch at 0)
    assert classification_loss(logits, targets, weight, 0.1, 0.0) == pytest.approx(float(ce))
    plain = torch.nn.functional.cross_entropy(logits, targets, weight=weight)
    assert classification_loss(logits, targets, weight, 0.0, 1e-6) == pytest.approx(float(plain), rel=1e-4)
    # focusing down-weights easy faces, so the loss shrinks as gamma grows
    losses = [float(classification_loss(logits, targets, weight, 0.0, g)) for g in (0.5, 1.0, 2.0)]
    assert losses[0] > losses[1] > losses[2] > 0
