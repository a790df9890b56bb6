"""The core data model: Statebit, StateTransition, History, errors.

This package depends on the standard library only (numpy is imported lazily
by queries); it does not import pandas, widgets or machine-learning code.
"""

from statebits.core.clock import TickingClock, set_clock, use_clock
from statebits.core.confidence import ConfidenceLevel
from statebits.core.errors import (
    ConcurrencyError,
    FrozenStatebitError,
    InsufficientDataError,
    IntegrityError,
    KeyNotFoundError,
    MergeError,
    MissingDependencyError,
    NotFittedError,
    PermissionDenied,
    StatebitError,
    StoreConflictError,
    StoreError,
    TransitionError,
    ValidationError,
)
from statebits.core.history import History, IntegrityReport
from statebits.core.merging import MergePreview
from statebits.core.statebit import Statebit
from statebits.core.transition import CauseRef, StateTransition
from statebits.core.views import TransitionView

__all__ = [
    "Statebit",
    "StateTransition",
    "CauseRef",
    "ConfidenceLevel",
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
]
