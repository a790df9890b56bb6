"""SQLiteStore specifics: the file format, tampering with the file, locks and crashes."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from statebits import IntegrityError, Statebit, StoreError, ValidationError
from statebits.stores import SQLiteStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "statebits.db"


@pytest.fixture
def store(path: Path):
    store = SQLiteStore(path)
    yield store
    store.close()


def query(path: Path, sql: str, parameters: tuple = ()) -> list[tuple]:
    """Run one statement on a separate connection and return its rows."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def tamper(path: Path, sql: str, parameters: tuple = ()) -> None:
    """Run an UPDATE or DELETE behind the store's back, with triggers dropped and CHECKs off."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA ignore_check_constraints = ON")
    try:
        with connection:
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                connection.execute(f"DROP TRIGGER {name}")
            connection.execute(sql, parameters)
    finally:
        connection.close()


def table_dump(path: Path) -> list[tuple]:
    return query(path, "SELECT * FROM transitions ORDER BY statebit_id, step")


def ledger(store: SQLiteStore, count: int = 10) -> Statebit:
    sb = store.open("ledger", 0.0)
    for value in range(1, count + 1):
        sb.transition(float(value), "entry" if value % 2 else "correction", tags=["audit"] if value == 4 else None,
                      metadata={"n": value} if value == 5 else None)
    return sb


# -- file format --------------------------------------------------------------------


def test_file_uses_wal_and_full_sync(store, path):
    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    assert store._connection.execute("PRAGMA synchronous").fetchone() == (2,)


def test_normal_sync_is_applied(path):
    with SQLiteStore(path, synchronous="NORMAL") as store:
        assert store._connection.execute("PRAGMA synchronous").fetchone() == (1,)


def test_values_are_stored_natively(store, path):
    sb = store.open("mixed", 0)
    for value in (1.5, 7, "text", b"\x00raw", None, Decimal("2.50"), True, float("nan")):
        sb.transition(value, "value")

    rows = query(path, "SELECT typeof(value), value_codec FROM transitions ORDER BY step")

    assert rows == [
        ("real", None), ("integer", None), ("text", None), ("blob", None), ("null", None),
        ("text", "json"), ("text", "json"), ("text", "json"),
    ]


def test_columns_have_native_types(store, path):
    ledger(store, 3)

    rows = query(path, "SELECT typeof(timestamp_ns), typeof(recorded_at_ns), typeof(confidence), "
                       "typeof(checksum), length(checksum) FROM transitions")

    assert set(rows) == {("integer", "integer", "real", "blob", 32)}


def test_reasons_and_tags_are_normalised(store, path):
    sb = store.open("x", 0)
    sb.batch_transition([{"new_value": value, "reason": "tick", "tags": ["a", "b"]} for value in range(100)])

    assert query(path, "SELECT reason FROM reasons") == [("tick",)]
    assert query(path, "SELECT id, tags FROM tagsets ORDER BY id") == [(0, "[]"), (1, '["a","b"]')]
    assert query(path, "SELECT count(DISTINCT reason_id), count(*) FROM transitions") == [(1, 100)]


def test_genesis_row_is_stored(store, path):
    sb = store.open("account", Decimal("10.00"))

    rows = query(path, "SELECT identity, branch, initial_codec, initial_value, genesis, created_at_ns, lineage FROM statebits")

    assert rows == [("account", "main", "json", '{"$sb":"decimal","v":"10.00"}', sb.history.genesis, sb._created_ns, sb.lineage)]


def test_fork_stores_only_own_rows(store, path):
    parent = store.open("plan", 0)
    for value in range(1, 6):
        parent.transition(value, "step")
    fork = parent.fork("alternative", at=3, branch="alt")
    fork.transition(99, "own step")
    store.save(fork)

    rows = query(path, "SELECT s.branch, t.step FROM transitions t JOIN statebits s ON s.id = t.statebit_id ORDER BY 1, 2")
    bases = query(path, "SELECT branch, base_id IS NOT NULL, base_len, fork_point FROM statebits ORDER BY branch")

    assert rows == [("alt", 4)] + [("main", step) for step in range(1, 6)]
    assert bases == [("alt", 1, 3, 3), ("main", 0, 0, None)]


def test_memory_database_works():
    with SQLiteStore(":memory:") as store:
        store.open("x", 1).transition(2, "change")

        assert store.load("x").value == 2


# -- append-only and tampering ------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "UPDATE transitions SET value = 0",
    "DELETE FROM transitions",
    "UPDATE statebits SET initial_value = 5",
    "DELETE FROM reasons",
])
def test_triggers_reject_changes(store, path, statement):
    ledger(store, 3)

    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        query(path, statement)


@pytest.mark.parametrize(("sql", "step"), [
    ("UPDATE transitions SET value = 3.25 WHERE step = 3", 3),
    ("UPDATE transitions SET confidence = 0.5 WHERE step = 6", 6),
    ("UPDATE transitions SET timestamp_ns = timestamp_ns + 1 WHERE step = 10", 10),
    ("UPDATE transitions SET checksum = zeroblob(32) WHERE step = 2", 2),
    ("UPDATE transitions SET tagset_id = 0 WHERE step = 4", 4),
    ("UPDATE transitions SET metadata = '{\"n\":6}' WHERE step = 5", 5),
    ("UPDATE reasons SET reason = 'rewritten' WHERE reason = 'correction'", 2),
    ("UPDATE transitions SET value_codec = 'json', value = '[1]' WHERE step = 8", 8),
])
def test_tampered_row_is_named_on_load(store, path, sql, step):
    ledger(store)

    tamper(path, sql)

    with SQLiteStore(path) as fresh:
        with pytest.raises(IntegrityError, match=f"step {step}\\b") as caught:
            fresh.load("ledger")
        report = fresh.verify()["ledger"]
    assert caught.value.step == step
    assert report.first_bad_step == step


@pytest.mark.parametrize(("sql", "step", "problem"), [
    ("UPDATE transitions SET confidence = 5.0 WHERE step = 7", 7, "outside 0.0 to 1.0"),
    ("UPDATE transitions SET confidence = 'high' WHERE step = 7", 7, "not a float"),
    ("UPDATE transitions SET recorded_at_ns = 0 WHERE step = 9", 9, "goes backwards"),
    ("DELETE FROM transitions WHERE step = 4", 4, "missing"),
    ("UPDATE transitions SET metadata = 'not json' WHERE step = 5", 5, "cannot be decoded"),
    ("UPDATE transitions SET reason_id = 999 WHERE step = 3", 3, "missing"),
])
def test_invalid_row_is_named_on_load(store, path, sql, step, problem):
    ledger(store)

    tamper(path, sql)

    with SQLiteStore(path) as fresh:
        with pytest.raises(IntegrityError, match=problem) as caught:
            fresh.load("ledger")
        report = fresh.verify()["ledger"]
    assert caught.value.step == step
    assert f"step {step}" in str(caught.value)
    assert report.first_bad_step == step


def test_changed_initial_value_is_step_zero(store, path):
    ledger(store, 2)

    tamper(path, "UPDATE statebits SET initial_value = 1.0")

    with SQLiteStore(path) as fresh:
        with pytest.raises(IntegrityError, match="genesis") as caught:
            fresh.load("ledger")
        assert fresh.verify()["ledger"].first_bad_step == 0
    assert caught.value.step == 0


def test_tampering_seen_by_long_lived_store(store, path):
    ledger(store)

    tamper(path, "UPDATE reasons SET reason = 'rewritten' WHERE reason = 'entry'")

    assert store.verify()["ledger"].first_bad_step == 1


# -- concurrency and failures ---------------------------------------------------------


def test_conflict_leaves_file_unchanged(store, path):
    first = store.open("shared", 0)
    with SQLiteStore(path) as other:
        second = other.open("shared")
        first.transition(1, "first writer")
        before = table_dump(path)

        with pytest.raises(StoreError):
            second.batch_transition([{"new_value": 2, "reason": "new reason"}, {"new_value": 3, "reason": "b", "tags": ["new"]}])

    assert table_dump(path) == before
    assert query(path, "SELECT reason FROM reasons ORDER BY id") == [("first writer",)]
    assert query(path, "SELECT count(*) FROM tagsets") == [(1,)]


def test_check_constraint_rejects_text_confidence(store, path):
    ledger(store, 2)

    insert = (
        "INSERT INTO transitions (statebit_id, step, timestamp_ns, recorded_at_ns, confidence, reason_id, checksum) "
        "VALUES (1, 3, 0, 0, 'high', 1, zeroblob(32))"
    )

    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        query(path, insert)


def test_reason_cache_survives_rolled_back_insert(store, path):
    first = store.open("shared", 0)
    with SQLiteStore(path) as other:
        second = other.open("shared")
        first.transition(1, "first writer")
        with pytest.raises(StoreError):
            second.transition(2, "rolled back reason")

        second = other.load("shared")
        second.transition(2, "rolled back reason")

    assert [t.reason for t in store.load("shared").history] == ["first writer", "rolled back reason"]


def test_locked_file_times_out_and_undoes_append(path):
    with SQLiteStore(path, timeout=0.2) as store:
        sb = store.open("x", 0)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="timed out"):
                sb.transition(1, "blocked")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        assert len(sb.history) == 0
        sb.transition(1, "after the lock is released")
        assert store.load("x").value == 1


class Opaque:
    """A value with no JSON form, stored as a pickle."""

    def __init__(self, payload: int) -> None:
        self.payload = payload


def test_pickled_values_need_allow_pickle(store, path):
    store.open("objects", 0).transition(Opaque(3), "opaque")

    with pytest.raises(ValidationError, match="allow_pickle"):
        SQLiteStore(path).load("objects")
    with SQLiteStore(path, allow_pickle=True) as trusting:
        assert trusting.load("objects").value.payload == 3


def test_not_a_database_raises_store_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("plain text, not SQLite " * 100)

    with pytest.raises(StoreError, match="notes.db"):
        SQLiteStore(path)


def test_newer_schema_version_raises(path):
    SQLiteStore(path).close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()

    with pytest.raises(StoreError, match="schema version is 99"):
        SQLiteStore(path)


@pytest.mark.parametrize(("options", "name"), [
    ({"synchronous": "OFF"}, "synchronous"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": "5"}, "timeout"),
    ({"allow_pickle": "yes"}, "allow_pickle"),
])
def test_invalid_options_are_rejected(path, options, name):
    with pytest.raises(ValidationError, match=name):
        SQLiteStore(path, **options)


# -- crashes --------------------------------------------------------------------------

# The child appends forever, single transitions and batches, and prints the
# history length after each call has returned, so every printed step is committed.
APPENDER = r"""
import random, sys
from statebits.stores import SQLiteStore

path, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
store = SQLiteStore(path)
sb = store.open("crash", 0.0)
print("opened", len(sb.history), flush=True)
batch = 0
while True:
    step = len(sb.history)
    if rng.random() < 0.5:
        sb.transition(float(step + 1), "single")
    else:
        batch += 1
        size = rng.randint(2, 40)
        meta = {"batch": f"{seed}-{batch}", "size": size}
        sb.batch_transition([
            {"new_value": float(step + 1 + i), "reason": "batch", "tags": ["batch"], "metadata": meta}
            for i in range(size)
        ])
    print(len(sb.history), flush=True)
"""

# The child saves one large history in a single transaction, then reports it.
SAVER = r"""
import sys
from statebits import Statebit
from statebits.stores import SQLiteStore

store = SQLiteStore(sys.argv[1])
sb = Statebit("bulk", 0.0)
sb.batch_transition([{"new_value": float(i), "reason": "bulk"} for i in range(1, 50_001)])
print("built", flush=True)
store.save(sb)
print("saved", flush=True)
"""


def run_child(script: str, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill(child: subprocess.Popen) -> tuple[str, str]:
    child.send_signal(signal.SIGKILL)
    output, errors = child.communicate(timeout=60)
    return output, errors


@pytest.mark.slow
def test_sigkill_loses_no_committed_step(path):
    rng = random.Random(20240501)
    committed = 0
    reported_steps = 0

    for round_number in range(6):
        child = run_child(APPENDER, str(path), str(round_number))
        first = child.stdout.readline()
        if not first.startswith("opened"):
            _, errors = kill(child)
            pytest.fail(f"the appender did not start: {errors}")
        assert int(first.split()[1]) >= committed
        time.sleep(rng.uniform(0.05, 0.8))

        output, errors = kill(child)
        assert child.returncode == -signal.SIGKILL, errors
        steps = [int(line) for line in output.split()]
        reported_steps += len(steps)
        committed = max(steps, default=committed)

        with SQLiteStore(path) as store:
            sb = store.load("crash")
            assert len(sb.history) >= committed
            assert sb.history.column("value").tolist() == [float(step) for step in range(1, len(sb.history) + 1)]
            batch_sizes = Counter(t.metadata["batch"] for t in sb.history if "batch" in t.tags)
            sizes = {t.metadata["batch"]: t.metadata["size"] for t in sb.history if "batch" in t.tags}
            assert batch_sizes == Counter(sizes)
            assert store.verify()["crash"].ok
        committed = len(sb.history)

    assert reported_steps > 0


@pytest.mark.slow
def test_sigkill_during_save_stores_all_or_nothing(path):
    rng = random.Random(7)

    for _ in range(3):
        child = run_child(SAVER, str(path))
        assert child.stdout.readline() == "built\n"
        time.sleep(rng.uniform(0.0, 0.3))
        output, _ = kill(child)

        with SQLiteStore(path) as store:
            stored = len(store.load("bulk").history) if "bulk" in store.keys() else 0
            if "saved" in output:
                assert stored == 50_000
            assert stored in (0, 50_000)
            if stored:
                return
