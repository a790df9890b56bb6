"""Multi-tenancy: statebits created inside a tenant context belong to that tenant.

A :class:`TenantManager` keeps a registry of tenants. Code that runs inside
``manager.tenant_context(tenant_id)`` creates statebits for that tenant: a
creation hook registers each new Statebit with the active tenant and enforces
the tenant's ``max_statebits``. The active tenant lives in a
:class:`contextvars.ContextVar`, so it is local to each thread and each
asyncio task.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from statebits.core import clock as _clock
from statebits.core import statebit as _statebit_module
from statebits.core.errors import PermissionDenied, StatebitError, ValidationError, invalid_parameter
from statebits.core.statebit import Statebit

__all__ = ["TenantManager", "Tenant", "TenantLimitError", "admit_to_active_tenants"]

#: The tenant active for each manager in the current thread or task, as an
#: immutable mapping manager -> Tenant. It is replaced, never mutated, so a
#: task that copied the context keeps the scopes that were active when it
#: started.
_ACTIVE: contextvars.ContextVar[Mapping["TenantManager", "Tenant"]] = contextvars.ContextVar(
    "statebits_active_tenants", default=MappingProxyType({})
)
_hook_lock = threading.Lock()


class TenantLimitError(StatebitError):
    """A tenant already has its maximum number of statebits."""


@dataclass(frozen=True, eq=False)
class Tenant:
    """A customer or workspace whose statebits are kept apart from other tenants'.

    Attributes
    ----------
    tenant_id : str
        Unique id of the tenant within its manager.
    max_statebits : int or None
        Maximum number of statebits the tenant may hold; None means no limit.
    name : str
        Display name; defaults to ``tenant_id``.
    metadata : Mapping
        Read-only extra information, such as a plan or a region.
    created_at : datetime
        Creation time, aware UTC.
    """

    tenant_id: str
    max_statebits: int | None
    name: str
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    created_at: datetime = field(default_factory=lambda: _clock.from_ns(_clock.now_ns()))


class TenantManager:
    """Registry of tenants and of the statebits each one holds.

    The first TenantManager created adds one hook to
    ``statebits.core.statebit.CREATION_HOOKS``. From then on every Statebit
    constructed inside ``tenant_context(tenant_id)`` is registered with that
    tenant, and a construction that would exceed the tenant's
    ``max_statebits`` raises :class:`TenantLimitError`. Statebits created
    outside any tenant context belong to no tenant.

    Identities need not be unique: two tenants may each have a statebit
    called ``"revenue"``, and each tenant lists only its own.

    Examples
    --------
    >>> from statebits import Statebit, TenantManager
    >>> manager = TenantManager()
    >>> tenant = manager.create_tenant("acme_corp", max_statebits=1000)
    >>> with manager.tenant_context(tenant.tenant_id):
    ...     sb = Statebit(identity="tenant_data", initial_value=100)
    >>> manager.get_statebits("acme_corp") == [sb]
    True
    >>> manager.tenant_of(sb)
    'acme_corp'
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tenants: dict[str, Tenant] = {}
        self._statebits: dict[str, list[Statebit]] = {}
        # Maps each registered statebit to its tenant id without keeping it alive.
        self._owners: weakref.WeakKeyDictionary[Statebit, str] = weakref.WeakKeyDictionary()
        _install_creation_hook()

    def __repr__(self) -> str:
        return f"TenantManager(tenants={len(self._tenants)})"

    # -- tenants -----------------------------------------------------------------

    def create_tenant(
        self,
        tenant_id: str,
        max_statebits: int | None = None,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Tenant:
        """Create a tenant.

        Parameters
        ----------
        tenant_id : str
            Unique, non-empty id such as ``"acme_corp"``.
        max_statebits : int, optional
            Maximum number of statebits the tenant may hold, at least 1.
            None (the default) means no limit.
        name : str, optional
            Display name; defaults to ``tenant_id``.
        metadata : mapping, optional
            Extra information stored read-only on the tenant.

        Returns
        -------
        Tenant

        Raises
        ------
        ValidationError
            For an invalid argument or a ``tenant_id`` that already exists.
        """
        if not isinstance(tenant_id, str) or not tenant_id.strip():
            raise invalid_parameter("tenant_id", tenant_id, "a non-empty string such as 'acme_corp'", "create_tenant")
        _check_max_statebits(max_statebits, "create_tenant")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise invalid_parameter("name", name, "a non-empty string or None", "create_tenant")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise invalid_parameter("metadata", metadata, "a dict or None", "create_tenant")

        tenant = Tenant(
            tenant_id=tenant_id,
            max_statebits=max_statebits,
            name=name or tenant_id,
            metadata=MappingProxyType(dict(metadata or {})),
        )
        with self._lock:
            if tenant_id in self._tenants:
                raise ValidationError(f"tenant {tenant_id!r} already exists; choose another tenant_id or use get_tenant({tenant_id!r})")
            self._tenants[tenant_id] = tenant
            self._statebits[tenant_id] = []
        return tenant

    def set_max_statebits(self, tenant_id: str, max_statebits: int | None) -> Tenant:
        """Change a tenant's limit; None removes it.

        A limit below the current count keeps the statebits the tenant
        already has and rejects new ones until enough are removed.
        """
        _check_max_statebits(max_statebits, "set_max_statebits")
        with self._lock:
            tenant = self._tenant(tenant_id)
            # Tenant is frozen for callers; the manager is its only writer.
            object.__setattr__(tenant, "max_statebits", max_statebits)
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Return the tenant with id ``tenant_id``; raises ValidationError when it does not exist."""
        with self._lock:
            return self._tenant(tenant_id)

    def list_tenants(self) -> list[Tenant]:
        """Return every tenant, in creation order."""
        with self._lock:
            return list(self._tenants.values())

    def delete_tenant(self, tenant_id: str) -> None:
        """Delete a tenant and forget its statebits.

        The statebits themselves are not changed. Raises ValidationError for
        an unknown tenant, and also while a ``tenant_context`` of this tenant
        is active in the calling thread or task.
        """
        with self._lock:
            tenant = self._tenant(tenant_id)
            if _ACTIVE.get().get(self) is tenant:
                raise ValidationError(f"tenant {tenant_id!r} is active in this context; leave its tenant_context before deleting it")
            for sb in self._statebits.pop(tenant_id):
                self._owners.pop(sb, None)
            del self._tenants[tenant_id]

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id) if isinstance(tenant_id, str) else None
        if tenant is None:
            known = ", ".join(repr(item) for item in self._tenants) or "none"
            raise ValidationError(f"unknown tenant {tenant_id!r}: create it with create_tenant() first; known tenants: {known}")
        return tenant

    # -- context -----------------------------------------------------------------

    def tenant_context(self, tenant_id: str) -> contextlib.AbstractContextManager[Tenant]:
        """Make ``tenant_id`` the active tenant of this manager inside a ``with`` block.

        Statebits constructed in the block are registered with the tenant.
        The scope is local to the current thread or asyncio task: threads
        started inside the block do not inherit it, and asyncio tasks created
        inside it do (they copy the context when they are created). Contexts
        nest; the previous tenant is active again when the block ends.

        Raises
        ------
        ValidationError
            For an unknown ``tenant_id``, when this method is called.
        """
        tenant = self.get_tenant(tenant_id)
        return self._scope(tenant)

    @contextlib.contextmanager
    def _scope(self, tenant: Tenant) -> Iterator[Tenant]:
        active = dict(_ACTIVE.get())
        active[self] = tenant
        token = _ACTIVE.set(MappingProxyType(active))
        try:
            yield tenant
        finally:
            _ACTIVE.reset(token)

    def current_tenant(self) -> Tenant | None:
        """Return the tenant active for this manager in the calling thread or task, or None."""
        return _ACTIVE.get().get(self)

    # -- statebits ----------------------------------------------------------------

    def get_statebits(self, tenant_id: str | None = None, identity: str | None = None) -> list[Statebit]:
        """Return the statebits of a tenant, in registration order.

        Parameters
        ----------
        tenant_id : str, optional
            Defaults to the active tenant. Inside the context of one tenant,
            asking for another tenant's statebits raises PermissionDenied.
        identity : str, optional
            Return only the statebits with this identity.

        Raises
        ------
        ValidationError
            For an unknown tenant, or when no tenant is given or active.
        PermissionDenied
            When another tenant of this manager is active.
        """
        tenant = self._visible_tenant(tenant_id, "get_statebits")
        with self._lock:
            found = list(self._statebits.get(tenant.tenant_id, ()))
        if identity is not None:
            found = [sb for sb in found if sb.identity == identity]
        return found

    def statebit_count(self, tenant_id: str | None = None) -> int:
        """Return the number of statebits of a tenant (defaults to the active tenant)."""
        tenant = self._visible_tenant(tenant_id, "statebit_count")
        with self._lock:
            return len(self._statebits.get(tenant.tenant_id, ()))

    def tenant_of(self, sb: Statebit) -> str | None:
        """Return the id of the tenant ``sb`` is registered with, or None when it belongs to no tenant of this manager."""
        if not isinstance(sb, Statebit):
            raise invalid_parameter("sb", sb, "a Statebit", "tenant_of")
        with self._lock:
            return self._owners.get(sb)

    def remove_statebit(self, tenant_id: str, sb: Statebit) -> None:
        """Release ``sb`` from a tenant, which frees one place under its ``max_statebits``.

        Raises ValidationError for an unknown tenant or when ``sb`` is not
        one of the tenant's statebits.
        """
        tenant = self._visible_tenant(tenant_id, "remove_statebit")
        with self._lock:
            members = self._statebits[tenant.tenant_id]
            for position, item in enumerate(members):
                if item is sb:
                    del members[position]
                    self._owners.pop(sb, None)
                    return
        identity = getattr(sb, "identity", sb)
        raise ValidationError(f"statebit {identity!r} not found in tenant {tenant_id!r}; get_statebits() lists the tenant's statebits")

    def _visible_tenant(self, tenant_id: str | None, method: str) -> Tenant:
        active = _ACTIVE.get().get(self)
        if tenant_id is None:
            if active is None:
                raise ValidationError(f"{method}() needs a tenant_id when no tenant_context of this manager is active")
            return active
        tenant = self.get_tenant(tenant_id)
        if active is not None and active.tenant_id != tenant_id:
            raise PermissionDenied(
                f"code running in the context of tenant {active.tenant_id!r} cannot access tenant {tenant_id!r}; "
                "call this outside any tenant_context to manage other tenants"
            )
        return tenant

    # -- admission ------------------------------------------------------------------

    def _admit(self, tenant: Tenant, statebits: list[Statebit]) -> None:
        """Register ``statebits`` with ``tenant``, all of them or none."""
        with self._lock:
            if self._tenants.get(tenant.tenant_id) is not tenant:
                raise ValidationError(
                    f"tenant {tenant.tenant_id!r} was deleted while its tenant_context was active; "
                    "no statebit can be created for it"
                )
            members = self._statebits[tenant.tenant_id]
            limit = tenant.max_statebits
            if limit is not None and len(members) + len(statebits) > limit:
                identities = ", ".join(repr(sb.identity) for sb in statebits)
                raise TenantLimitError(
                    f"tenant {tenant.tenant_id!r} already has {len(members)} of its max_statebits={limit} statebits, "
                    f"so {identities} cannot be added; remove statebits with remove_statebit() or raise the limit with set_max_statebits()"
                )
            members.extend(statebits)
            for sb in statebits:
                self._owners[sb] = tenant.tenant_id

    def _release(self, tenant: Tenant, statebits: list[Statebit]) -> None:
        """Undo :meth:`_admit` after a later manager rejected the same statebits."""
        with self._lock:
            members = self._statebits.get(tenant.tenant_id)
            if members is None:
                return
            rejected = {id(sb) for sb in statebits}
            members[:] = [sb for sb in members if id(sb) not in rejected]
            for sb in statebits:
                self._owners.pop(sb, None)


def admit_to_active_tenants(statebits: Iterable[Statebit]) -> None:
    """Register already-built statebits with every tenant active in this context.

    This does for existing objects what the creation hook does for new ones.
    For each manager, either all of ``statebits`` are registered or none.
    When one manager rejects them, the managers that accepted them release
    them again before the error propagates.

    Raises
    ------
    TenantLimitError
        When a tenant cannot take all of them.
    """
    items = list(statebits)
    if not items:
        return
    admitted: list[tuple[TenantManager, Tenant]] = []
    try:
        for manager, tenant in _ACTIVE.get().items():
            manager._admit(tenant, items)
            admitted.append((manager, tenant))
    except BaseException:
        for manager, tenant in admitted:
            manager._release(tenant, items)
        raise


def _register_new_statebit(sb: Statebit) -> None:
    # The creation hook: it runs for every Statebit, so the common case of no
    # active tenant returns after one ContextVar read.
    # NOTE: a statebit whose construction fails after this hook ran stays
    # registered: a later hook that raises, or Statebit.from_dict when the
    # chain it loads does not verify.
    if _ACTIVE.get():
        admit_to_active_tenants([sb])


def _check_max_statebits(max_statebits: Any, owner: str) -> None:
    if max_statebits is None:
        return
    if isinstance(max_statebits, bool) or not isinstance(max_statebits, int) or max_statebits < 1:
        raise invalid_parameter("max_statebits", max_statebits, "a positive integer or None for no limit", owner)


def _install_creation_hook() -> None:
    with _hook_lock:
        if _register_new_statebit not in _statebit_module.CREATION_HOOKS:
            _statebit_module.CREATION_HOOKS.append(_register_new_statebit)
