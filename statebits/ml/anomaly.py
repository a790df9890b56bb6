"""Anomaly detection on histories: one score convention for every backend.

Every method returns a score where higher means more anomalous (PyOD's
convention), computed on the robust-scaled features of
:mod:`statebits.ml.features`. A transition is flagged when its score is above
the fitted threshold:

- ``contamination="auto"``: threshold = median + 5 robust standard deviations
  (1.4826 x MAD) of the training scores, so a series without outliers flags
  few or no points instead of a fixed share.
- ``contamination=c`` with 0 < c <= 0.5: threshold = the (1 - c) quantile of
  the training scores, so about a share ``c`` of the training rows is flagged.

The default method is ECOD on four features: value, delta, and the z-score
and standard deviation against the 50 transitions before each row. On five
series of the Numenta Anomaly Benchmark it hit more labelled anomaly windows,
with fewer flags outside them, than a causal rolling z-score. The figures are
in docs/benchmarks.md, produced by benchmarks/bench_ml.py.
"""

from __future__ import annotations

import collections
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from statebits._dependencies import import_optional
from statebits.core.errors import ValidationError, invalid_parameter
from statebits.ml._base import ParamsMixin, check_finite, check_fitted, warn_clamped
from statebits.ml._input import as_history_frame, require_rows, select_identity, ORIGINAL_POSITION
from statebits.ml._output import like_input
from statebits.ml.features import FeatureSpec, features_from_frame

__all__ = ["AnomalyDetector", "AnomalyResult", "AnomalyWatch", "METHODS", "DEFAULT_FEATURES"]

logger = logging.getLogger(__name__)

#: Features the detector reads when ``features`` is None.
DEFAULT_FEATURES = FeatureSpec(
    lags=(),
    windows=(50,),
    calendar=False,
    columns=("value", "delta", "rolling_z_50", "rolling_std_50"),
)

#: Robust standard deviations above the median score that "auto" flags.
AUTO_THRESHOLD_MADS = 5.0

#: Minimum number of transitions any method is fitted on.
MIN_FIT_ROWS = 10

# scikit-learn detectors: name -> (module, class).
_SKLEARN_METHODS = {
    "isolation_forest": ("sklearn.ensemble", "IsolationForest"),
    "lof": ("sklearn.neighbors", "LocalOutlierFactor"),
    "ocsvm": ("sklearn.svm", "OneClassSVM"),
}

# PyOD detectors: name -> (module, class). Only detectors whose
# decision_function scores each row on its own are listed: PyOD's COF, SOD,
# LOCI and LMDD score new rows against each other, so a row's score would
# depend on the rest of the batch. LODA is left out because PyOD 3.6's LODA
# gave an isolated six-sigma spike the lowest score of 400 rows, against the
# higher-is-more-anomalous convention.
_PYOD_METHODS = {
    "hbos": ("pyod.models.hbos", "HBOS"),
    "knn": ("pyod.models.knn", "KNN"),
    "iforest": ("pyod.models.iforest", "IForest"),
    "pca": ("pyod.models.pca", "PCA"),
    "mcd": ("pyod.models.mcd", "MCD"),
    "cblof": ("pyod.models.cblof", "CBLOF"),
    "inne": ("pyod.models.inne", "INNE"),
    "kde": ("pyod.models.kde", "KDE"),
    "gmm": ("pyod.models.gmm", "GMM"),
    "auto_encoder": ("pyod.models.auto_encoder", "AutoEncoder"),
    "vae": ("pyod.models.vae", "VAE"),
    "deep_svdd": ("pyod.models.deep_svdd", "DeepSVDD"),
}

_STATISTICAL_METHODS = ("zscore", "mad")

# Empirical tail-probability detectors, scored against the training ECDF.
_TAIL_METHODS = ("ecod", "copod")

#: Every accepted value of ``method``.
METHODS: tuple[str, ...] = (*_STATISTICAL_METHODS, *_TAIL_METHODS, *_SKLEARN_METHODS, *_PYOD_METHODS)


@dataclass(frozen=True)
class AnomalyResult:
    """The verdict on one transition.

    Attributes
    ----------
    is_anomaly : bool
        True when ``anomaly_score`` is above ``threshold``.
    anomaly_score : float
        Higher means more anomalous, for every method.
    threshold : float
        The fitted threshold the score was compared with.
    contamination : float or "auto"
        The contamination the detector was fitted with.
    method : str
        The detection method.
    step : int
        Step of the transition in its history (1-based).
    identity : object
        Identity of the statebit.
    value : float
        The transition's value.
    features : dict
        The feature values the score was computed from, by name.
    """

    is_anomaly: bool
    anomaly_score: float
    threshold: float
    contamination: float | str
    method: str
    step: int
    identity: Any = None
    value: float = float("nan")
    features: dict[str, float] | None = None


class AnomalyDetector(ParamsMixin):
    """Score transitions of a history for anomalies.

    Parameters
    ----------
    method : str, default="ecod"
        One of ``"zscore"``, ``"mad"`` (per-feature statistics),
        ``"ecod"``, ``"copod"`` (empirical tail probabilities, see below),
        ``"isolation_forest"``, ``"lof"``, ``"ocsvm"`` (scikit-learn), or a
        PyOD detector: ``"hbos"``, ``"knn"``, ``"iforest"``, ``"pca"``,
        ``"mcd"``, ``"cblof"``, ``"inne"``, ``"kde"``, ``"gmm"``,
        ``"auto_encoder"``, ``"vae"``, ``"deep_svdd"``.

        ``"ecod"`` and ``"copod"`` use the scoring rules of PyOD's ECOD and
        COPOD (Li et al., 2022 and 2020) but evaluate every row against the
        training data's empirical distribution. PyOD's own
        ``decision_function`` recomputes the distribution over the training
        and new rows together, so a row's score would change with the other
        rows scored in the same call.
    contamination : float or "auto", default="auto"
        Expected share of anomalies in (0, 0.5], or ``"auto"`` to set the
        threshold from robust statistics of the training scores.
    features : FeatureSpec or None, default=None
        Features to score. None uses ``DEFAULT_FEATURES``.
    params : dict or None, default=None
        Extra keyword arguments for the backend estimator, such as
        ``{"n_neighbors": 10}`` for ``"lof"``.
    random_state : int, default=0
        Seed for randomised backends, so results repeat.

    Attributes
    ----------
    threshold_ : float
        Scores above it are anomalies.
    decision_scores_ : numpy.ndarray
        Scores of the training rows, in identity and step order.
    labels_ : numpy.ndarray
        Boolean flags of the training rows.
    feature_names_in_ : list of str
        Names of the features, in column order.
    n_samples_fit_ : int
        Number of training rows.

    Examples
    --------
    >>> detector = AnomalyDetector(method="mad").fit(frame)  # doctest: +SKIP
    >>> detector.detect(frame, transition_index=-1).is_anomaly  # doctest: +SKIP
    """

    def __init__(
        self,
        method: str = "ecod",
        contamination: float | str = "auto",
        *,
        features: FeatureSpec | None = None,
        params: dict[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.contamination = contamination
        self.features = features
        self.params = params
        self.random_state = random_state

    # Fitting ---------------------------------------------------------------

    def fit(self, data: Any, y: Any = None, *, identity: Any = None) -> "AnomalyDetector":
        """Fit the detector on a history and set the threshold.

        Parameters
        ----------
        data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
            Training history; a collection frame is fitted on all identities
            unless ``identity`` selects one.
        y : ignored
            Present for scikit-learn compatibility.
        identity : object, optional
            Fit on this identity only.

        Returns
        -------
        AnomalyDetector
            The fitted detector.
        """
        owner = "AnomalyDetector.fit"
        self._validate_parameters()
        frame = as_history_frame(data, owner=owner)
        if identity is not None:
            frame = select_identity(frame, identity, owner)
        require_rows(len(frame), MIN_FIT_ROWS, f"AnomalyDetector(method={self.method!r})")

        spec = self.features or DEFAULT_FEATURES
        matrix = features_from_frame(frame, spec).to_numpy()
        check_finite(matrix, owner)

        scaler = import_optional("sklearn.preprocessing", feature="anomaly detection").RobustScaler()
        scaled = scaler.fit_transform(matrix)
        estimator, scores = self._fit_backend(scaled)
        scores = np.asarray(scores, dtype="float64")

        self.spec_ = spec
        self.feature_names_in_ = list(spec.names)
        self.n_features_in_ = matrix.shape[1]
        self.scaler_ = scaler
        self.estimator_ = estimator
        self.decision_scores_ = scores
        self.threshold_ = self._threshold(scores)
        self.labels_ = scores > self.threshold_
        self.n_samples_fit_ = len(frame)

        return self

    def _validate_parameters(self) -> None:
        if self.method not in METHODS:
            raise invalid_parameter("method", self.method, f"one of {list(METHODS)}", "AnomalyDetector")
        contamination = self.contamination
        if isinstance(contamination, str):
            if contamination != "auto":
                raise invalid_parameter("contamination", contamination, '"auto" or a number in (0, 0.5]', "AnomalyDetector")
        elif not isinstance(contamination, (int, float)) or isinstance(contamination, bool) or not 0 < contamination <= 0.5:
            raise invalid_parameter("contamination", contamination, '"auto" or a number in (0, 0.5]', "AnomalyDetector")
        if self.features is not None and not isinstance(self.features, FeatureSpec):
            raise invalid_parameter("features", self.features, "a FeatureSpec or None", "AnomalyDetector")
        if self.params is not None and not isinstance(self.params, dict):
            raise invalid_parameter("params", self.params, "a dict of keyword arguments or None", "AnomalyDetector")

    def _threshold(self, scores: np.ndarray) -> float:
        if self.contamination != "auto":
            return float(np.quantile(scores, 1.0 - float(self.contamination)))
        median = float(np.median(scores))
        spread = 1.4826 * float(np.median(np.abs(scores - median)))
        if spread == 0.0:
            # More than half the scores are equal: fall back to the standard
            # deviation, which a few outlying scores still make positive.
            spread = float(np.std(scores))
        if spread == 0.0:
            # Every training score is equal; flag only new, different rows.
            return float(np.nextafter(median, np.inf))
        return median + AUTO_THRESHOLD_MADS * spread

    def _fit_backend(self, matrix: np.ndarray) -> tuple[Any, np.ndarray]:
        params = dict(self.params or {})
        n_rows = matrix.shape[0]

        if self.method in _STATISTICAL_METHODS:
            estimator = _RobustStatistic(robust=self.method == "mad").fit(matrix)
            return estimator, estimator.score(matrix)

        if self.method in _TAIL_METHODS:
            estimator = _TailProbability(copula=self.method == "copod").fit(matrix)
            return estimator, estimator.score(matrix)

        if self.method in _SKLEARN_METHODS:
            module, name = _SKLEARN_METHODS[self.method]
            cls = getattr(import_optional(module, feature=f"the {self.method!r} detector"), name)
            if self.method == "lof":
                params["novelty"] = True
            self._clamp_neighbours(params, cls, n_rows)
            _seed(params, cls, self.random_state)
            estimator = cls(**params).fit(matrix)
            if self.method == "lof":
                return estimator, -estimator.negative_outlier_factor_
            return estimator, -estimator.score_samples(matrix)

        module, name = _PYOD_METHODS[self.method]
        cls = getattr(import_optional(module, feature=f"the {self.method!r} detector"), name)
        self._clamp_neighbours(params, cls, n_rows)
        _seed(params, cls, self.random_state)
        signature = inspect.signature(cls.__init__).parameters
        if "verbose" in signature:
            params.setdefault("verbose", 0)
        if "n_features" in signature:
            # DeepSVDD needs the input width up front.
            params.setdefault("n_features", matrix.shape[1])
        estimator = cls(**params)
        estimator.fit(matrix)
        return estimator, estimator.decision_scores_

    def _clamp_neighbours(self, params: dict[str, Any], cls: type, n_rows: int) -> None:
        # k-neighbour methods need k < rows, so a larger k is lowered with a warning.
        signature = inspect.signature(cls.__init__).parameters
        if "n_neighbors" not in signature:
            return
        requested = params.get("n_neighbors", signature["n_neighbors"].default)
        if isinstance(requested, int) and requested > n_rows - 1:
            warn_clamped(f"AnomalyDetector(method={self.method!r})", "n_neighbors", requested, n_rows - 1, f"{n_rows} rows")
            params["n_neighbors"] = n_rows - 1

    # Scoring ---------------------------------------------------------------

    def score_samples(self, data: Any) -> np.ndarray:
        """Return the anomaly score of every row, in the input's row order."""
        check_fitted(self, "threshold_")
        frame = as_history_frame(data, owner="AnomalyDetector.score_samples")
        scores = self._score_sorted(frame)
        ordered = np.empty_like(scores)
        ordered[frame[ORIGINAL_POSITION].to_numpy()] = scores
        return ordered

    def score_frame(self, data: Any) -> Any:
        """Return the input frame with ``anomaly_score`` and ``is_anomaly`` columns.

        Rows keep the input's order. A Polars input returns a Polars frame.
        """
        check_fitted(self, "threshold_")
        frame = as_history_frame(data, owner="AnomalyDetector.score_frame")
        scores = self._score_sorted(frame)
        frame["anomaly_score"] = scores
        frame["is_anomaly"] = scores > self.threshold_
        return like_input(data, frame)

    def detect(self, data: Any, transition_index: int = -1, *, identity: Any = None) -> AnomalyResult:
        """Score one transition of a history.

        Parameters
        ----------
        data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
            The history that contains the transition.
        transition_index : int, default=-1
            Position in the history, as in ``statebit.history[i]``; negative
            values count from the end.
        identity : object, optional
            Which identity of a collection frame to read.

        Returns
        -------
        AnomalyResult
        """
        check_fitted(self, "threshold_")
        owner = "AnomalyDetector.detect"
        frame = select_identity(as_history_frame(data, owner=owner), identity, owner)
        position = _resolve_index(transition_index, len(frame), owner)

        # Features of a row depend only on the rows before it, up to the
        # spec's context, so only that slice is built.
        start = max(0, position - self.spec_.context)
        window = frame.iloc[start : position + 1].reset_index(drop=True)
        features = features_from_frame(window, self.spec_)
        row = features.iloc[[-1]]
        score = float(self._score_matrix(row.to_numpy())[0])
        return self._result(score, frame.iloc[position], row.iloc[0])

    def _score_sorted(self, frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.empty(0, dtype="float64")
        matrix = features_from_frame(frame, self.spec_).to_numpy()
        return self._score_matrix(matrix)

    def _score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        check_finite(matrix, "AnomalyDetector")
        scaled = self.scaler_.transform(matrix)
        if self.method in _PYOD_METHODS:
            scores = self.estimator_.decision_function(scaled)
        elif self.method in _SKLEARN_METHODS:
            scores = -self.estimator_.score_samples(scaled)
        else:
            scores = self.estimator_.score(scaled)
        return np.asarray(scores, dtype="float64")

    def _result(self, score: float, row: pd.Series, features: pd.Series) -> AnomalyResult:
        return AnomalyResult(
            is_anomaly=bool(score > self.threshold_),
            anomaly_score=score,
            threshold=float(self.threshold_),
            contamination=self.contamination,
            method=self.method,
            step=int(row["step"]),
            identity=row["identity"],
            value=float(features.get("value", np.nan)),
            features={name: float(v) for name, v in features.items()},
        )

    # Streaming -------------------------------------------------------------

    def watch(
        self,
        statebit: Any,
        callback: Callable[[AnomalyResult, Any], None] | None = None,
    ) -> "AnomalyWatch":
        """Score each new transition of ``statebit`` as it is recorded.

        History is immutable, so flagged transitions are not changed. They
        are reported instead: the handle's ``anomalies`` list collects every
        flagged :class:`AnomalyResult`, and ``callback(result, transition)``
        runs for each of them. Call ``handle.stop()`` (or leave a ``with``
        block) to stop watching.

        Parameters
        ----------
        statebit : Statebit
            Needs ``add_observer``; ``remove_observer`` is used by ``stop``
            when it exists.
        callback : callable, optional
            Called with the result and the transition of each anomaly.

        Returns
        -------
        AnomalyWatch
        """
        check_fitted(self, "threshold_")
        if not callable(getattr(statebit, "add_observer", None)):
            raise ValidationError(
                f"watch needs a Statebit with add_observer(), got {type(statebit).__name__}; "
                "use score_frame for frames"
            )
        return AnomalyWatch(self, statebit, callback)


class AnomalyWatch:
    """A running :meth:`AnomalyDetector.watch` on one statebit.

    Attributes
    ----------
    results : collections.deque of AnomalyResult
        The most recent results, flagged or not (at most ``max_results``).
    anomalies : list of AnomalyResult
        Every flagged result since watching began.
    """

    def __init__(self, detector: AnomalyDetector, statebit: Any, callback: Callable[[AnomalyResult, Any], None] | None, max_results: int = 1000) -> None:
        self.detector = detector
        self.statebit = statebit
        self.callback = callback
        self.results: collections.deque[AnomalyResult] = collections.deque(maxlen=max_results)
        self.anomalies: list[AnomalyResult] = []
        self._lock = threading.Lock()
        self._active = True

        # Keep only the transitions the features of the next row depend on.
        self._context = detector.spec_.context + 1
        self._recent: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=self._context)
        for transition in list(getattr(statebit, "history", ()))[-self._context :]:
            self._recent.append(_transition_row(transition))
        statebit.add_observer(self._on_transition)

    def _on_transition(self, statebit: Any, transition: Any) -> None:
        if not self._active:
            return
        with self._lock:
            self._recent.append(_transition_row(transition))
            rows = list(self._recent)
        frame = pd.DataFrame(rows, columns=["step", "timestamp", "to_value", "confidence"])
        frame.insert(0, "identity", getattr(statebit, "identity", None))
        try:
            result = self.detector.detect(frame, transition_index=-1)
        except ValidationError as exc:
            # A value that has no features (for example a string) is skipped
            # so the statebit keeps recording.
            logger.warning("anomaly watch on %r skipped step %s: %s", getattr(statebit, "identity", None), getattr(transition, "step", None), exc)
            return
        self.results.append(result)
        if result.is_anomaly:
            self.anomalies.append(result)
            if self.callback is not None:
                self.callback(result, transition)

    def stop(self) -> None:
        """Stop scoring new transitions."""
        self._active = False
        remove = getattr(self.statebit, "remove_observer", None)
        if callable(remove):
            try:
                remove(self._on_transition)
            except (KeyError, ValueError):
                logger.debug("observer already removed from %r", getattr(self.statebit, "identity", None))

    def __enter__(self) -> "AnomalyWatch":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        identity = getattr(self.statebit, "identity", None)
        state = "active" if self._active else "stopped"
        return f"AnomalyWatch(identity={identity!r}, {state}, anomalies={len(self.anomalies)})"


class _RobustStatistic:
    """Per-feature z-scores; the score of a row is its largest absolute z.

    With ``robust=True`` the centre is the median and the scale 1.4826 x MAD
    (the "mad" method); otherwise the mean and standard deviation ("zscore").
    """

    def __init__(self, robust: bool) -> None:
        self.robust = robust

    def fit(self, matrix: np.ndarray) -> "_RobustStatistic":
        if self.robust:
            self.center_ = np.median(matrix, axis=0)
            scale = 1.4826 * np.median(np.abs(matrix - self.center_), axis=0)
            # A feature with MAD 0 (mostly one value) falls back to the mean
            # absolute deviation scaled to match a normal distribution.
            fallback = 1.2533 * np.mean(np.abs(matrix - self.center_), axis=0)
            scale = np.where(scale > 0, scale, fallback)
        else:
            self.center_ = matrix.mean(axis=0)
            scale = matrix.std(axis=0)
        # A constant feature gets a tiny scale, so any change scores high but finite.
        floor = np.finfo("float64").eps * np.maximum(1.0, np.abs(self.center_))
        self.scale_ = np.maximum(scale, floor)
        return self

    def score(self, matrix: np.ndarray) -> np.ndarray:
        return np.max(np.abs(matrix - self.center_) / self.scale_, axis=1)


class _TailProbability:
    """ECOD and COPOD scores against the training data's empirical distribution.

    For each feature, the left and right tail probabilities of a value are
    read from the sorted training column, counting the value itself as one
    more sample, so they are never zero. ECOD sums, over features, the
    largest of -log(left), -log(right) and the -log tail on the side the
    training column is skewed to. COPOD sums the larger of the skewed tail
    and the mean of both tails.
    """

    def __init__(self, copula: bool) -> None:
        self.copula = copula

    def fit(self, matrix: np.ndarray) -> "_TailProbability":
        self.sorted_ = np.sort(matrix, axis=0)
        centred = matrix - matrix.mean(axis=0)
        spread = centred.std(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            skewness = np.where(spread > 0, (centred**3).mean(axis=0) / spread**3, 0.0)
        self.skew_sign_ = np.sign(skewness)
        return self

    def score(self, matrix: np.ndarray) -> np.ndarray:
        n_rows = self.sorted_.shape[0]
        left = np.empty_like(matrix, dtype="float64")
        right = np.empty_like(matrix, dtype="float64")
        for j in range(matrix.shape[1]):
            column = self.sorted_[:, j]
            at_most = np.searchsorted(column, matrix[:, j], side="right")
            at_least = n_rows - np.searchsorted(column, matrix[:, j], side="left")
            left[:, j] = -np.log((at_most + 1) / (n_rows + 1))
            right[:, j] = -np.log((at_least + 1) / (n_rows + 1))
        # Right-skewed features take the right tail, left-skewed the left,
        # symmetric ones both.
        skewed = np.where(self.skew_sign_ > 0, right, np.where(self.skew_sign_ < 0, left, left + right))
        if self.copula:
            return np.maximum(skewed, (left + right) / 2).sum(axis=1)
        return np.maximum(np.maximum(left, right), skewed).sum(axis=1)


def _seed(params: dict[str, Any], cls: type, random_state: int) -> None:
    if "random_state" in inspect.signature(cls.__init__).parameters:
        params.setdefault("random_state", random_state)


def _resolve_index(index: int, n_rows: int, owner: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise invalid_parameter("transition_index", index, "an integer position in the history", owner)
    position = int(index) + n_rows if index < 0 else int(index)
    if not 0 <= position < n_rows:
        raise IndexError(f"{owner}: transition_index {index} is out of range for a history of {n_rows} transitions")
    return position


def _transition_row(transition: Any) -> tuple[Any, ...]:
    return (
        getattr(transition, "step", None),
        getattr(transition, "timestamp", None),
        getattr(transition, "to_value", None),
        getattr(transition, "confidence", 1.0),
    )
