"""Column arrays of one history, read from its buffers without building transitions.

:class:`HistoryColumns` is the shared input of the pandas, Polars and Arrow
views. It is built once per history version and cached in the history's
``_cache`` dict, which every append clears.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from statebits.core.transition import CauseRef

if TYPE_CHECKING:
    from statebits.core.history import History

__all__ = ["HistoryColumns", "history_columns", "value_kind_of", "initial_fits", "unify_kinds", "hex_checksums"]

_CACHE_KEY = "frames:columns"

#: Value kinds of a value column: a numpy-typed kind or "mixed" (Python objects).
TYPED_KINDS = ("float", "int", "bool", "str")
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class HistoryColumns:
    """The transitions of one history as arrays, oldest first.

    Attributes
    ----------
    identity : str
    count : int
        Number of transitions.
    timestamp, recorded : numpy.ndarray of int64
        Nanoseconds since the epoch, UTC.
    confidence : numpy.ndarray of float64
    reason_codes, tag_codes : numpy.ndarray of uint32
        Codes into ``reasons`` and ``tagsets``.
    reasons : list of str
    tagsets : list of tuple of str
    metadata : dict
        Row position -> read-only mapping, only for rows with metadata.
    causes : dict
        Row position -> tuple of CauseRef, only for rows with causes.
    segments : list of (History, int)
        The histories holding the rows, oldest first, and how many rows each
        contributes; see :meth:`checksum_bytes`.
    branch_runs : list of (str, int)
        Consecutive rows per branch: shared rows of a fork keep the branch of
        the history that recorded them.
    kind : str
        "float", "int", "bool", "str" or "mixed".
    values : numpy.ndarray or list
        The values after each transition: a read-only float64, int64 or bool
        array for the numeric kinds, a list for "str" and "mixed".
    initial_value : Any
    """

    identity: str
    count: int
    timestamp: np.ndarray
    recorded: np.ndarray
    confidence: np.ndarray
    reason_codes: np.ndarray
    tag_codes: np.ndarray
    reasons: list[str]
    tagsets: list[tuple[str, ...]]
    metadata: dict[int, Mapping[str, Any]]
    causes: dict[int, tuple[CauseRef, ...]]
    segments: list[tuple["History", int]]
    branch_runs: list[tuple[str, int]]
    kind: str
    values: Any
    initial_value: Any

    def checksum_bytes(self, start: int, stop: int) -> bytes:
        """Return the raw checksums of rows ``start`` to ``stop``, 32 bytes each."""
        pieces = []
        offset = 0
        for part, count in self.segments:
            low, high = max(start - offset, 0), min(stop - offset, count)
            if low < high:
                pieces.append(bytes(part.checksums[32 * low : 32 * high]))
            offset += count
        return b"".join(pieces)


def history_columns(history: "History") -> HistoryColumns:
    """Return the columns of ``history``, cached until its next append."""
    cached = history._cache.get(_CACHE_KEY)
    if cached is not None and cached.count == len(history):
        return cached
    segments = [(part, count) for part, count in history.segments() if count]
    metadata: dict[int, Mapping[str, Any]] = {}
    causes: dict[int, tuple[CauseRef, ...]] = {}
    for part, count in segments:
        offset = part.base_len
        for local, item in part.metadata.items():
            if local < count:
                metadata[offset + local] = item
        for local, item in part.causes.items():
            if local < count:
                causes[offset + local] = item
    kind, values = _values_of(segments)
    columns = HistoryColumns(
        identity=history.identity,
        count=len(history),
        timestamp=history.column("timestamp"),
        recorded=history.column("recorded_at"),
        confidence=history.column("confidence"),
        reason_codes=history.column("reason_code"),
        tag_codes=history.column("tag_code"),
        # Copies: the interner tables keep growing after this snapshot.
        reasons=list(history.reasons.items),
        tagsets=list(history.tagsets.items),
        metadata=metadata,
        causes=causes,
        segments=segments,
        branch_runs=[(part.branch, count) for part, count in segments],
        kind=kind,
        values=values,
        initial_value=history.initial_value,
    )
    history._cache[_CACHE_KEY] = columns
    return columns


def _values_of(segments: list[tuple["History", int]]) -> tuple[str, Any]:
    """Return the value kind and values over ``segments``."""
    kinds = {part._value_kind for part, _ in segments}
    if not segments:
        return "float", _read_only(np.empty(0, dtype=np.float64))
    if kinds == {"float"} or kinds == {"int"}:
        dtype = np.float64 if kinds == {"float"} else np.int64
        parts = [np.frombuffer(part.values, dtype=dtype)[:count] for part, count in segments]
        return kinds.pop(), _read_only(np.concatenate(parts) if len(parts) > 1 else parts[0].copy())
    values: list[Any] = []
    for part, count in segments:
        values.extend(part.values[:count])
    kind = value_kind_of(values)
    if kind == "float":
        return kind, _read_only(np.array(values, dtype=np.float64))
    if kind == "int":
        return kind, _read_only(np.array(values, dtype=np.int64))
    if kind == "bool":
        return kind, _read_only(np.array(values, dtype=bool))
    return kind, values


def value_kind_of(values: list[Any]) -> str:
    """Classify Python values as "float", "int", "bool", "str" or "mixed".

    A kind other than "mixed" means every value has exactly that Python type
    (ints within the int64 range), so a typed column reads back the same
    values with the same types.
    """
    types = set(map(type, values))
    if len(types) != 1:
        return "float" if not types else "mixed"
    only = types.pop()
    if only is float:
        return "float"
    if only is bool:
        return "bool"
    if only is str:
        return "str"
    if only is int and min(values) >= _INT64_MIN and max(values) <= _INT64_MAX:
        return "int"
    return "mixed"


def initial_fits(kind: str, initial_value: Any) -> bool:
    """Return True when a ``kind`` column can hold ``initial_value`` as its first from_value.

    None fits every typed kind, as a missing entry.
    """
    if initial_value is None:
        return kind in TYPED_KINDS
    return kind in TYPED_KINDS and value_kind_of([initial_value]) == kind


def unify_kinds(kinds: list[str]) -> str:
    """Return the one kind that can hold columns of all ``kinds``."""
    distinct = set(kinds)
    if not distinct:
        return "float"
    return distinct.pop() if len(distinct) == 1 else "mixed"


def hex_checksums(raw: bytes) -> bytes:
    """Return the lowercase hex digits of concatenated checksums, 64 per checksum."""
    return binascii.hexlify(raw)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
