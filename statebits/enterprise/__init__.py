"""Enterprise features: multi-tenancy, access control, audit logging, backup and restore.

Every module here uses the standard library only, so importing this package
stays fast and needs no optional extra.
"""

from statebits.enterprise.access import AccessControl, GuardedStatebit, Permission, User
from statebits.enterprise.audit import AuditLogger, AuditVerification
from statebits.enterprise.backup import BackupInfo, BackupManager
from statebits.enterprise.tenancy import Tenant, TenantLimitError, TenantManager

__all__ = [
    "TenantManager",
    "Tenant",
    "TenantLimitError",
    "AccessControl",
    "Permission",
    "User",
    "GuardedStatebit",
    "AuditLogger",
    "AuditVerification",
    "BackupManager",
    "BackupInfo",
]
