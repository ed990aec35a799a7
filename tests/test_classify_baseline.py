"""The PCA + RBF SVM baseline: its torch predictor equals scikit-learn's, it saves without pickle, and
`unveil baseline svm` beats chance on synthetic faces."""

import json

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.svm import SVC

from unveil.classify.baseline import SVMBaseline, fit_svm_baseline
from unveil.pipelines.cli import main
from unveil.classes import NUM_CLASSES


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


@pytest.mark.parametrize("classes", [4, 2])
def test_torch_predictor_matches_sklearn(classes):
    images, labels = blobs(classes=classes)
    x = images.flatten(1).numpy()
    pca = PCA(10, whiten=True, random_state=0).fit(x)
    svc = SVC(C=3.0, gamma=0.05).fit(pca.transform(x), labels.numpy())
    baseline = SVMBaseline.from_sklearn(pca, svc, num_classes=NUM_CLASSES)
    test, _ = blobs(n=120, classes=classes, seed=1)
    expected = svc.decision_function(pca.transform(test.flatten(1).numpy()))
    if classes == 2:  # scikit-learn's binary decision > 0 means the second class; ours is one-vs-one's
        assert np.allclose(baseline.decision_ovo(test).numpy()[:, 0], -expected, atol=1e-6)
    else:
        assert np.allclose(baseline.decision_function(test).numpy(), expected, atol=1e-6)
    probs = baseline.predict_proba(test)
    assert probs.shape == (120, NUM_CLASSES)
    assert torch.all(probs[:, classes:] == 0)  # classes never seen in training
    agree = (probs.argmax(1).numpy() == svc.predict(pca.transform(test.flatten(1).numpy()))).mean()
    assert agree > 0.97  # only exact vote ties may break differently


def test_fit_save_load_round_trip(tmp_path):
    images, labels = blobs(n=240)
    baseline, search = fit_svm_baseline(images, labels, train_size=200, n_components=8, folds=2)
    assert search["train_size"] == 200 and len(search["grid"]) == 9
    assert search["best_params"]["C"] in (1.0, 10.0, 100.0)
    baseline.save(tmp_path / "svm", {"note": "test"})
    assert not list(tmp_path.glob("*.pkl"))
    again, meta = SVMBaseline.load(tmp_path / "svm")
    assert meta["kind"] == "svm_baseline" and meta["note"] == "test"
    test, test_labels = blobs(n=100, seed=2)
    assert torch.allclose(again.predict_proba(test), baseline.predict_proba(test), atol=1e-5)
    assert (baseline.predict_proba(test).argmax(1) == test_labels).float().mean() > 0.9


def test_baseline_svm_command_beats_chance(synthetic_faces, tmp_path, capsys):
    out = tmp_path / "svm"
    assert main(["baseline", "svm", "--data", "synthetic:n=3500,seed=0", "--train-size", "500", "--folds", "2",
                 "--n-boot", "100", "--json", "--out", str(out), "--save", str(out / "model")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "per_class", "confusion", "best_params", "cv_accuracy"} <= set(report)
    assert report["accuracy"] > 2.5 / NUM_CLASSES and report["split"] == "test" and report["train_size"] == 500
    assert (out / "report.md").exists() and (out / "confusion.png").exists() and (out / "model.json").exists()
    assert main(["baseline", "svm", "--data", "synthetic:n=3500,seed=0", "--train-size", "3"]) == 2
