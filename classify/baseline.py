"""The classical baselines the masked-FER studies compare on flattened faces: the same whitened PCA,
then one of five model families (registered in `CLASSICAL`), its hyper-parameters chosen by
cross-validation on a training subset only, evaluated like every classifier.

| name | model | searched |
|---|---|---|
| svm | RBF SVM (one-vs-one, as libsvm) | C, gamma |
| logreg | multinomial logistic regression | C |
| naive_bayes | Gaussian naive Bayes | var_smoothing |
| random_forest | random forest (200 trees) | max_features, min_samples_leaf |
| kmeans | k-means, each cluster labelled with its training faces' majority class | clusters |

Every fitted model is kept as plain arrays (the PCA's mean, components and scale; the family's own:
support vectors, weights, class means, trees, cluster centres) and predicted from with torch, so it
saves to safetensors + JSON like every Unveil checkpoint (no pickle) and rebuilds from them.

    baseline, search = fit_baseline("logreg", train_images, train_labels, train_size=5000)
    probs = baseline.predict_proba(test_images)
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from unveil.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from unveil.classes import CLASSES, NUM_CLASSES
from unveil.errors import UnveilError
from unveil.registry import Registry

GRID_C = (1.0, 10.0, 100.0)
GRID_GAMMA = (0.25, 1.0, 4.0)  # times 1 / n_components: whitened components have unit variance
BATCH = 2048                   # faces per prediction pass


def _t(array, dtype=torch.float64) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array), dtype=dtype)


# --------------------------------------------------------------------------- the shared PCA step


@dataclass
class PCAStep:
    """Whitened PCA as arrays. Shape: mean [D]; components [K, D]; scale [K]."""

    mean: torch.Tensor
    components: torch.Tensor
    scale: torch.Tensor
    ARRAYS: ClassVar[tuple[str, ...]] = ("mean", "components", "scale")

    @classmethod
    def from_sklearn(cls, pca) -> "PCAStep":
        scale = 1 / np.sqrt(pca.explained_variance_) if pca.whiten else np.ones(pca.n_components_)
        return cls(_t(pca.mean_), _t(pca.components_), _t(scale))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Whitened PCA coordinates. Shape: [N, 1, H, W] -> [N, K] float64."""
        x = images.detach().cpu().double().flatten(1)
        return (x - self.mean) @ self.components.T * self.scale


# --------------------------------------------------------------------------- the families' models


class Head:
    """A fitted family on PCA features, as arrays: `scores` ranks the classes it saw in training (their
    softmax is what `predict_proba` reports: calibrated for logreg, naive_bayes and random_forest,
    scores for ranking and argmax for svm and kmeans)."""

    ARRAYS: ClassVar[tuple[str, ...]] = ()
    INTEGER: ClassVar[frozenset[str]] = frozenset()

    def scores(self, z: torch.Tensor) -> torch.Tensor:  # [N, K] -> [N, M]
        raise NotImplementedError

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in self.ARRAYS}

    def summary(self) -> dict:
        return {}


@dataclass
class SVMHead(Head):
    """libsvm's one-vs-one RBF SVM. Shape: support_vectors [S, K] (grouped by class); dual_coef
    [M - 1, S]; intercept [M (M - 1) / 2]; n_support [M]."""

    support_vectors: torch.Tensor
    dual_coef: torch.Tensor
    intercept: torch.Tensor
    n_support: torch.Tensor
    gamma: float
    ARRAYS: ClassVar = ("support_vectors", "dual_coef", "intercept", "n_support")
    INTEGER: ClassVar = frozenset({"n_support"})

    @classmethod
    def from_sklearn(cls, svc) -> "SVMHead":
        dual, intercept = svc.dual_coef_, svc.intercept_
        if len(svc.classes_) == 2:  # scikit-learn flips the binary case's signs; undo to libsvm's
            dual, intercept = -dual, -intercept
        return cls(_t(svc.support_vectors_), _t(dual), _t(intercept), _t(svc.n_support_, torch.long), float(svc.gamma))

    def decision_ovo(self, z: torch.Tensor) -> torch.Tensor:
        """libsvm's one-vs-one decision values, pairs (i, j) with i < j; >= 0 votes for i. [N, M(M-1)/2]."""
        kernel = torch.exp(-self.gamma * torch.cdist(z, self.support_vectors).square())
        ends = self.n_support.cumsum(0).tolist()
        spans = [slice(e - n, e) for e, n in zip(ends, self.n_support.tolist())]
        dec = [kernel[:, spans[i]] @ self.dual_coef[j - 1, spans[i]] + kernel[:, spans[j]] @ self.dual_coef[i, spans[j]]
               for i, j in itertools.combinations(range(len(self.n_support)), 2)]
        return torch.stack(dec, 1) + self.intercept

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """Votes plus a confidence in (-1/3, 1/3) per class, as scikit-learn's `ovr` decision shape."""
        dec = self.decision_ovo(z)
        m = len(self.n_support)
        votes = torch.zeros(len(dec), m, dtype=dec.dtype)
        confidence = torch.zeros_like(votes)
        for p, (i, j) in enumerate(itertools.combinations(range(m), 2)):
            votes[:, i] += dec[:, p] >= 0
            votes[:, j] += dec[:, p] < 0
            confidence[:, i] += dec[:, p]
            confidence[:, j] -= dec[:, p]
        return votes + confidence / (3 * (confidence.abs() + 1))

    def summary(self) -> dict:
        return {"support_vectors": int(self.support_vectors.shape[0])}


@dataclass
class LinearHead(Head):
    """Multinomial logistic regression: softmax(z W^T + b). Shape: coef [M, K] ([1, K] for two classes,
    scikit-learn's binary form); intercept [M] ([1])."""

    coef: torch.Tensor
    intercept: torch.Tensor
    ARRAYS: ClassVar = ("coef", "intercept")

    @classmethod
    def from_sklearn(cls, model) -> "LinearHead":
        return cls(_t(model.coef_), _t(model.intercept_))

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        logits = z @ self.coef.T + self.intercept
        return torch.cat([torch.zeros_like(logits), logits], 1) if logits.shape[1] == 1 else logits


@dataclass
class GaussianNBHead(Head):
    """Gaussian naive Bayes' joint log-likelihood. Shape: theta, var [M, K]; log_prior [M]."""

    theta: torch.Tensor
    var: torch.Tensor
    log_prior: torch.Tensor
    ARRAYS: ClassVar = ("theta", "var", "log_prior")

    @classmethod
    def from_sklearn(cls, model) -> "GaussianNBHead":
        return cls(_t(model.theta_), _t(model.var_), _t(np.log(model.class_prior_)))

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        norm = -0.5 * torch.log(2 * torch.pi * self.var).sum(1)
        spread = ((z[:, None, :] - self.theta) ** 2 / self.var).sum(2)
        return self.log_prior + norm - 0.5 * spread


@dataclass
class ForestHead(Head):
    """A random forest's trees in one node table. Shape: left, right, feature [nodes] (-1 at leaves,
    children as indices into the table); threshold [nodes]; value [nodes, M] (each leaf's class
    fractions); roots [trees]."""

    left: torch.Tensor
    right: torch.Tensor
    feature: torch.Tensor
    threshold: torch.Tensor
    value: torch.Tensor
    roots: torch.Tensor
    ARRAYS: ClassVar = ("left", "right", "feature", "threshold", "value", "roots")
    INTEGER: ClassVar = frozenset({"left", "right", "feature", "roots"})

    @classmethod
    def from_sklearn(cls, forest) -> "ForestHead":
        parts, offset = {name: [] for name in cls.ARRAYS}, 0
        for tree in (est.tree_ for est in forest.estimators_):
            leaf = tree.children_left < 0
            parts["left"].append(np.where(leaf, -1, tree.children_left + offset))
            parts["right"].append(np.where(leaf, -1, tree.children_right + offset))
            parts["feature"].append(np.where(leaf, -1, tree.feature))
            parts["threshold"].append(tree.threshold)
            value = tree.value[:, 0, :]
            parts["value"].append(value / value.sum(1, keepdims=True))
            parts["roots"].append([offset])
            offset += tree.node_count
        cat = {name: np.concatenate(arrays) for name, arrays in parts.items()}
        return cls(*(_t(cat[n], torch.long if n in cls.INTEGER else torch.float64) for n in cls.ARRAYS))

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """Log of the mean leaf class fractions over the trees (scikit-learn's predict_proba)."""
        x = z.float().double()  # scikit-learn's trees split float32 features
        node = self.roots.expand(len(z), -1).clone()
        rows = torch.arange(len(z))[:, None]
        while True:
            feature = self.feature[node]
            inner = feature >= 0
            if not inner.any():
                break
            left = x[rows, feature.clamp_min(0)] <= self.threshold[node]
            node = torch.where(inner, torch.where(left, self.left[node], self.right[node]), node)
        return self.value[node].mean(1).clamp_min(1e-12).log()

    def summary(self) -> dict:
        return {"trees": len(self.roots), "nodes": len(self.left)}


@dataclass
class ClusterHead(Head):
    """k-means with a class per cluster. Shape: centers [k, K]; cluster_class [k] (index into the seen
    classes). A class's score is minus the distance to its nearest centre, so the top class is the
    nearest centre's (the cluster-to-label prediction)."""

    centers: torch.Tensor
    cluster_class: torch.Tensor
    num_seen: int
    ARRAYS: ClassVar = ("centers", "cluster_class")
    INTEGER: ClassVar = frozenset({"cluster_class"})

    @classmethod
    def from_sklearn(cls, model) -> "ClusterHead":
        return cls(_t(model.kmeans_.cluster_centers_), _t(model.cluster_class_, torch.long), len(model.classes_))

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        distance = torch.cdist(z, self.centers)
        out = torch.full((len(z), self.num_seen), float("-inf"), dtype=distance.dtype)
        index = self.cluster_class.expand(len(z), -1)
        return out.scatter_reduce(1, index, -distance, reduce="amax")

    def summary(self) -> dict:
        return {"clusters": int(self.centers.shape[0])}


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Family:
    """A registered family: its scikit-learn estimator (from a seed), its hyper-parameter grid (from the
    number of PCA components), and the head that holds the fitted model as arrays."""

    name: str
    model: str
    estimator: Callable[[int], Any]
    grid: Callable[[int], dict[str, list]]
    head: type[Head]


CLASSICAL: Registry[Family] = Registry("classical baseline")


@CLASSICAL.register("svm")
def svm() -> Family:
    from sklearn.svm import SVC

    return Family("svm", "PCA + RBF SVM", lambda seed: SVC(kernel="rbf"),
                  lambda k: {"C": list(GRID_C), "gamma": [g / k for g in GRID_GAMMA]}, SVMHead)


@CLASSICAL.register("logreg")
def logreg() -> Family:
    from sklearn.linear_model import LogisticRegression

    return Family("logreg", "PCA + multinomial logistic regression",
                  lambda seed: LogisticRegression(max_iter=2000, random_state=seed),
                  lambda k: {"C": [0.001, 0.01, 0.1, 1.0]}, LinearHead)


@CLASSICAL.register("naive_bayes")
def naive_bayes() -> Family:
    from sklearn.naive_bayes import GaussianNB

    return Family("naive_bayes", "PCA + Gaussian naive Bayes", lambda seed: GaussianNB(),
                  lambda k: {"var_smoothing": [1e-9, 1e-3, 0.1, 1.0]}, GaussianNBHead)


@CLASSICAL.register("random_forest")
def random_forest() -> Family:
    from sklearn.ensemble import RandomForestClassifier

    return Family("random_forest", "PCA + random forest (200 trees)",
                  lambda seed: RandomForestClassifier(200, random_state=seed),
                  lambda k: {"max_features": ["sqrt", 0.2], "min_samples_leaf": [1, 4]}, ForestHead)


@CLASSICAL.register("kmeans")
def kmeans() -> Family:
    from .cluster_label import ClusterToLabel

    return Family("kmeans", "PCA + k-means, cluster-to-label", lambda seed: ClusterToLabel(random_state=seed),
                  lambda k: {"n_clusters": [7, 28, 70, 140]}, ClusterHead)


# --------------------------------------------------------------------------- a fitted baseline


@dataclass
class ClassicalBaseline:
    """PCA, then a family's fitted model, over the canonical classes it saw in training.

    Shape: classes [M] (canonical labels of the M classes seen, the columns of `head.scores`).
    """

    family: str
    pca: PCAStep
    head: Head
    classes: torch.Tensor
    params: dict
    num_classes: int = NUM_CLASSES

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax of the family's scores over all canonical classes (unseen classes get 0). [N, C] float32."""
        scores = torch.full((len(images), self.num_classes), float("-inf"), dtype=torch.float64)
        for start in range(0, len(images), BATCH):
            z = self.pca.features(images[start:start + BATCH])
            scores[start:start + len(z), self.classes] = self.head.scores(z)
        return scores.softmax(1).float()

    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        """safetensors + JSON sidecar (kind "baseline", arch the family name): arrays only, no pickle."""
        tensors = {**_tensors(self.pca), **self.head.tensors(), "classes": self.classes}
        info = {"kind": "baseline", "arch": self.family, "params": self.params,
                "n_components": int(self.pca.components.shape[0]), "classes": list(CLASSES[: self.num_classes]),
                **(meta or {})}
        return save_checkpoint(path, {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, info)

    @classmethod
    def load(cls, path: str | Path) -> tuple["ClassicalBaseline", dict]:
        """A saved baseline, its arrays checked against what its family needs."""
        tensors, meta = load_checkpoint(path, kind="baseline")
        if meta["arch"] not in CLASSICAL:
            raise UnveilError(f"{checkpoint_paths(path)[1]}: unknown classical baseline {meta['arch']!r}; "
                              f"registered: {', '.join(CLASSICAL.names())}")
        head_type = CLASSICAL.create(meta["arch"]).head
        arrays = _checked_arrays(tensors, (*PCAStep.ARRAYS, *head_type.ARRAYS, "classes"),
                                 head_type.INTEGER | {"classes"}, path)
        head = _head_from(head_type, arrays, meta.get("params"), len(arrays["classes"]), path)
        pca = PCAStep(*(arrays[name] for name in PCAStep.ARRAYS))
        return cls(meta["arch"], pca, head, arrays["classes"], meta.get("params"), len(meta["classes"])), meta


def _tensors(pca: PCAStep) -> dict[str, torch.Tensor]:
    return {name: getattr(pca, name) for name in PCAStep.ARRAYS}


def _checked_arrays(tensors: dict, names: tuple[str, ...], integer: frozenset, path) -> dict[str, torch.Tensor]:
    for name in names:
        if name not in tensors or tensors[name].is_floating_point() == (name in integer):
            raise UnveilError(f"{path}: the baseline needs {'an integer' if name in integer else 'a float'} "
                              f"tensor {name!r}")
    return {k: tensors[k].double() if tensors[k].is_floating_point() else tensors[k] for k in names}


def _head_from(head_type: type[Head], arrays: dict, params: Any, seen: int, path) -> Head:
    """The head from its arrays, plus what a family keeps beside them (the SVM's gamma; k-means' count)."""
    own = {name: arrays[name] for name in head_type.ARRAYS}
    if head_type is SVMHead:
        gamma = params.get("gamma") if isinstance(params, dict) else None
        if not isinstance(gamma, (int, float)) or isinstance(gamma, bool):
            raise UnveilError(f"{path}: the sidecar's SVM gamma must be a number, got {gamma!r}")
        return SVMHead(**own, gamma=float(gamma))
    if head_type is ClusterHead:
        return ClusterHead(**own, num_seen=seen)
    return head_type(**own)


# --------------------------------------------------------------------------- fitting


def fit_baseline(family: str, images: torch.Tensor, labels: torch.Tensor, train_size: int = 5000,
                 n_components: int = 150, folds: int = 3, seed: int = 0,
                 n_jobs: int | None = None) -> tuple[ClassicalBaseline, dict]:
    """Fit PCA + the `family` model on a random subset of `train_size` faces, its hyper-parameters by
    `folds`-fold cross-validation on that subset only (the PCA is refit inside every fold).

    Returns the baseline (refit on the whole subset with the best parameters) and the search summary:
    best parameters, best CV accuracy, and the mean CV accuracy of every grid point.

    Shape:
        images: [N, 1, H, W] in [0, 1]; labels: int [N].
    """
    spec = CLASSICAL.create(family)
    x, y, n_components, folds = _training_subset(images, labels, train_size, n_components, folds, seed)
    search = _grid_search(spec, x, y, n_components, folds, seed, n_jobs)
    pca, model = search.best_estimator_.named_steps["pca"], search.best_estimator_.named_steps["model"]
    head = spec.head.from_sklearn(model)
    params = {k.removeprefix("model__"): _plain(v) for k, v in search.best_params_.items()}
    summary = {
        "family": family, "model": spec.model, "train_size": len(y), "n_components": int(n_components),
        "folds": folds, "best_params": params, "cv_accuracy": float(search.best_score_),
        "grid": [{**{k.removeprefix("model__"): _plain(v) for k, v in p.items()}, "cv_accuracy": float(s)}
                 for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])],
        **head.summary(),
    }
    classes = torch.as_tensor(model.classes_).long()
    return ClassicalBaseline(family, PCAStep.from_sklearn(pca), head, classes, params), summary


def _training_subset(images, labels, train_size, n_components, folds, seed):
    """(x, y, components, folds): a seeded random subset as numpy, with the component count cut to what
    the subset allows. Folds are not cut: more folds than the smallest class has faces is refused."""
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(labels), generator=gen)[: min(train_size, len(labels))]
    x = images[pick].detach().cpu().float().flatten(1).numpy()
    y = labels[pick].cpu().numpy()
    n_components = min(n_components, len(x) - len(x) // folds - 1, x.shape[1])
    counts = np.bincount(y)
    smallest = int(counts[counts > 0].min())
    if smallest < 2 or len(np.unique(y)) < 2:
        raise UnveilError(f"a classical baseline needs at least 2 classes with 2 faces each in {len(y)} training faces")
    if folds > smallest:
        raise UnveilError(f"--folds {folds}: stratified cross-validation needs as many faces of each class, and the "
                          f"{len(y)} training faces have {smallest} in their smallest class: lower --folds (at most "
                          f"{smallest}) or raise --train-size")
    return x, y, n_components, folds


def _grid_search(spec: Family, x: np.ndarray, y: np.ndarray, n_components: int, folds: int, seed: int, n_jobs):
    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    grid = {f"model__{k}": v for k, v in spec.grid(n_components).items()}
    with tempfile.TemporaryDirectory(prefix="unveil-baseline-") as cache:
        # PCA is refit inside every fold (nothing of a fold's held-out faces leaks into it), but the
        # cache fits it once per fold instead of once per grid point.
        pipeline = Pipeline([("pca", PCA(n_components, whiten=True, svd_solver="randomized", random_state=seed)),
                             ("model", spec.estimator(seed))], memory=cache)
        search = GridSearchCV(pipeline, grid, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                              scoring="accuracy", n_jobs=n_jobs, refit=True)
        search.fit(x, y)
    return search


def _plain(value: Any) -> Any:
    """A grid value as JSON (numpy numbers as Python ones)."""
    return value.item() if isinstance(value, np.generic) else value
