"""The exception hierarchy of statebits.

Every error raised by the library derives from :class:`StatebitError`, so a
caller can catch the whole family with one ``except`` clause. Messages name
the value that failed and say what to do instead.
"""

from __future__ import annotations

from typing import Any

__all__ = [
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
    "invalid_parameter",
]


class StatebitError(Exception):
    """Base class of every error raised by statebits."""


class ValidationError(StatebitError, ValueError):
    """An argument or a frame has an invalid value, type or shape."""


class TransitionError(StatebitError, ValueError):
    """A transition was rejected; the statebit is unchanged."""


class FrozenStatebitError(TransitionError):
    """A transition was attempted on a frozen statebit."""


class IntegrityError(StatebitError):
    """A hash chain does not verify.

    Attributes
    ----------
    step : int or None
        The first step whose checksum does not match, or None when the
        genesis record itself is wrong.
    """

    def __init__(self, message: str, step: int | None = None) -> None:
        super().__init__(message)
        self.step = step


class MergeError(StatebitError, ValueError):
    """Two histories cannot be merged as requested."""


class PermissionDenied(StatebitError, PermissionError):
    """The acting user lacks the permission an operation needs."""


class ConcurrencyError(StatebitError):
    """Another writer appended to the same history first."""


class StoreError(StatebitError):
    """A store could not read or write a history."""


class StoreConflictError(ConcurrencyError, StoreError):
    """Another writer appended to the stored history first, or the histories diverged.

    It is both a ConcurrencyError and a StoreError. A statebit re-raises a
    StoreError from its store unchanged after undoing the append.
    """


class KeyNotFoundError(StoreError, KeyError):
    """No statebit or collection is stored under the requested name."""

    def __str__(self) -> str:
        # KeyError would show the message in quotes.
        return Exception.__str__(self)


class NotFittedError(StatebitError, AttributeError):
    """A model was used before ``fit`` or ``train`` was called."""


class InsufficientDataError(ValidationError):
    """A method received fewer rows than it needs."""


class MissingDependencyError(StatebitError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


def invalid_parameter(name: str, value: Any, allowed: str, owner: str | None = None) -> ValidationError:
    """Build the one message template used for invalid parameters.

    Parameters
    ----------
    name : str
        Name of the parameter.
    value : Any
        The value received.
    allowed : str
        A description of the values accepted.
    owner : str, optional
        The function or class the parameter belongs to.
    """
    where = f" of {owner}" if owner else ""
    return ValidationError(f"invalid `{name}`{where}: expected {allowed}, got {value!r}")
