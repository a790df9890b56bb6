"""StateTransition: one immutable recorded change, and references to it."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from statebits.core.clock import from_ns

if TYPE_CHECKING:
    from statebits.core.history import History

__all__ = ["StateTransition", "CauseRef"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class CauseRef:
    """A reference to a transition of another statebit, kept in ``caused_by``.

    Parameters
    ----------
    identity : str
        Identity of the statebit that made the causing transition.
    step : int
        Step of the causing transition (0 refers to the genesis record).
    checksum : str
        Hex checksum of the causing transition, which pins its exact content.
    branch : str, default "main"
        Branch of the causing statebit.
    """

    __slots__ = ("identity", "step", "checksum", "branch", "_source")

    def __init__(self, identity: str, step: int, checksum: str, branch: str = "main", source: "History | None" = None) -> None:
        object.__setattr__(self, "identity", identity)
        object.__setattr__(self, "step", int(step))
        object.__setattr__(self, "checksum", checksum)
        object.__setattr__(self, "branch", branch)
        object.__setattr__(self, "_source", weakref.ref(source) if source is not None else None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("CauseRef is immutable")

    def resolve(self) -> "StateTransition | None":
        """Return the referenced transition while its statebit is alive, else None."""
        source = self._source() if self._source is not None else None
        if source is None or self.step < 1 or self.step > len(source):
            return None
        found = source[self.step - 1]
        return found if found.checksum == self.checksum else None

    def key(self) -> tuple[str, str, int]:
        """Return ``(identity, branch, step)``, the node key in causal graphs."""
        return (self.identity, self.branch, self.step)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CauseRef):
            return NotImplemented
        return (self.identity, self.step, self.checksum) == (other.identity, other.step, other.checksum)

    def __hash__(self) -> int:
        return hash((self.identity, self.step, self.checksum))

    def __reduce__(self) -> tuple[Any, ...]:
        return (CauseRef, (self.identity, self.step, self.checksum, self.branch))

    def __repr__(self) -> str:
        return f"CauseRef({self.identity!r}, step={self.step}, checksum={self.checksum[:12]!r}...)"

    def as_dict(self) -> dict[str, Any]:
        """Return the reference as plain data."""
        return {"identity": self.identity, "step": self.step, "checksum": self.checksum, "branch": self.branch}


class StateTransition:
    """One recorded change of a statebit. Immutable.

    Transitions are views onto the columnar history that recorded them, so
    reading ``sb.history[i]`` costs no copy. Every field is read-only.

    Attributes
    ----------
    identity : str
        Identity of the statebit.
    step : int
        1-based position in the history.
    from_value, to_value : Any
        The value before and after the change.
    reason : str
        Why the value changed.
    confidence : float
        How sure the recorder was, 0.0 to 1.0.
    timestamp : datetime
        When the change happened (valid time), aware UTC.
    recorded_at : datetime
        When statebits recorded it, aware UTC.
    tags : tuple of str
    metadata : Mapping
        Read-only mapping.
    caused_by : tuple of CauseRef
    checksum : str
        Hex SHA-256 of this record chained to the previous one.
    branch : str
        "main" or the branch name of the fork that recorded it.
    """

    __slots__ = ("_history", "_index")

    def __init__(self, history: "History", index: int) -> None:
        object.__setattr__(self, "_history", history)
        object.__setattr__(self, "_index", index)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"StateTransition is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"StateTransition is immutable; cannot delete {name!r}")

    @property
    def identity(self) -> str:
        return self._history.identity

    @property
    def step(self) -> int:
        return self._index + 1

    @property
    def from_value(self) -> Any:
        return self._history.value_of(self._index - 1)

    @property
    def to_value(self) -> Any:
        return self._history.value_of(self._index)

    @property
    def reason(self) -> str:
        return self._history.reason_of(self._index)

    @property
    def confidence(self) -> float:
        return self._history.confidence_of(self._index)

    @property
    def timestamp_ns(self) -> int:
        """Valid time in nanoseconds since the epoch, UTC."""
        return self._history.timestamp_ns_of(self._index)

    @property
    def recorded_at_ns(self) -> int:
        """Recording time in nanoseconds since the epoch, UTC."""
        return self._history.recorded_ns_of(self._index)

    @property
    def timestamp(self) -> datetime:
        return from_ns(self.timestamp_ns)

    @property
    def recorded_at(self) -> datetime:
        return from_ns(self.recorded_at_ns)

    @property
    def tags(self) -> tuple[str, ...]:
        return self._history.tags_of(self._index)

    @property
    def metadata(self) -> Mapping[str, Any]:
        found = self._history.metadata_of(self._index)
        return _EMPTY if found is None else found

    @property
    def caused_by(self) -> tuple[CauseRef, ...]:
        return self._history.causes_of(self._index)

    @property
    def checksum(self) -> str:
        return self._history.checksum_of(self._index).hex()

    @property
    def branch(self) -> str:
        return self._history.branch_of(self._index)

    def ref(self) -> CauseRef:
        """Return a :class:`CauseRef` pointing at this transition."""
        return CauseRef(self.identity, self.step, self.checksum, self.branch, self._history)

    def to_dict(self) -> dict[str, Any]:
        """Return every field as a plain dict (values as recorded)."""
        return {
            "identity": self.identity,
            "step": self.step,
            "timestamp": self.timestamp,
            "recorded_at": self.recorded_at,
            "from_value": self.from_value,
            "to_value": self.to_value,
            "reason": self.reason,
            "confidence": self.confidence,
            "tags": self.tags,
            "metadata": dict(self.metadata),
            "caused_by": tuple(ref.as_dict() for ref in self.caused_by),
            "checksum": self.checksum,
            "branch": self.branch,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateTransition):
            return NotImplemented
        return self.identity == other.identity and self.step == other.step and self.checksum == other.checksum

    def __hash__(self) -> int:
        return hash((self.identity, self.step, self.checksum))

    def __repr__(self) -> str:
        return (
            f"StateTransition(identity={self.identity!r}, step={self.step}, "
            f"{self.from_value!r} -> {self.to_value!r}, reason={self.reason!r}, "
            f"confidence={self.confidence}, timestamp={self.timestamp.isoformat()})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # A transition pickles with the history it belongs to, so its chain and
        # causes stay checkable after loading.
        return (StateTransition, (self._history, self._index))
