"""Fork and merge of statebits.

Two statebits are related when they share a lineage (a fork copies its
parent's) and their hash chains agree up to some step, the merge base. The
chain makes finding that step a binary search: equal checksums at step k
mean equal histories up to k.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from statebits.core import clock as _clock
from statebits.core.errors import MergeError, ValidationError
from statebits.core.history import History
from statebits.core.transition import StateTransition

if TYPE_CHECKING:
    from statebits.core.statebit import Statebit

__all__ = ["fork", "merge", "preview", "MergePreview", "STRATEGIES"]

STRATEGIES = ("latest", "highest_confidence", "custom")


@dataclass(frozen=True)
class MergePreview:
    """The outcome a merge would have, computed without recording anything.

    Attributes
    ----------
    base_step : int
        Last step both histories share.
    ours, theirs : list of StateTransition
        Changes made on each side since the base.
    conflict : bool
        True when both sides changed since the base and their values differ.
    results : dict
        The value each strategy except "custom" would produce.
    already_merged : bool
        True when the other side's head was merged before and nothing is new.
    """

    base_step: int
    ours: list[StateTransition] = field(repr=False)
    theirs: list[StateTransition] = field(repr=False)
    ours_value: Any
    theirs_value: Any
    conflict: bool
    results: dict[str, Any]
    already_merged: bool

    def __repr__(self) -> str:
        return (
            f"MergePreview(base_step={self.base_step}, ours={len(self.ours)} changes, "
            f"theirs={len(self.theirs)} changes, conflict={self.conflict}, results={self.results!r})"
        )


def fork(source: "Statebit", reason: str, at: int | None, branch: str | None) -> "Statebit":
    """Create a fork of ``source`` sharing its history up to step ``at``."""
    from statebits.core.statebit import _check_reason

    _check_reason(reason)
    with source._lock:
        size = len(source.history)
        point = size if at is None else at
        if isinstance(point, bool) or not isinstance(point, int) or not 0 <= point <= size:
            raise ValidationError(f"invalid fork step at={at!r}: expected an integer from 0 to {size}")
        if branch is None:
            source._fork_count += 1
            branch = f"{source.branch}.fork-{source._fork_count}" if source.branch != "main" else f"fork-{source._fork_count}"
        elif not isinstance(branch, str) or not branch.strip() or branch == "main" or "@" in branch:
            raise ValidationError(
                f"invalid branch name {branch!r}: expected a non-empty string other than 'main', without '@' "
                "(keys are written identity@branch)"
            )
        kind = type(source)
        child = kind.__new__(kind)
        kind.__init__(child, source.identity, source.initial_value, created_at=_clock.now_ns())
        child._history = History(source.identity, source.initial_value, branch=branch, base=source.history, base_len=point)
        child.lineage = source.lineage
        child.parent = source
        child.fork_point = point
        child.fork_reason = reason
    return child


def merge_base(ours: History, theirs: History) -> int:
    """Return the last step both histories share, or -1 when even the genesis differs."""
    if ours.genesis != theirs.genesis:
        return -1
    low, high = 0, min(len(ours), len(theirs))
    while low < high:
        middle = (low + high + 1) // 2
        if ours.checksum_of(middle - 1) == theirs.checksum_of(middle - 1):
            low = middle
        else:
            high = middle - 1
    return low


def preview(target: "Statebit", other: "Statebit") -> MergePreview:
    """Compute the merge base, each side's changes and each strategy's result."""
    from statebits.core.statebit import Statebit

    if not isinstance(other, Statebit):
        raise MergeError(f"cannot merge {other!r}: expected a Statebit")
    if other is target:
        raise MergeError(f"cannot merge statebit {target.identity!r} into itself")
    base = merge_base(target.history, other.history) if other.lineage == target.lineage else -1
    if base < 0:
        raise MergeError(
            f"cannot merge {other.key!r} into {target.key!r}: their histories are unrelated "
            "(no common fork point); merge only forks of the same statebit"
        )
    ours = target.history[base:]
    theirs = other.history[base:]
    already = not theirs or other.history.head_checksum().hex() in target._merged_heads
    ours_last = ours[-1] if ours else None
    theirs_last = theirs[-1] if theirs else None
    results = {
        "latest": _pick_latest(target.value, other.value, ours_last, theirs_last),
        "highest_confidence": _pick_confident(target.value, other.value, ours_last, theirs_last),
    }
    conflict = bool(ours) and bool(theirs) and not _same(target.value, other.value)
    return MergePreview(base, ours, theirs, target.value, other.value, conflict, results, already)


def merge(
    target: "Statebit",
    other: "Statebit",
    strategy: str,
    resolver: Callable[[Any, Any], Any] | None,
    reason: str | None,
) -> StateTransition | None:
    """Record the merge of ``other`` into ``target`` as one transition."""
    if strategy not in STRATEGIES:
        raise MergeError(f"unknown merge strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if strategy == "custom" and not callable(resolver):
        raise MergeError("merge strategy 'custom' needs a resolver: a callable taking (ours, theirs) and returning the merged value")
    if strategy != "custom" and resolver is not None:
        raise MergeError(f"a resolver is only used with strategy='custom', not {strategy!r}")
    first, second = sorted((target, other), key=id)  # one lock order, so opposite merges cannot deadlock
    with first._lock, second._lock:
        plan = preview(target, other)
        if plan.already_merged:
            return None
        if strategy == "custom":
            assert resolver is not None
            value = resolver(target.value, other.value)
        else:
            value = plan.results[strategy]
        theirs_last = plan.theirs[-1]
        ours_last = plan.ours[-1] if plan.ours else None
        head = other.history.head_checksum().hex()
        if _same(value, other.value):
            adopted_time: int | None = value_time_ns(theirs_last)
        elif ours_last is not None and _same(value, target.value):
            adopted_time = value_time_ns(ours_last)
        else:
            adopted_time = None  # a new value made by the resolver dates from the merge itself
        if _same(value, other.value):
            confidence = theirs_last.confidence
        elif ours_last is not None:
            confidence = ours_last.confidence
        else:
            confidence = 1.0
        transition = target._record(
            value,
            f"Merge of branch {other.branch!r} ({strategy})" if reason is None else reason,
            confidence=confidence,
            tags=("merge",),
            metadata={
                "merged_from": other.identity,
                "merged_branch": other.branch,
                "strategy": strategy,
                "base_step": plan.base_step,
                "merged_head": head,
                "value_time_ns": adopted_time,
            },
            caused_by=theirs_last,
        )
        target._merged_heads.add(head)
    return transition


def _same(left: Any, right: Any) -> bool:
    try:
        return bool(left == right) or (left != left and right != right)
    except (TypeError, ValueError):  # arrays and pd.NA have no plain truth value
        from statebits.core.canonical import encode

        return encode(left) == encode(right)


def value_time_ns(transition: StateTransition) -> int:
    """Return when the value of ``transition`` was set by a real change.

    A merge transition carries the time of the change it adopted, so a value
    brought in by an earlier merge does not count as newer than it is.
    """
    adopted = transition.metadata.get("value_time_ns") if "merge" in transition.tags else None
    return int(adopted) if adopted is not None else transition.timestamp_ns


def _pick_latest(ours: Any, theirs: Any, ours_last: StateTransition | None, theirs_last: StateTransition | None) -> Any:
    if theirs_last is None:
        return ours
    if ours_last is None:
        return theirs
    ours_time, theirs_time = value_time_ns(ours_last), value_time_ns(theirs_last)
    if ours_time != theirs_time:
        return ours if ours_time > theirs_time else theirs
    return theirs if theirs_last.recorded_at_ns >= ours_last.recorded_at_ns else ours


def _pick_confident(ours: Any, theirs: Any, ours_last: StateTransition | None, theirs_last: StateTransition | None) -> Any:
    if theirs_last is None:
        return ours
    if ours_last is None:
        return theirs
    if ours_last.confidence != theirs_last.confidence:
        return ours if ours_last.confidence > theirs_last.confidence else theirs
    return _pick_latest(ours, theirs, ours_last, theirs_last)


