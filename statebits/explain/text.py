"""The text behind ``Statebit.explain()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from statebits.core.errors import ValidationError
from statebits.core.transition import CauseRef, StateTransition

if TYPE_CHECKING:
    from statebits.core.statebit import Statebit

__all__ = ["explain_statebit", "describe_transition"]

DEFAULT_CAUSE_DEPTH = 5


def describe_transition(transition: StateTransition) -> str:
    """Describe one transition on one line."""
    tags = f" [{', '.join(transition.tags)}]" if transition.tags else ""
    return (
        f"#{transition.step} {transition.timestamp.isoformat()}: {transition.from_value!r} -> "
        f"{transition.to_value!r} because {transition.reason!r} (confidence {transition.confidence:.2f}){tags}"
    )


def explain_statebit(sb: "Statebit", depth: int | None = None) -> str:
    """Explain how ``sb`` reached its value, newest change first.

    ``depth`` limits the transitions shown and the levels of causes followed.
    """
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ValidationError(f"invalid depth {depth!r}: expected a positive integer or None")
    history = sb.history
    count = len(history)
    report = sb.integrity_report()
    status = "integrity verified" if report.ok else f"INTEGRITY BROKEN at step {report.first_bad_step}"
    branch = "" if sb.branch == "main" else f" on branch {sb.branch!r} (forked at step {sb.fork_point}: {sb.fork_reason})"
    lines = [f"{sb.identity}{branch} is {sb.value!r} after {count} transition(s), {status}."]
    if count == 0:
        lines.append(f"  It still holds its initial value {sb.initial_value!r}.")
        return "\n".join(lines)
    shown = count if depth is None else min(depth, count)
    cause_depth = DEFAULT_CAUSE_DEPTH if depth is None else depth
    for position in range(count - 1, count - 1 - shown, -1):
        transition = history[position]
        lines.append("  " + describe_transition(transition))
        for ref in transition.caused_by:
            _explain_cause(ref, lines, level=1, limit=cause_depth, seen=set())
    if shown < count:
        lines.append(f"  ... {count - shown} earlier transition(s) not shown; the initial value was {sb.initial_value!r}.")
    else:
        lines.append(f"  Initial value: {sb.initial_value!r}.")
    return "\n".join(lines)


def _explain_cause(ref: CauseRef, lines: list[str], level: int, limit: int, seen: set[CauseRef]) -> None:
    indent = "  " * (level + 1)
    if ref in seen:
        return
    seen.add(ref)
    cause = ref.resolve()
    if cause is None:
        lines.append(f"{indent}because {ref.identity} step {ref.step} (not loaded)")
        return
    where = cause.identity if cause.branch == "main" else f"{cause.identity}@{cause.branch}"
    lines.append(
        f"{indent}because {where} changed to {cause.to_value!r} at {cause.timestamp.isoformat()} "
        f"(#{cause.step}: {cause.reason!r})"
    )
    if level >= limit:
        if cause.caused_by:
            lines.append(f"{indent}  ... further causes not shown")
        return
    for parent in cause.caused_by:
        _explain_cause(parent, lines, level + 1, limit, seen)
