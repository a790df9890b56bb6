"""Rebuild statebits from history frames, verifying every row.

A frame is split into members: the rows of one identity, ordered by step.
When one identity has several members (a statebit and its forks), each
member's rows must stay together in step order, as the views write them.
Each member is rebuilt with :func:`restore_statebit`, which recomputes the
hash chain from the genesis record and raises at the first mismatch. Then
each ``from_value`` is checked against the previous row's ``to_value``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from statebits.core.canonical import encode
from statebits.core.errors import IntegrityError, StatebitError, ValidationError
from statebits.core.serialize import restore_statebit
from statebits.core.statebit import Statebit
from statebits.frames._meta import MemberInfo, parse_meta
from statebits.frames._read import FrameReader, ValueColumn, reader_for

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["restore_frame", "verify_frame", "FrameReport", "Problem", "HASHED_COLUMNS"]

#: Columns needed to rebuild and verify a member.
HASHED_COLUMNS = ("identity", "step", "timestamp", "recorded_at", "to_value", "reason", "confidence", "checksum")


@dataclass(frozen=True)
class Problem:
    """One member of a frame that did not verify."""

    identity: str
    branch: str
    step: int | None
    message: str


@dataclass
class FrameReport:
    """The result of verifying a history frame.

    Attributes
    ----------
    ok : bool
        True when every member verified.
    members : int
        Number of statebits found in the frame.
    rows : int
        Number of rows checked.
    problems : list of Problem
        One entry per member that did not verify, with the first bad step.
    """

    members: int = 0
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    @property
    def message(self) -> str:
        """One line per problem, or a summary when the frame verified."""
        if self.ok:
            return f"{self.rows} rows of {self.members} statebits verified"
        return "\n".join(f"{item.identity}@{item.branch}: {item.message}" for item in self.problems)

    def raise_if_broken(self) -> None:
        """Raise :class:`IntegrityError` naming the first problem, if any."""
        if self.problems:
            first = self.problems[0]
            raise IntegrityError(f"{first.identity}: {first.message}", step=first.step)

    def __repr__(self) -> str:
        first = "" if self.ok else f", first_problem={self.problems[0].message!r}"
        return f"FrameReport(ok={self.ok}, members={self.members}, rows={self.rows}{first})"


class _Member:
    """The rows of one statebit in a frame."""

    __slots__ = ("identity", "positions", "branch_codes", "branch_labels", "info")

    def __init__(self, identity: str, positions: np.ndarray, branch_codes: np.ndarray, branch_labels: list[str]) -> None:
        self.identity = identity
        self.positions = positions
        self.branch_codes = branch_codes
        self.branch_labels = branch_labels
        self.info: MemberInfo | None = None

    @property
    def branch(self) -> str:
        return self.info.branch if self.info is not None else self.branch_labels[int(self.branch_codes[-1])]

    @property
    def fork_point(self) -> int | None:
        """Number of leading rows recorded on other branches (shared from a parent), or None."""
        own = np.flatnonzero(self.branch_codes == self.branch_codes[-1])
        first_own = int(own[0])
        return first_own if first_own > 0 else None

    @property
    def key(self) -> str:
        return self.identity if self.branch == "main" else f"{self.identity}@{self.branch}"


def restore_frame(frame: Any, *, allow_pickle: bool = False, cls: type | None = None) -> tuple[str | None, list[Statebit]]:
    """Rebuild every statebit of ``frame`` as ``cls`` (default Statebit); raise at the first member that does not verify."""
    reader = reader_for(frame)
    name, members, empty = _plan(reader, allow_pickle)
    columns = _Columns(reader, allow_pickle)
    # Statebits come back in their stored order when attributes are attached, else in frame order.
    restored = []
    for member in members:
        key = (member.info.position, 0) if member.info is not None else (math.inf, int(member.positions.min()))
        restored.append((key, _restore_member(columns, member, allow_pickle, cls or Statebit)))
    restored.extend(((info.position, 0), _restore_empty(info, cls or Statebit)) for info in empty)
    restored.sort(key=lambda item: item[0])
    return name, [sb for _, sb in restored]


def verify_frame(frame: Any, *, allow_pickle: bool = False) -> FrameReport:
    """Verify every member of ``frame`` and report the ones that do not verify."""
    reader = reader_for(frame)
    report = FrameReport(rows=reader.count)
    if reader.count == 0:
        return report  # no rows, nothing that could fail to verify
    try:
        _, members, _ = _plan(reader, allow_pickle)
        columns = _Columns(reader, allow_pickle)
    except ValidationError as exc:
        report.problems.append(Problem("*", "*", None, str(exc)))
        return report
    report.members = len(members)
    for member in members:
        try:
            _restore_member(columns, member, allow_pickle, Statebit)
        except StatebitError as exc:
            report.problems.append(Problem(member.identity, member.branch, getattr(exc, "step", None), str(exc)))
    return report


# -- splitting a frame into members -----------------------------------------------------------


def _plan(reader: FrameReader, allow_pickle: bool) -> tuple[str | None, list[_Member], list[MemberInfo]]:
    """Return the stored collection name, the members found in the rows, and empty members."""
    missing = [name for name in HASHED_COLUMNS if name not in reader.columns]
    if missing:
        raise ValidationError(
            f"the frame is missing the history columns {missing}; it has {reader.columns}. "
            "Rebuilding needs the columns written by Statebit.to_pandas() and its siblings."
        )
    meta = parse_meta(reader.meta_text(), allow_pickle)
    name, infos = meta if meta is not None else (None, [])
    if "from_value" not in reader.columns and not infos:
        raise ValidationError(
            "the frame has no `from_value` column and no statebits metadata, so the initial values are unknown; "
            "keep the `from_value` column"
        )
    members = _split(reader)
    _attach_infos(members, infos)
    present = {member.key for member in members}
    empty = [info for info in infos if info.transitions == 0 and info.key not in present]
    if not members and meta is None:
        raise ValidationError("the frame has no rows and no statebits metadata; there is nothing to rebuild")
    return name, members, empty


def _split(reader: FrameReader) -> list[_Member]:
    if reader.count == 0:
        return []
    codes, identities = reader.codes("identity")
    steps = reader.ints("step")
    if "branch" in reader.columns:
        branch_codes, branch_labels = reader.codes("branch")
    else:
        branch_codes, branch_labels = np.zeros(reader.count, dtype=np.int64), ["main"]
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    members = []
    for positions in groups:
        identity = identities[int(codes[positions[0]])]
        group_steps = steps[positions]
        if group_steps[0] == 1 and np.all(np.diff(group_steps) == 1):
            runs = [positions]
        elif len(np.unique(group_steps)) == len(group_steps):
            runs = [positions[np.argsort(group_steps, kind="stable")]]
        else:
            # Several statebits share this identity: split where the step sequence restarts.
            runs = np.split(positions, np.flatnonzero(np.diff(group_steps) != 1) + 1)
        for run in runs:
            run_steps = steps[run]
            if run_steps[0] != 1 or np.any(np.diff(run_steps) != 1):
                raise ValidationError(
                    f"the rows of {identity!r} have steps {_describe_steps(run_steps)}; a history frame needs every "
                    "step from 1 without gaps. Rebuild from unfiltered frames, and keep the rows of a statebit and "
                    "its forks apart, each in step order."
                )
            members.append(_Member(identity, run, branch_codes[run], branch_labels))
    return members


def _describe_steps(steps: np.ndarray) -> str:
    shown = ", ".join(str(int(step)) for step in steps[:6])
    return f"[{shown}{', ...' if len(steps) > 6 else ''}]"


def _attach_infos(members: list[_Member], infos: list[MemberInfo]) -> None:
    """Pair members with their stored attributes: by position when the frame is unchanged, else by key."""
    with_rows = [info for info in infos if info.transitions > 0]
    if len(with_rows) == len(members) and all(
        info.identity == member.identity and info.transitions == len(member.positions) for info, member in zip(with_rows, members)
    ):
        for info, member in zip(with_rows, members):
            member.info = info
        return
    by_key = {info.key: info for info in with_rows}
    for member in members:
        info = by_key.get(member.key)
        if info is not None and info.transitions == len(member.positions):
            member.info = info


# -- rebuilding one member ------------------------------------------------------------------------


class _Columns:
    """The frame's columns, each read once and shared by every member."""

    def __init__(self, reader: FrameReader, allow_pickle: bool) -> None:
        self.timestamp = reader.times("timestamp")
        self.recorded = reader.times("recorded_at")
        self.confidence = reader.floats("confidence")
        reason_codes, reason_labels = reader.codes("reason")
        labels = np.empty(len(reason_labels), dtype=object)
        labels[:] = reason_labels
        self.reason = labels[reason_codes]
        self.checksum = reader.arrow("checksum")
        self.to_value = reader.values("to_value")
        self.from_value = reader.values("from_value") if "from_value" in reader.columns else None
        self.tags = reader.tags() if "tags" in reader.columns else None
        self.metadata = reader.metadata(allow_pickle) if "metadata" in reader.columns else {}
        self.causes = reader.causes() if "caused_by" in reader.columns else {}


def _restore_member(columns: _Columns, member: _Member, allow_pickle: bool, cls: type) -> Statebit:
    positions = member.positions
    info = member.info
    to_values = columns.to_value.take(positions, allow_pickle)
    from_values = columns.from_value.take(positions, allow_pickle) if columns.from_value is not None else None
    try:
        sb = _rebuild(columns, member, to_values, from_values, cls)
    except IntegrityError as error:
        # Values written as JSON text lose their marker when a frame passes
        # through a library that drops field metadata. Decoding is kept only
        # when the recomputed checksums then match.
        if columns.to_value.encoded or not _all_json_like(to_values):
            raise
        try:
            to_values = columns.to_value.take(positions, allow_pickle, decode=True)
            if from_values is not None and columns.from_value is not None and _all_json_like(from_values):
                from_values = columns.from_value.take(positions, allow_pickle, decode=True)
            sb = _rebuild(columns, member, to_values, from_values, cls)
        except (ValidationError, IntegrityError):
            raise error from None
    _check_continuity(member, columns, to_values, from_values, sb.initial_value, info is None)
    _check_branches(member)
    return sb


def _check_branches(member: _Member) -> None:
    """Raise IntegrityError where the branch column cannot be the one the views wrote.

    Branch labels are not part of the checksums. The views write each
    branch's rows as one block, and a statebit's own rows (all rows, or the
    rows from its fork point on) carry its branch, which the attached
    attributes name when present. A change that keeps those rules, such as
    relabelling the last block of a frame without attributes, goes unnoticed.
    """
    codes = member.branch_codes
    changes = np.flatnonzero(np.diff(codes)) + 1
    block_codes = codes[np.concatenate(([0], changes))]
    if len(np.unique(block_codes)) != len(block_codes):
        repeated = next(index for index, code in enumerate(block_codes) if code in block_codes[:index])
        step = int(changes[repeated - 1]) + 1
        raise IntegrityError(
            f"{member.identity}: branch {member.branch_labels[int(block_codes[repeated])]!r} at step {step} returns "
            "after rows of another branch; the branch column was changed",
            step=step,
        )
    info = member.info
    if info is None:
        return
    own_from = info.fork_point or 0
    labels = [member.branch_labels[int(code)] for code in codes[own_from:]]
    wrong = next((index for index, label in enumerate(labels) if label != info.branch), None)
    if wrong is not None:
        step = own_from + wrong + 1
        raise IntegrityError(
            f"{member.identity}: branch {labels[wrong]!r} at step {step} is not the statebit's branch {info.branch!r}; "
            "the branch column was changed",
            step=step,
        )


def _rebuild(columns: _Columns, member: _Member, to_values: list[Any], from_values: list[Any] | None, cls: type) -> Statebit:
    positions = member.positions
    info = member.info
    timestamps = columns.timestamp[positions].tolist()
    recorded = columns.recorded[positions].tolist()
    arguments: dict[str, Any] = {
        "identity": member.identity,
        "values": to_values,
        "reasons": columns.reason[positions].tolist(),
        "confidences": columns.confidence[positions].tolist(),
        "timestamps": timestamps,
        "recorded": recorded,
        "tags": None if columns.tags is None else [columns.tags[position] for position in positions.tolist()],
        "metadata": _sparse(columns.metadata, positions),
        "causes": _sparse(columns.causes, positions),
        "checksums": _checksums(columns.checksum, positions, member.identity),
    }
    if info is not None:
        candidates = [info.initial_value]
        attributes = {
            "created_at_ns": info.created_at_ns,
            "lineage": info.lineage,
            "branch": info.branch,
            "fork_point": info.fork_point,
            "fork_reason": info.fork_reason,
            "frozen": info.frozen,
        }
    else:
        assert from_values is not None  # _plan requires from_value when no metadata is attached
        candidates = _initial_candidates(from_values[0])
        attributes = {"created_at_ns": timestamps[0], "branch": member.branch, "fork_point": member.fork_point}
    initial = _pick_initial(candidates, arguments) if len(candidates) > 1 else candidates[0]
    return restore_statebit(cls, initial_value=initial, **arguments, **attributes)


def _initial_candidates(first: Any) -> list[Any]:
    """Return the initial values a first from_value can stand for.

    A typed column writes a None initial value as a missing entry, which
    pandas shows as NaN. The first checksum depends on the initial value, so
    only the recorded candidate verifies.
    """
    if not _is_missing(first):
        return [first]
    import pandas as pd

    candidates: list[Any] = []
    seen: set[bytes] = set()
    for value in (first, None, float("nan"), pd.NA):
        key = encode(value)
        if key not in seen:
            seen.add(key)
            candidates.append(value)
    return candidates


def _pick_initial(candidates: list[Any], arguments: dict[str, Any]) -> Any:
    """Return the candidate whose genesis record verifies the first checksum."""
    first = {key: (value[:1] if isinstance(value, list) else value) for key, value in arguments.items()}
    first["checksums"] = arguments["checksums"][:32]
    first["metadata"] = {0: arguments["metadata"][0]} if 0 in arguments["metadata"] else None
    first["causes"] = {0: arguments["causes"][0]} if 0 in arguments["causes"] else None
    for candidate in candidates:
        try:
            restore_statebit(Statebit, initial_value=candidate, created_at_ns=0, **first)
        except IntegrityError:
            continue
        return candidate
    return candidates[0]  # none verifies: the full rebuild reports the mismatch


def _sparse(table: dict[int, Any], positions: np.ndarray) -> dict[int, Any]:
    if not table:
        return {}
    return {index: table[position] for index, position in enumerate(positions.tolist()) if position in table}


def _checksums(column: "pa.Array", positions: np.ndarray, identity: str) -> bytes:
    """Return the raw checksums of ``positions``, decoded from hex text without a Python loop per row."""
    import binascii

    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_string_view(column.type)):
        raise ValidationError(f"invalid checksum column for {identity!r}: expected hex strings, got {column.type}")
    selected = column.take(pa.array(positions)).cast(pa.large_string())
    lengths = pc.binary_length(selected).fill_null(0).to_numpy(zero_copy_only=False)
    wrong = np.flatnonzero(lengths != 64)
    if len(wrong):
        step = int(wrong[0])
        raise ValidationError(
            f"invalid checksum {selected[step].as_py()!r} at step {step + 1} of {identity!r}: expected 64 hex digits"
        )
    offsets = np.frombuffer(selected.buffers()[1], dtype=np.int64)[selected.offset : selected.offset + len(selected) + 1]
    digits = memoryview(selected.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
    try:
        return binascii.unhexlify(digits)
    except (binascii.Error, ValueError):
        step = next(index for index, text in enumerate(selected.to_pylist()) if not _is_hex(text))
        raise ValidationError(f"invalid checksum at step {step + 1} of {identity!r}: expected hex digits") from None


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _check_continuity(
    member: _Member,
    columns: _Columns,
    to_values: list[Any],
    from_values: list[Any] | None,
    initial: Any,
    initial_from_rows: bool,
) -> None:
    """Raise IntegrityError where a from_value is not the previous to_value (or the initial value)."""
    if from_values is None:
        return
    first = from_values[0]
    if not initial_from_rows and not _same(first, initial) and not (_is_missing(first) and _is_missing(initial)):
        raise IntegrityError(
            f"{member.identity}: from_value {first!r} at step 1 is not the initial value {initial!r}", step=1
        )
    if _numeric_pair(columns):
        bad = _first_numeric_mismatch(member, columns)
    else:
        bad = next((index for index in range(1, len(to_values)) if not _same(from_values[index], to_values[index - 1])), None)
    if bad is not None:
        raise IntegrityError(
            f"{member.identity}: from_value {from_values[bad]!r} at step {bad + 1} is not the previous to_value "
            f"{to_values[bad - 1]!r}; the from_value column was changed",
            step=bad + 1,
        )


def _numeric_pair(columns: _Columns) -> bool:
    return columns.from_value is not None and columns.from_value.numeric and columns.to_value.numeric


def _first_numeric_mismatch(member: _Member, columns: _Columns) -> int | None:
    assert columns.from_value is not None
    positions = member.positions
    previous = _masked(columns.to_value, positions[:-1])
    current = _masked(columns.from_value, positions[1:])
    if previous.dtype != current.dtype:
        previous, current = previous.astype(object), current.astype(object)
        equal = np.array([_same(a, b) for a, b in zip(previous.tolist(), current.tolist())], dtype=bool)
    elif previous.dtype.kind == "f":
        equal = (previous == current) | (np.isnan(previous) & np.isnan(current))
    else:
        equal = previous == current
    wrong = np.flatnonzero(~equal)
    return int(wrong[0]) + 1 if len(wrong) else None


def _masked(column: ValueColumn, positions: np.ndarray) -> np.ndarray:
    data = column.data[positions]
    if column.missing is None or not column.missing[positions].any():
        return data
    result = data.astype(object)
    result[column.missing[positions]] = None
    return result


def _same(left: Any, right: Any) -> bool:
    if left is right:
        return True
    try:
        return encode(left) == encode(right)
    except ValidationError:
        return bool(left == right)


def _is_missing(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ == "NAType"


def _all_json_like(values: list[Any]) -> bool:
    return bool(values) and all(value is None or isinstance(value, str) for value in values)


def _restore_empty(info: MemberInfo, cls: type) -> Statebit:
    return restore_statebit(
        cls,
        identity=info.identity,
        initial_value=info.initial_value,
        created_at_ns=info.created_at_ns,
        values=[],
        reasons=[],
        confidences=[],
        timestamps=[],
        recorded=[],
        lineage=info.lineage,
        branch=info.branch,
        fork_point=info.fork_point,
        fork_reason=info.fork_reason,
        frozen=info.frozen,
    )
