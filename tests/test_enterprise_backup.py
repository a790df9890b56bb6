"""BackupManager: full and incremental backups, restore, verification and tampering."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from statebits import AsyncStatebit, IntegrityError, Statebit, ValidationError
from statebits.enterprise import BackupInfo, BackupManager, TenantLimitError, TenantManager
from statebits.enterprise._signing import canonical_json, digest


def run(coroutine):
    return asyncio.run(coroutine)


def make_statebit(identity="ledger", changes=3):
    sb = Statebit(identity=identity, initial_value=0)
    for number in range(1, changes + 1):
        sb.transition(number * 10, f"Change {number}", tags=["entry"], metadata={"user": "alice"})
    return sb


def assert_same_history(restored, original):
    assert restored.identity == original.identity
    assert restored.initial_value == original.initial_value
    assert restored.value == original.value
    assert len(restored.history) == len(original.history)
    assert [item.checksum for item in restored.history] == [item.checksum for item in original.history]
    assert restored.created_at == original.created_at
    assert restored.verify_integrity()


def read_document(directory, backup_id):
    return json.loads((directory / f"{backup_id}.json").read_text(encoding="utf-8"))


def write_document(directory, backup_id, document, recompute_digest=False):
    if recompute_digest:
        document.pop("digest")
        document["digest"] = digest(canonical_json(document), None)
    (directory / f"{backup_id}.json").write_text(json.dumps(document), encoding="utf-8")


# -- full ---------------------------------------------------------------------------------------


def test_full_backup_restores_one(tmp_path):
    sb = make_statebit()
    manager = BackupManager(strategy="full", directory=tmp_path)
    manager.register(sb)

    backup_id = run(manager.create_backup("nightly"))
    restored = run(manager.restore_backup(backup_id))

    assert backup_id == "000001-nightly"
    assert (tmp_path / "000001-nightly.json").is_file()
    assert restored is not sb
    assert_same_history(restored, sb)
    assert restored.history[-1].metadata == {"user": "alice"}
    assert restored.history[-1].tags == ("entry",)


def test_full_backup_restores_many():
    first = make_statebit("first")
    second = make_statebit("second", changes=5)
    manager = BackupManager()
    manager.register(first)
    manager.register(second)

    restored = run(manager.restore_backup(run(manager.create_backup("all"))))

    assert sorted(restored) == ["first", "second"]
    assert_same_history(restored["first"], first)
    assert_same_history(restored["second"], second)


def test_restore_single_identity():
    manager = BackupManager()
    manager.register(make_statebit("first"))
    second = make_statebit("second")
    manager.register(second)
    backup_id = run(manager.create_backup("all"))

    restored = run(manager.restore_backup(backup_id, identity="second"))

    assert_same_history(restored, second)
    with pytest.raises(ValidationError, match="statebit 'third' not found in backup '000001-all'"):
        run(manager.restore_backup(backup_id, identity="third"))


def test_full_backups_are_independent(tmp_path):
    sb = make_statebit()
    manager = BackupManager(strategy="full", directory=tmp_path)
    manager.register(sb)
    first = run(manager.create_backup("one"))
    sb.transition(99, "Later")
    second = run(manager.create_backup("two"))
    (tmp_path / f"{first}.json").unlink()

    restored = run(manager.restore_backup(second))

    assert_same_history(restored, sb)
    assert [info.kind for info in manager.list_backups()] == ["full"]


def test_values_and_flags_survive():
    sb = Statebit("typed", Decimal("1.10"))
    sb.transition((1, "a"), "Tuple", metadata={"ratio": float("nan")})
    sb.transition(None, "Cleared", confidence=0.3)
    sb.freeze()
    manager = BackupManager()
    manager.register(sb)

    restored = run(manager.restore_backup(run(manager.create_backup("typed"))))

    assert restored.initial_value == Decimal("1.10")
    assert restored.history[0].to_value == (1, "a")
    assert restored.value is None
    assert restored.frozen
    assert_same_history(restored, sb)


def test_fork_backed_up_by_key():
    parent = make_statebit("plan")
    child = parent.fork("What-if", branch="optimistic")
    child.transition(500, "Optimistic guess")
    manager = BackupManager()
    manager.register(parent)
    manager.register(child)

    restored = run(manager.restore_backup(run(manager.create_backup("plans"))))

    assert sorted(restored) == ["plan", "plan@optimistic"]
    assert restored["plan@optimistic"].value == 500
    assert restored["plan@optimistic"].branch == "optimistic"
    assert [item.checksum for item in restored["plan@optimistic"].history] == [item.checksum for item in child.history]


def test_async_statebit_backed_up():
    async def main():
        sb = AsyncStatebit("async_ledger", 0)
        await sb.transition(5, "Async change")
        manager = BackupManager()
        manager.register(sb)
        restored = await manager.restore_backup(await manager.create_backup("async"))
        return sb, restored

    sb, restored = run(main())

    assert type(restored) is Statebit
    assert_same_history(restored, sb)


# -- incremental ---------------------------------------------------------------------------------


def test_incremental_stores_only_new(tmp_path):
    sb = make_statebit(changes=3)
    manager = BackupManager(strategy="incremental", directory=tmp_path)
    manager.register(sb)
    first = run(manager.create_backup("base"))
    sb.transition(40, "Change 4")
    sb.transition(50, "Change 5")
    second = run(manager.create_backup("delta"))
    third = run(manager.create_backup("empty_delta"))

    base_doc = read_document(tmp_path, first)
    delta_doc = read_document(tmp_path, second)
    empty_doc = read_document(tmp_path, third)
    assert base_doc["kind"] == "full"
    assert delta_doc["kind"] == "incremental"
    assert delta_doc["parent"] == first
    assert delta_doc["parent_digest"] == base_doc["digest"]
    assert [row["step"] for row in delta_doc["statebits"]["ledger"]["transitions"]] == [4, 5]
    assert delta_doc["statebits"]["ledger"]["base_step"] == 3
    assert empty_doc["statebits"]["ledger"]["transitions"] == []


def test_incremental_restores_each_point(tmp_path):
    sb = make_statebit(changes=2)
    manager = BackupManager(strategy="incremental", directory=tmp_path)
    manager.register(sb)
    snapshots = []
    for round_number in range(4):
        backup_id = run(manager.create_backup(f"round{round_number}"))
        snapshots.append((backup_id, [item.checksum for item in sb.history], sb.value))
        sb.transition(round_number, f"Round {round_number}", confidence=0.8)

    for backup_id, checksums, value in snapshots:
        restored = run(manager.restore_backup(backup_id))
        assert [item.checksum for item in restored.history] == checksums
        assert restored.value == value
        assert restored.verify_integrity()


def test_incremental_equals_full():
    sb = make_statebit(changes=2)
    fork = sb.fork("What-if", branch="optimistic")
    cause = Statebit("cause", 0)
    cause_transition = cause.transition(1, "Cause")
    incremental = BackupManager(strategy="incremental")
    full = BackupManager(strategy="full")
    for manager in (incremental, full):
        manager.register(sb)
        manager.register(fork)
    run(incremental.create_backup("first"))
    sb.transition(7, "Change", tags=["late"], metadata={"note": "x"}, caused_by=cause_transition)
    fork.transition(8, "Fork change", confidence=0.5)
    incremental_id = run(incremental.create_backup("second"))
    full_id = run(full.create_backup("second"))

    from_incremental = run(incremental.restore_backup(incremental_id))
    from_full = run(full.restore_backup(full_id))

    assert incremental.list_backups()[-1].transitions == 2
    for key in ("ledger", "ledger@optimistic"):
        assert from_incremental[key].to_dict() == from_full[key].to_dict()


def test_incremental_new_statebit_stored_full(tmp_path):
    first = make_statebit("first")
    manager = BackupManager(strategy="incremental", directory=tmp_path)
    manager.register(first)
    run(manager.create_backup("one"))
    second = make_statebit("second")
    manager.register(second)
    backup_id = run(manager.create_backup("two"))

    entries = read_document(tmp_path, backup_id)["statebits"]
    assert entries["second"]["base_step"] == 0
    assert entries["first"]["base_step"] == 3
    restored = run(manager.restore_backup(backup_id))
    assert_same_history(restored["second"], second)
    assert_same_history(restored["first"], first)


def test_incremental_replaced_statebit_stored_full(tmp_path):
    original = make_statebit("ledger", changes=3)
    manager = BackupManager(strategy="incremental", directory=tmp_path)
    manager.register(original)
    run(manager.create_backup("one"))
    manager.unregister(original)
    replacement = Statebit("ledger", 0)
    replacement.transition(1, "Different history")
    manager.register(replacement)
    backup_id = run(manager.create_backup("two"))

    assert read_document(tmp_path, backup_id)["statebits"]["ledger"]["base_step"] == 0
    assert_same_history(run(manager.restore_backup(backup_id)), replacement)


def test_forced_full_backup():
    sb = make_statebit()
    manager = BackupManager(strategy="incremental")
    manager.register(sb)
    run(manager.create_backup("one"))
    run(manager.create_backup("two"))
    run(manager.create_backup("three", full=True))

    infos = manager.list_backups()
    assert [info.kind for info in infos] == ["full", "incremental", "full"]
    assert infos[1].parent == "000001-one"
    assert infos[2].parent is None


def test_new_manager_continues_directory(tmp_path):
    sb = make_statebit()
    first_manager = BackupManager(strategy="incremental", directory=tmp_path)
    first_manager.register(sb)
    run(first_manager.create_backup("one"))
    sb.transition(99, "Later")

    second_manager = BackupManager(strategy="incremental", directory=tmp_path)
    second_manager.register(sb)
    backup_id = run(second_manager.create_backup("two"))

    assert backup_id == "000002-two"
    assert read_document(tmp_path, backup_id)["kind"] == "incremental"
    assert_same_history(run(second_manager.restore_backup(backup_id)), sb)


# -- listing and deleting ---------------------------------------------------------------------------


def test_list_backups_info(fixed_clock):
    sb = make_statebit()
    manager = BackupManager(strategy="incremental")
    manager.register(sb)
    run(manager.create_backup("one"))
    sb.transition(1, "Later")
    run(manager.create_backup("two"))

    first, second = manager.list_backups()
    assert isinstance(first, BackupInfo)
    assert (first.backup_id, first.name, first.kind, first.parent) == ("000001-one", "one", "full", None)
    assert (first.statebits, first.transitions) == (1, 3)
    assert (second.kind, second.parent, second.transitions) == ("incremental", "000001-one", 1)
    assert second.created_at > first.created_at
    assert second.created_at.tzinfo is not None


def test_list_ignores_other_files(tmp_path):
    (tmp_path / "notes.json").write_text("{}", encoding="utf-8")
    manager = BackupManager(directory=tmp_path)
    manager.register(make_statebit())
    run(manager.create_backup("one"))

    assert [info.backup_id for info in manager.list_backups()] == ["000001-one"]


def test_delete_backup(tmp_path):
    manager = BackupManager(strategy="incremental", directory=tmp_path)
    manager.register(make_statebit())
    first = run(manager.create_backup("one"))
    second = run(manager.create_backup("two"))

    with pytest.raises(ValidationError, match="is the parent of \\['000002-two'\\]"):
        manager.delete_backup(first)
    manager.delete_backup(second)
    manager.delete_backup(first)
    assert manager.list_backups() == []
    assert list(tmp_path.iterdir()) == []


# -- errors and tampering ----------------------------------------------------------------------------


def test_unknown_backup_raises():
    manager = BackupManager()

    with pytest.raises(ValidationError, match="backup '000009-none' not found"):
        run(manager.restore_backup("000009-none"))
    with pytest.raises(ValidationError, match="not found"):
        run(BackupManager(directory="/nonexistent/for/statebits").restore_backup("../../etc/passwd"))


def test_no_registered_statebits_raises():
    with pytest.raises(ValidationError, match="no statebits are registered"):
        run(BackupManager().create_backup("empty"))


@pytest.mark.parametrize("name", ["", "has space", "../escape", "-leading", "x" * 101, 5])
def test_invalid_backup_name_raises(name):
    manager = BackupManager()
    manager.register(make_statebit())

    with pytest.raises(ValidationError, match="invalid `name`"):
        run(manager.create_backup(name))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"strategy": "differential"}, "invalid `strategy`"),
        ({"key": b""}, "invalid `key`"),
    ],
)
def test_invalid_arguments(arguments, message):
    with pytest.raises(ValidationError, match=message):
        BackupManager(**arguments)


def test_directory_is_file_raises(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x", encoding="utf-8")

    with pytest.raises(ValidationError, match="not a file"):
        BackupManager(directory=path)


def test_register_errors():
    manager = BackupManager()
    sb = make_statebit()
    manager.register(sb)
    manager.register(sb)  # the same object again changes nothing

    assert manager.registered() == [sb]
    with pytest.raises(ValidationError, match="another statebit with key 'ledger'"):
        manager.register(make_statebit())
    with pytest.raises(ValidationError, match="invalid `sb`"):
        manager.register("ledger")
    with pytest.raises(ValidationError, match="not registered"):
        manager.unregister(make_statebit("other"))


def test_tampered_value_detected(tmp_path):
    manager = BackupManager(directory=tmp_path)
    manager.register(make_statebit())
    backup_id = run(manager.create_backup("one"))
    document = read_document(tmp_path, backup_id)
    document["statebits"]["ledger"]["transitions"][1]["to_value"] = 1_000_000
    write_document(tmp_path, backup_id, document)

    with pytest.raises(IntegrityError, match="backup '000001-one' does not match its digest"):
        run(manager.restore_backup(backup_id))


def test_tampered_value_with_new_digest_detected(tmp_path):
    manager = BackupManager(directory=tmp_path)
    manager.register(make_statebit())
    backup_id = run(manager.create_backup("one"))
    document = read_document(tmp_path, backup_id)
    document["statebits"]["ledger"]["transitions"][1]["to_value"] = 1_000_000
    write_document(tmp_path, backup_id, document, recompute_digest=True)

    with pytest.raises(IntegrityError, match="statebit 'ledger' does not verify") as caught:
        run(manager.restore_backup(backup_id))
    assert caught.value.step == 2


def test_tampered_incremental_detected(tmp_path):
    sb = make_statebit()
    manager = BackupManager(strategy="incremental", directory=tmp_path)
    manager.register(sb)
    run(manager.create_backup("one"))
    sb.transition(40, "Change 4")
    backup_id = run(manager.create_backup("two"))
    document = read_document(tmp_path, backup_id)
    document["statebits"]["ledger"]["transitions"][0]["reason"] = "Rewritten"
    write_document(tmp_path, backup_id, document, recompute_digest=True)

    with pytest.raises(IntegrityError, match="does not verify") as caught:
        run(manager.restore_backup(backup_id))
    assert caught.value.step == 4


def test_replaced_parent_detected(tmp_path):
    sb = make_statebit()
    manager = BackupManager(strategy="incremental", directory=tmp_path)
    manager.register(sb)
    first = run(manager.create_backup("one"))
    sb.transition(40, "Change 4")
    second = run(manager.create_backup("two"))
    document = read_document(tmp_path, first)
    document["created_at"] = "2000-01-01T00:00:00+00:00"
    write_document(tmp_path, first, document, recompute_digest=True)

    with pytest.raises(IntegrityError, match="different version of its parent '000001-one'"):
        run(manager.restore_backup(second))


def test_missing_parent_detected(tmp_path):
    sb = make_statebit()
    manager = BackupManager(strategy="incremental", directory=tmp_path)
    manager.register(sb)
    first = run(manager.create_backup("one"))
    sb.transition(40, "Change 4")
    second = run(manager.create_backup("two"))
    (tmp_path / f"{first}.json").unlink()

    with pytest.raises(ValidationError, match="parent backup '000001-one' of '000002-two' not found"):
        run(manager.restore_backup(second))


def test_renamed_file_detected(tmp_path):
    manager = BackupManager(directory=tmp_path)
    manager.register(make_statebit())
    run(manager.create_backup("one"))
    (tmp_path / "000001-one.json").rename(tmp_path / "000001-other.json")

    with pytest.raises(IntegrityError, match="contains the content of backup '000001-one'"):
        run(manager.restore_backup("000001-other"))


def test_damaged_json_detected(tmp_path):
    manager = BackupManager(directory=tmp_path)
    manager.register(make_statebit())
    backup_id = run(manager.create_backup("one"))
    path = tmp_path / f"{backup_id}.json"
    path.write_text(path.read_text(encoding="utf-8")[:-20], encoding="utf-8")

    with pytest.raises(IntegrityError, match="not valid JSON"):
        run(manager.restore_backup(backup_id))


def test_hmac_key(tmp_path):
    manager = BackupManager(directory=tmp_path, key=b"secret")
    manager.register(make_statebit())
    backup_id = run(manager.create_backup("one"))
    document = read_document(tmp_path, backup_id)
    document["statebits"]["ledger"]["transitions"][1]["reason"] = "Rewritten"
    write_document(tmp_path, backup_id, document, recompute_digest=True)

    with pytest.raises(IntegrityError, match="or was written with another key"):
        run(manager.restore_backup(backup_id))
    with pytest.raises(IntegrityError, match="does not match its digest"):
        run(BackupManager(directory=tmp_path, key=b"other").restore_backup(backup_id))


def test_registered_statebit_unchanged_by_restore():
    sb = make_statebit()
    manager = BackupManager()
    manager.register(sb)
    backup_id = run(manager.create_backup("one"))
    sb.transition(77, "After backup")

    restored = run(manager.restore_backup(backup_id))

    assert sb.value == 77
    assert restored.value == 30
    assert manager.registered() == [sb]


def test_concurrent_backups_get_distinct_ids():
    sb = make_statebit()
    manager = BackupManager(strategy="incremental")
    manager.register(sb)

    async def main():
        return await asyncio.gather(*(manager.create_backup(f"b{number}") for number in range(5)))

    ids = run(main())

    assert sorted(ids) == [info.backup_id for info in manager.list_backups()]
    assert len(set(ids)) == 5
    for backup_id in ids:
        assert_same_history(run(manager.restore_backup(backup_id)), sb)


# -- tenants --------------------------------------------------------------------------------------


def test_restore_inside_tenant_context():
    tenants = TenantManager()
    tenants.create_tenant("acme")
    manager = BackupManager()
    manager.register(make_statebit("first"))
    manager.register(make_statebit("second"))
    backup_id = run(manager.create_backup("all"))

    async def restore():
        with tenants.tenant_context("acme"):
            return await manager.restore_backup(backup_id)

    restored = run(restore())

    assert tenants.get_statebits("acme") == [restored["first"], restored["second"]]


def test_tampered_restore_leaves_tenant_unchanged(tmp_path):
    tenants = TenantManager()
    tenants.create_tenant("acme")
    manager = BackupManager(directory=tmp_path)
    manager.register(make_statebit())
    backup_id = run(manager.create_backup("one"))
    document = read_document(tmp_path, backup_id)
    document["statebits"]["ledger"]["transitions"][2]["to_value"] = 5
    write_document(tmp_path, backup_id, document, recompute_digest=True)

    async def restore():
        with tenants.tenant_context("acme"):
            return await manager.restore_backup(backup_id)

    with pytest.raises(IntegrityError):
        run(restore())
    assert tenants.statebit_count("acme") == 0


def test_restore_over_tenant_limit_adds_none():
    tenants = TenantManager()
    tenants.create_tenant("acme", max_statebits=1)
    manager = BackupManager()
    manager.register(make_statebit("first"))
    manager.register(make_statebit("second"))
    backup_id = run(manager.create_backup("all"))

    async def restore():
        with tenants.tenant_context("acme"):
            return await manager.restore_backup(backup_id)

    with pytest.raises(TenantLimitError, match="'first', 'second' cannot be added"):
        run(restore())
    assert tenants.statebit_count("acme") == 0


def test_repr(tmp_path):
    manager = BackupManager(strategy="incremental", directory=tmp_path)

    assert repr(manager) == f"BackupManager(strategy='incremental', directory={str(tmp_path)!r}, registered=0)"
