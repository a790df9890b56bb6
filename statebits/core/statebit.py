"""Statebit: a value with its complete, tamper-evident history."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from statebits.core import clock as _clock
from statebits.core.canonical import IMMUTABLE_TYPES, encode, freeze_mapping, snapshot
from statebits.core.clock import from_ns, to_ns
from statebits.core.confidence import check_confidence
from statebits.core.errors import FrozenStatebitError, TransitionError, ValidationError
from statebits.core.history import History, IntegrityReport
from statebits.core.transition import CauseRef, StateTransition
from statebits.core.views import TransitionView

__all__ = ["Statebit"]

logger = logging.getLogger(__name__)

Observer = Callable[["Statebit", StateTransition], Any]
_MIN_NS = -(2**63)
_pack_double = struct.Struct("<d").pack
_NAN_BYTES = encode(float("nan"))
# Building transitions through the slot descriptors skips the immutability
# guard in StateTransition.__setattr__, which matters on the hot path.
_new_transition = object.__new__
_set_history = StateTransition._history.__set__  # type: ignore[attr-defined]
_set_index = StateTransition._index.__set__  # type: ignore[attr-defined]
#: Callables run with each new Statebit at the end of its construction, such
#: as tenant scoping; a hook that raises aborts the construction.
CREATION_HOOKS: list[Callable[["Statebit"], None]] = []
_hooks_suspended: contextvars.ContextVar[bool] = contextvars.ContextVar("statebits_hooks_suspended", default=False)


def run_creation_hooks(sb: "Statebit") -> None:
    """Run every creation hook with ``sb``."""
    for hook in list(CREATION_HOOKS):
        hook(sb)


@contextlib.contextmanager
def creation_hooks_suspended() -> Iterator[None]:
    """Build statebits without running creation hooks, e.g. before loaded data is verified."""
    token = _hooks_suspended.set(True)
    try:
        yield
    finally:
        _hooks_suspended.reset(token)

# Integer timestamps are nanoseconds; below this (1970-01-12) an integer is
# far more likely to be seconds or milliseconds passed by mistake.
_SMALLEST_NS_TIMESTAMP = 10**15
_BATCH_KEYS = frozenset({"new_value", "reason", "confidence", "tags", "metadata", "timestamp", "caused_by"})


class Statebit:
    """A value that records every change with its reason, confidence, tags, time and causes.

    Parameters
    ----------
    identity : str
        Name of the tracked value, such as ``"account_001"``.
    initial_value : Any, default None
        The value before the first transition. It is part of the genesis
        record the hash chain starts from.
    created_at : datetime or str, optional
        Creation time; defaults to the active clock (see :func:`use_clock`).
        Naive datetimes are read as UTC.

    Examples
    --------
    >>> account = Statebit(identity="checking", initial_value=1000.0)
    >>> _ = account.transition(1500.0, "Deposit received", confidence=1.0)
    >>> account.value
    1500.0
    >>> len(account.history)
    1
    """

    def __init__(self, identity: str, initial_value: Any = None, *, created_at: Any = None) -> None:
        if not isinstance(identity, str) or not identity.strip():
            raise ValidationError(f"invalid identity {identity!r}: expected a non-empty string such as 'account_001'")
        self._identity = identity
        initial = snapshot(initial_value)
        encode(initial)  # reject values with no canonical form before anything is built
        self._created_ns = _clock.now_ns() if created_at is None else to_ns(created_at)
        self._history = History(identity, initial)
        self._lock = threading.RLock()
        self._observers: list[Observer] = []
        self._frozen = False
        self.lineage = uuid.uuid4().hex
        self.parent: Statebit | None = None
        self.fork_point: int | None = None
        self.fork_reason: str | None = None
        self._merged_heads: set[str] = set()
        self._fork_count = 0
        # A store attaches itself here; see attach_sink().
        self._sink: Any = None
        if CREATION_HOOKS and not _hooks_suspended.get():
            run_creation_hooks(self)

    # -- basic properties -----------------------------------------------------

    @property
    def identity(self) -> str:
        """Name of the tracked value."""
        return self._identity

    @property
    def value(self) -> Any:
        """The current value."""
        return self._history.last_value

    @property
    def initial_value(self) -> Any:
        """The value before the first transition (a copy when the value is mutable)."""
        return self._history.value_of(-1)

    @property
    def created_at(self) -> datetime:
        """Creation time, aware UTC."""
        return from_ns(self._created_ns)

    @property
    def history(self) -> History:
        """The recorded transitions, oldest first, as a read-only sequence."""
        return self._history

    @property
    def branch(self) -> str:
        """"main", or the branch name of a fork."""
        return self._history.branch

    @property
    def key(self) -> str:
        """``identity`` for a main branch, ``identity@branch`` for a fork."""
        return self._identity if self.branch == "main" else f"{self._identity}@{self.branch}"

    @property
    def frozen(self) -> bool:
        """True after :meth:`freeze`; a frozen statebit rejects transitions."""
        return self._frozen

    def __len__(self) -> int:
        return len(self._history)

    def __repr__(self) -> str:
        branch = "" if self.branch == "main" else f", branch={self.branch!r}"
        frozen = ", frozen" if self._frozen else ""
        kind = type(self).__name__
        return f"{kind}(identity={self._identity!r}, value={self.value!r}, transitions={len(self._history)}{branch}{frozen})"

    # -- recording ------------------------------------------------------------

    def transition(
        self,
        new_value: Any,
        reason: str,
        confidence: float = 1.0,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: Any = None,
        caused_by: Any = None,
    ) -> StateTransition:
        """Record a change of the value.

        Parameters
        ----------
        new_value : Any
            The new value. Mutable values are copied, so later changes to the
            object never alter history.
        reason : str
            Why the value changed; a non-empty string.
        confidence : float or ConfidenceLevel, default 1.0
            How sure the change is, from 0.0 to 1.0.
        tags : iterable of str, optional
            Labels for filtering, such as ``["income", "payroll"]``.
        metadata : mapping, optional
            Extra context, stored read-only.
        timestamp : datetime, str or int, optional
            When the change happened (valid time). Defaults to now. Naive
            datetimes are read as UTC. It must not be earlier than the
            previous transition's timestamp. When omitted and the previous
            transition carries a later timestamp, that timestamp is reused.
        caused_by : StateTransition, Statebit, CauseRef or a list of them, optional
            Transitions of other statebits that caused this one.

        Returns
        -------
        StateTransition
            The recorded transition.

        Raises
        ------
        TransitionError, ValidationError
            For invalid input; the statebit is left unchanged.
        """
        with self._lock:
            if self._frozen:
                raise FrozenStatebitError(f"statebit {self._identity!r} is frozen; fork it to record further changes")
            history = self._history

            # Reasons seen before were validated when first recorded.
            reason_code = history.reasons.codes.get(reason) if type(reason) is str else None
            if reason_code is None:
                _check_reason(reason)
                reason_code = history.reasons.add(reason)
            if type(confidence) is not float or not 0.0 <= confidence <= 1.0:
                confidence = check_confidence(confidence)
            now = _clock.current()
            if timestamp is None:
                valid = now if now >= history._last_ts else history._last_ts
            else:
                valid = _check_timestamp(timestamp, history._last_ts, self._identity)
            recorded = now if now >= history._last_rec else history._last_rec
            if type(new_value) is float:
                value = new_value
                value_bytes = b"f" + _pack_double(new_value) if new_value == new_value else _NAN_BYTES
            else:
                value = new_value if type(new_value) in IMMUTABLE_TYPES else snapshot(new_value)
                value_bytes = encode(value)
            tag_code = 0 if tags is None else history.tagsets.add(_check_tags(tags))
            frozen_metadata = None if metadata is None else freeze_mapping(metadata)
            causes = None if caused_by is None else _cause_refs(caused_by, self)
            index = history.append(value, value_bytes, reason_code, tag_code, confidence, valid, recorded, frozen_metadata, causes)
            if self._sink is not None:
                self._write_to_sink(index, index + 1)
            recorded_transition = _new_transition(StateTransition)
            _set_history(recorded_transition, history)
            _set_index(recorded_transition, index)
        if self._observers:
            self._notify(recorded_transition)
        return recorded_transition

    def _write_to_sink(self, start: int, stop: int) -> None:
        """Persist transitions ``start`` to ``stop``; on failure undo them and raise StoreError."""
        try:
            self._sink.write(self, start, stop)
        except BaseException as exc:
            self._history.truncate(start - self._history.base_len)
            from statebits.core.errors import StoreError

            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"could not persist step(s) {start + 1}-{stop} of {self._identity!r}, nothing recorded: {exc}") from exc

    def attach_sink(self, sink: Any) -> None:
        """Persist every later append through ``sink.write(statebit, start, stop)``.

        Used by stores: the write happens inside the statebit's lock, and a
        failed write undoes the append, so memory and store never diverge.
        Pass None to detach.
        """
        if sink is not None and not callable(getattr(sink, "write", None)):
            raise ValidationError(f"invalid sink {sink!r}: expected an object with a write(statebit, start, stop) method")
        with self._lock:
            self._sink = sink

    # The synchronous recorder, kept under a second name so batches, rollbacks
    # and merges of subclasses with awaitable ``transition`` can reuse it.
    _record = transition

    def batch_transition(self, transitions: Sequence[Mapping[str, Any]]) -> list[StateTransition]:
        """Record several transitions as one unit: all of them or none.

        Parameters
        ----------
        transitions : sequence of dict
            Each dict contains the keyword arguments of :meth:`transition`
            (``new_value`` and ``reason`` required).

        Returns
        -------
        list of StateTransition

        Raises
        ------
        ValidationError, TransitionError
            When any item is invalid; nothing is recorded and the error names
            the item's position.
        """
        if isinstance(transitions, (str, bytes, Mapping)) or not isinstance(transitions, Iterable):
            raise ValidationError(f"invalid batch {transitions!r}: expected a list of dicts with 'new_value' and 'reason'")
        items = list(transitions)
        for position, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValidationError(f"invalid batch item {position}: expected a dict, got {item!r}")
            unknown = set(item) - _BATCH_KEYS
            if unknown:
                raise ValidationError(
                    f"invalid batch item {position}: unknown keys {sorted(unknown)}; allowed keys are {sorted(_BATCH_KEYS)}"
                )
            missing = [key for key in ("new_value", "reason") if key not in item]
            if missing:
                raise ValidationError(f"invalid batch item {position}: missing {missing}")
        recorded: list[StateTransition] = []
        with self._lock:
            # Observers and the store see the batch once, after every item passed.
            observers, self._observers = self._observers, []
            sink, self._sink = self._sink, None
            start = self._history.own_len
            try:
                for position, item in enumerate(items):
                    try:
                        recorded.append(self._record(**item))
                    except (ValidationError, TransitionError) as exc:
                        raise type(exc)(f"batch item {position} rejected, nothing recorded: {exc}") from None
                self._sink = sink
                if sink is not None and recorded:
                    self._write_to_sink(self._history.base_len + start, len(self._history))
            except BaseException:
                self._history.truncate(start)
                raise
            finally:
                self._observers = observers
                self._sink = sink
        for item in recorded:
            self._notify(item)
        return recorded

    def rollback(self, steps: int = 1, reason: str | None = None, **kwargs: Any) -> StateTransition:
        """Return to the value of ``steps`` transitions ago, recorded as a new transition.

        History is never rewritten: the rollback is a transition tagged
        ``"rollback"`` whose metadata names the step returned to.

        Parameters
        ----------
        steps : int, default 1
            How many transitions to undo, from 1 to ``len(history)``.
        reason : str, optional
            Defaults to "Rollback of N step(s) to step K".
        **kwargs
            Further arguments of :meth:`transition` (confidence, timestamp, ...).
        """
        size = len(self._history)
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= size:
            raise ValidationError(f"invalid rollback steps {steps!r}: expected an integer from 1 to {size} (the history length)")
        target = size - steps
        tags = tuple(kwargs.pop("tags", None) or ()) + ("rollback",)
        metadata = dict(kwargs.pop("metadata", None) or {})
        metadata["rollback_to_step"] = target
        return self._record(
            self._history.value_of(target - 1),
            f"Rollback of {steps} step(s) to step {target}" if reason is None else reason,
            tags=tags,
            metadata=metadata,
            **kwargs,
        )

    def freeze(self) -> "Statebit":
        """Reject all further transitions; returns self."""
        self._frozen = True
        return self

    # -- observers -----------------------------------------------------------

    def add_observer(self, callback: Observer) -> Observer:
        """Call ``callback(statebit, transition)`` after every recorded transition.

        An observer that raises does not undo the transition; its error is logged.
        Returns the callback, so this works as a decorator.
        """
        if not callable(callback):
            raise ValidationError(f"invalid observer {callback!r}: expected a callable taking (statebit, transition)")
        with self._lock:
            self._observers = self._observers + [callback]
        return callback

    def remove_observer(self, callback: Observer) -> None:
        """Stop calling ``callback``; raises ValidationError when it was not added."""
        with self._lock:
            if callback not in self._observers:
                raise ValidationError(f"observer {callback!r} is not registered on {self._identity!r}")
            self._observers = [item for item in self._observers if item is not callback]

    def _notify(self, transition: StateTransition) -> None:
        for callback in self._observers:
            try:
                callback(self, transition)
            except Exception:  # an observer must never corrupt or undo history
                logger.exception("observer %r of statebit %r failed on step %d", callback, self._identity, transition.step)

    # -- queries ---------------------------------------------------------------

    def query(self, predicate: Callable[[StateTransition], bool]) -> list[StateTransition]:
        """Return the transitions for which ``predicate(transition)`` is true."""
        if not callable(predicate):
            raise ValidationError(f"invalid predicate {predicate!r}: expected a callable taking a StateTransition")
        return [item for item in self._history if predicate(item)]

    def get_transitions_by_tag(self, tag: str) -> TransitionView:
        """Return the transitions carrying ``tag``."""
        if not isinstance(tag, str):
            raise ValidationError(f"invalid tag {tag!r}: expected a string")
        import numpy as np

        history = self._history
        matching = [code for code, tagset in enumerate(history.tagsets.items) if tag in tagset]
        codes = history.column("tag_code")
        if not matching:
            positions = np.empty(0, dtype=np.int64)
        elif len(matching) == 1:
            positions = np.flatnonzero(codes == matching[0])
        else:
            positions = np.flatnonzero(np.isin(codes, matching))
        return TransitionView(history, positions)

    def get_transitions_by_confidence(self, min_confidence: float, max_confidence: float = 1.0) -> TransitionView:
        """Return the transitions with ``min_confidence <= confidence <= max_confidence``."""
        low = check_confidence(min_confidence)
        high = check_confidence(max_confidence)
        if low > high:
            raise ValidationError(f"invalid confidence range: min_confidence {low} is above max_confidence {high}")
        import numpy as np

        values = self._history.column("confidence")
        return TransitionView(self._history, np.flatnonzero((values >= low) & (values <= high)))

    def get_transitions_in_range(self, start: Any = None, end: Any = None) -> TransitionView:
        """Return the transitions whose timestamp lies in ``[start, end]`` (both inclusive).

        Either bound may be None for an open range. Naive datetimes are read as UTC.
        """
        import numpy as np

        low = _MIN_NS if start is None else to_ns(start)
        high = 2**63 - 1 if end is None else to_ns(end)
        if low > high:
            raise ValidationError(f"invalid time range: start {start!r} is after end {end!r}")
        times = self._history.column("timestamp")
        first = int(np.searchsorted(times, low, side="left"))
        last = int(np.searchsorted(times, high, side="right"))
        return TransitionView(self._history, np.arange(first, last, dtype=np.int64))

    def value_at(self, when: Any) -> Any:
        """Return the value at valid time ``when``: what the value was then.

        Before the first transition this is the initial value.
        """
        return self._value_by_column("timestamp", to_ns(when))

    def as_recorded(self, when: Any) -> Any:
        """Return what was known at ``when``: the value from transitions recorded by then."""
        return self._value_by_column("recorded_at", to_ns(when))

    def _value_by_column(self, column: str, moment: int) -> Any:
        import numpy as np

        times = self._history.column(column)
        position = int(np.searchsorted(times, moment, side="right")) - 1
        return self._history.value_of(position)

    def transition_at(self, when: Any) -> StateTransition | None:
        """Return the transition in effect at valid time ``when``, or None before the first."""
        import numpy as np

        times = self._history.column("timestamp")
        position = int(np.searchsorted(times, to_ns(when), side="right")) - 1
        return None if position < 0 else self._history[position]

    # -- integrity -----------------------------------------------------------

    def verify_integrity(self, raise_on_error: bool = False) -> bool:
        """Recompute the hash chain; return True when every checksum matches.

        Parameters
        ----------
        raise_on_error : bool, default False
            Raise :class:`IntegrityError` naming the first bad step instead of
            returning False.
        """
        report = self._history.verify()
        if raise_on_error:
            report.raise_if_broken()
        return report.ok

    def integrity_report(self) -> IntegrityReport:
        """Recompute the hash chain and report the first broken step, if any."""
        return self._history.verify()

    # -- explanation -------------------------------------------------------------

    def explain(self, depth: int | None = None) -> str:
        """Explain how the value got here, following causes into other statebits.

        Parameters
        ----------
        depth : int, optional
            How many of the most recent transitions to show, and how many
            levels of causes to follow. None shows every transition and
            follows causes up to 5 levels.
        """
        from statebits.explain.text import explain_statebit

        return explain_statebit(self, depth)

    # -- fork and merge --------------------------------------------------------

    def fork(self, reason: str, at: int | None = None, branch: str | None = None) -> "Statebit":
        """Branch off a what-if copy that shares this history up to a step.

        Parameters
        ----------
        reason : str
            Why the fork was made.
        at : int, optional
            Step to fork from (0 forks from the initial value). Defaults to
            the current step.
        branch : str, optional
            Name of the new branch; defaults to ``fork-N``.

        Returns
        -------
        Statebit
            The fork, with the same identity, ``parent`` set to this statebit
            and ``fork_point`` set to the step it starts from.
        """
        from statebits.core.merging import fork

        return fork(self, reason, at, branch)

    def merge_preview(self, other: "Statebit") -> Any:
        """Describe what merging ``other`` would do, without recording anything."""
        from statebits.core.merging import preview

        return preview(self, other)

    def merge(
        self,
        other: "Statebit",
        strategy: str = "latest",
        resolver: Callable[[Any, Any], Any] | None = None,
        reason: str | None = None,
    ) -> StateTransition | None:
        """Merge the changes of a related statebit into this one.

        Parameters
        ----------
        other : Statebit
            A fork of this statebit, its parent, or another fork of the same lineage.
        strategy : {"latest", "highest_confidence", "custom"}, default "latest"
            ``latest`` takes the value whose last change has the later
            timestamp; ``highest_confidence`` the value whose last change has
            the higher confidence (ties go to the later one); ``custom`` calls
            ``resolver(ours, theirs)`` with both current values.
        resolver : callable, optional
            Required with ``strategy="custom"``.
        reason : str, optional
            Reason of the merge transition.

        Returns
        -------
        StateTransition or None
            The merge transition, or None when ``other`` has nothing new.

        Raises
        ------
        MergeError
            For unrelated histories, an unknown strategy or a missing resolver.
        """
        from statebits.core.merging import merge

        if not isinstance(other, Statebit):
            from statebits.core.errors import MergeError

            raise MergeError(f"cannot merge {other!r}: expected a Statebit, such as a fork made with fork()")
        return merge(self, other, strategy, resolver, reason)

    # -- serialisation -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the statebit as JSON-ready data (see :meth:`to_json`)."""
        from statebits.core.serialize import statebit_to_dict

        return statebit_to_dict(self)

    def to_json(self, **kwargs: Any) -> str:
        """Serialise to JSON; values keep their types and checksums survive the round trip."""
        import json

        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], allow_pickle: bool = False) -> "Statebit":
        """Rebuild a statebit from :meth:`to_dict` data and verify its chain."""
        from statebits.core.serialize import statebit_from_dict

        return statebit_from_dict(cls, data, allow_pickle)

    @classmethod
    def from_json(cls, text: str | bytes, allow_pickle: bool = False) -> "Statebit":
        """Rebuild a statebit from :meth:`to_json` output and verify its chain.

        Raises
        ------
        IntegrityError
            When a checksum in the JSON does not match its record.
        """
        import json

        if not isinstance(text, (str, bytes, bytearray)):
            raise ValidationError(f"invalid statebit JSON {text!r}: expected the str or bytes written by to_json()")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"invalid statebit JSON: {exc}") from None
        return cls.from_dict(data, allow_pickle)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        # Observers are code with live references (widgets, sockets); they are
        # not part of the state and are dropped.
        state["_observers"] = []
        state["_sink"] = None  # store connections are not pickled; reattach after loading
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # -- frames (implemented in statebits.frames) ----------------------------------

    def to_pandas(self) -> Any:
        """Return the history as a pandas DataFrame with the history-frame schema."""
        from statebits.frames.convert import history_to_pandas

        return history_to_pandas(self)

    def to_polars(self) -> Any:
        """Return the history as a Polars DataFrame with the history-frame schema."""
        from statebits.frames.convert import history_to_polars

        return history_to_polars(self)

    def to_arrow(self) -> Any:
        """Return the history as a pyarrow Table with the history-frame schema."""
        from statebits.frames.convert import history_to_arrow

        return history_to_arrow(self)

    def widget(self, kind: str | None = None, **kwargs: Any) -> Any:
        """Return a Jupyter widget of this history; see :func:`statebits.widgets.widget_for`."""
        from statebits.widgets import widget_for

        return widget_for(self, kind, **kwargs)

    @classmethod
    def from_frame(cls, frame: Any) -> "Statebit":
        """Rebuild a statebit from a history frame (pandas, Polars or Arrow) and verify it."""
        from statebits.frames.convert import statebit_from_frame

        return statebit_from_frame(frame, cls=cls)


def _check_reason(reason: Any) -> None:
    if not isinstance(reason, str):
        raise ValidationError(f"invalid reason {reason!r}: expected a non-empty string saying why the value changed")
    if not reason.strip():
        raise ValidationError(f"invalid reason {reason!r}: the reason is empty; say why the value changed")


def _check_tags(tags: Any) -> tuple[str, ...]:
    if isinstance(tags, str):
        raise ValidationError(f"invalid tags {tags!r}: expected a list of strings such as [{tags!r}]")
    try:
        items = tuple(tags)
    except TypeError:
        raise ValidationError(f"invalid tags {tags!r}: expected a list of strings") from None
    for tag in items:
        if not isinstance(tag, str) or not tag:
            raise ValidationError(f"invalid tag {tag!r} in {list(items)!r}: every tag must be a non-empty string")
    return items


def _check_timestamp(timestamp: Any, previous: int, identity: str) -> int:
    if type(timestamp) is int and 0 < abs(timestamp) < _SMALLEST_NS_TIMESTAMP:
        raise TransitionError(
            f"invalid timestamp {timestamp!r}: integers are read as nanoseconds since the epoch, and this one falls "
            "in January 1970; pass a datetime, an ISO 8601 string, or seconds as a float such as time.time()"
        )
    try:
        valid = to_ns(timestamp)
    except ValidationError as exc:
        raise TransitionError(str(exc)) from None
    if valid < previous:
        raise TransitionError(
            f"timestamp {from_ns(valid).isoformat()} of {identity!r} is earlier than the previous transition's "
            f"{from_ns(previous).isoformat()}; timestamps must not go backwards"
        )
    return valid


def _cause_refs(caused_by: Any, target: Statebit) -> tuple[CauseRef, ...]:
    items = caused_by if isinstance(caused_by, (list, tuple, set, frozenset)) else [caused_by]
    refs: list[CauseRef] = []
    for item in items:
        if isinstance(item, StateTransition):
            refs.append(item.ref())
        elif isinstance(item, CauseRef):
            refs.append(item)
        elif isinstance(item, Statebit):
            if item is target:
                raise ValidationError(f"invalid caused_by: statebit {target.identity!r} cannot cause its own transition")
            if not len(item.history):
                raise ValidationError(f"invalid caused_by: statebit {item.identity!r} has no transitions yet; pass a transition")
            refs.append(item.history[-1].ref())
        else:
            raise ValidationError(
                f"invalid caused_by {item!r}: expected a StateTransition, a Statebit or a CauseRef (or a list of them)"
            )
    return tuple(refs)
