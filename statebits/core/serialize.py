"""JSON-ready dicts of statebits and their exact reconstruction.

The format stores times as integer nanoseconds, values through the tagged
JSON codec and the stored checksums; loading recomputes the chain and raises
:class:`IntegrityError` at the first record that does not match.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from statebits.core.canonical import freeze_mapping, from_jsonable, snapshot, to_jsonable
from statebits.core.errors import ValidationError
from statebits.core.history import History, extend_history
from statebits.core.transition import CauseRef, StateTransition

if TYPE_CHECKING:
    from statebits.core.statebit import Statebit, creation_hooks_suspended, run_creation_hooks

__all__ = ["statebit_to_dict", "statebit_from_dict", "transition_to_row", "restore_statebit", "FORMAT"]

FORMAT = "statebits/1"


def statebit_to_dict(sb: "Statebit") -> dict[str, Any]:
    """Return ``sb`` as JSON-ready data; a fork's shared transitions are included."""
    history = sb.history
    rows = [transition_to_row(transition, history.branch) for transition in history]
    return {
        "format": FORMAT,
        "identity": sb.identity,
        "initial_value": to_jsonable(sb.initial_value),
        "created_at_ns": sb._created_ns,
        "lineage": sb.lineage,
        "branch": sb.branch,
        "fork_point": sb.fork_point,
        "fork_reason": sb.fork_reason,
        "frozen": sb.frozen,
        "transitions": rows,
    }


def transition_to_row(transition: "StateTransition", branch: str) -> dict[str, Any]:
    """Return one transition as JSON-ready data; ``branch`` is the owning history's branch."""
    row: dict[str, Any] = {
        "step": transition.step,
        "timestamp_ns": transition.timestamp_ns,
        "recorded_at_ns": transition.recorded_at_ns,
        "to_value": to_jsonable(transition.to_value),
        "reason": transition.reason,
        "confidence": transition.confidence,
        "checksum": transition.checksum,
    }
    if transition.tags:
        row["tags"] = list(transition.tags)
    if transition.metadata:
        row["metadata"] = to_jsonable(dict(transition.metadata))
    if transition.caused_by:
        row["caused_by"] = [ref.as_dict() for ref in transition.caused_by]
    if transition.branch != branch:
        row["branch"] = transition.branch
    return row


def statebit_from_dict(cls: type, data: Mapping[str, Any], allow_pickle: bool) -> "Statebit":
    """Rebuild a statebit from :func:`statebit_to_dict` data, verifying every checksum."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise ValidationError(f"invalid statebit data: expected format {FORMAT!r}, got {found!r}")
    missing = [key for key in ("identity", "initial_value", "created_at_ns", "transitions") if key not in data]
    if missing:
        raise ValidationError(f"invalid statebit data: missing keys {missing}")
    rows = data["transitions"]
    return restore_statebit(
        cls,
        identity=data["identity"],
        initial_value=from_jsonable(data["initial_value"], allow_pickle),
        created_at_ns=int(data["created_at_ns"]),
        values=[from_jsonable(row["to_value"], allow_pickle) for row in rows],
        reasons=[row["reason"] for row in rows],
        confidences=[float(row["confidence"]) for row in rows],
        timestamps=[int(row["timestamp_ns"]) for row in rows],
        recorded=[int(row["recorded_at_ns"]) for row in rows],
        tags=[tuple(row.get("tags", ())) for row in rows],
        metadata={i: from_jsonable(row["metadata"], allow_pickle) for i, row in enumerate(rows) if row.get("metadata")},
        causes={i: tuple(CauseRef(**ref) for ref in row["caused_by"]) for i, row in enumerate(rows) if row.get("caused_by")},
        checksums=[row["checksum"] for row in rows],
        lineage=data.get("lineage"),
        branch=data.get("branch") or "main",
        fork_point=data.get("fork_point"),
        fork_reason=data.get("fork_reason"),
        frozen=bool(data.get("frozen", False)),
    )


def restore_statebit(
    cls: type,
    *,
    identity: str,
    initial_value: Any,
    created_at_ns: int,
    values: list[Any],
    reasons: list[str] | str,
    confidences: list[float],
    timestamps: list[int],
    recorded: list[int],
    tags: list[tuple[str, ...]] | None = None,
    metadata: Mapping[int, Mapping[str, Any]] | None = None,
    causes: Mapping[int, tuple[CauseRef, ...]] | None = None,
    checksums: list[str] | list[bytes] | bytes | None = None,
    lineage: str | None = None,
    branch: str = "main",
    fork_point: int | None = None,
    fork_reason: str | None = None,
    frozen: bool = False,
) -> "Statebit":
    """Build a statebit from columns, validating them and verifying stored checksums.

    ``checksums`` given as hex strings or raw bytes are compared with the
    recomputed chain; None computes a fresh chain (for new data). ``reasons``
    may be one string shared by every transition.

    Raises
    ------
    ValidationError
        For columns of different lengths, invalid reasons, confidences or
        times that go backwards.
    IntegrityError
        When a stored checksum does not match its record.
    """
    from statebits.core.statebit import Statebit, creation_hooks_suspended, run_creation_hooks

    count = len(timestamps)
    lengths = {len(values), len(confidences), len(recorded)}
    if not isinstance(reasons, str):
        lengths.add(len(reasons))
    if tags is not None:
        lengths.add(len(tags))
    if lengths != {count}:
        raise ValidationError(f"invalid history columns for {identity!r}: columns have different lengths {sorted(lengths)}")
    _validate_columns(identity, reasons, confidences, timestamps, recorded)
    expected: bytes | None
    if checksums is None:
        expected = None
    elif isinstance(checksums, (bytes, bytearray)):
        expected = bytes(checksums)
    else:
        try:
            expected = b"".join(item if isinstance(item, bytes) else bytes.fromhex(item) for item in checksums)
        except (TypeError, ValueError):
            raise ValidationError(f"invalid checksum column for {identity!r}: expected 64-character hex strings") from None
        if len(expected) != 32 * count:
            raise ValidationError(f"invalid checksum column for {identity!r}: expected {count} checksums of 64 hex characters")

    # Creation hooks (tenant scoping) see the statebit only once its chain verified.
    kind = cls if isinstance(cls, type) and issubclass(cls, Statebit) else Statebit
    with creation_hooks_suspended():
        sb = kind(identity, initial_value, created_at=created_at_ns)
    if branch != "main":
        sb._history = History(identity, sb.initial_value, branch=branch)
    frozen_meta = {i: freeze_mapping(item) for i, item in (metadata or {}).items()}
    if isinstance(values, array) and values.typecode in "dq":
        snapshots: Any = values  # numbers in a typed array are immutable already
    else:
        snapshots = [snapshot(value) for value in values]
    extend_history(sb.history, snapshots, reasons, confidences, timestamps, recorded, tags, frozen_meta, causes, expected)
    if lineage:
        sb.lineage = lineage
    sb.fork_point = fork_point
    sb.fork_reason = fork_reason
    for transition_meta in frozen_meta.values():
        if transition_meta and "merged_head" in transition_meta:
            sb._merged_heads.add(transition_meta["merged_head"])
    sb._frozen = frozen
    run_creation_hooks(sb)
    return sb


def _validate_columns(identity: str, reasons: Any, confidences: Any, timestamps: Any, recorded: Any) -> None:
    import numpy as np

    # Distinct reasons are few, so checking each once is cheap.
    for reason in set(reasons) if not isinstance(reasons, str) else [reasons]:
        if not isinstance(reason, str) or not reason.strip():
            position = list(reasons).index(reason) if not isinstance(reasons, str) else 0
            raise ValidationError(f"invalid reason {reason!r} at step {position + 1} of {identity!r}: expected a non-empty string")
    if not isinstance(confidences, array) or confidences.typecode != "d":
        for position, confidence in enumerate(confidences):
            if not isinstance(confidence, float):
                raise ValidationError(f"invalid confidence {confidence!r} at step {position + 1} of {identity!r}: expected a float from 0.0 to 1.0")
    levels = np.asarray(confidences, dtype=np.float64)
    bad = np.flatnonzero(~((levels >= 0.0) & (levels <= 1.0)))
    if bad.size:
        position = int(bad[0])
        raise ValidationError(f"invalid confidence {levels[position]!r} at step {position + 1} of {identity!r}: expected 0.0 to 1.0")
    for name, column in (("timestamp", timestamps), ("recorded_at", recorded)):
        times = np.asarray(column, dtype=np.int64)
        backwards = np.flatnonzero(np.diff(times) < 0)
        if backwards.size:
            position = int(backwards[0]) + 1
            raise ValidationError(
                f"invalid {name} at step {position + 1} of {identity!r}: it is earlier than step {position}; "
                "times must not go backwards within one statebit"
            )
