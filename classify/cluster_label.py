"""k-means as a classifier (the cluster-to-label model of the masked-FER studies), as a scikit-learn
estimator so that the same PCA pipeline and cross-validation search fit it. Its own module because
scikit-learn's base classes cost most of a second to import, which the command line should not pay."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class ClusterToLabel(ClassifierMixin, BaseEstimator):
    """The scikit-learn estimator behind `kmeans`: k-means on the training faces, each cluster labelled
    with the majority class of its training faces; predicts the label of the nearest centre."""

    def __init__(self, n_clusters: int = 7, n_init: int = 3, random_state: int = 0):
        self.n_clusters, self.n_init, self.random_state = n_clusters, n_init, random_state

    def fit(self, x: np.ndarray, y: np.ndarray) -> "ClusterToLabel":
        from sklearn.cluster import KMeans

        self.classes_, seen = np.unique(y, return_inverse=True)
        clusters = min(self.n_clusters, len(x))
        self.kmeans_ = KMeans(clusters, n_init=self.n_init, random_state=self.random_state).fit(x)
        votes = np.zeros((clusters, len(self.classes_)), dtype=np.int64)
        np.add.at(votes, (self.kmeans_.labels_, seen), 1)
        self.cluster_class_ = votes.argmax(1)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.cluster_class_[self.kmeans_.predict(x)]]
