"""Time handling: the injectable clock and conversion of user times.

Times are kept as integer nanoseconds since the Unix epoch, UTC. Naive
datetimes passed in are read as UTC.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

from statebits.core.errors import ValidationError

__all__ = [
    "now_ns",
    "set_clock",
    "use_clock",
    "TickingClock",
    "to_ns",
    "from_ns",
]

#: The active clock function, read directly on the hot path.
current: Callable[[], int] = time.time_ns
_clock_lock = threading.Lock()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def now_ns() -> int:
    """Return the current time of the active clock in nanoseconds since the epoch."""
    return current()


def set_clock(clock: Callable[[], Any] | None) -> None:
    """Replace the clock used for ``created_at``, ``timestamp`` and ``recorded_at``.

    Parameters
    ----------
    clock : callable or None
        A function of no arguments returning a datetime, a string or integer
        nanoseconds since the epoch. None restores the system clock.
    """
    global current
    with _clock_lock:
        if clock is None:
            current = time.time_ns
        else:
            current = lambda: to_ns(clock())  # noqa: E731


@contextlib.contextmanager
def use_clock(clock: Callable[[], Any]) -> Iterator[None]:
    """Use ``clock`` inside a ``with`` block, then restore the previous one.

    Examples
    --------
    >>> from statebits import Statebit, TickingClock, use_clock
    >>> with use_clock(TickingClock("2024-01-01", step="1min")):
    ...     sb = Statebit("demo", 0)
    >>> sb.created_at.isoformat()
    '2024-01-01T00:00:00+00:00'
    """
    global current
    previous = current
    set_clock(clock)
    try:
        yield
    finally:
        with _clock_lock:
            current = previous


class TickingClock:
    """A deterministic clock that advances by a fixed step on every reading.

    Parameters
    ----------
    start : datetime, str or int
        The first time returned (naive values are read as UTC).
    step : timedelta or str, default "1s"
        How far each reading advances; strings such as "1s", "5min", "1h", "1d".
    """

    _UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "min": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}

    def __init__(self, start: Any = "2024-01-01T00:00:00Z", step: timedelta | str = "1s") -> None:
        self._next = to_ns(start)
        self._step = self._parse_step(step)
        if self._step < 0:
            raise ValidationError(f"invalid clock step {step!r}: a clock must not run backwards; use a step of zero or more")
        self._lock = threading.Lock()

    @classmethod
    def _parse_step(cls, step: timedelta | str) -> int:
        if isinstance(step, timedelta):
            return int(step / timedelta(microseconds=1)) * 1000
        if isinstance(step, str):
            number = step.rstrip("abcdefghijklmnopqrstuvwxyz")
            unit = step[len(number):]
            if unit in cls._UNITS:
                try:
                    return int(float(number or "1") * cls._UNITS[unit])
                except ValueError:
                    pass
        raise ValidationError(f"invalid clock step {step!r}: expected a timedelta or a string such as '1s', '5min', '1h'")

    def __call__(self) -> int:
        with self._lock:
            value = self._next
            self._next += self._step
            return value

    def __repr__(self) -> str:
        return f"TickingClock(next={from_ns(self._next).isoformat()}, step_ns={self._step})"


def to_ns(value: Any) -> int:
    """Convert a time to integer nanoseconds since the epoch, UTC.

    Accepts aware or naive datetimes (naive read as UTC), dates, ISO 8601
    strings, integer nanoseconds, floats as seconds since the epoch, and
    pandas or numpy timestamps.

    Raises
    ------
    ValidationError
        When the value cannot be read as a time.
    """
    if type(value) is int:
        return _in_range(value, value)
    if type(value).__name__ == "NaTType":
        raise ValidationError("invalid time NaT: a transition needs a time; pass a real timestamp")
    if isinstance(value, datetime):
        nanos = getattr(value, "nanosecond", 0)  # pandas.Timestamp carries nanoseconds
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        delta = value - _EPOCH
        return _in_range((delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000 + nanos, value)
    if isinstance(value, date):
        return to_ns(datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        return _parse_string(value)
    if isinstance(value, bool):
        raise ValidationError(f"invalid time {value!r}: expected a datetime, an ISO 8601 string or nanoseconds")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(f"invalid time {value!r}: expected a datetime, an ISO 8601 string or nanoseconds")
        return _in_range(int(round(value * 1e9)), value)
    type_name = type(value).__name__
    if type_name == "datetime64":  # numpy.datetime64
        return int(value.astype("datetime64[ns]").astype("int64"))
    if type_name == "NaTType":
        raise ValidationError("invalid time NaT: a transition needs a time; pass a real timestamp")
    try:
        import numbers

        if isinstance(value, numbers.Integral):
            return int(value)
    except TypeError:
        pass
    raise ValidationError(f"invalid time {value!r}: expected a datetime, an ISO 8601 string or nanoseconds")


_NS_MIN, _NS_MAX = -(2**63) + 1, 2**63 - 1


def _in_range(nanoseconds: int, original: Any) -> int:
    """Return ``nanoseconds`` when it fits in 64 bits, else raise naming ``original``."""
    if not _NS_MIN <= nanoseconds <= _NS_MAX:
        raise ValidationError(
            f"invalid time {original!r}: times are stored as 64-bit nanoseconds and must lie between "
            "1677-09-21 and 2262-04-11 UTC"
        )
    return nanoseconds


def _parse_string(text: str) -> int:
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValidationError(
            f"invalid time {text!r}: expected an ISO 8601 string such as '2024-05-01T12:00:00Z'"
        ) from None
    nanos = 0
    # datetime keeps microseconds; keep digits 7-9 of a fractional second too.
    if "." in cleaned:
        fraction = cleaned.split(".", 1)[1]
        digits = ""
        for char in fraction:
            if not char.isdigit():
                break
            digits += char
        if len(digits) > 6:
            nanos = int(digits[6:9].ljust(3, "0"))
    return to_ns(parsed) + nanos


def from_ns(value: int) -> datetime:
    """Convert nanoseconds since the epoch to an aware UTC datetime (microsecond precision)."""
    return _EPOCH + timedelta(microseconds=value // 1000)
