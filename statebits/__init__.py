"""statebits: auditable state for notebooks and data pipelines.

Every change of a value is recorded with its reason, confidence, tags, time
and causes in a tamper-evident history that can be analysed as pandas or
Polars frames.

Machine-learning classes are loaded on first use, so ``import statebits``
does not import torch, scikit-learn, PyOD or shap.
"""

from __future__ import annotations

import importlib
from typing import Any

from statebits.aio import AsyncStatebit
from statebits.collection import StatebitsCollection
from statebits.core import (
    CauseRef,
    ConcurrencyError,
    ConfidenceLevel,
    FrozenStatebitError,
    History,
    InsufficientDataError,
    IntegrityError,
    IntegrityReport,
    KeyNotFoundError,
    MergeError,
    MergePreview,
    MissingDependencyError,
    NotFittedError,
    PermissionDenied,
    Statebit,
    StatebitError,
    StateTransition,
    StoreConflictError,
    StoreError,
    TickingClock,
    TransitionError,
    TransitionView,
    ValidationError,
    set_clock,
    use_clock,
)
from statebits.enterprise import (
    AccessControl,
    AuditLogger,
    BackupManager,
    Permission,
    TenantLimitError,
    TenantManager,
)
from statebits.explain.graph import CausalGraph
from statebits.frames.accessor import register_accessors as _register_accessors

__version__ = "0.3.0"

# Public names defined in modules that import heavy optional dependencies;
# each is imported when first accessed.
_LAZY: dict[str, str] = {
    "from_events": "statebits.frames.ingest",
    "read_parquet": "statebits.frames.parquet",
    "write_parquet": "statebits.frames.parquet",
    "render_report": "statebits.reports",
    "Store": "statebits.stores",
    "MemoryStore": "statebits.stores",
    "SQLiteStore": "statebits.stores",
    "RedisStore": "statebits.stores.redis",
    "DistributedStatebit": "statebits.distributed",
    "AnomalyDetector": "statebits.ml.anomaly",
    "AnomalyResult": "statebits.ml.anomaly",
    "StateClusterer": "statebits.ml.clustering",
    "SequencePredictor": "statebits.ml.forecasting",
    "MLPrediction": "statebits.ml.forecasting",
    "AutoMLPredictor": "statebits.ml.automl",
    "ExplainableAI": "statebits.ml.explainable",
    "NLExplainer": "statebits.explain.nl",
    "TimelineWidget": "statebits.widgets",
    "ForkTreeWidget": "statebits.widgets",
    "AnomalyWidget": "statebits.widgets",
    "CollectionWidget": "statebits.widgets",
}
# Subpackages reachable as attributes after a plain `import statebits`.
_SUBPACKAGES = ("datasets", "reports", "ml", "widgets", "stores", "frames", "enterprise", "explain")

__all__ = [
    "Statebit",
    "StateTransition",
    "StatebitsCollection",
    "AsyncStatebit",
    "ConfidenceLevel",
    "CauseRef",
    "CausalGraph",
    "from_events",
    "read_parquet",
    "write_parquet",
    "History",
    "IntegrityReport",
    "MergePreview",
    "TransitionView",
    "TickingClock",
    "set_clock",
    "use_clock",
    "StatebitError",
    "ValidationError",
    "TransitionError",
    "FrozenStatebitError",
    "IntegrityError",
    "MergeError",
    "PermissionDenied",
    "ConcurrencyError",
    "StoreError",
    "StoreConflictError",
    "KeyNotFoundError",
    "NotFittedError",
    "InsufficientDataError",
    "MissingDependencyError",
    "TenantManager",
    "TenantLimitError",
    "AccessControl",
    "Permission",
    "AuditLogger",
    "BackupManager",
    "render_report",
    "Store",
    "MemoryStore",
    "SQLiteStore",
    "RedisStore",
    "DistributedStatebit",
    "AnomalyDetector",
    "AnomalyResult",
    "StateClusterer",
    "SequencePredictor",
    "MLPrediction",
    "AutoMLPredictor",
    "ExplainableAI",
    "NLExplainer",
    "TimelineWidget",
    "ForkTreeWidget",
    "AnomalyWidget",
    "CollectionWidget",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"statebits.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'statebits' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# `.sb` on pandas and Polars DataFrames; registered when each library is
# imported, so importing statebits does not import them.
_register_accessors()
