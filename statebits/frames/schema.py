"""The column schema of a history frame.

A history frame has one row per transition. A collection frame is the same
long format over many identities.
"""

from __future__ import annotations

__all__ = ["COLUMNS", "REQUIRED_COLUMNS", "missing_columns"]

#: Columns of a history frame, in order.
COLUMNS: tuple[str, ...] = (
    "identity",
    "step",
    "timestamp",
    "recorded_at",
    "from_value",
    "to_value",
    "reason",
    "confidence",
    "tags",
    "metadata",
    "caused_by",
    "checksum",
    "branch",
)

#: Columns the accessor verbs need; the others are optional on input.
REQUIRED_COLUMNS: tuple[str, ...] = ("identity", "step", "timestamp", "to_value", "reason", "confidence")


def missing_columns(columns: object, required: tuple[str, ...] = REQUIRED_COLUMNS) -> list[str]:
    """Return the required column names absent from ``columns``, in schema order."""
    present = set(columns)  # type: ignore[call-overload]
    return [name for name in required if name not in present]
