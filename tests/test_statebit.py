"""Statebit behaviour: recording, validation, queries, times, observers, serialisation."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from statebits import (
    ConfidenceLevel,
    FrozenStatebitError,
    IntegrityError,
    Statebit,
    StateTransition,
    TickingClock,
    TransitionError,
    ValidationError,
    use_clock,
)

UTC = timezone.utc


def snapshot_state(sb: Statebit) -> tuple:
    return (sb.value, len(sb.history), sb.history.head_checksum(), [t.to_dict() for t in sb.history])


def test_history_length_counts_transitions():
    sb = Statebit("x", 0)
    for value in (1, 2, 3):
        sb.transition(value, "count")

    assert len(sb.history) == 3
    assert sb.initial_value == 0


def test_history_negative_index_and_slice():
    sb = Statebit("x", 0)
    for value in (1, 2, 3):
        sb.transition(value, f"to {value}")

    assert sb.history[-1].to_value == 3
    assert sb.history[-3].from_value == 0
    assert [t.step for t in sb.history[1:]] == [2, 3]
    with pytest.raises(IndexError, match="out of range"):
        sb.history[3]


def test_transition_is_immutable():
    sb = Statebit("x", 0)
    transition = sb.transition(1, "set")

    with pytest.raises(AttributeError, match="immutable"):
        transition.reason = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        transition.metadata["k"] = 1  # type: ignore[index]


def test_mutable_value_is_snapshotted():
    sb = Statebit("cart", [])
    items = ["apple"]
    sb.transition(items, "add apple")
    items.append("pear")

    assert sb.value == ["apple"]
    assert sb.verify_integrity()


def test_metadata_is_snapshotted():
    sb = Statebit("x", 0)
    meta = {"user": "alice", "nested": [1]}
    sb.transition(1, "set", metadata=meta)
    meta["nested"].append(2)

    assert sb.history[0].metadata == {"user": "alice", "nested": [1]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.5}, "confidence 1.5"),
        ({"confidence": -0.1}, "confidence -0.1"),
        ({"confidence": float("nan")}, "confidence nan"),
        ({"confidence": "high"}, "confidence 'high'"),
        ({"confidence": True}, "confidence True"),
        ({"reason": ""}, "reason ''"),
        ({"reason": "   "}, "reason '   '"),
        ({"reason": None}, "reason None"),
        ({"reason": 42}, "reason 42"),
        ({"tags": "urgent"}, "tags 'urgent'"),
        ({"tags": ["ok", 3]}, "tag 3"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"timestamp": "not a time"}, "not a time"),
        ({"caused_by": 17}, "caused_by 17"),
    ],
)
def test_invalid_input_rejected_without_change(kwargs, message):
    sb = Statebit("x", 0)
    sb.transition(1, "first", timestamp="2024-01-01T00:00:00Z")
    before = snapshot_state(sb)
    arguments = {"new_value": 2, "reason": "second", **kwargs}

    with pytest.raises((ValidationError, TransitionError), match=message.replace("(", r"\(").replace("[", r"\[")):
        sb.transition(**arguments)
    assert snapshot_state(sb) == before


def test_timestamp_going_backwards_rejected():
    sb = Statebit("x", 0)
    sb.transition(1, "late", timestamp="2024-02-01T00:00:00Z")
    before = snapshot_state(sb)

    with pytest.raises(TransitionError, match="earlier than the previous"):
        sb.transition(2, "early", timestamp="2024-01-01T00:00:00Z")
    assert snapshot_state(sb) == before


def test_naive_timestamp_read_as_utc():
    sb = Statebit("x", 0)
    sb.transition(1, "naive", timestamp=datetime(2024, 5, 1, 12, 0))

    assert sb.history[0].timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_aware_timestamp_converted_to_utc():
    sb = Statebit("x", 0)
    plus_two = timezone(timedelta(hours=2))
    sb.transition(1, "aware", timestamp=datetime(2024, 5, 1, 14, 0, tzinfo=plus_two))

    assert sb.history[0].timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert sb.history[0].timestamp.tzinfo == UTC


def test_confidence_level_accepted_as_float():
    sb = Statebit("x", 0)
    sb.transition(1, "named", confidence=ConfidenceLevel.VERY_HIGH)

    assert sb.history[0].confidence == 0.95
    assert ConfidenceLevel.from_value(0.85) is ConfidenceLevel.HIGH


def test_frozen_statebit_rejects_transition():
    sb = Statebit("x", 0)
    sb.transition(1, "set")
    sb.freeze()
    before = snapshot_state(sb)

    with pytest.raises(FrozenStatebitError, match="frozen"):
        sb.transition(2, "again")
    assert snapshot_state(sb) == before


def test_batch_rejects_all_on_bad_item():
    sb = Statebit("x", 0)
    sb.transition(1, "first")
    before = snapshot_state(sb)
    batch = [{"new_value": 2, "reason": "ok"}, {"new_value": 3, "reason": "ok", "confidence": 7}]

    with pytest.raises(ValidationError, match="batch item 1"):
        sb.batch_transition(batch)
    assert snapshot_state(sb) == before


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ("not a list", "invalid batch"),
        ([{"reason": "no value"}], "missing"),
        ([{"new_value": 1, "reason": "x", "colour": "red"}], "unknown keys"),
        ([5], "expected a dict"),
    ],
)
def test_batch_shape_errors(batch, message):
    sb = Statebit("x", 0)

    with pytest.raises(ValidationError, match=message):
        sb.batch_transition(batch)
    assert len(sb.history) == 0


def test_tag_query_returns_matching():
    sb = Statebit("acct", 0)
    sb.transition(10, "salary", tags=["income"])
    sb.transition(5, "rent", tags=["expense", "recurring"])
    sb.transition(15, "bonus", tags=["income", "rare"])

    assert [t.reason for t in sb.get_transitions_by_tag("income")] == ["salary", "bonus"]
    assert [t.reason for t in sb.get_transitions_by_tag("recurring")] == ["rent"]
    assert list(sb.get_transitions_by_tag("missing")) == []


def test_time_range_query_inclusive():
    sb = Statebit("x", 0)
    for day in range(1, 6):
        sb.transition(day, f"day {day}", timestamp=f"2024-01-0{day}T00:00:00Z")

    found = sb.get_transitions_in_range("2024-01-02", "2024-01-04")

    assert [t.to_value for t in found] == [2, 3, 4]
    assert [t.to_value for t in sb.get_transitions_in_range(start="2024-01-04")] == [4, 5]
    with pytest.raises(ValidationError, match="after end"):
        sb.get_transitions_in_range("2024-01-05", "2024-01-01")


def test_query_with_predicate():
    sb = Statebit("x", 0)
    for value in range(10):
        sb.transition(value, "count")

    assert [t.to_value for t in sb.query(lambda t: t.to_value % 3 == 0)] == [0, 3, 6, 9]
    with pytest.raises(ValidationError, match="predicate"):
        sb.query("to_value > 3")  # type: ignore[arg-type]


def test_value_at_and_as_recorded_differ():
    with use_clock(TickingClock("2024-03-01T00:00:00Z", step="1h")):
        sb = Statebit("price", 100)
        # Loaded late: both events happened in January but were recorded in March.
        sb.transition(110, "January update", timestamp="2024-01-10T00:00:00Z")
        sb.transition(120, "February update", timestamp="2024-02-10T00:00:00Z")

    assert sb.value_at("2024-01-01") == 100
    assert sb.value_at("2024-01-15") == 110
    assert sb.value_at("2024-02-15") == 120
    assert sb.as_recorded("2024-02-15") == 100
    assert sb.as_recorded(sb.history[0].recorded_at) == 110


def test_rollback_records_new_transition():
    sb = Statebit("x", "a")
    sb.transition("b", "to b")
    sb.transition("c", "to c")
    rollback = sb.rollback(2)

    assert sb.value == "a"
    assert len(sb.history) == 3
    assert rollback.tags == ("rollback",)
    assert rollback.metadata["rollback_to_step"] == 0
    assert [t.to_value for t in sb.history] == ["b", "c", "a"]


@pytest.mark.parametrize("steps", [0, 3, -1, 1.5, True])
def test_rollback_invalid_steps(steps):
    sb = Statebit("x", 0)
    sb.transition(1, "a")
    sb.transition(2, "b")

    with pytest.raises(ValidationError, match="rollback steps"):
        sb.rollback(steps)
    assert len(sb.history) == 2


def test_observer_called_after_record():
    sb = Statebit("x", 0)
    seen: list[tuple[str, int]] = []
    sb.add_observer(lambda statebit, transition: seen.append((statebit.identity, transition.step)))
    sb.transition(1, "a")
    sb.batch_transition([{"new_value": 2, "reason": "b"}, {"new_value": 3, "reason": "c"}])

    assert seen == [("x", 1), ("x", 2), ("x", 3)]


def test_failing_observer_keeps_transition(caplog):
    sb = Statebit("x", 0)

    def broken(statebit, transition):
        raise RuntimeError("observer bug")

    sb.add_observer(broken)
    with caplog.at_level(logging.ERROR, logger="statebits.core.statebit"):
        sb.transition(1, "a")

    assert sb.value == 1
    assert sb.verify_integrity()
    assert "observer" in caplog.text


def test_remove_unknown_observer_raises():
    sb = Statebit("x", 0)

    with pytest.raises(ValidationError, match="not registered"):
        sb.remove_observer(print)


def test_invalid_identity_rejected():
    with pytest.raises(ValidationError, match="identity"):
        Statebit("", 0)
    with pytest.raises(ValidationError, match="identity"):
        Statebit(5, 0)  # type: ignore[arg-type]


def test_causal_link_explained():
    rates = Statebit("interest_rate", 0.05)
    rate_change = rates.transition(0.07, "Central bank decision")
    payment = Statebit("mortgage_payment", 1200.0)
    payment.transition(1350.0, "Rate reset", caused_by=rate_change)

    text = payment.explain()

    assert payment.history[0].caused_by[0].identity == "interest_rate"
    assert "because interest_rate changed to 0.07" in text
    assert "Central bank decision" in text


def test_causal_chain_followed_two_levels():
    a = Statebit("a", 0)
    b = Statebit("b", 0)
    c = Statebit("c", 0)
    ta = a.transition(1, "root cause")
    tb = b.transition(1, "middle", caused_by=ta)
    c.transition(1, "effect", caused_by=tb)

    text = c.explain()

    assert "because b changed" in text
    assert "because a changed" in text


def test_statebit_cannot_cause_itself():
    sb = Statebit("x", 0)
    sb.transition(1, "a")

    with pytest.raises(ValidationError, match="own transition"):
        sb.transition(2, "b", caused_by=sb)


def test_tampered_field_reported_at_step():
    sb = Statebit("x", 0.0)
    for value in range(10):
        sb.transition(float(value), "reading")
    sb.history.confidences[4] = 0.5
    sb.history._cache.clear()

    report = sb.integrity_report()

    assert not sb.verify_integrity()
    assert report.first_bad_step == 5
    with pytest.raises(IntegrityError, match="step 5"):
        sb.verify_integrity(raise_on_error=True)


def test_json_round_trip_keeps_types():
    sb = Statebit("mixed", Decimal("1.10"))
    sb.transition(b"\x00raw", "bytes")
    sb.transition({"a": {1, 2}, "b": (1, 2.5)}, "nested")
    sb.transition(float("nan"), "missing")
    sb.transition(None, "none", tags=["x"], metadata={"when": datetime(2024, 1, 1, tzinfo=UTC)})

    loaded = Statebit.from_json(sb.to_json())

    assert loaded.initial_value == Decimal("1.10")
    assert type(loaded.initial_value) is Decimal
    assert loaded.history[0].to_value == b"\x00raw"
    assert loaded.history[1].to_value == {"a": {1, 2}, "b": (1, 2.5)}
    assert loaded.history.head_checksum() == sb.history.head_checksum()
    assert loaded.history[3].metadata["when"] == datetime(2024, 1, 1, tzinfo=UTC)


def test_json_tampering_detected():
    sb = Statebit("x", 0)
    sb.transition(1, "a")
    sb.transition(2, "b")
    data = json.loads(sb.to_json())
    data["transitions"][0]["reason"] = "forged"

    with pytest.raises(IntegrityError, match="step 1"):
        Statebit.from_json(json.dumps(data))


def test_invalid_json_rejected():
    with pytest.raises(ValidationError, match="JSON"):
        Statebit.from_json("{not json")
    with pytest.raises(ValidationError, match="format"):
        Statebit.from_json('{"format": "other"}')


def test_pickle_and_deepcopy_verify():
    sb = Statebit("x", 0)
    sb.transition(1, "a", metadata={"k": "v"})
    sb.add_observer(lambda s, t: None)
    restored = pickle.loads(pickle.dumps(sb))
    duplicate = copy.deepcopy(sb)

    assert restored.verify_integrity()
    assert duplicate.verify_integrity()
    assert restored.history.head_checksum() == sb.history.head_checksum()
    restored.transition(2, "after unpickling")
    assert restored.verify_integrity()
    assert sb.value == 1


def test_threads_append_without_loss():
    sb = Statebit("counter", 0.0)

    def work(offset: int) -> None:
        for i in range(2000):
            sb.transition(float(offset + i), "thread write")

    threads = [threading.Thread(target=work, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(sb.history) == 8000
    assert sb.verify_integrity()


def test_repr_has_no_address():
    sb = Statebit("x", 0)
    sb.transition(1, "a")

    assert "0x" not in repr(sb)
    assert "0x" not in repr(sb.history[0])
    assert repr(sb) == "Statebit(identity='x', value=1, transitions=1)"


def test_ticking_clock_sets_times():
    with use_clock(TickingClock("2024-01-01", step="1min")):
        sb = Statebit("x", 0)
        sb.transition(1, "a")

    assert sb.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert sb.history[0].timestamp == datetime(2024, 1, 1, 0, 1, tzinfo=UTC)


def test_transition_returns_history_entry():
    sb = Statebit("x", 0)
    transition = sb.transition(1, "a")

    assert isinstance(transition, StateTransition)
    assert transition == sb.history[0]
    assert hash(transition) == hash(sb.history[0])


def test_mutating_read_value_keeps_history():
    cart = Statebit("cart", [])
    cart.transition(["apple"], "added apple")
    items = cart.value
    items.append("pear")
    cart.transition(items, "added pear")

    assert cart.history[0].to_value == ["apple"]
    assert cart.initial_value == []
    assert cart.verify_integrity()


@pytest.mark.parametrize("bad", ["9999-01-01", 1_700_000_000, float("inf")], ids=["year-9999", "int-seconds", "infinity"])
def test_unstorable_timestamps_rejected(bad):
    sb = Statebit("x", 0)

    with pytest.raises(TransitionError, match="invalid time"):
        sb.transition(1, "late", timestamp=bad)
    assert len(sb.history) == 0


def test_nat_timestamp_rejected():
    pd = pytest.importorskip("pandas")
    sb = Statebit("x", 0)

    with pytest.raises(TransitionError, match="NaT"):
        sb.transition(1, "no time", timestamp=pd.NaT)


def test_uncopyable_value_rejected():
    sb = Statebit("x", 0)

    with pytest.raises(ValidationError, match="cannot be copied"):
        sb.transition((i for i in range(3)), "generator")
    assert len(sb.history) == 0


def test_merge_non_statebit_rejected():
    from statebits import MergeError

    sb = Statebit("x", 0)

    with pytest.raises(MergeError, match="expected a Statebit"):
        sb.merge(42)  # type: ignore[arg-type]


def test_empty_rollback_reason_rejected():
    sb = Statebit("x", 0)
    sb.transition(1, "a")

    with pytest.raises(ValidationError, match="reason"):
        sb.rollback(1, reason="")
    assert len(sb.history) == 1


def test_backwards_clock_rejected():
    with pytest.raises(ValidationError, match="backwards"):
        TickingClock("2024-01-01", step=timedelta(seconds=-1))


def test_async_repr_names_class():
    from statebits import AsyncStatebit

    assert repr(AsyncStatebit("x", 0)).startswith("AsyncStatebit(")
