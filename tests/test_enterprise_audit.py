"""AuditLogger: JSON lines, the log's hash chain, tamper detection and compliance reports."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from statebits import IntegrityError, Statebit, ValidationError, use_clock, TickingClock
from statebits.core.canonical import from_jsonable
from statebits.enterprise import AuditLogger, AuditVerification


def make_log(path, transitions=3, **options):
    logger = AuditLogger(storage="file", filepath=path, **options)
    sb = Statebit(identity="account", initial_value=0)
    logger.attach(sb)
    for number in range(1, transitions + 1):
        sb.transition(number * 10, f"Change {number}", metadata={"user": "alice"})
    return logger, sb


def rewrite_line(path, number, change):
    """Apply ``change`` to the parsed entry on 1-based line ``number`` and write it back."""
    lines = path.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[number - 1])
    change(entry)
    lines[number - 1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- entries -----------------------------------------------------------------------------


def test_transition_entry_fields(fixed_clock):
    logger = AuditLogger()
    sb = Statebit(identity="sensor", initial_value=20.0)
    logger.attach(sb)
    transition = sb.transition(25.5, "Reading", confidence=0.9, tags=["sensor"], metadata={"room": "a"})

    attach, entry = logger.entries()
    assert attach["event"] == "attach"
    assert attach["step"] == 0
    assert attach["seq"] == 1
    assert entry["event"] == "transition"
    assert entry["seq"] == 2
    assert entry["identity"] == "sensor"
    assert entry["branch"] == "main"
    assert entry["step"] == 1
    assert entry["from_value"] == 20.0
    assert entry["to_value"] == 25.5
    assert entry["reason"] == "Reading"
    assert entry["confidence"] == 0.9
    assert entry["tags"] == ["sensor"]
    assert entry["metadata"] == {"room": "a"}
    assert entry["caused_by"] == []
    assert entry["checksum"] == transition.checksum
    assert entry["timestamp"] == transition.timestamp.isoformat()
    assert entry["recorded_at"] == transition.recorded_at.isoformat()
    assert datetime.fromisoformat(entry["logged_at"]).tzinfo is not None
    assert entry["prev"] == attach["hash"]
    assert len(entry["hash"]) == 64


def test_values_use_json_codec():
    logger = AuditLogger()
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    sb = Statebit(identity="typed", initial_value=Decimal("0.10"))
    logger.attach(sb)
    sb.transition((1, 2), "Tuple value", metadata={"when": moment, "ratio": float("nan")})

    entry = logger.entries(event="transition")[0]
    assert from_jsonable(entry["from_value"]) == Decimal("0.10")
    assert from_jsonable(entry["to_value"]) == (1, 2)
    assert from_jsonable(entry["metadata"])["when"] == moment
    assert from_jsonable(entry["metadata"])["ratio"] != from_jsonable(entry["metadata"])["ratio"]  # NaN
    assert logger.verify().ok


def test_caused_by_is_logged():
    logger = AuditLogger()
    cause = Statebit("rate", 1)
    cause_transition = cause.transition(2, "Rate rise")
    effect = Statebit("payment", 10)
    logger.attach(effect)
    effect.transition(12, "Rate applied", caused_by=cause_transition)

    entry = logger.entries("payment", event="transition")[0]
    assert entry["caused_by"] == [cause_transition.ref().as_dict()]


def test_batch_transition_logged():
    logger = AuditLogger()
    sb = Statebit("batch", 0)
    logger.attach(sb)
    sb.batch_transition([{"new_value": 1, "reason": "One"}, {"new_value": 2, "reason": "Two"}])

    assert [entry["step"] for entry in logger.entries(event="transition")] == [1, 2]


def test_entries_filtered_by_identity():
    logger = AuditLogger()
    first = Statebit("first", 0)
    second = Statebit("second", 0)
    logger.attach(first)
    logger.attach(second)
    first.transition(1, "First change")
    second.transition(1, "Second change")

    assert [entry["reason"] for entry in logger.entries("second", event="transition")] == ["Second change"]
    assert len(logger.entries()) == 4


def test_detach_stops_logging():
    logger = AuditLogger()
    sb = Statebit("account", 0)
    logger.attach(sb)
    sb.transition(1, "Logged")
    logger.detach(sb)
    sb.transition(2, "Not logged")

    events = [entry["event"] for entry in logger.entries()]
    assert events == ["attach", "transition", "detach"]
    assert logger.entries(event="detach")[0]["step"] == 1


def test_attach_errors():
    logger = AuditLogger()
    sb = Statebit("account", 0)
    logger.attach(sb)

    with pytest.raises(ValidationError, match="already attached"):
        logger.attach(sb)
    with pytest.raises(ValidationError, match="invalid `sb`"):
        logger.attach("account")
    with pytest.raises(ValidationError, match="statebit 'other' is not attached"):
        logger.detach(Statebit("other", 0))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"storage": "s3"}, "invalid `storage`"),
        ({"storage": "file"}, "invalid `filepath`"),
        ({"storage": "memory", "filepath": "audit.log"}, "invalid `filepath`"),
        ({"key": b""}, "invalid `key`"),
        ({"key": 5}, "invalid `key`"),
        ({"user_keys": "user"}, "invalid `user_keys`"),
        ({"low_confidence": 2.0}, "invalid confidence"),
    ],
)
def test_invalid_arguments(arguments, message):
    with pytest.raises(ValidationError, match=message):
        AuditLogger(**arguments)


def test_key_not_shown_in_error():
    with pytest.raises(ValidationError) as caught:
        AuditLogger(key=12345)

    assert "12345" not in str(caught.value)


# -- files ---------------------------------------------------------------------------------


def test_file_lines_flushed(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4]
    assert logger.head == json.loads(lines[-1])["hash"]


def test_file_reopened_continues_chain(tmp_path):
    path = tmp_path / "audit.log"
    first_logger, sb = make_log(path)
    first_logger.close()

    second_logger = AuditLogger(storage="file", filepath=path)
    second_logger.attach(sb)
    sb.transition(99, "After reopening")

    result = second_logger.verify()
    assert result.ok
    assert result.checked == 7  # attach + 3 transitions + detach, attach + 1 transition
    assert AuditLogger.verify_file(path).ok
    assert second_logger.entries(event="transition")[-1]["seq"] == 7


def test_new_file_empty_before_first_entry(tmp_path):
    logger = AuditLogger(storage="file", filepath=tmp_path / "audit.log")

    assert logger.entries() == []
    assert logger.verify().ok
    assert logger.verify().checked == 0
    assert not (tmp_path / "audit.log").exists()


def test_file_in_new_directory(tmp_path):
    path = tmp_path / "logs" / "2024" / "audit.log"
    make_log(path, fsync=True)

    assert AuditLogger.verify_file(path).ok


def test_close_stops_writing(tmp_path):
    path = tmp_path / "audit.log"
    with AuditLogger(storage="file", filepath=path) as logger:
        sb = Statebit("account", 0)
        logger.attach(sb)
        sb.transition(1, "Inside")
    sb.transition(2, "After close")

    assert [entry["event"] for entry in logger.entries()] == ["attach", "transition", "detach"]
    with pytest.raises(ValidationError, match="closed"):
        logger.attach(sb)


def test_verify_file_missing(tmp_path):
    with pytest.raises(ValidationError, match="not found"):
        AuditLogger.verify_file(tmp_path / "absent.log")


def test_directory_as_filepath_raises(tmp_path):
    with pytest.raises(ValidationError, match="not a directory"):
        AuditLogger(storage="file", filepath=tmp_path)


# -- tampering -------------------------------------------------------------------------------


def test_clean_log_verifies(tmp_path):
    logger, sb = make_log(tmp_path / "audit.log")

    result = logger.verify()
    assert isinstance(result, AuditVerification)
    assert result.ok
    assert bool(result)
    assert result.checked == 4
    assert result.first_bad_line is None
    assert result.head == logger.head


def test_edited_line_detected(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)
    rewrite_line(path, 3, lambda entry: entry.update(to_value=1_000_000))

    result = logger.verify()
    assert not result.ok
    assert result.first_bad_line == 3
    assert "line 3" in result.message
    assert "does not match its digest" in result.message


def test_edited_line_raises_with_line(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)
    rewrite_line(path, 2, lambda entry: entry["metadata"].update(user="mallory"))

    with pytest.raises(IntegrityError, match="line 2") as caught:
        logger.verify(raise_on_error=True)
    assert caught.value.line == 2


def test_rehashed_line_breaks_next(tmp_path):
    # Recomputing the edited line's own hash moves the break to the next line.
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)

    def edit_and_rehash(entry):
        entry["to_value"] = 5
        entry.pop("hash")
        from statebits.enterprise._signing import canonical_json, digest

        entry["hash"] = digest(canonical_json(entry), None)

    rewrite_line(path, 2, edit_and_rehash)

    result = logger.verify()
    assert result.first_bad_line == 3
    assert "'prev' digest differs" in result.message


def test_deleted_line_detected(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    del lines[1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = logger.verify()
    assert result.first_bad_line == 2
    assert "sequence number 3, expected 2" in result.message


def test_swapped_lines_detected(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert logger.verify().first_bad_line == 2


def test_invalid_json_line_detected(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2][:-10]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = logger.verify()
    assert result.first_bad_line == 3
    assert "not valid JSON" in result.message
    with pytest.raises(IntegrityError, match="line 3 is not valid JSON"):
        logger.entries()


def test_truncation_detected_with_head(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)
    saved_head = logger.head
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")

    assert AuditLogger.verify_file(path).ok  # a shorter chain is still a valid chain
    result = AuditLogger.verify_file(path, expected_head=saved_head)
    assert not result.ok
    assert "removed from its end" in result.message


def test_later_entries_keep_old_head_valid(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)
    saved_head = logger.head
    sb.transition(1, "Later")

    assert logger.verify(expected_head=saved_head).ok


def test_damaged_last_line_blocks_reopening(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)
    logger.close()  # the detach entry is line 5
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"event":"transition","seq":6')  # a write cut short by a crash

    with pytest.raises(IntegrityError, match="damaged entry at line 6"):
        AuditLogger(storage="file", filepath=path)
    result = AuditLogger.verify_file(path)
    assert result.first_bad_line == 6


def test_hmac_key_required_to_verify(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path, key=b"secret")

    assert logger.verify().ok
    assert AuditLogger.verify_file(path, key=b"secret").ok
    wrong = AuditLogger.verify_file(path, key=b"guess")
    assert wrong.first_bad_line == 1
    assert "or the key is wrong" in wrong.message
    assert AuditLogger.verify_file(path).first_bad_line == 1


def test_hmac_rejects_rehashed_edit(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path, key="secret")

    def edit_and_rehash_without_key(entry):
        entry["to_value"] = 5
        entry.pop("hash")
        from statebits.enterprise._signing import canonical_json, digest

        entry["hash"] = digest(canonical_json(entry), None)

    rewrite_line(path, 2, edit_and_rehash_without_key)

    assert logger.verify().first_bad_line == 2


def test_threads_write_one_chain(tmp_path):
    path = tmp_path / "audit.log"
    logger = AuditLogger(storage="file", filepath=path)
    statebits = [Statebit(f"worker{number}", 0) for number in range(4)]
    for sb in statebits:
        logger.attach(sb)

    def work(sb):
        for number in range(50):
            sb.transition(number, "Tick")

    threads = [threading.Thread(target=work, args=(sb,)) for sb in statebits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    result = logger.verify()
    assert result.ok
    assert result.checked == 4 + 200
    for sb in statebits:
        steps = [entry["step"] for entry in logger.entries(sb.identity, event="transition")]
        assert sorted(steps) == list(range(1, 51))


def test_merge_logged():
    logger = AuditLogger()
    sb = Statebit("plan", 1)
    fork = sb.fork("What-if")
    fork.transition(2, "Fork change")
    logger.attach(sb)
    merge_transition = sb.merge(fork)

    entry = logger.entries(event="transition")[-1]
    assert entry["checksum"] == merge_transition.checksum
    assert logger.verify().ok


def test_detach_during_merges_no_deadlock():
    # Merges notify observers while holding the statebit's lock; detaching
    # at the same time must not wait on the two locks in the opposite order.
    logger = AuditLogger()
    sb = Statebit("plan", 0)
    # Runs before the logger's observer, widening the time the lock is held.
    sb.add_observer(lambda statebit, transition: time.sleep(0.001))
    merges_done = threading.Event()

    def merge_repeatedly():
        for number in range(100):
            fork = sb.fork("What-if")
            fork.transition(number + 1, "Fork change")
            sb.merge(fork)
        merges_done.set()

    def attach_repeatedly():
        while not merges_done.is_set():
            logger.attach(sb)
            time.sleep(0.0005)
            logger.detach(sb)

    threads = [threading.Thread(target=merge_repeatedly, daemon=True), threading.Thread(target=attach_repeatedly, daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not any(thread.is_alive() for thread in threads)
    assert len(logger.entries(event="transition")) > 0
    assert logger.verify().ok


# -- compliance report ------------------------------------------------------------------------


def test_report_summarises_changes():
    logger = AuditLogger()
    sb = Statebit("account", 100)
    logger.attach(sb)
    sb.transition(150, "Deposit", metadata={"user": "alice"}, tags=["income"])
    sb.transition(120, "Estimated fee", confidence=0.4, metadata={"user_id": "bob"}, tags=["fee"])
    sb.transition(110, "Correction", confidence=0.95, tags=["fee"])

    report = logger.generate_compliance_report("account")

    assert report["counts"] == {"entries": 4, "transitions": 3, "attached": 1, "detached": 0}
    assert report["users"] == ["alice", "bob"]
    assert report["changes_by_user"] == {"alice": 1, "bob": 1}
    assert report["unattributed_changes"] == 1
    assert report["tags"] == {"fee": 2, "income": 1}
    assert report["first_value"] == 100
    assert report["last_value"] == 110
    assert report["low_confidence_threshold"] == 0.6
    assert report["low_confidence_changes"] == [
        {"step": 2, "reason": "Estimated fee", "confidence": 0.4, "to_value": 120, "user": "bob"}
    ]
    assert report["period"]["start"] == sb.history[0].timestamp.isoformat()
    assert report["period"]["end"] == sb.history[-1].timestamp.isoformat()
    assert report["coverage"]["missing_steps"] == []
    assert report["all_checks_passed"]


def test_report_period_filter():
    logger = AuditLogger()
    sb = Statebit("account", 0)
    logger.attach(sb)
    sb.transition(1, "January", timestamp="2024-01-15T00:00:00Z")
    sb.transition(2, "February", timestamp="2024-02-15T00:00:00Z")
    sb.transition(3, "March", timestamp="2024-03-15T00:00:00Z")

    report = logger.generate_compliance_report("account", start="2024-02-01", end="2024-02-28")

    assert report["counts"]["transitions"] == 1
    assert report["first_value"] == 1
    assert report["last_value"] == 2
    assert report["period"]["start"] == "2024-02-15T00:00:00+00:00"
    assert report["period"]["requested_start"] == "2024-02-01T00:00:00+00:00"


def test_report_custom_threshold_and_user_keys():
    logger = AuditLogger(user_keys=["operator"], low_confidence=0.95)
    sb = Statebit("valve", "closed")
    logger.attach(sb)
    sb.transition("open", "Opened", confidence=0.9, metadata={"operator": "plant-7", "user": "ignored"})

    report = logger.generate_compliance_report("valve")

    assert report["users"] == ["plant-7"]
    assert [change["step"] for change in report["low_confidence_changes"]] == [1]


def test_report_missing_step_when_write_fails(tmp_path, monkeypatch, caplog):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path, transitions=1)
    original = AuditLogger._write_line

    def failing_write(self, target, line):
        raise OSError("disk full")

    monkeypatch.setattr(AuditLogger, "_write_line", failing_write)
    sb.transition(20, "Lost from the log")
    monkeypatch.setattr(AuditLogger, "_write_line", original)
    sb.transition(30, "Logged again")

    report = logger.generate_compliance_report("account")
    assert sb.value == 30  # the failed audit write did not undo the transition
    assert "disk full" in caplog.text
    assert report["log_integrity"]["ok"]
    assert report["coverage"]["missing_steps"] == [2]
    assert not report["coverage"]["complete"]
    assert not report["all_checks_passed"]


def test_report_steps_while_detached_not_missing():
    logger = AuditLogger()
    sb = Statebit("account", 0)
    logger.attach(sb)
    sb.transition(1, "Logged")
    logger.detach(sb)
    sb.transition(2, "Unwatched")
    logger.attach(sb)
    sb.transition(3, "Logged again")

    coverage = logger.generate_compliance_report("account")["coverage"]
    assert coverage["attached_at_step"] == 0
    assert coverage["missing_steps"] == []
    assert coverage["logged_steps"] == 2
    assert coverage["complete"]


def test_report_detects_tampered_statebit():
    logger = AuditLogger()
    sb = Statebit("account", 0)
    logger.attach(sb)
    sb.transition(10, "Deposit")
    sb.transition(20, "Deposit")
    sb.history.confidences[0] = 0.5  # changes a recorded field behind the chain's back
    sb.history.checksums[32:64] = bytes(32)  # and overwrites the second checksum

    report = logger.generate_compliance_report("account")

    assert not report["statebit_integrity"]["ok"]
    assert report["statebit_integrity"]["first_bad_step"] == 1
    assert report["coverage"]["mismatched_steps"] == [2]
    assert report["log_integrity"]["ok"]
    assert not report["all_checks_passed"]


def test_report_detects_tampered_log(tmp_path):
    path = tmp_path / "audit.log"
    logger, sb = make_log(path)
    rewrite_line(path, 4, lambda entry: entry.update(reason="Something else"))

    report = logger.generate_compliance_report("account")

    assert report["log_integrity"]["first_bad_line"] == 4
    assert not report["all_checks_passed"]


def test_report_from_reopened_file(tmp_path):
    path = tmp_path / "audit.log"
    make_log(path)[0].close()

    report = AuditLogger(storage="file", filepath=path).generate_compliance_report("account")

    assert report["counts"]["transitions"] == 3
    assert report["statebit_integrity"] is None
    assert report["coverage"] is None
    assert not report["all_checks_passed"]
    assert report["log_integrity"]["ok"]


def test_report_unknown_identity_raises():
    with pytest.raises(ValidationError, match="no audit entries for identity 'ghost'"):
        AuditLogger().generate_compliance_report("ghost")


def test_report_times_follow_clock():
    with use_clock(TickingClock("2024-06-01T00:00:00Z", step="1s")):
        logger = AuditLogger()
        sb = Statebit("account", 0)
        logger.attach(sb)
        sb.transition(1, "Change")
        report = logger.generate_compliance_report("account")

    assert report["generated_at"].startswith("2024-06-01T00:00:")
    assert logger.entries()[0]["logged_at"].startswith("2024-06-01T00:00:")


def test_repr(tmp_path):
    logger, sb = make_log(tmp_path / "audit.log", transitions=1)

    assert repr(logger) == f"AuditLogger(storage='file', filepath={str(tmp_path / 'audit.log')!r}, entries=2, attached=1)"
