"""Named confidence levels."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

from statebits.core.errors import ValidationError

__all__ = ["ConfidenceLevel", "check_confidence"]


class ConfidenceLevel(float, Enum):
    """Named confidence levels, usable wherever a float confidence is accepted.

    Members are floats, so ``ConfidenceLevel.HIGH >= 0.8`` holds and
    ``transition(..., confidence=ConfidenceLevel.HIGH)`` records 0.8.

    Examples
    --------
    >>> ConfidenceLevel.HIGH == 0.8
    True
    >>> ConfidenceLevel.from_value(0.97).name
    'VERY_HIGH'
    """

    VERY_LOW = 0.1
    LOW = 0.3
    MEDIUM = 0.6
    HIGH = 0.8
    VERY_HIGH = 0.95
    CERTAIN = 1.0

    def __str__(self) -> str:
        return f"{self.name} ({float(self)})"

    @classmethod
    def from_value(cls, confidence: float) -> "ConfidenceLevel":
        """Return the highest named level that ``confidence`` reaches.

        Values below 0.1 map to VERY_LOW.
        """
        value = check_confidence(confidence)
        chosen = cls.VERY_LOW
        for level in cls:
            if value >= level.value:
                chosen = level
        return chosen


def check_confidence(confidence: Any) -> float:
    """Validate a confidence and return it as a plain float in [0, 1].

    Raises
    ------
    ValidationError
        When ``confidence`` is not a real number, is NaN, or lies outside 0-1.
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
        try:
            import numbers

            if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real):
                raise TypeError
            confidence = float(confidence)
        except (TypeError, ValueError):
            raise ValidationError(
                f"invalid confidence {confidence!r}: expected a number between 0.0 and 1.0 "
                "or a ConfidenceLevel"
            ) from None
    value = float(confidence)
    if math.isnan(value) or value < 0.0 or value > 1.0:
        raise ValidationError(f"invalid confidence {confidence!r}: expected a number between 0.0 and 1.0")
    return value
