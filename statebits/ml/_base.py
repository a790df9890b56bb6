"""Shared plumbing of the estimators: parameters, fitted checks, warnings."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

from statebits.core.errors import NotFittedError, ValidationError

__all__ = ["ParamsMixin", "check_fitted", "warn_clamped", "check_finite"]


class ParamsMixin:
    """scikit-learn style ``get_params``/``set_params`` and a cheap repr.

    Subclasses store every ``__init__`` keyword unchanged under the same
    attribute name, so the parameters can be read back from the signature.
    scikit-learn itself is not imported, which keeps ``import statebits`` light.
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [name for name, p in signature.parameters.items() if name != "self" and p.kind in kinds]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters as a dict."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "ParamsMixin":
        """Set constructor parameters; takes effect at the next fit."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValidationError(
                    f"invalid parameter `{name}` for {type(self).__name__}; valid parameters: {sorted(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        signature = inspect.signature(type(self).__init__)
        shown = []
        for name in self._param_names():
            value = getattr(self, name)
            default = signature.parameters[name].default
            if value is not default and not _equal(value, default):
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def check_fitted(estimator: Any, attribute: str, verb: str = "fit") -> None:
    """Raise NotFittedError unless ``estimator`` has the fitted ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call `{verb}` with a history before using it"
        )


def warn_clamped(owner: str, name: str, requested: Any, used: Any, reason: str) -> None:
    """Warn that a parameter was lowered to what the data allows."""
    warnings.warn(
        f"{owner}: `{name}`={requested!r} exceeds what the data allows ({reason}); using {used!r}",
        UserWarning,
        stacklevel=4,
    )


def check_finite(matrix: np.ndarray, owner: str) -> None:
    """Raise ValidationError when features contain inf or NaN."""
    if not np.isfinite(matrix).all():
        raise ValidationError(
            f"{owner}: the features contain infinite values, so the values exceed the float64 range "
            "in differences or rates; rescale the values before fitting"
        )


def _equal(left: Any, right: Any) -> bool:
    try:
        return bool(left == right)
    except (TypeError, ValueError):
        return False
