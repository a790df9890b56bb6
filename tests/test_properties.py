"""Property tests of the hash chain, serialisation and all-or-nothing rejection."""

from __future__ import annotations

import copy
import math
import pickle
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statebits import Statebit, StatebitError, TickingClock, use_clock
from statebits.core.canonical import encode

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=10),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.datetimes(timezones=st.just(timezone.utc)),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=5), children, max_size=4),
        st.frozensets(st.integers(), max_size=4),
    ),
    max_leaves=8,
)
reasons = st.text(min_size=1, max_size=12).filter(lambda text: text.strip() != "")
tag_lists = st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "io", "ml"]), max_size=3))
confidences = st.floats(min_value=0.0, max_value=1.0)

transition_args = st.fixed_dictionaries(
    {"new_value": values, "reason": reasons, "confidence": confidences, "tags": tag_lists},
    optional={"metadata": st.dictionaries(st.text(max_size=4), scalars, max_size=3)},
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("transition"), transition_args),
        st.tuples(st.just("rollback"), st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("fork_merge"), transition_args),
    ),
    min_size=1,
    max_size=12,
)


def same_value(left, right) -> bool:
    return encode(left) == encode(right)


def apply(sb: Statebit, operation) -> None:
    kind, argument = operation
    if kind == "transition":
        sb.transition(**argument)
    elif kind == "rollback":
        if len(sb.history) >= argument:
            sb.rollback(argument)
    else:
        fork = sb.fork("property fork")
        fork.transition(**argument)
        sb.merge(fork, strategy="latest")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_chain_verifies_after_any_operations(ops):
    with use_clock(TickingClock("2024-01-01", step="1s")):
        sb = Statebit("prop", 0)
        for operation in ops:
            apply(sb, operation)

    assert sb.verify_integrity()


TAMPERABLE = ["timestamps", "recorded", "confidences", "reason_codes", "tag_codes", "values", "checksums", "metadata"]


@settings(max_examples=80, deadline=None)
@given(st.lists(transition_args, min_size=1, max_size=8), st.sampled_from(TAMPERABLE), st.data())
def test_any_changed_field_detected(args, field, data):
    with use_clock(TickingClock("2024-01-01", step="1s")):
        sb = Statebit("tamper", 0)
        for argument in args:
            sb.transition(**argument)
    history = sb.history
    index = data.draw(st.integers(min_value=0, max_value=len(history) - 1))
    if field == "timestamps":
        history.timestamps[index] += 1
    elif field == "recorded":
        history.recorded[index] -= 1
    elif field == "confidences":
        history.confidences[index] = 0.5 if history.confidences[index] != 0.5 else 0.25
    elif field == "reason_codes":
        history.reason_codes[index] = history.reasons.add(history.reasons.items[history.reason_codes[index]] + "!")
    elif field == "tag_codes":
        current = history.tagsets.items[history.tag_codes[index]]
        history.tag_codes[index] = history.tagsets.add(current + ("forged",))
    elif field == "values":
        history.values = list(history.values)  # typed arrays cannot hold the forged value
        history.values[index] = ("forged", history.values[index])
        history._value_kind = "object"
    elif field == "checksums":
        history.checksums[32 * index] ^= 0xFF
    else:
        history.metadata[index] = {"forged": True}
    history._cache.clear()

    report = sb.integrity_report()

    assert not report.ok
    assert report.first_bad_step == index + 1


@settings(max_examples=60, deadline=None)
@given(st.lists(transition_args, max_size=6), values)
def test_json_round_trip_keeps_everything(args, initial):
    with use_clock(TickingClock("2024-01-01", step="1s")):
        sb = Statebit("json", initial)
        for argument in args:
            sb.transition(**argument)

    loaded = Statebit.from_json(sb.to_json())

    assert same_value(loaded.initial_value, sb.initial_value)
    assert all(same_value(a.to_value, b.to_value) for a, b in zip(loaded.history, sb.history))
    assert all(type(a.to_value) is type(b.to_value) for a, b in zip(loaded.history, sb.history))
    assert [t.checksum for t in loaded.history] == [t.checksum for t in sb.history]
    assert loaded.verify_integrity()


@settings(max_examples=40, deadline=None)
@given(st.lists(transition_args, max_size=6))
def test_pickle_round_trip_keeps_everything(args):
    sb = Statebit("pickle", 0)
    for argument in args:
        sb.transition(**argument)

    for restored in (pickle.loads(pickle.dumps(sb)), copy.deepcopy(sb)):
        assert [t.checksum for t in restored.history] == [t.checksum for t in sb.history]
        assert all(same_value(a.to_value, b.to_value) for a, b in zip(restored.history, sb.history))
        assert restored.verify_integrity()


bad_arguments = st.one_of(
    st.fixed_dictionaries({"new_value": st.integers(), "reason": st.sampled_from(["", " ", None, 5])}),
    st.fixed_dictionaries(
        {
            "new_value": st.integers(),
            "reason": reasons,
            "confidence": st.one_of(st.floats(min_value=1.0001), st.floats(max_value=-0.0001), st.just(math.nan)),
        }
    ),
    st.fixed_dictionaries({"new_value": st.integers(), "reason": reasons, "tags": st.lists(st.integers(), min_size=1)}),
    st.fixed_dictionaries({"new_value": st.integers(), "reason": reasons, "timestamp": st.just("2000-01-01T00:00:00Z")}),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(transition_args, min_size=1, max_size=5), bad_arguments, st.booleans())
def test_rejected_call_changes_nothing(args, bad, as_batch):
    sb = Statebit("reject", 0)
    for argument in args:
        sb.transition(**argument, timestamp=datetime(2024, 1, 1, tzinfo=timezone.utc))
    before = (len(sb.history), sb.history.head_checksum(), encode(sb.value), [t.to_dict()["reason"] for t in sb.history])

    with pytest.raises(StatebitError):
        if as_batch:
            sb.batch_transition([{"new_value": 1, "reason": "fine"}, bad])
        else:
            sb.transition(**bad)

    after = (len(sb.history), sb.history.head_checksum(), encode(sb.value), [t.to_dict()["reason"] for t in sb.history])
    assert after == before
    assert sb.verify_integrity()


@given(values)
def test_canonical_encoding_is_deterministic(value):
    assert encode(value) == encode(copy.deepcopy(value))


def test_canonical_encoding_known_vectors():
    # Fixed byte strings: a change here breaks every stored checksum.
    assert encode(1.5) == b"f" + bytes.fromhex("000000000000f83f")
    assert encode("ab") == b"s\x02\x00\x00\x00ab"
    assert encode(Decimal("1.10")) == b"d\x04\x00\x00\x001.10"
    assert encode({"b": 1, "a": None}) == encode({"a": None, "b": 1})
    assert encode(float("nan")) == encode(-float("nan"))
    assert encode(datetime(2024, 1, 1, tzinfo=timezone.utc)) == b"t\x19\x00\x00\x002024-01-01T00:00:00+00:00"


def test_numpy_scalars_stored_as_python():
    np = pytest.importorskip("numpy")
    sb = Statebit("np", np.float64(1.0))
    sb.transition(np.int64(3), "numpy int")
    sb.transition(np.float32(0.5), "numpy float")

    assert type(sb.initial_value) is float
    assert type(sb.history[0].to_value) is int
    assert type(sb.history[1].to_value) is float


def test_pandas_missing_values_hash_and_round_trip():
    pd = pytest.importorskip("pandas")
    sb = Statebit("na", pd.NA)
    sb.transition(pd.NaT, "not a time")
    sb.transition(None, "none")
    sb.transition(float("nan"), "nan")

    loaded = Statebit.from_json(sb.to_json())

    assert loaded.initial_value is pd.NA
    assert loaded.history[0].to_value is pd.NaT
    assert loaded.history.head_checksum() == sb.history.head_checksum()
