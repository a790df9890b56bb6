"""The store protocol, one suite run against every backend.

StoreSuite contains the tests. Each backend subclasses it and implements
``make_store``, ``connect_again`` and ``tamper``. A RedisStore test module
can import StoreSuite and do the same.
"""

from __future__ import annotations

import itertools
import math
import threading
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statebits import (
    ConcurrencyError,
    IntegrityError,
    Statebit,
    StatebitsCollection,
    StoreError,
    TickingClock,
    ValidationError,
    use_clock,
)
from statebits.core.canonical import encode
from statebits.stores import KeyNotFoundError, MemoryStore, SQLiteStore, Store, StoreConflictError

NAB = Path(__file__).resolve().parents[1] / "statebits" / "datasets" / "data" / "nab" / "realKnownCause"
UTC = timezone.utc


def history_state(sb: Statebit) -> list[dict[str, Any]]:
    """Return every field of every transition, values by their canonical encoding."""
    rows = []
    for transition in sb.history:
        row = transition.to_dict()
        row["from_value"] = encode(row["from_value"])
        row["to_value"] = encode(row["to_value"])
        del row["branch"]
        rows.append(row)
    return rows


def assert_same_statebit(loaded: Statebit, original: Statebit) -> None:
    assert loaded.identity == original.identity
    assert loaded.branch == original.branch
    assert encode(loaded.initial_value) == encode(original.initial_value)
    assert loaded.created_at == original.created_at
    assert len(loaded.history) == len(original.history)
    assert loaded.history.head_checksum() == original.history.head_checksum()
    assert history_state(loaded) == history_state(original)
    assert loaded.verify_integrity()


# Values of every kind that the JSON codec encodes, for the round-trip property.
_surrogate_text = st.text(alphabet=st.characters(categories=("Cs",)), min_size=1, max_size=3)
_hashable = st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none())
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**63) - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    _surrogate_text,
    st.binary(max_size=20),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-5))])),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=6) | _surrogate_text, children, max_size=3),
        st.dictionaries(st.integers(), children, max_size=2),
        st.frozensets(_hashable, max_size=3),
        st.sets(_hashable, max_size=3),
    ),
    max_leaves=6,
)
_identities = itertools.count()


class StoreSuite:
    """Tests every store must pass. Subclasses provide the backend."""

    def make_store(self, location: Path) -> Store:
        """Return a new, empty store keeping its data under ``location``."""
        raise NotImplementedError

    def connect_again(self, store: Store, location: Path) -> Store:
        """Return a second connection to the data of ``store``, as a second process would open it."""
        raise NotImplementedError

    def tamper(self, store: Store, location: Path, identity: str, step: int, value: Any) -> None:
        """Change the stored value of one transition behind the store's back."""
        raise NotImplementedError

    @pytest.fixture
    def location(self, tmp_path: Path) -> Path:
        return tmp_path

    @pytest.fixture
    def store(self, location: Path):
        store = self.make_store(location)
        yield store
        store.close()

    @pytest.fixture
    def other(self, store: Store, location: Path):
        other = self.connect_again(store, location)
        yield other
        if other is not store:
            other.close()

    # -- open, save, load ---------------------------------------------------------

    def test_open_creates_missing_statebit(self, store, other):
        sb = store.open("account", 100)

        assert sb.value == 100
        assert len(sb.history) == 0
        assert other.keys() == ["account"]
        assert other.load("account").initial_value == 100

    def test_open_loads_existing_history(self, store, other, fixed_clock):
        sb = store.open("account", 100)
        sb.transition(150, "deposit", tags=["income"])
        sb.transition(120, "withdrawal", confidence=0.8, metadata={"atm": "A1"})

        reopened = other.open("account")

        assert_same_statebit(reopened, sb)

    def test_open_rejects_other_initial_value(self, store):
        store.open("account", 100)

        with pytest.raises(ValidationError, match="initial value 100"):
            store.open("account", 5)

    def test_open_accepts_same_initial_value(self, store):
        store.open("account", 100)

        assert store.open("account", 100).initial_value == 100

    def test_open_rejects_invalid_identity(self, store):
        with pytest.raises(ValidationError):
            store.open("  ", 1)
        with pytest.raises(ValidationError):
            store.open(["not", "a", "name"], 1)

        assert store.keys() == []

    def test_load_rejects_invalid_branch(self, store):
        store.open("x", 1)

        with pytest.raises(ValidationError, match="branch"):
            store.load("x", branch=None)

    def test_reopen_leaves_clock_alone(self, store):
        with use_clock(TickingClock("2024-05-01", step="1min")):
            store.open("timed", 0)
            store.open("timed")
            sb = Statebit("probe", 0)

        assert sb.created_at == datetime(2024, 5, 1, 0, 1, tzinfo=UTC)

    def test_appends_persist_one_by_one(self, store, other):
        sb = store.open("counter", 0)
        for value in range(1, 6):
            sb.transition(value, f"count {value}")

        loaded = other.load("counter")

        assert [transition.to_value for transition in loaded.history] == [1, 2, 3, 4, 5]
        assert_same_statebit(loaded, sb)

    def test_batch_persists_as_one_unit(self, store, other):
        sb = store.open("counter", 0)
        sb.batch_transition([{"new_value": value, "reason": "batch"} for value in range(1, 4)])

        assert len(other.load("counter").history) == 3

    def test_save_persists_whole_history_and_attaches(self, store, other, fixed_clock):
        sb = Statebit("sensor", 20.5)
        for value in (21.0, 22.5, 19.0):
            sb.transition(value, "reading")

        assert store.save(sb) is sb
        sb.transition(18.0, "after save")

        assert_same_statebit(other.load("sensor"), sb)

    def test_save_twice_stores_each_step_once(self, store, other):
        sb = Statebit("sensor", 0.0)
        sb.transition(1.0, "reading")
        store.save(sb)
        store.save(sb)

        assert len(other.load("sensor").history) == 1

    def test_save_without_attach_leaves_later_appends_unstored(self, store, other):
        sb = Statebit("sensor", 0.0)
        sb.transition(1.0, "reading")
        store.save(sb, attach=False)
        sb.transition(2.0, "not persisted")

        assert len(other.load("sensor").history) == 1

    def test_save_adds_missing_steps_of_known_statebit(self, store, other):
        sb = Statebit("sensor", 0.0)
        sb.transition(1.0, "reading")
        store.save(sb, attach=False)
        sb.transition(2.0, "reading")
        sb.transition(3.0, "reading")

        store.save(sb)

        assert_same_statebit(other.load("sensor"), sb)

    def test_save_rejects_shorter_history(self, store):
        sb = store.open("sensor", 0.0)
        stale = store.load("sensor")
        sb.transition(1.0, "reading")

        with pytest.raises(ConcurrencyError, match="does not extend"):
            store.save(stale)

    def test_save_rejects_diverged_history(self, store):
        sb = store.open("sensor", 0.0)
        sb.transition(1.0, "reading")
        diverged = Statebit("sensor", 0.0)
        diverged.transition(5.0, "another reading")

        with pytest.raises(ConcurrencyError):
            store.save(diverged)
        assert store.load("sensor").value == 1.0

    def test_save_rejects_other_initial_value(self, store):
        store.open("sensor", 0.0)

        with pytest.raises(StoreConflictError, match="initial value"):
            store.save(Statebit("sensor", 1.0))

    def test_save_rejects_non_statebit(self, store):
        with pytest.raises(ValidationError, match="target"):
            store.save({"identity": "x"})

    def test_load_missing_raises_key_error(self, store):
        store.open("present", 1)

        with pytest.raises(KeyError) as caught:
            store.load("absent")

        assert isinstance(caught.value, KeyNotFoundError)
        assert isinstance(caught.value, StoreError)
        assert "absent" in str(caught.value)
        assert "present" in str(caught.value)

    def test_load_returns_new_object_each_time(self, store):
        store.open("x", 1)

        assert store.load("x") is not store.load("x")

    def test_identities_and_keys_list_stored_statebits(self, store):
        store.open("b", 1)
        store.open("a", 1)
        fork = store.load("a").fork("what if", branch="alt")
        store.save(fork)

        assert store.identities() == ["a", "b"]
        assert store.keys() == ["a", "a@alt", "b"]

    def test_delete_is_rejected(self, store):
        store.open("x", 1)

        with pytest.raises(StoreError, match="append-only"):
            store.delete("x")
        assert store.keys() == ["x"]

    # -- fields and value types ---------------------------------------------------

    def test_every_field_survives_reload(self, store, other):
        cause = Statebit("rate", 0.05)
        cause.transition(0.06, "central bank decision")
        sb = store.open("loan", Decimal("1000.00"))
        sb.transition(Decimal("1060.00"), "interest", confidence=0.9, tags=["interest", "monthly"],
                      metadata={"rate": Decimal("0.06"), "source": ("bank", 1)}, caused_by=cause,
                      timestamp=datetime(2024, 1, 31, tzinfo=UTC))
        sb.transition(None, "closed", confidence=0.0, timestamp="2024-02-01T00:00:00Z")
        sb.transition(float("nan"), "unknown")
        sb.rollback(2, reason="reopened")

        assert_same_statebit(other.load("loan"), sb)

    def test_special_values_keep_their_types(self, store, other):
        values = [
            True, False, None, 0, -(2**63), 2**63 - 1, 2**63, -(2**90), 1.5, -0.0, float("inf"), float("-inf"),
            float("nan"), "", "a\x00b", "\ud800", "zß水🙂", b"", b"\x00\xff", bytearray(b"ab"), Decimal("1.10"),
            Decimal("NaN"), complex(1, -2), (1, "a"), [1, [2, (3,)]], {"a": 1}, {1: "a", (2, 3): None},
            {1, 2}, frozenset({"x"}), date(2024, 1, 2), time(3, 4, 5), timedelta(days=1, microseconds=7),
            datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2024, 1, 1, 12), np.float32(1.25), np.int64(7),
            np.array([[1.0, 2.0], [3.0, float("nan")]]), pd.NA, pd.NaT, {"$sb": "not a tag"},
        ]
        sb = store.open("values", [])
        for value in values:
            sb.transition(value, "value")

        loaded = other.load("values")

        assert_same_statebit(loaded, sb)
        for stored, recorded in zip(loaded.history, sb.history):
            expected = type(recorded.to_value)
            if expected is bytearray and not isinstance(store, MemoryStore):
                # The JSON codec has no bytearray form. Both types encode alike, so the checksum still matches.
                expected = bytes
            assert type(stored.to_value) is expected

    def test_confidence_negative_zero_survives(self, store, other):
        sb = store.open("x", 0)
        sb.transition(1, "unsure", confidence=-0.0)

        loaded = other.load("x")

        assert math.copysign(1.0, loaded.history[0].confidence) == -1.0
        assert loaded.verify_integrity()

    # Each backend's subclass runs this method, which is what differing_executors flags.
    # The store fixture is reused across examples on purpose: every example uses a new identity.
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
    )
    @given(values=st.lists(_values, min_size=1, max_size=4), initial=_values)
    def test_values_round_trip_exactly(self, store, values, initial):
        identity = f"value-{next(_identities)}"
        sb = store.open(identity, initial)
        sb.batch_transition([{"new_value": value, "reason": "batch"} for value in values])
        sb.transition(values[0], "single")

        loaded = store.load(identity)

        assert_same_statebit(loaded, sb)
        assert type(loaded.initial_value) is type(sb.initial_value)
        for stored, recorded in zip(loaded.history, sb.history):
            assert type(stored.to_value) is type(recorded.to_value)

    def test_surrogate_pair_string_round_trips(self, store, other):
        sb = store.open("text", "\ud800\udc00")
        sb.transition("\udc80 from surrogateescape", "lone surrogate")
        sb.transition("\ud83d\ude00", "escaped pair")

        assert_same_statebit(other.load("text"), sb)

    def test_nested_surrogate_pair_round_trips(self, store, other):
        sb = store.open("text", 0)
        sb.transition(["\ud800\udc00"], "pair inside a list")
        sb.transition({"key": ("\udc80", "\ud83d\ude00")}, "pairs inside a dict")

        assert_same_statebit(other.load("text"), sb)

    def test_surrogate_pair_dict_key_round_trips(self, store, other):
        sb = store.open("text", 0)
        sb.transition({"\ud800\udc00": 1}, "pair in a key")

        assert_same_statebit(other.load("text"), sb)

    def test_nab_temperatures_round_trip(self, store, other):
        if not NAB.exists():
            pytest.skip(f"the NAB dataset is not at {NAB}")
        frame = pd.read_csv(NAB / "ambient_temperature_system_failure.csv", parse_dates=["timestamp"])
        sb = Statebit("office_temperature", float(frame["value"].iloc[0]), created_at=frame["timestamp"].iloc[0])
        sb.batch_transition([
            {"new_value": float(value), "reason": "hourly reading", "timestamp": when, "tags": ["nab"]}
            for when, value in zip(frame["timestamp"].iloc[1:], frame["value"].iloc[1:])
        ])

        store.save(sb)
        loaded = other.load("office_temperature")

        assert len(loaded.history) == len(frame) - 1
        assert_same_statebit(loaded, sb)
        assert loaded.history.column("value").tolist() == frame["value"].iloc[1:].tolist()
        assert loaded.history[-1].timestamp == frame["timestamp"].iloc[-1].to_pydatetime().replace(tzinfo=UTC)
        assert other.verify()["office_temperature"].checked == len(frame) - 1

    # -- integrity ------------------------------------------------------------------

    def test_tampered_value_names_step_on_load(self, store, location):
        sb = store.open("ledger", 0.0)
        for value in range(1, 11):
            sb.transition(float(value), "entry")

        self.tamper(store, location, "ledger", 7, 700.0)
        fresh = self.connect_again(store, location)

        with pytest.raises(IntegrityError, match="step 7") as caught:
            fresh.load("ledger")
        assert caught.value.step == 7

    def test_verify_reports_first_bad_step(self, store, location):
        good = store.open("good", 0)
        good.transition(1, "fine")
        bad = store.open("ledger", 0.0)
        for value in range(1, 6):
            bad.transition(float(value), "entry")

        self.tamper(store, location, "ledger", 3, -1.0)
        reports = self.connect_again(store, location).verify()

        assert reports["good"].ok
        assert not reports["ledger"].ok
        assert reports["ledger"].first_bad_step == 3
        assert reports["ledger"].found == bad.history[2].checksum
        assert reports["ledger"].expected != reports["ledger"].found

    def test_verify_all_ok(self, store, fixed_clock):
        store.open("a", 1).transition(2, "change")
        store.open("b", "x").transition("y", "change", tags=["t"])

        reports = store.verify()

        assert sorted(reports) == ["a", "b"]
        assert all(report.ok for report in reports.values())
        assert reports["a"].checked == 1

    # -- concurrency ------------------------------------------------------------------

    def test_second_writer_gets_concurrency_error(self, store, other):
        first = store.open("shared", 0)
        second = other.open("shared")
        first.transition(1, "first writer")
        before = (len(second.history), second.value, second.history.head_checksum())

        with pytest.raises(ConcurrencyError, match="another writer appended first"):
            second.transition(2, "second writer")

        assert (len(second.history), second.value, second.history.head_checksum()) == before
        stored = store.load("shared")
        assert [transition.to_value for transition in stored.history] == [1]

    def test_second_writer_batch_is_rejected_whole(self, store, other):
        first = store.open("shared", 0)
        second = other.open("shared")
        first.transition(1, "first writer")

        with pytest.raises(StoreConflictError):
            second.batch_transition([{"new_value": 2, "reason": "b"}, {"new_value": 3, "reason": "b"}])

        assert len(second.history) == 0
        assert len(store.load("shared").history) == 1

    def test_reloaded_writer_can_append(self, store, other):
        first = store.open("shared", 0)
        second = other.open("shared")
        first.transition(1, "first writer")
        with pytest.raises(ConcurrencyError):
            second.transition(2, "stale")

        second = other.load("shared")
        second.transition(2, "after reload")

        assert [transition.to_value for transition in store.load("shared").history] == [1, 2]

    def test_rejected_transition_leaves_memory_and_store_unchanged(self, store, other):
        sb = store.open("x", 0)
        sb.transition(1, "valid")
        before = history_state(sb)

        with pytest.raises(ValidationError):
            sb.transition(2, "")
        with pytest.raises(ValidationError):
            sb.batch_transition([{"new_value": 2, "reason": "ok"}, {"new_value": 3, "reason": "bad", "confidence": 2.0}])

        assert history_state(sb) == before
        assert history_state(other.load("x")) == before

    def test_threads_append_to_one_store(self, store, other):
        statebits = [store.open(f"worker-{index}", 0) for index in range(4)]
        shared = store.open("shared", 0)
        errors: list[BaseException] = []

        def work(sb: Statebit) -> None:
            try:
                for value in range(1, 51):
                    sb.transition(value, "own")
                    shared.transition(value, "shared")
                sb.batch_transition([{"new_value": -value, "reason": "batch"} for value in range(10)])
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(sb,)) for sb in statebits]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert len(other.load("shared").history) == 200
        for index in range(4):
            assert len(other.load(f"worker-{index}").history) == 60
        assert all(report.ok for report in other.verify().values())

    # -- forks and collections ----------------------------------------------------------

    def test_fork_saves_and_loads_as_branch(self, store, other):
        parent = store.open("plan", 100)
        parent.transition(110, "raise")
        parent.transition(120, "raise")
        fork = parent.fork("what if we cut", at=1, branch="cut")
        fork.transition(90, "cut")
        store.save(fork)
        fork.transition(80, "cut again")
        parent.transition(130, "raise")

        loaded_fork = other.load("plan", branch="cut")
        loaded_parent = other.load("plan")

        assert_same_statebit(loaded_fork, fork)
        assert loaded_fork.fork_point == 1
        assert loaded_fork.fork_reason == "what if we cut"
        assert loaded_fork.lineage == loaded_parent.lineage
        assert_same_statebit(loaded_parent, parent)

    def test_loaded_fork_merges_into_loaded_parent(self, store, other):
        parent = store.open("plan", 100)
        parent.transition(110, "raise")
        fork = parent.fork("alternative", branch="alt")
        fork.transition(95, "cut")
        store.save(fork)

        loaded_parent = other.load("plan")
        merged = loaded_parent.merge(other.load("plan", branch="alt"), strategy="latest")

        assert merged is not None
        assert loaded_parent.value == 95
        assert store.load("plan").value == 95

    def test_merge_stays_recorded_after_reload(self, store, other):
        parent = store.open("plan", 100)
        fork = parent.fork("alternative", branch="alt")
        fork.transition(95, "cut")
        store.save(fork)
        parent.merge(fork)

        reloaded = other.load("plan")

        assert reloaded.merge(other.load("plan", branch="alt")) is None
        assert len(reloaded.history) == 1

    def test_mutating_loaded_value_leaves_store_unchanged(self, store, other):
        store.open("items", []).transition(["a"], "first item")

        loaded = other.load("items")
        loaded.value.append("changed in place")

        assert store.load("items").value == ["a"]
        assert store.verify()["items"].ok

    def test_fork_of_unsaved_parent_is_stored_whole(self, store, other):
        parent = Statebit("plan", 1)
        parent.transition(2, "step")
        fork = parent.fork("alternative", branch="alt")
        fork.transition(3, "step")

        store.save(fork)

        assert other.keys() == ["plan@alt"]
        assert_same_statebit(other.load("plan", branch="alt"), fork)

    def test_fork_of_fork_loads(self, store, other):
        root = store.open("plan", 0)
        root.transition(1, "a")
        child = root.fork("first", branch="one")
        child.transition(2, "b")
        grandchild = child.fork("second", branch="two")
        grandchild.transition(3, "c")

        store.save(StatebitsCollection("plans", [grandchild, child]))

        assert_same_statebit(other.load("plan", branch="two"), grandchild)
        assert_same_statebit(other.load("plan", branch="one"), child)

    def test_collection_saves_and_loads_by_name(self, store, other, fixed_clock):
        sensors = StatebitsCollection("sensors", [Statebit("t1", 20.0), Statebit("t2", 21.0)])
        sensors["t1"].transition(22.0, "reading")
        store.save(sensors)
        store.open("unrelated", 0)
        sensors["t2"].transition(23.0, "reading after save")

        loaded = other.load_collection("sensors")

        assert loaded.name == "sensors"
        assert loaded.keys() == ["t1", "t2"]
        assert_same_statebit(loaded["t1"], sensors["t1"])
        assert_same_statebit(loaded["t2"], sensors["t2"])
        assert other.collections() == ["sensors"]

    def test_load_collection_without_name_loads_all(self, store, other):
        store.open("a", 1)
        store.open("b", 2)

        everything = other.load_collection()

        assert sorted(everything.keys()) == ["a", "b"]
        everything["a"].transition(5, "loaded members are attached")
        assert store.load("a").value == 5

    def test_load_collection_unknown_name_raises(self, store):
        store.save(StatebitsCollection("known"))

        with pytest.raises(KeyNotFoundError, match="known"):
            store.load_collection("unknown")
        assert len(store.load_collection("known")) == 0

    def test_collection_save_is_atomic(self, store, other):
        store.open("taken", 0.0).transition(1.0, "stored")
        conflicting = Statebit("taken", 0.0)
        conflicting.transition(9.0, "different")
        members = StatebitsCollection("group", [Statebit("fresh", 0), conflicting])

        with pytest.raises(ConcurrencyError):
            store.save(members)

        assert other.keys() == ["taken"]
        assert other.collections() == []

    # -- closing ------------------------------------------------------------------------

    def test_append_after_close_is_undone(self, location):
        store = self.make_store(location)
        sb = store.open("x", 0)
        sb.transition(1, "stored")
        store.close()

        with pytest.raises(StoreError, match="closed"):
            sb.transition(2, "after close")

        assert sb.value == 1
        assert len(sb.history) == 1

    def test_closed_store_rejects_calls(self, location):
        store = self.make_store(location)
        store.close()
        store.close()

        assert store.closed
        with pytest.raises(StoreError, match="closed"):
            store.load("x")
        with pytest.raises(StoreError, match="closed"):
            store.open("x")

    def test_context_manager_closes(self, location):
        with self.make_store(location) as store:
            store.open("x", 1)

        assert store.closed

    def test_statebits_created_under_clock_keep_times(self, store, other):
        with use_clock(TickingClock("2024-05-01", step="1min")):
            sb = store.open("timed", 0)
            sb.transition(1, "tick")

        loaded = other.load("timed")

        assert loaded.created_at == datetime(2024, 5, 1, tzinfo=UTC)
        assert loaded.history[0].recorded_at == datetime(2024, 5, 1, 0, 1, tzinfo=UTC)


class TestMemoryStore(StoreSuite):
    def make_store(self, location: Path) -> Store:
        return MemoryStore()

    def connect_again(self, store: Store, location: Path) -> Store:
        return store

    def tamper(self, store: Store, location: Path, identity: str, step: int, value: Any) -> None:
        records = store._records[(identity, "main")]
        records[step - 1] = records[step - 1]._replace(value=value)


class TestSQLiteStore(StoreSuite):
    def make_store(self, location: Path) -> Store:
        return SQLiteStore(location / "statebits.db")

    def connect_again(self, store: Store, location: Path) -> Store:
        return SQLiteStore(location / "statebits.db")

    def tamper(self, store: Store, location: Path, identity: str, step: int, value: Any) -> None:
        import sqlite3

        with sqlite3.connect(location / "statebits.db") as connection:
            connection.execute("DROP TRIGGER transitions_no_update")
            connection.execute(
                "UPDATE transitions SET value = ? WHERE step = ? AND statebit_id = "
                "(SELECT id FROM statebits WHERE identity = ? AND branch = 'main')",
                (value, step, identity),
            )
        connection.close()
