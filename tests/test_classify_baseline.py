"""The classical baselines: each family's torch predictor equals its scikit-learn model, saves without
pickle and loads back, and `unveil baseline MODEL` beats chance on synthetic faces."""

import json

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from unveil.classes import NUM_CLASSES
from unveil.classify.baseline import CLASSICAL, ClassicalBaseline, PCAStep, fit_baseline
from unveil.classify.cluster_label import ClusterToLabel
from unveil.pipelines.cli import main


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny CPU models gain little from a second thread but slow down several-fold when the two
    cores are shared with other work (OpenMP threads wait on each other), so these tests use one."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency: BLAS threads too

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(old)


def blobs(n=300, classes=4, seed=0):
    """Small separable-ish 'images' [N, 1, 6, 6]: one bright pixel region per class plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = 0.3 * torch.rand(n, 1, 6, 6, generator=g)
    images.view(n, -1)[torch.arange(n), labels * 5] += 0.7
    return images, labels


def fitted(family: str, classes: int, params: dict):
    """(our baseline, scikit-learn's PCA and model) fitted on the same blobs."""
    images, labels = blobs(classes=classes)
    x = images.flatten(1).numpy()
    pca = PCA(10, whiten=True, random_state=0).fit(x)
    spec = CLASSICAL.create(family)
    model = spec.estimator(0).set_params(**params).fit(pca.transform(x), labels.numpy())
    ours = ClassicalBaseline(family, PCAStep.from_sklearn(pca), spec.head.from_sklearn(model),
                             torch.as_tensor(model.classes_).long(), params)
    return ours, pca, model


CASES = [("svm", {"C": 3.0, "gamma": 0.05}), ("logreg", {"C": 0.1}), ("naive_bayes", {"var_smoothing": 1e-3}),
         ("random_forest", {"max_features": "sqrt", "min_samples_leaf": 2, "n_estimators": 20}),
         ("kmeans", {"n_clusters": 12})]


@pytest.mark.parametrize("classes", [4, 2])
@pytest.mark.parametrize("family,params", CASES, ids=[c[0] for c in CASES])
def test_torch_predictor_matches_sklearn(family, params, classes):
    ours, pca, model = fitted(family, classes, params)
    test, _ = blobs(n=120, classes=classes, seed=1)
    z = pca.transform(test.flatten(1).numpy())
    probs = ours.predict_proba(test)
    assert probs.shape == (120, NUM_CLASSES) and torch.allclose(probs.sum(1), torch.ones(120), atol=1e-5)
    assert torch.all(probs[:, classes:] == 0)  # classes never seen in training
    if hasattr(model, "predict_proba") and family != "svm":  # calibrated families: the same probabilities
        assert np.allclose(probs[:, :classes].numpy(), model.predict_proba(z), atol=1e-4)
    agree = (probs.argmax(1).numpy() == model.predict(z)).mean()
    assert agree > 0.97  # only exact ties may break differently


def test_svm_decision_values_match_libsvm():
    ours, pca, model = fitted("svm", 4, {"C": 3.0, "gamma": 0.05})
    test, _ = blobs(n=50, seed=3)
    z = pca.transform(test.flatten(1).numpy())
    assert np.allclose(ours.head.scores(ours.pca.features(test)).numpy(), model.decision_function(z), atol=1e-6)


def test_cluster_to_label_labels_each_cluster_by_majority():
    x = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    y = np.array([3, 3, 1, 6, 6, 6])
    model = ClusterToLabel(n_clusters=2, random_state=0).fit(x, y)
    assert sorted(model.classes_[model.cluster_class_].tolist()) == [3, 6]
    assert model.predict(np.array([[0.05], [5.05]])).tolist() == [3, 6]


@pytest.mark.parametrize("family", CLASSICAL.names())
def test_fit_save_load_round_trip(family, tmp_path):
    images, labels = blobs(n=240)
    baseline, search = fit_baseline(family, images, labels, train_size=200, n_components=8, folds=2)
    grid = CLASSICAL.create(family).grid(8)
    assert search["train_size"] == 200 and len(search["grid"]) == int(np.prod([len(v) for v in grid.values()]))
    assert all(search["best_params"][k] in v for k, v in grid.items())
    baseline.save(tmp_path / family, {"note": "test"})
    assert not list(tmp_path.glob("*.pkl"))
    again, meta = ClassicalBaseline.load(tmp_path / family)
    assert meta["kind"] == "baseline" and meta["arch"] == family and meta["note"] == "test"
    test, test_labels = blobs(n=100, seed=2)
    assert torch.allclose(again.predict_proba(test), baseline.predict_proba(test), atol=1e-4)
    assert (baseline.predict_proba(test).argmax(1) == test_labels).float().mean() > 0.8


def test_a_baseline_of_another_family_is_refused_its_arrays(tmp_path):
    from unveil.errors import UnveilError

    images, labels = blobs(n=120)
    baseline, _ = fit_baseline("logreg", images, labels, train_size=100, n_components=6, folds=2)
    path = baseline.save(tmp_path / "model")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["arch"] = "naive_bayes"
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(UnveilError, match="needs a float tensor 'theta'"):
        ClassicalBaseline.load(tmp_path / "model")


@pytest.mark.parametrize("family", ["logreg", "naive_bayes"])
def test_baseline_command_beats_chance(family, synthetic_faces, tmp_path, capsys):
    out = tmp_path / family
    assert main(["baseline", family, "--data", "synthetic:n=3500,seed=0", "--train-size", "500", "--folds", "2",
                 "--bootstrap", "100", "--json", "--out", str(out), "--save", str(out / "model")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "per_class", "confusion", "best_params", "cv_accuracy", "ci95"} <= set(report)
    assert report["accuracy"] > 2.5 / NUM_CLASSES and report["split"] == "test" and report["train_size"] == 500
    assert report["family"] == family and report["classes"] == list(report["per_class"])
    assert (out / "report.md").exists() and (out / "confusion.png").exists() and (out / "model.json").exists()


def test_baseline_command_occluded_and_valence(synthetic_faces, capsys, tmp_path):
    args = ["baseline", "logreg", "--data", "synthetic:n=3500,seed=0", "--train-size", "500", "--folds", "2",
            "--bootstrap", "0", "--json", "--out"]
    assert main(args + [str(tmp_path / "a"), "--occlusion", "lower-half"]) == 0
    occluded = json.loads(capsys.readouterr().out)
    assert occluded["occlusion"].startswith("lower-half") and len(occluded["classes"]) == NUM_CLASSES
    assert main(args + [str(tmp_path / "b"), "--classes", "valence"]) == 0
    valence = json.loads(capsys.readouterr().out)
    assert valence["classes"] == ["negative", "neutral", "positive"] and valence["collapsed_from_canonical"]


def test_baseline_command_errors(synthetic_faces, capsys):
    assert main(["baseline", "svm", "--data", "synthetic:n=3500,seed=0", "--train-size", "3"]) == 2
    assert main(["baseline", "lda", "--data", "synthetic"]) == 2
    assert "invalid choice: 'lda'" in capsys.readouterr().err
