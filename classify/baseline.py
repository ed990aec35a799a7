"""The classical baseline: PCA (whitened) + RBF SVM, C and gamma chosen by cross-validation on a
training subset only, evaluated like every classifier.

The fitted pipeline is kept as plain arrays (PCA mean/components/scale; support vectors, dual
coefficients and intercepts of the one-vs-one SVMs) and predicted from with torch, so it saves to
safetensors + JSON like every Unveil checkpoint (no pickle) and rebuilds from them.

    baseline, search = fit_svm_baseline(train_images, train_labels, train_size=5000)
    probs = baseline.predict_proba(test_images)
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unveil.checkpoint import load_checkpoint, save_checkpoint
from unveil.classes import CLASSES, NUM_CLASSES
from unveil.errors import UnveilError

GRID_C = (1.0, 10.0, 100.0)
GRID_GAMMA = (0.25, 1.0, 4.0)  # times 1 / n_components: whitened components have unit variance
_ARRAYS = ("mean", "components", "scale", "support_vectors", "dual_coef", "intercept", "n_support", "classes")


@dataclass
class SVMBaseline:
    """A fitted PCA + RBF-SVM (one-vs-one, as libsvm) held as tensors.

    Shape:
        mean [D]; components [K, D]; scale [K]; support_vectors [S, K] (grouped by class);
        dual_coef [M - 1, S]; intercept [M (M - 1) / 2]; n_support [M]; classes [M] (canonical labels
        of the M classes seen in training).
    """

    mean: torch.Tensor
    components: torch.Tensor
    scale: torch.Tensor
    support_vectors: torch.Tensor
    dual_coef: torch.Tensor
    intercept: torch.Tensor
    n_support: torch.Tensor
    classes: torch.Tensor
    gamma: float
    C: float
    num_classes: int = NUM_CLASSES

    @classmethod
    def from_sklearn(cls, pca, svc, num_classes: int = NUM_CLASSES) -> "SVMBaseline":
        as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
        scale = 1 / np.sqrt(pca.explained_variance_) if pca.whiten else np.ones(pca.n_components_)
        dual, intercept = svc.dual_coef_, svc.intercept_
        if len(svc.classes_) == 2:  # scikit-learn flips the binary case's signs; undo to libsvm's
            dual, intercept = -dual, -intercept
        return cls(as_t(pca.mean_), as_t(pca.components_), as_t(scale), as_t(svc.support_vectors_), as_t(dual),
                   as_t(intercept), torch.as_tensor(svc.n_support_).long(), torch.as_tensor(svc.classes_).long(),
                   float(svc.gamma), float(svc.C), num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Whitened PCA coordinates. Shape: [N, 1, H, W] -> [N, K] float64."""
        x = images.detach().cpu().double().flatten(1)
        return (x - self.mean) @ self.components.T * self.scale

    def decision_ovo(self, images: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
        """libsvm's one-vs-one decision values, pairs (i, j) with i < j; >= 0 votes for i. [N, M(M-1)/2]."""
        out = []
        for start in range(0, len(images), batch_size):
            z = self.features(images[start:start + batch_size])
            kernel = torch.exp(-self.gamma * torch.cdist(z, self.support_vectors).square())
            ends = self.n_support.cumsum(0).tolist()
            spans = [slice(e - n, e) for e, n in zip(ends, self.n_support.tolist())]
            dec = [kernel[:, spans[i]] @ self.dual_coef[j - 1, spans[i]] + kernel[:, spans[j]] @ self.dual_coef[i, spans[j]]
                   for i, j in itertools.combinations(range(len(self.classes)), 2)]
            out.append(torch.stack(dec, 1) + self.intercept)
        return torch.cat(out)

    def decision_function(self, images: torch.Tensor) -> torch.Tensor:
        """Votes plus a confidence in (-1/3, 1/3) per class, as scikit-learn's `ovr` shape. [N, M]."""
        dec = self.decision_ovo(images)
        m = len(self.classes)
        votes = torch.zeros(len(dec), m, dtype=dec.dtype)
        confidence = torch.zeros_like(votes)
        for p, (i, j) in enumerate(itertools.combinations(range(m), 2)):
            votes[:, i] += dec[:, p] >= 0
            votes[:, j] += dec[:, p] < 0
            confidence[:, i] += dec[:, p]
            confidence[:, j] -= dec[:, p]
        return votes + confidence / (3 * (confidence.abs() + 1))

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax of the decision function over all canonical classes (unseen classes get 0): scores
        for ranking (ROC-AUC) and argmax, not calibrated probabilities. [N, C] float32."""
        scores = torch.full((len(images), self.num_classes), float("-inf"), dtype=torch.float64)
        if len(images):
            scores[:, self.classes] = self.decision_function(images)
        return scores.softmax(1).float()

    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        tensors = {name: getattr(self, name) for name in _ARRAYS}
        info = {"kind": "svm_baseline", "arch": "pca_rbf_svm", "gamma": self.gamma, "C": self.C,
                "n_components": int(self.components.shape[0]), "classes": list(CLASSES[: self.num_classes]),
                **(meta or {})}
        return save_checkpoint(path, {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, info)

    @classmethod
    def load(cls, path: str | Path) -> tuple["SVMBaseline", dict]:
        tensors, meta = load_checkpoint(path, kind="svm_baseline")
        integer = {"n_support", "classes"}
        for name in _ARRAYS:
            if name not in tensors or tensors[name].is_floating_point() == (name in integer):
                raise UnveilError(f"{path}: the SVM baseline needs {'an integer' if name in integer else 'a float'} "
                                  f"tensor {name!r}")
        if not all(isinstance(meta.get(k), (int, float)) and not isinstance(meta[k], bool) for k in ("gamma", "C")):
            raise UnveilError(f"{path}: the sidecar's gamma and C must be numbers")
        arrays = {k: v.double() if v.is_floating_point() else v for k, v in tensors.items() if k in _ARRAYS}
        return cls(**arrays, gamma=meta["gamma"], C=meta["C"], num_classes=len(meta["classes"])), meta


def fit_svm_baseline(images: torch.Tensor, labels: torch.Tensor, train_size: int = 5000, n_components: int = 150,
                     grid_c=GRID_C, grid_gamma=GRID_GAMMA, folds: int = 3, seed: int = 0,
                     n_jobs: int | None = None) -> tuple[SVMBaseline, dict]:
    """Fit PCA + RBF SVM on a random subset of `train_size` faces, C and gamma by `folds`-fold CV on it.

    Returns the baseline (refit on the whole subset with the best parameters) and the search summary:
    best parameters, best CV accuracy, and the mean CV accuracy of every grid point.

    Shape:
        images: [N, 1, H, W] in [0, 1]; labels: int [N].
    """
    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(labels), generator=gen)[: min(train_size, len(labels))]
    x = images[pick].detach().cpu().float().flatten(1).numpy()
    y = labels[pick].cpu().numpy()
    n_components = min(n_components, len(x) - len(x) // folds - 1, x.shape[1])
    counts = np.bincount(y)
    folds = int(min(folds, counts[counts > 0].min()))
    if folds < 2 or len(np.unique(y)) < 2:
        raise UnveilError(f"the SVM baseline needs at least 2 classes with 2 faces each in {len(y)} training faces")
    grid = {"svc__C": list(grid_c), "svc__gamma": [g / n_components for g in grid_gamma]}
    with tempfile.TemporaryDirectory(prefix="unveil-svm-") as cache:
        # PCA is refit inside every fold (nothing of a fold's held-out faces leaks into it), but the
        # cache fits it once per fold instead of once per grid point.
        pipeline = Pipeline([("pca", PCA(n_components, whiten=True, svd_solver="randomized", random_state=seed)),
                             ("svc", SVC(kernel="rbf"))], memory=cache)
        search = GridSearchCV(pipeline, grid, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                              scoring="accuracy", n_jobs=n_jobs, refit=True)
        search.fit(x, y)
    pca, svc = search.best_estimator_.named_steps["pca"], search.best_estimator_.named_steps["svc"]
    summary = {
        "train_size": len(y), "n_components": int(n_components), "folds": folds,
        "best_params": {"C": float(search.best_params_["svc__C"]), "gamma": float(search.best_params_["svc__gamma"])},
        "cv_accuracy": float(search.best_score_),
        "grid": [{"C": float(p["svc__C"]), "gamma": float(p["svc__gamma"]), "cv_accuracy": float(s)}
                 for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])],
        "support_vectors": int(svc.support_vectors_.shape[0]),
    }
    return SVMBaseline.from_sklearn(pca, svc), summary
