"""AccessControl: roles, ownership, grants, checks and guarded statebits."""

from __future__ import annotations

import gc
import weakref

import pytest

from statebits import PermissionDenied, Statebit, ValidationError
from statebits.enterprise import AccessControl, GuardedStatebit, Permission, User


@pytest.fixture
def ac():
    ac = AccessControl()
    ac.create_user("alice", roles=["admin"])
    ac.create_user("bob", roles=["analyst"])
    ac.create_user("carol", roles=["writer"])
    ac.create_user("dave", roles=["editor"])
    ac.create_user("erin")
    return ac


@pytest.fixture
def sb(ac):
    sb = Statebit(identity="protected", initial_value=100)
    ac.protect_statebit(sb, owner="erin")
    return sb


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("alice", {Permission.READ, Permission.WRITE, Permission.MERGE, Permission.ADMIN}),
        ("bob", {Permission.READ}),
        ("carol", {Permission.READ, Permission.WRITE}),
        ("dave", {Permission.READ, Permission.WRITE, Permission.MERGE}),
    ],
)
def test_builtin_role_permissions(ac, sb, user, expected):
    assert ac.permissions(user, sb) == expected
    for permission in Permission:
        assert ac.check_permission(user, sb, permission) == (permission in expected)


def test_owner_has_every_permission(ac, sb):
    assert ac.owner_of(sb) == "erin"
    assert ac.permissions("erin", sb) == frozenset(Permission)


def test_user_without_roles_has_none(ac, sb):
    other = Statebit("other", 0)
    ac.protect_statebit(other, owner="alice")

    assert ac.permissions("erin", other) == frozenset()


def test_grant_and_revoke(ac, sb):
    ac.grant("bob", sb, Permission.WRITE)
    assert ac.check_permission("bob", sb, Permission.WRITE)

    ac.revoke("bob", sb, "write")
    assert not ac.check_permission("bob", sb, Permission.WRITE)
    assert ac.check_permission("bob", sb, Permission.READ)


def test_grant_is_per_statebit(ac, sb):
    other = Statebit("other", 0)
    ac.protect_statebit(other, owner="erin")
    ac.grant("bob", sb, Permission.WRITE)

    assert ac.check_permission("bob", sb, Permission.WRITE)
    assert not ac.check_permission("bob", other, Permission.WRITE)


def test_granted_admin_implies_all(ac, sb):
    ac.grant("bob", sb, Permission.ADMIN)

    assert ac.permissions("bob", sb) == frozenset(Permission)


def test_revoke_not_granted_raises(ac, sb):
    with pytest.raises(ValidationError, match="user 'bob' was not granted READ on statebit 'protected'"):
        ac.revoke("bob", sb, Permission.READ)


def test_permission_parse():
    assert Permission.parse("read") is Permission.READ
    assert Permission.parse("MERGE") is Permission.MERGE
    assert Permission.parse(Permission.ADMIN) is Permission.ADMIN
    assert str(Permission.WRITE) == "WRITE"
    with pytest.raises(ValidationError, match="invalid `permission`.*READ, WRITE, MERGE, ADMIN.*'delete'"):
        Permission.parse("delete")


def test_require_denied_message(ac, sb):
    with pytest.raises(PermissionDenied) as caught:
        ac.require("bob", sb, Permission.WRITE)

    message = str(caught.value)
    assert "user 'bob'" in message
    assert "WRITE" in message
    assert "statebit 'protected'" in message
    assert "owner 'erin'" in message
    assert isinstance(caught.value, PermissionError)


def test_require_allowed_returns_none(ac, sb):
    assert ac.require("carol", sb, "write") is None


def test_unknown_user_raises(ac, sb):
    with pytest.raises(ValidationError, match="unknown user 'mallory'.*known users: 'alice'"):
        ac.check_permission("mallory", sb, Permission.READ)
    with pytest.raises(ValidationError, match="unknown user 'mallory'"):
        ac.require("mallory", sb, Permission.READ)
    with pytest.raises(ValidationError, match="unknown user 'mallory'"):
        ac.grant("mallory", sb, Permission.READ)
    with pytest.raises(ValidationError, match="unknown user 'mallory'"):
        ac.protect_statebit(Statebit("x", 0), owner="mallory")
    with pytest.raises(ValidationError, match="unknown user 'mallory'"):
        ac.guard(sb, "mallory")


def test_unknown_role_raises(ac):
    with pytest.raises(ValidationError, match="unknown role 'superuser'.*known roles: admin, analyst, editor, writer"):
        ac.create_user("frank", roles=["superuser"])
    with pytest.raises(ValidationError, match="unknown role 'superuser'"):
        ac.assign_role("bob", "superuser")

    assert [user.name for user in ac.list_users()] == ["alice", "bob", "carol", "dave", "erin"]


def test_create_user_invalid(ac):
    with pytest.raises(ValidationError, match="user 'alice' already exists"):
        ac.create_user("alice")
    with pytest.raises(ValidationError, match="invalid `name`"):
        ac.create_user("")
    with pytest.raises(ValidationError, match="invalid `roles`"):
        ac.create_user("frank", roles="admin")


def test_unprotected_statebit_raises(ac):
    loose = Statebit("loose", 0)

    with pytest.raises(ValidationError, match="statebit 'loose' is not protected"):
        ac.check_permission("alice", loose, Permission.READ)
    with pytest.raises(ValidationError, match="not protected"):
        ac.grant("bob", loose, Permission.READ)
    assert not ac.is_protected(loose)


def test_protect_twice_raises(ac, sb):
    with pytest.raises(ValidationError, match="already protected, owned by 'erin'"):
        ac.protect_statebit(sb, owner="alice")


def test_protect_non_statebit_raises(ac):
    with pytest.raises(ValidationError, match="invalid `sb`"):
        ac.protect_statebit("protected", owner="alice")


def test_define_custom_role(ac, sb):
    permissions = ac.define_role("merger", [Permission.READ, "merge"])
    ac.create_user("frank", roles=["merger"])

    assert permissions == {Permission.READ, Permission.MERGE}
    assert ac.roles()["merger"] == permissions
    assert ac.check_permission("frank", sb, Permission.MERGE)
    assert not ac.check_permission("frank", sb, Permission.WRITE)


@pytest.mark.parametrize("name", ["admin", "analyst"])
def test_redefine_builtin_role_raises(ac, name):
    with pytest.raises(ValidationError, match=f"role '{name}' is built in"):
        ac.define_role(name, [Permission.READ])


def test_define_role_invalid(ac):
    ac.define_role("auditor", ["read"])
    with pytest.raises(ValidationError, match="role 'auditor' already exists"):
        ac.define_role("auditor", ["read"])
    with pytest.raises(ValidationError, match="invalid `permissions`"):
        ac.define_role("reader", "read")
    with pytest.raises(ValidationError, match="invalid `permission`"):
        ac.define_role("reader", ["fly"])


def test_assign_and_remove_role(ac, sb):
    user = ac.assign_role("bob", "writer")
    assert user == User("bob", ("analyst", "writer"))
    assert ac.check_permission("bob", sb, Permission.WRITE)

    ac.remove_role("bob", "writer")
    assert not ac.check_permission("bob", sb, Permission.WRITE)
    with pytest.raises(ValidationError, match="user 'bob' does not hold role 'writer'"):
        ac.remove_role("bob", "writer")


def test_transfer_ownership(ac, sb):
    ac.transfer_ownership(sb, "bob")

    assert ac.owner_of(sb) == "bob"
    assert ac.check_permission("bob", sb, Permission.ADMIN)
    assert not ac.check_permission("erin", sb, Permission.READ)


def test_delete_user(ac, sb):
    ac.grant("bob", sb, Permission.WRITE)
    with pytest.raises(ValidationError, match="user 'erin' owns statebits \\['protected'\\]"):
        ac.delete_user("erin")
    ac.delete_user("bob")
    ac.create_user("bob", roles=["analyst"])

    assert not ac.check_permission("bob", sb, Permission.WRITE)


def test_protection_does_not_keep_statebit_alive(ac):
    sb = Statebit("temporary", 0)
    ac.protect_statebit(sb, owner="alice")
    reference = weakref.ref(sb)
    del sb
    gc.collect()

    assert reference() is None


def test_same_identity_protected_separately(ac):
    first = Statebit("shared_name", 0)
    second = Statebit("shared_name", 0)
    ac.protect_statebit(first, owner="alice")
    ac.protect_statebit(second, owner="erin")

    assert ac.owner_of(first) == "alice"
    assert ac.owner_of(second) == "erin"


# -- guard -----------------------------------------------------------------------------


def test_guard_reads_for_analyst(ac, sb):
    sb.transition(120, "Adjustment")
    as_bob = ac.guard(sb, "bob")

    assert isinstance(as_bob, GuardedStatebit)
    assert as_bob.user == "bob"
    assert as_bob.value == 120
    assert as_bob.identity == "protected"
    assert len(as_bob) == 1
    assert as_bob.history[-1].reason == "Adjustment"
    assert as_bob.verify_integrity()
    assert "Adjustment" in as_bob.explain()
    assert repr(as_bob) == "GuardedStatebit(identity='protected', user='bob')"


def test_guard_denies_write_for_analyst(ac, sb):
    as_bob = ac.guard(sb, "bob")

    with pytest.raises(PermissionDenied, match="user 'bob' lacks WRITE permission on statebit 'protected'"):
        as_bob.transition(1, "Not allowed")
    with pytest.raises(PermissionDenied, match="lacks WRITE"):
        as_bob.rollback()
    with pytest.raises(PermissionDenied, match="lacks ADMIN"):
        as_bob.freeze()
    with pytest.raises(PermissionDenied, match="lacks ADMIN"):
        as_bob._history
    assert len(sb.history) == 0


def test_guard_allows_write_for_writer(ac, sb):
    as_carol = ac.guard(sb, "carol")
    as_carol.transition(150, "Authorized update")
    as_carol.batch_transition([{"new_value": 160, "reason": "Batch one"}])

    assert sb.value == 160
    with pytest.raises(PermissionDenied, match="lacks MERGE"):
        as_carol.merge(sb.fork("What-if"))


def test_guard_checks_at_call_time(ac, sb):
    ac.grant("bob", sb, Permission.WRITE)
    as_bob = ac.guard(sb, "bob")
    transition = as_bob.transition
    ac.revoke("bob", sb, Permission.WRITE)

    with pytest.raises(PermissionDenied):
        transition(1, "Revoked meanwhile")
    assert len(sb.history) == 0


def test_guard_missing_attribute(ac, sb):
    as_bob = ac.guard(sb, "bob")

    assert getattr(as_bob, "_repr_html_", None) is None
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        as_bob.nonexistent


def test_guard_is_read_only(ac, sb):
    as_alice = ac.guard(sb, "alice")

    with pytest.raises(AttributeError, match="read-only"):
        as_alice.value = 5


def test_guard_unprotected_raises(ac):
    with pytest.raises(ValidationError, match="not protected"):
        ac.guard(Statebit("loose", 0), "alice")


def test_repr(ac):
    assert repr(ac) == "AccessControl(users=5, roles=4)"
