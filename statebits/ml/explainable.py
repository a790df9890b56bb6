"""SHAP values for the fitted models of :mod:`statebits.ml`, with feature names.

Each model is wrapped as a function from a named feature matrix to one
number per row, and SHAP's model-agnostic explainer (exact for up to 10
features, permutation sampling above) attributes that number to the features:

- AnomalyDetector: the anomaly score, from the detector's features.
- StateClusterer: the distance, in robust-scaled units, to the nearest
  cluster centre (how untypical the state is).
- SequencePredictor and AutoMLPredictor: the forecast of the next value,
  from the last values ``lag_1`` (most recent) to ``lag_L``. The row at
  step ``s`` explains the forecast of the value after step ``s``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from statebits._dependencies import import_optional
from statebits.core.errors import InsufficientDataError, ValidationError, invalid_parameter
from statebits.ml._base import ParamsMixin, check_fitted, warn_clamped
from statebits.ml._input import as_history_frame, select_identity
from statebits.ml.features import features_from_frame, numeric_values

__all__ = ["ExplainableAI"]


class ExplainableAI(ParamsMixin):
    """Explain a fitted statebits model with SHAP values.

    Parameters
    ----------
    model : AnomalyDetector, StateClusterer, SequencePredictor or AutoMLPredictor
        A fitted model.
    background_size : int, default=100
        Rows sampled from the history passed to ``fit`` as SHAP's background
        data. Lowered with a warning when the history is shorter.
    random_state : int, default=0
        Seed for sampling the background and for permutation sampling.

    Attributes
    ----------
    feature_names_ : list of str
    expected_value_ : float
        Mean model output over the background, the base of every explanation.

    Examples
    --------
    >>> detector = AnomalyDetector().fit(frame)  # doctest: +SKIP
    >>> xai = ExplainableAI(detector).fit(frame)  # doctest: +SKIP
    >>> xai.explain_transition(frame, transition_index=-1)["contributions"]  # doctest: +SKIP
    """

    def __init__(self, model: Any, *, background_size: int = 100, random_state: int = 0) -> None:
        self.model = model
        self.background_size = background_size
        self.random_state = random_state

    def fit(self, data: Any, y: Any = None, *, identity: Any = None) -> "ExplainableAI":
        """Sample the background rows from ``data`` and build the explainer; returns self."""
        if isinstance(self.background_size, bool) or not isinstance(self.background_size, int) or self.background_size < 1:
            raise invalid_parameter("background_size", self.background_size, "a positive integer", "ExplainableAI")
        adapter = _adapter_for(self.model)
        matrix, _keys = adapter.matrix(data, identity)
        if len(matrix) == 0:
            raise InsufficientDataError(
                f"ExplainableAI needs at least {adapter.min_rows} transitions for this model, got fewer"
            )
        size = self.background_size
        if size > len(matrix):
            warn_clamped("ExplainableAI", "background_size", size, len(matrix), f"{len(matrix)} feature rows")
            size = len(matrix)
        rng = np.random.default_rng(self.random_state)
        background = matrix[np.sort(rng.choice(len(matrix), size=size, replace=False))]

        shap = import_optional("shap", feature="ExplainableAI")
        masker = shap.maskers.Independent(background, max_samples=size)
        self.explainer_ = shap.Explainer(adapter.predict, masker, feature_names=adapter.names, seed=self.random_state)
        self.adapter_ = adapter
        self.feature_names_ = list(adapter.names)
        self.background_ = background
        self.expected_value_ = float(np.mean(adapter.predict(background)))

        return self

    def shap_values(self, data: Any, *, identity: Any = None, max_rows: int | None = None) -> pd.DataFrame:
        """Return one row of SHAP values per transition, one column per feature.

        Parameters
        ----------
        data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
        identity : object, optional
            Which identity of a collection frame to explain.
        max_rows : int, optional
            Explain only the last ``max_rows`` rows; SHAP's cost grows with
            every row.

        Returns
        -------
        pandas.DataFrame
            Indexed by (identity, step). The model output of a row equals
            ``expected_value_`` plus the row's sum, up to SHAP's sampling
            error for more than 10 features.
        """
        check_fitted(self, "explainer_")
        matrix, keys = self.adapter_.matrix(data, identity)
        if max_rows is not None:
            matrix, keys = matrix[-max_rows:], keys[-max_rows:]
        if len(matrix) == 0:
            return pd.DataFrame(columns=self.feature_names_, index=pd.MultiIndex.from_tuples([], names=["identity", "step"]))
        explanation = self._explain(matrix)
        values = np.asarray(explanation.values, dtype="float64").reshape(len(matrix), -1)
        index = pd.MultiIndex.from_tuples(keys, names=["identity", "step"])
        return pd.DataFrame(values, index=index, columns=self.feature_names_)

    def explain_transition(self, data: Any, transition_index: int = -1, *, identity: Any = None) -> dict[str, Any]:
        """Explain one transition.

        Returns
        -------
        dict
            ``identity``, ``step``, ``base_value``, ``output`` (the model's
            number for this row), and ``contributions``: SHAP value by
            feature name, largest magnitude first.
        """
        check_fitted(self, "explainer_")
        matrix, keys = self.adapter_.matrix(data, identity)
        if not -len(keys) <= transition_index < len(keys):
            raise IndexError(
                f"transition_index {transition_index} is out of range for {len(keys)} explainable transitions"
            )
        row = matrix[[transition_index]]
        explanation = self._explain(row)
        values = np.asarray(explanation.values, dtype="float64").reshape(-1)
        contributions = dict(sorted(zip(self.feature_names_, values.tolist()), key=lambda item: -abs(item[1])))
        identity_key, step = keys[transition_index]
        return {
            "identity": identity_key,
            "step": step,
            "base_value": float(np.asarray(explanation.base_values).reshape(-1)[0]),
            "output": float(self.adapter_.predict(row)[0]),
            "contributions": contributions,
        }

    def feature_importance(self, data: Any, *, identity: Any = None, max_rows: int | None = 500) -> pd.Series:
        """Return the mean absolute SHAP value of each feature, largest first."""
        values = self.shap_values(data, identity=identity, max_rows=max_rows)
        return values.abs().mean().sort_values(ascending=False).rename("mean_abs_shap")


    def _explain(self, matrix: np.ndarray) -> Any:
        n_features = len(self.feature_names_)
        if n_features <= 10:
            return self.explainer_(matrix)
        # Permutation sampling needs at least 2 * features + 1 evaluations per row.
        return self.explainer_(matrix, max_evals=max(500, 2 * n_features + 1))


class _Adapter:
    """A model seen as names, a matrix builder and a prediction function."""

    def __init__(self, names: list[str], matrix: Callable[[Any, Any], tuple[np.ndarray, list[tuple[Any, int]]]], predict: Callable[[np.ndarray], np.ndarray], min_rows: int) -> None:
        self.names = names
        self.matrix = matrix
        self.predict = predict
        self.min_rows = min_rows


def _adapter_for(model: Any) -> _Adapter:
    # Import lazily by class name, so explaining one kind of model never
    # imports the modules of the others.
    kind = type(model).__name__
    if kind == "AnomalyDetector":
        check_fitted(model, "threshold_")
        return _feature_adapter(model, model._score_matrix)
    if kind == "StateClusterer":
        check_fitted(model, "labels_")
        centres = model.scaler_.transform(model.cluster_centers_.drop(index=-1, errors="ignore").to_numpy())

        def distance_to_nearest_centre(matrix: np.ndarray) -> np.ndarray:
            scaled = model.scaler_.transform(matrix)
            distances = np.linalg.norm(scaled[:, None, :] - centres[None, :, :], axis=2)
            return distances.min(axis=1)

        return _feature_adapter(model, distance_to_nearest_centre)
    if kind == "SequencePredictor":
        check_fitted(model, "network_", verb="train")
        return _lag_adapter(model.sequence_length_, model.predict_from_windows)
    if kind == "AutoMLPredictor":
        check_fitted(model, "best_model_")
        winner = model.best_model_
        return _lag_adapter(winner.window_length, winner.predict_windows)
    raise ValidationError(
        f"ExplainableAI cannot explain a {kind}; pass a fitted AnomalyDetector, StateClusterer, "
        "SequencePredictor or AutoMLPredictor"
    )


def _feature_adapter(model: Any, predict: Callable[[np.ndarray], np.ndarray]) -> _Adapter:
    def matrix(data: Any, identity: Any) -> tuple[np.ndarray, list[tuple[Any, int]]]:
        frame = as_history_frame(data, owner="ExplainableAI")
        if identity is not None:
            frame = select_identity(frame, identity, "ExplainableAI")
        features = features_from_frame(frame, model.spec_).to_numpy()
        keys = list(zip(frame["identity"].tolist(), frame["step"].astype(int).tolist()))
        return features, keys

    return _Adapter(list(model.feature_names_in_), matrix, predict, min_rows=1)


def _lag_adapter(length: int, predict_windows: Callable[[np.ndarray], np.ndarray]) -> _Adapter:
    names = [f"lag_{k}" for k in range(1, length + 1)]

    def matrix(data: Any, identity: Any) -> tuple[np.ndarray, list[tuple[Any, int]]]:
        frame = select_identity(as_history_frame(data, owner="ExplainableAI"), identity, "ExplainableAI")
        values = numeric_values(frame["to_value"], owner="ExplainableAI").ffill().bfill().to_numpy()
        if len(values) < length:
            return np.empty((0, length)), []
        windows = np.lib.stride_tricks.sliding_window_view(values, length)
        steps = frame["step"].astype(int).to_numpy()[length - 1 :]
        identities = frame["identity"].to_numpy()[length - 1 :]
        # Columns run from the most recent value (lag_1) back to lag_L.
        return np.ascontiguousarray(windows[:, ::-1]), list(zip(identities.tolist(), steps.tolist()))

    def predict(lags: np.ndarray) -> np.ndarray:
        return predict_windows(np.asarray(lags, dtype="float64")[:, ::-1])

    return _Adapter(names, matrix, predict, min_rows=length)
