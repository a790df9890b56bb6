"""Machine learning on histories: features, anomalies, clusters, forecasts.

Every model takes a Statebit, a StatebitsCollection, or a pandas or Polars
history frame. The public classes are loaded on first access, and torch,
scikit-learn, PyOD and SHAP are imported only when a model needs them, so
``import statebits.ml`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AnomalyDetector",
    "AnomalyResult",
    "AnomalyWatch",
    "AutoMLPredictor",
    "ExplainableAI",
    "FeatureSpec",
    "MLPrediction",
    "SequencePredictor",
    "StateClusterer",
    "build_features",
]

# Public name -> module that defines it.
_LOCATIONS = {
    "AnomalyDetector": "statebits.ml.anomaly",
    "AnomalyResult": "statebits.ml.anomaly",
    "AnomalyWatch": "statebits.ml.anomaly",
    "AutoMLPredictor": "statebits.ml.automl",
    "ExplainableAI": "statebits.ml.explainable",
    "FeatureSpec": "statebits.ml.features",
    "MLPrediction": "statebits.ml.forecasting",
    "SequencePredictor": "statebits.ml.forecasting",
    "StateClusterer": "statebits.ml.clustering",
    "build_features": "statebits.ml.features",
}

if TYPE_CHECKING:
    from statebits.ml.anomaly import AnomalyDetector, AnomalyResult, AnomalyWatch
    from statebits.ml.automl import AutoMLPredictor
    from statebits.ml.clustering import StateClusterer
    from statebits.ml.explainable import ExplainableAI
    from statebits.ml.features import FeatureSpec, build_features
    from statebits.ml.forecasting import MLPrediction, SequencePredictor


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'statebits.ml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
