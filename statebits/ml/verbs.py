"""Frame-in, frame-out functions behind the ``.sb`` accessor verbs.

``df.sb.anomalies()``, ``df.sb.clusters()``, ``df.sb.forecast()`` and
``df.sb.explain()`` call these functions. Each fits what it needs on the
frame it receives and keeps no state, so filtering a frame first and calling
the verb again gives a fresh result. A Polars frame in gives a Polars frame
out.
"""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd

from statebits.core.errors import invalid_parameter
from statebits.ml._input import as_history_frame

__all__ = ["anomalies", "clusters", "forecast", "explain"]

_FORECAST_MODELS = ("automl", "lstm", "transformer")


def anomalies(
    frame: Any,
    *,
    method: str = "ecod",
    contamination: float | str = "auto",
    fit_on: Any = None,
    **params: Any,
) -> Any:
    """Return ``frame`` with ``anomaly_score`` and ``is_anomaly`` columns.

    Parameters
    ----------
    frame : pandas.DataFrame or polars.DataFrame
        A history frame; a collection frame is scored across all identities
        with one detector.
    method, contamination
        See :class:`statebits.ml.AnomalyDetector`.
    fit_on : history, optional
        Fit the detector on this history instead of on ``frame``, for
        example a period known to be normal.
    **params
        Other AnomalyDetector parameters (``features``, ``params``,
        ``random_state``).
    """
    from statebits.ml.anomaly import AnomalyDetector

    detector = AnomalyDetector(method=method, contamination=contamination, **params)
    detector.fit(frame if fit_on is None else fit_on)
    return detector.score_frame(frame)


def clusters(frame: Any, *, method: str = "kmeans", n_clusters: int = 3, **params: Any) -> Any:
    """Return ``frame`` with a ``cluster`` column (-1 marks noise).

    See :class:`statebits.ml.StateClusterer` for the parameters.
    """
    from statebits.ml.clustering import StateClusterer

    clusterer = StateClusterer(method=method, n_clusters=n_clusters, **params).fit(frame)
    return clusterer.cluster_frame(frame)


def forecast(
    frame: Any,
    horizon: int = 1,
    *,
    model: str = "automl",
    sequence_length: int = 10,
    epochs: int = 50,
    **params: Any,
) -> Any:
    """Forecast ``horizon`` steps for each identity of ``frame``.

    Parameters
    ----------
    frame : pandas.DataFrame or polars.DataFrame
        A numeric history frame.
    horizon : int, default=1
    model : {"automl", "lstm", "transformer"}, default="automl"
        ``"automl"`` picks a model per identity by cross-validation.
    sequence_length, epochs
        Training settings of the torch models; AutoML uses ``epochs`` for
        its torch candidates and sizes its own window.
    **params
        Constructor parameters of AutoMLPredictor or SequencePredictor.

    Returns
    -------
    pandas.DataFrame or polars.DataFrame
        Columns identity, step, timestamp, predicted_value, lower, upper,
        confidence and model, ``horizon`` rows per identity.
    """
    if model not in _FORECAST_MODELS:
        raise invalid_parameter("model", model, f"one of {list(_FORECAST_MODELS)}", "forecast")
    history = as_history_frame(frame, owner="forecast")
    pieces = []
    for identity in history["identity"].unique():
        if model == "automl":
            from statebits.ml.automl import AutoMLPredictor

            predictor: Any = AutoMLPredictor(epochs=epochs, **params).fit(history, identity=identity)
            name = predictor.best_model_name_
        else:
            from statebits.ml.forecasting import SequencePredictor

            predictor = SequencePredictor(model_type=model, **params)
            predictor.train(history, sequence_length=sequence_length, epochs=epochs, identity=identity)
            name = model
        result = predictor.forecast(history, horizon, identity=identity)
        result["model"] = name
        pieces.append(result)
    return _like(frame, pd.concat(pieces, ignore_index=True))


def explain(frame: Any, *, model: Any = None, identity: Any = None, max_rows: int | None = None) -> Any:
    """Explain the transitions of ``frame``.

    Without ``model``, returns one plain-language sentence per transition
    (columns identity, step, explanation). With a fitted ``model``, returns
    its SHAP values (columns identity, step and one per feature), the
    background sampled from ``frame``.
    """
    if model is None:
        from statebits.explain.nl import NLExplainer

        history = as_history_frame(frame, owner="explain")
        explainer = NLExplainer()
        identities = [identity] if identity is not None else list(history["identity"].unique())
        rows = []
        for name in identities:
            part = history[history["identity"] == name]
            sentences = explainer.explain_transitions(part)
            rows.append(pd.DataFrame({"identity": name, "step": part["step"].to_numpy(), "explanation": sentences}))
        return _like(frame, pd.concat(rows, ignore_index=True))

    from statebits.ml.explainable import ExplainableAI

    xai = ExplainableAI(model).fit(frame, identity=identity)
    values = xai.shap_values(frame, identity=identity, max_rows=max_rows)
    return _like(frame, values.reset_index())


def _like(original: Any, result: pd.DataFrame) -> Any:
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(original, polars.DataFrame):
        return polars.from_pandas(result)
    return result
