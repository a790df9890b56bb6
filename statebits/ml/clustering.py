"""Group the transitions of histories into clusters of similar states."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from statebits._dependencies import import_optional
from statebits.core.errors import ValidationError, invalid_parameter
from statebits.ml._base import ParamsMixin, check_finite, check_fitted, warn_clamped
from statebits.ml._input import as_history_frame, require_rows, select_identity
from statebits.ml._output import like_input
from statebits.ml.anomaly import _resolve_index
from statebits.ml.features import FeatureSpec, features_from_frame

__all__ = ["StateClusterer", "METHODS", "DEFAULT_FEATURES"]

#: Features the clusterer reads when ``features`` is None: the level, and the
#: local level and spread of the 5 transitions before it. Adding ``delta``
#: would split states by direction of movement rather than by level.
DEFAULT_FEATURES = FeatureSpec(
    lags=(),
    windows=(5,),
    calendar=False,
    columns=("value", "rolling_mean_5", "rolling_std_5"),
)

# name -> (module, class, name of the cluster-count parameter or None)
_METHODS: dict[str, tuple[str, str, str | None]] = {
    "kmeans": ("sklearn.cluster", "KMeans", "n_clusters"),
    "minibatch_kmeans": ("sklearn.cluster", "MiniBatchKMeans", "n_clusters"),
    "agglomerative": ("sklearn.cluster", "AgglomerativeClustering", "n_clusters"),
    "birch": ("sklearn.cluster", "Birch", "n_clusters"),
    "gaussian_mixture": ("sklearn.mixture", "GaussianMixture", "n_components"),
    "dbscan": ("sklearn.cluster", "DBSCAN", None),
    "hdbscan": ("sklearn.cluster", "HDBSCAN", None),
}

#: Every accepted value of ``method``.
METHODS: tuple[str, ...] = tuple(_METHODS)


class StateClusterer(ParamsMixin):
    """Cluster transitions by their feature vectors.

    Features are scaled by their median and interquartile range before
    clustering, so one extreme value does not squash the others together.

    Parameters
    ----------
    method : str, default="kmeans"
        One of ``"kmeans"``, ``"minibatch_kmeans"``, ``"agglomerative"``,
        ``"birch"``, ``"gaussian_mixture"``, ``"dbscan"``, ``"hdbscan"``
        (all from scikit-learn).
    n_clusters : int, default=3
        Number of clusters for the methods that take one. Lowered, with a
        warning, to the number of distinct feature rows when it exceeds it.
        Density methods (dbscan, hdbscan) ignore it.
    features : FeatureSpec or None, default=None
        Features to cluster on. None uses ``DEFAULT_FEATURES``.
    params : dict or None, default=None
        Extra keyword arguments for the scikit-learn estimator, for example
        ``{"eps": 0.3}`` for dbscan.
    random_state : int, default=0
        Seed for the randomised methods.

    Attributes
    ----------
    labels_ : numpy.ndarray
        Cluster of each training row, in identity and step order; -1 marks
        noise for the density methods.
    n_clusters_ : int
        Number of clusters found, noise excluded.
    cluster_centers_ : pandas.DataFrame
        Mean feature values of each cluster, in the features' own units.
    feature_names_in_ : list of str

    Examples
    --------
    >>> clusterer = StateClusterer(method="kmeans", n_clusters=3).fit(frame)  # doctest: +SKIP
    >>> clusterer.predict_cluster(frame, transition_index=-1)["cluster"]  # doctest: +SKIP
    """

    def __init__(
        self,
        method: str = "kmeans",
        n_clusters: int = 3,
        *,
        features: FeatureSpec | None = None,
        params: dict[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.n_clusters = n_clusters
        self.features = features
        self.params = params
        self.random_state = random_state

    def fit(self, data: Any, y: Any = None, *, identity: Any = None) -> "StateClusterer":
        """Fit the clusters on a history; returns self."""
        owner = "StateClusterer.fit"
        self._validate_parameters()
        frame = as_history_frame(data, owner=owner)
        if identity is not None:
            frame = select_identity(frame, identity, owner)
        require_rows(len(frame), 2, f"StateClusterer(method={self.method!r})")

        spec = self.features or DEFAULT_FEATURES
        matrix = features_from_frame(frame, spec).to_numpy()
        check_finite(matrix, owner)
        scaler = import_optional("sklearn.preprocessing", feature="clustering").RobustScaler()
        scaled = scaler.fit_transform(matrix)

        estimator = self._build_estimator(scaled)
        if hasattr(estimator, "fit_predict"):
            labels = estimator.fit_predict(scaled)
        else:
            labels = estimator.fit(scaled).predict(scaled)
        labels = np.asarray(labels, dtype="int64")

        self.spec_ = spec
        self.feature_names_in_ = list(spec.names)
        self.n_features_in_ = matrix.shape[1]
        self.scaler_ = scaler
        self.estimator_ = estimator
        self.labels_ = labels
        self.n_clusters_ = int(len(set(labels.tolist()) - {-1}))
        self.cluster_centers_ = pd.DataFrame(matrix, columns=self.feature_names_in_).groupby(labels).mean()
        self.cluster_centers_.index.name = "cluster"
        self._train_scaled = scaled

        return self

    def _validate_parameters(self) -> None:
        if self.method not in _METHODS:
            raise invalid_parameter("method", self.method, f"one of {list(METHODS)}", "StateClusterer")
        if isinstance(self.n_clusters, bool) or not isinstance(self.n_clusters, (int, np.integer)) or self.n_clusters < 1:
            raise invalid_parameter("n_clusters", self.n_clusters, "a positive integer", "StateClusterer")
        if self.features is not None and not isinstance(self.features, FeatureSpec):
            raise invalid_parameter("features", self.features, "a FeatureSpec or None", "StateClusterer")
        if self.params is not None and not isinstance(self.params, dict):
            raise invalid_parameter("params", self.params, "a dict of keyword arguments or None", "StateClusterer")

    def _build_estimator(self, scaled: np.ndarray) -> Any:
        module, name, count_param = _METHODS[self.method]
        cls = getattr(import_optional(module, feature=f"the {self.method!r} clusterer"), name)
        signature = inspect.signature(cls.__init__).parameters
        params = dict(self.params or {})
        owner = f"StateClusterer(method={self.method!r})"

        if count_param is not None:
            distinct = len(np.unique(scaled, axis=0))
            requested = int(params.get(count_param, self.n_clusters))
            if requested > distinct:
                warn_clamped(owner, "n_clusters", requested, distinct, f"{distinct} distinct feature rows")
            params[count_param] = min(requested, distinct)
        for size_param in ("min_samples", "min_cluster_size"):
            # Density methods need these below the row count.
            requested = params.get(size_param, signature[size_param].default if size_param in signature else None)
            if isinstance(requested, int) and requested > len(scaled):
                warn_clamped(owner, size_param, requested, len(scaled), f"{len(scaled)} rows")
                params[size_param] = len(scaled)
        if self.method == "hdbscan" and len(scaled) < 3:
            raise ValidationError(f"{owner} needs at least 3 transitions, got {len(scaled)}")
        if "random_state" in signature:
            params.setdefault("random_state", self.random_state)
        if self.method in ("kmeans", "minibatch_kmeans"):
            params.setdefault("n_init", 10)
        if self.method == "hdbscan" and "copy" in signature:
            # Keep the caller's data untouched (and silence scikit-learn's
            # warning about this default changing).
            params.setdefault("copy", True)
        return cls(**params)

    # Reading clusters -------------------------------------------------------

    def get_all_clusters(self, data: Any, *, identity: Any = None) -> dict[int, int]:
        """Return how many transitions of ``data`` fall in each cluster.

        Returns
        -------
        dict of int to int
            Cluster label to count, sorted by label; -1 counts noise.
        """
        check_fitted(self, "labels_")
        frame = as_history_frame(data, owner="StateClusterer.get_all_clusters")
        if identity is not None:
            frame = select_identity(frame, identity, "StateClusterer.get_all_clusters")
        labels = self._assign(features_from_frame(frame, self.spec_).to_numpy())
        values, counts = np.unique(labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def predict_cluster(self, data: Any, transition_index: int = -1, *, identity: Any = None) -> dict[str, Any]:
        """Assign one transition to a cluster.

        Returns
        -------
        dict
            ``cluster`` (int, -1 for noise), ``step``, ``identity``,
            ``distance`` (Euclidean, in robust-scaled feature units, to the
            cluster's centre, or to the nearest noise point for noise) and
            ``features`` (the row's feature values by name).
        """
        check_fitted(self, "labels_")
        owner = "StateClusterer.predict_cluster"
        frame = select_identity(as_history_frame(data, owner=owner), identity, owner)
        position = _resolve_index(transition_index, len(frame), owner)
        start = max(0, position - self.spec_.context)
        window = frame.iloc[start : position + 1].reset_index(drop=True)
        features = features_from_frame(window, self.spec_).iloc[-1]

        matrix = features.to_numpy()[None, :]
        cluster = int(self._assign(matrix)[0])
        scaled = self.scaler_.transform(matrix)[0]
        members = self._train_scaled[self.labels_ == cluster]
        distance = float(np.linalg.norm(members.mean(axis=0) - scaled)) if len(members) else float("nan")
        row = frame.iloc[position]
        return {
            "cluster": cluster,
            "step": int(row["step"]),
            "identity": row["identity"],
            "distance": distance,
            "features": {name: float(v) for name, v in features.items()},
        }

    def cluster_frame(self, data: Any) -> Any:
        """Return the input frame with a ``cluster`` column, rows in input order."""
        check_fitted(self, "labels_")
        frame = as_history_frame(data, owner="StateClusterer.cluster_frame")
        frame["cluster"] = self._assign(features_from_frame(frame, self.spec_).to_numpy()) if len(frame) else []
        return like_input(data, frame)

    def _assign(self, matrix: np.ndarray) -> np.ndarray:
        check_finite(matrix, "StateClusterer")
        scaled = self.scaler_.transform(matrix)
        if hasattr(self.estimator_, "predict"):
            return np.asarray(self.estimator_.predict(scaled), dtype="int64")
        # Agglomerative and density methods cannot label new rows: take the
        # label of the nearest training row, and for dbscan mark rows farther
        # than eps from every core sample as noise.
        neighbors = import_optional("sklearn.neighbors", feature="clustering").NearestNeighbors(n_neighbors=1)
        reference, labels = self._train_scaled, self.labels_
        core = getattr(self.estimator_, "core_sample_indices_", None)
        if core is not None and len(core):
            reference, labels = reference[core], labels[core]
        distance, nearest = neighbors.fit(reference).kneighbors(scaled)
        assigned = labels[nearest[:, 0]]
        eps = getattr(self.estimator_, "eps", None)
        if core is not None and eps is not None:
            assigned = np.where(distance[:, 0] <= eps, assigned, -1)
        return assigned.astype("int64")

