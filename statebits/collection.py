"""StatebitsCollection: a named group of statebits with shared queries and statistics."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from statebits.core.clock import from_ns, to_ns
from statebits.core.confidence import check_confidence
from statebits.core.errors import ValidationError
from statebits.core.history import IntegrityReport
from statebits.core.statebit import Statebit
from statebits.core.transition import StateTransition
from statebits.explain.graph import CausalGraph

__all__ = ["StatebitsCollection"]


class StatebitsCollection:
    """A named group of statebits, keyed by ``Statebit.key``.

    The key is the identity for main branches and ``identity@branch`` for
    forks, so a statebit and its forks can live in one collection.

    Parameters
    ----------
    name : str
        Name of the collection.
    statebits : iterable of Statebit, optional
        Initial members.

    Examples
    --------
    >>> sensors = StatebitsCollection(name="IoT_Sensors")
    >>> _ = sensors.add(Statebit("temp", 20.0))
    >>> "temp" in sensors
    True
    """

    def __init__(self, name: str = "collection", statebits: Iterable[Statebit] | None = None) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(f"invalid collection name {name!r}: expected a non-empty string")
        self.name = name
        self._members: dict[str, Statebit] = {}
        self._lock = threading.RLock()
        for sb in statebits or ():
            self.add(sb)

    # -- membership --------------------------------------------------------------

    def add(self, statebit: Statebit) -> Statebit:
        """Add a statebit; returns it. Raises ValidationError when the key is taken."""
        if not isinstance(statebit, Statebit):
            raise ValidationError(f"invalid member {statebit!r}: expected a Statebit")
        with self._lock:
            existing = self._members.get(statebit.key)
            if existing is statebit:
                return statebit
            if existing is not None:
                raise ValidationError(
                    f"collection {self.name!r} already contains a statebit with key {statebit.key!r}; "
                    "remove it first or use another identity"
                )
            self._members[statebit.key] = statebit
        return statebit

    def remove(self, statebit: Statebit | str) -> Statebit:
        """Remove a member given itself or its key; returns it."""
        key = statebit.key if isinstance(statebit, Statebit) else statebit
        with self._lock:
            if key not in self._members:
                raise KeyError(f"no statebit with key {key!r} in collection {self.name!r}")
            return self._members.pop(key)

    def get(self, key: str, default: Statebit | None = None) -> Statebit | None:
        """Return the member with ``key``, or ``default``."""
        return self._members.get(key, default)

    def __getitem__(self, key: str) -> Statebit:
        try:
            return self._members[key]
        except KeyError:
            raise KeyError(f"no statebit with key {key!r} in collection {self.name!r}; keys are {sorted(self._members)[:10]}") from None

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Statebit):
            return self._members.get(item.key) is item
        return item in self._members

    def __iter__(self) -> Iterator[Statebit]:
        return iter(list(self._members.values()))

    def __len__(self) -> int:
        return len(self._members)

    def keys(self) -> list[str]:
        """Return the member keys in insertion order."""
        return list(self._members)

    def __repr__(self) -> str:
        total = sum(len(sb.history) for sb in self._members.values())
        return f"StatebitsCollection(name={self.name!r}, statebits={len(self)}, transitions={total})"

    # -- statistics and queries --------------------------------------------------

    def get_collection_statistics(self) -> dict[str, Any]:
        """Summarise the members.

        Returns
        -------
        dict
            ``name``, ``statebit_count``, ``total_transitions``,
            ``average_confidence`` (None without transitions),
            ``transitions_per_identity`` (key -> count), ``tag_counts``
            (tag -> count), ``time_span`` (dict with ``start`` and ``end``
            datetimes and ``seconds``, or None without transitions).
        """
        import numpy as np

        total = 0
        confidence_sum = 0.0
        per_identity: dict[str, int] = {}
        tag_counts: dict[str, int] = {}
        start: int | None = None
        end: int | None = None
        for key, sb in self._members.items():
            history = sb.history
            count = len(history)
            per_identity[key] = count
            if not count:
                continue
            total += count
            confidence_sum += float(history.column("confidence").sum())
            codes = np.bincount(history.column("tag_code"), minlength=len(history.tagsets.items))
            for code, used in enumerate(codes.tolist()):
                for tag in history.tagsets.items[code] if used else ():
                    tag_counts[tag] = tag_counts.get(tag, 0) + used
            times = history.column("timestamp")
            start = int(times[0]) if start is None else min(start, int(times[0]))
            end = int(times[-1]) if end is None else max(end, int(times[-1]))
        span = None
        if start is not None and end is not None:
            span = {"start": from_ns(start), "end": from_ns(end), "seconds": (end - start) / 1e9}
        return {
            "name": self.name,
            "statebit_count": len(self._members),
            "total_transitions": total,
            "average_confidence": confidence_sum / total if total else None,
            "transitions_per_identity": per_identity,
            "tag_counts": dict(sorted(tag_counts.items(), key=lambda item: (-item[1], item[0]))),
            "time_span": span,
        }

    def get_recent_transitions(self, limit: int = 10) -> list[StateTransition]:
        """Return the ``limit`` most recent transitions across members, newest first.

        Recency is by timestamp, then by recording time.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError(f"invalid limit {limit!r}: expected a non-negative integer")
        candidates: list[tuple[int, int, StateTransition]] = []
        for sb in self._members.values():
            history = sb.history
            for position in range(len(history) - 1, max(len(history) - limit, 0) - 1, -1):
                item = history[position]
                candidates.append((item.timestamp_ns, item.recorded_at_ns, item))
        newest = heapq.nlargest(limit, candidates, key=lambda entry: (entry[0], entry[1]))
        return [entry[2] for entry in newest]

    def query(self, predicate: Callable[[StateTransition], bool]) -> list[StateTransition]:
        """Return transitions of all members for which ``predicate`` is true, oldest first."""
        found = [item for sb in self._members.values() for item in sb.query(predicate)]
        return sorted(found, key=lambda item: (item.timestamp_ns, item.recorded_at_ns))

    def get_transitions_by_tag(self, tag: str) -> list[StateTransition]:
        """Return transitions carrying ``tag`` across members, oldest first."""
        found = [item for sb in self._members.values() for item in sb.get_transitions_by_tag(tag)]
        return sorted(found, key=lambda item: (item.timestamp_ns, item.recorded_at_ns))

    def get_transitions_by_confidence(self, min_confidence: float, max_confidence: float = 1.0) -> list[StateTransition]:
        """Return transitions with confidence in the range across members, oldest first."""
        check_confidence(min_confidence)
        found = [item for sb in self._members.values() for item in sb.get_transitions_by_confidence(min_confidence, max_confidence)]
        return sorted(found, key=lambda item: (item.timestamp_ns, item.recorded_at_ns))

    def get_transitions_in_range(self, start: Any = None, end: Any = None) -> list[StateTransition]:
        """Return transitions with timestamps in ``[start, end]`` across members, oldest first."""
        found = [item for sb in self._members.values() for item in sb.get_transitions_in_range(start, end)]
        return sorted(found, key=lambda item: (item.timestamp_ns, item.recorded_at_ns))

    def values_at(self, when: Any) -> dict[str, Any]:
        """Return each member's value at valid time ``when``."""
        moment = to_ns(when)
        return {key: sb.value_at(moment) for key, sb in self._members.items()}

    def causal_graph(self) -> CausalGraph:
        """Return the causal links recorded by the members."""
        return CausalGraph.from_statebits(self._members.values())

    def verify_integrity(self) -> bool:
        """Return True when every member's chain verifies."""
        return all(report.ok for report in self.integrity_reports().values())

    def integrity_reports(self) -> dict[str, IntegrityReport]:
        """Return each member's integrity report, keyed by member key."""
        return {key: sb.integrity_report() for key, sb in self._members.items()}

    @property
    def time_span(self) -> tuple[datetime, datetime] | None:
        """``(first, last)`` timestamp across members, or None."""
        span = self.get_collection_statistics()["time_span"]
        return None if span is None else (span["start"], span["end"])

    # -- frames (implemented in statebits.frames) ----------------------------------

    def to_pandas(self) -> Any:
        """Return all members' histories as one long pandas DataFrame."""
        from statebits.frames.convert import collection_to_pandas

        return collection_to_pandas(self)

    def to_polars(self) -> Any:
        """Return all members' histories as one long Polars DataFrame."""
        from statebits.frames.convert import collection_to_polars

        return collection_to_polars(self)

    def to_arrow(self) -> Any:
        """Return all members' histories as one pyarrow Table."""
        from statebits.frames.convert import collection_to_arrow

        return collection_to_arrow(self)

    def widget(self, kind: str | None = None, **kwargs: Any) -> Any:
        """Return a Jupyter widget of this history; see :func:`statebits.widgets.widget_for`."""
        from statebits.widgets import widget_for

        return widget_for(self, kind, **kwargs)

    def to_parquet(self, path: Any) -> None:
        """Write every member's history to one Parquet file, value types preserved."""
        from statebits.frames.parquet import write_parquet

        write_parquet(self, path)

    @classmethod
    def read_parquet(cls, path: Any) -> "StatebitsCollection":
        """Read a collection written by :meth:`to_parquet` and verify every chain."""
        from statebits.frames.parquet import read_parquet

        return read_parquet(path)

    @classmethod
    def from_frame(cls, frame: Any, name: str = "collection") -> "StatebitsCollection":
        """Rebuild a collection from a long history frame and verify every chain."""
        from statebits.frames.convert import collection_from_frame

        return collection_from_frame(frame, name=name)
