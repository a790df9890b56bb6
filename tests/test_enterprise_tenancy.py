"""TenantManager: scoping, limits, isolation across tenants, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from statebits import PermissionDenied, Statebit, ValidationError
from statebits.core import statebit as statebit_module
from statebits.enterprise import Tenant, TenantLimitError, TenantManager


@pytest.fixture
def manager():
    manager = TenantManager()
    manager.create_tenant("acme", max_statebits=3)
    manager.create_tenant("globex")
    return manager


def test_hook_installed_once():
    TenantManager()
    TenantManager()

    hooks = [hook for hook in statebit_module.CREATION_HOOKS if hook.__module__ == "statebits.enterprise.tenancy"]
    assert len(hooks) == 1


def test_create_tenant_fields():
    manager = TenantManager()
    tenant = manager.create_tenant("acme", max_statebits=10, name="ACME Corp", metadata={"plan": "gold"})

    assert isinstance(tenant, Tenant)
    assert tenant.tenant_id == "acme"
    assert tenant.max_statebits == 10
    assert tenant.name == "ACME Corp"
    assert tenant.metadata == {"plan": "gold"}
    assert tenant.created_at.tzinfo is not None
    assert manager.get_tenant("acme") is tenant
    assert manager.list_tenants() == [tenant]
    with pytest.raises(TypeError):
        tenant.metadata["plan"] = "free"


def test_create_tenant_duplicate_raises(manager):
    with pytest.raises(ValidationError, match="tenant 'acme' already exists"):
        manager.create_tenant("acme")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tenant_id": ""}, "invalid `tenant_id`"),
        ({"tenant_id": 5}, "invalid `tenant_id`"),
        ({"tenant_id": "t", "max_statebits": 0}, "invalid `max_statebits`"),
        ({"tenant_id": "t", "max_statebits": -2}, "invalid `max_statebits`"),
        ({"tenant_id": "t", "max_statebits": 2.5}, "invalid `max_statebits`"),
        ({"tenant_id": "t", "max_statebits": True}, "invalid `max_statebits`"),
        ({"tenant_id": "t", "metadata": ["plan"]}, "invalid `metadata`"),
        ({"tenant_id": "t", "name": ""}, "invalid `name`"),
    ],
)
def test_create_tenant_invalid_arguments(arguments, message):
    with pytest.raises(ValidationError, match=message):
        TenantManager().create_tenant(**arguments)


def test_unknown_tenant_raises(manager):
    with pytest.raises(ValidationError, match="unknown tenant 'initech'.*known tenants: 'acme', 'globex'"):
        manager.tenant_context("initech")
    with pytest.raises(ValidationError, match="unknown tenant 'initech'"):
        manager.get_statebits("initech")
    with pytest.raises(ValidationError, match="unknown tenant 'initech'"):
        manager.get_tenant("initech")
    with pytest.raises(ValidationError, match="unknown tenant 'initech'"):
        manager.delete_tenant("initech")


def test_context_registers_new_statebits(manager):
    outside_before = Statebit("outside", 0)
    with manager.tenant_context("acme") as tenant:
        first = Statebit("revenue", 1)
        second = Statebit("costs", 2)
        assert manager.current_tenant() is tenant
        assert manager.get_statebits() == [first, second]
    outside_after = Statebit("outside", 0)

    assert manager.get_statebits("acme") == [first, second]
    assert manager.statebit_count("acme") == 2
    assert manager.tenant_of(first) == "acme"
    assert manager.tenant_of(outside_before) is None
    assert manager.tenant_of(outside_after) is None
    assert manager.current_tenant() is None


def test_tenants_are_isolated(manager):
    with manager.tenant_context("acme"):
        acme_revenue = Statebit("revenue", 100)
    with manager.tenant_context("globex"):
        globex_revenue = Statebit("revenue", 5)

    assert manager.get_statebits("acme") == [acme_revenue]
    assert manager.get_statebits("globex") == [globex_revenue]
    assert manager.get_statebits("acme", identity="revenue") == [acme_revenue]
    assert manager.tenant_of(globex_revenue) == "globex"


def test_other_tenant_denied_inside_context(manager):
    with manager.tenant_context("acme"):
        with pytest.raises(PermissionDenied, match="tenant 'acme' cannot access tenant 'globex'"):
            manager.get_statebits("globex")
        with pytest.raises(PermissionDenied):
            manager.statebit_count("globex")


def test_get_statebits_needs_tenant_outside_context(manager):
    with pytest.raises(ValidationError, match="needs a tenant_id"):
        manager.get_statebits()


def test_limit_rejects_construction(manager):
    with manager.tenant_context("acme"):
        kept = [Statebit(f"sb{number}", number) for number in range(3)]
        with pytest.raises(TenantLimitError, match="tenant 'acme' already has 3 of its max_statebits=3 statebits") as caught:
            Statebit("one_too_many", 0)

    assert "'one_too_many'" in str(caught.value)
    assert manager.statebit_count("acme") == 3
    assert manager.get_statebits("acme") == kept


def test_remove_statebit_frees_place(manager):
    with manager.tenant_context("acme"):
        kept = [Statebit(f"sb{number}", number) for number in range(3)]
    manager.remove_statebit("acme", kept[0])
    with manager.tenant_context("acme"):
        added = Statebit("replacement", 0)

    assert manager.get_statebits("acme") == [kept[1], kept[2], added]
    assert manager.tenant_of(kept[0]) is None
    with pytest.raises(ValidationError, match="statebit 'sb0' not found in tenant 'acme'"):
        manager.remove_statebit("acme", kept[0])


def test_set_max_statebits(manager):
    with manager.tenant_context("acme"):
        for number in range(3):
            Statebit(f"sb{number}", number)
    manager.set_max_statebits("acme", 4)
    with manager.tenant_context("acme"):
        Statebit("fourth", 4)
        with pytest.raises(TenantLimitError):
            Statebit("fifth", 5)
    manager.set_max_statebits("acme", None)
    with manager.tenant_context("acme"):
        Statebit("fifth", 5)

    assert manager.statebit_count("acme") == 5
    assert manager.get_tenant("acme").max_statebits is None
    with pytest.raises(ValidationError, match="invalid `max_statebits`"):
        manager.set_max_statebits("acme", 0)


def test_nested_contexts_restore_outer(manager):
    with manager.tenant_context("acme"):
        outer_first = Statebit("a", 1)
        with manager.tenant_context("globex"):
            inner = Statebit("b", 2)
        outer_second = Statebit("c", 3)

    assert manager.get_statebits("acme") == [outer_first, outer_second]
    assert manager.get_statebits("globex") == [inner]


def test_two_managers_both_register():
    first = TenantManager()
    second = TenantManager()
    first.create_tenant("acme")
    second.create_tenant("billing")
    with first.tenant_context("acme"), second.tenant_context("billing"):
        sb = Statebit("invoice", 1)

    assert first.get_statebits("acme") == [sb]
    assert second.get_statebits("billing") == [sb]


def test_second_manager_limit_rolls_back_first():
    first = TenantManager()
    second = TenantManager()
    first.create_tenant("acme")
    second.create_tenant("billing", max_statebits=1)
    with first.tenant_context("acme"), second.tenant_context("billing"):
        Statebit("invoice", 1)
        with pytest.raises(TenantLimitError):
            Statebit("second_invoice", 2)

    assert first.statebit_count("acme") == 1
    assert second.statebit_count("billing") == 1


def test_fork_inside_context_registered(manager):
    with manager.tenant_context("acme"):
        parent = Statebit("plan", 1)
        child = parent.fork("What-if")

    assert manager.get_statebits("acme") == [parent, child]


def test_delete_tenant(manager):
    with manager.tenant_context("acme"):
        sb = Statebit("revenue", 1)
        with pytest.raises(ValidationError, match="active in this context"):
            manager.delete_tenant("acme")
    manager.delete_tenant("acme")

    assert manager.tenant_of(sb) is None
    assert [tenant.tenant_id for tenant in manager.list_tenants()] == ["globex"]
    with pytest.raises(ValidationError, match="unknown tenant 'acme'"):
        manager.get_statebits("acme")


def test_deleted_tenant_rejects_leaked_context(manager):
    with manager.tenant_context("globex"):
        context = contextvars.copy_context()
    manager.delete_tenant("globex")

    with pytest.raises(ValidationError, match="tenant 'globex' was deleted"):
        context.run(Statebit, "late", 0)


def test_threads_do_not_inherit_context(manager):
    created = {}

    def create():
        created["sb"] = Statebit("from_thread", 0)

    with manager.tenant_context("acme"):
        worker = threading.Thread(target=create)
        worker.start()
        worker.join()

    assert manager.tenant_of(created["sb"]) is None
    assert manager.statebit_count("acme") == 0


def test_threads_each_in_own_tenant():
    manager = TenantManager()
    tenant_ids = [f"tenant{number}" for number in range(4)]
    for tenant_id in tenant_ids:
        manager.create_tenant(tenant_id)
    barrier = threading.Barrier(len(tenant_ids))

    def work(tenant_id):
        with manager.tenant_context(tenant_id):
            made = []
            for number in range(50):
                if number == 10:
                    barrier.wait()  # every thread is inside its context at once
                made.append(Statebit(f"item{number}", number))
            return tenant_id, made

    with ThreadPoolExecutor(max_workers=len(tenant_ids)) as pool:
        results = list(pool.map(work, tenant_ids))

    for tenant_id, made in results:
        assert manager.get_statebits(tenant_id) == made
        assert all(manager.tenant_of(sb) == tenant_id for sb in made)


def test_limit_is_exact_under_threads():
    manager = TenantManager()
    manager.create_tenant("acme", max_statebits=25)
    barrier = threading.Barrier(8)
    rejected = []

    def work(worker_number):
        with manager.tenant_context("acme"):
            barrier.wait()
            for number in range(10):
                try:
                    Statebit(f"w{worker_number}-{number}", number)
                except TenantLimitError:
                    rejected.append((worker_number, number))

    threads = [threading.Thread(target=work, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert manager.statebit_count("acme") == 25
    assert len(rejected) == 80 - 25


def test_asyncio_tasks_isolated(manager):
    async def create_in(tenant_id, identity):
        with manager.tenant_context(tenant_id):
            await asyncio.sleep(0)  # let the other task enter its own context
            first = Statebit(identity, 1)
            await asyncio.sleep(0)
            second = Statebit(identity + "_2", 2)
            return first, second

    async def main():
        return await asyncio.gather(create_in("acme", "a"), create_in("globex", "g"))

    (acme_first, acme_second), (globex_first, globex_second) = asyncio.run(main())

    assert manager.get_statebits("acme") == [acme_first, acme_second]
    assert manager.get_statebits("globex") == [globex_first, globex_second]


def test_task_created_in_context_inherits(manager):
    async def main():
        with manager.tenant_context("acme"):
            task = asyncio.create_task(make())
        # The task copied the context when created, so it still creates for acme.
        return await task

    async def make():
        await asyncio.sleep(0)
        return Statebit("from_task", 0)

    sb = asyncio.run(main())

    assert manager.tenant_of(sb) == "acme"


def test_repr_and_tenant_of_invalid(manager):
    assert repr(manager) == "TenantManager(tenants=2)"
    with pytest.raises(ValidationError, match="invalid `sb`"):
        manager.tenant_of("revenue")
