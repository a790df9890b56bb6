"""The user guide's enterprise examples, run as written.

The guide awaits at top level, as a notebook cell may; here those lines run
inside ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import json

from statebits import Statebit


def test_multi_tenancy_example():
    from statebits import TenantManager

    # Create tenant manager
    manager = TenantManager()
    # Create tenant
    tenant = manager.create_tenant(
        "acme_corp",
        max_statebits=1000,
    )
    # Use tenant context
    with manager.tenant_context(tenant.tenant_id):
        sb = Statebit(identity="tenant_data", initial_value=100)
        sb.transition(150, "Tenant update")

    assert tenant.tenant_id == "acme_corp"
    assert tenant.max_statebits == 1000
    assert manager.get_statebits("acme_corp") == [sb]
    assert manager.tenant_of(sb) == "acme_corp"
    assert sb.value == 150
    assert manager.current_tenant() is None


def test_access_control_example():
    from statebits import AccessControl, Permission

    # Create access control
    ac = AccessControl()
    # Create users
    ac.create_user("alice", roles=["admin"])
    ac.create_user("bob", roles=["analyst"])
    # Protect statebit
    sb = Statebit(identity="protected", initial_value=100)
    ac.protect_statebit(sb, owner="alice")
    # Check permissions
    if ac.check_permission("alice", sb, Permission.WRITE):
        sb.transition(150, "Authorized update")

    assert sb.value == 150
    assert ac.check_permission("bob", sb, Permission.READ)
    assert not ac.check_permission("bob", sb, Permission.WRITE)


def test_audit_logging_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from statebits import AuditLogger

    # Create logger
    logger = AuditLogger(storage="file", filepath="audit.log")
    # Attach to statebit
    sb = Statebit(identity="audited", initial_value=1000)
    logger.attach(sb)
    # Transitions automatically logged
    sb.transition(1500, "Deposit", metadata={"user": "alice"})
    # Generate compliance report
    report = logger.generate_compliance_report(sb.identity)

    lines = (tmp_path / "audit.log").read_text(encoding="utf-8").splitlines()
    logged = json.loads(lines[-1])
    assert len(lines) == 2
    assert logged["event"] == "transition"
    assert logged["from_value"] == 1000
    assert logged["to_value"] == 1500
    assert logged["reason"] == "Deposit"
    assert logged["metadata"] == {"user": "alice"}
    assert logged["checksum"] == sb.history[-1].checksum
    assert report["identity"] == "audited"
    assert report["counts"]["transitions"] == 1
    assert report["users"] == ["alice"]
    assert report["log_integrity"]["ok"]
    assert report["statebit_integrity"]["ok"]
    assert report["coverage"]["complete"]
    assert report["all_checks_passed"]
    json.dumps(report)  # the report is JSON-ready


def test_backup_restore_example():
    from statebits import BackupManager

    sb = Statebit(identity="audited", initial_value=1000)
    sb.transition(1500, "Deposit", metadata={"user": "alice"})

    async def notebook_cell():
        # Create backup manager
        backup_mgr = BackupManager(strategy="incremental")
        # Register statebit
        backup_mgr.register(sb)
        # Create backup
        backup_id = await backup_mgr.create_backup("pre_migration")
        # Restore if needed
        restored = await backup_mgr.restore_backup(backup_id)
        return backup_mgr, backup_id, restored

    backup_mgr, backup_id, restored = asyncio.run(notebook_cell())

    assert backup_id == "000001-pre_migration"
    assert restored is not sb
    assert restored.identity == "audited"
    assert restored.value == 1500
    assert restored.history[-1].checksum == sb.history[-1].checksum
    assert restored.history[-1].metadata == {"user": "alice"}
    assert restored.verify_integrity()
    assert [info.backup_id for info in backup_mgr.list_backups()] == [backup_id]
