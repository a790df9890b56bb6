"""Role-based access control (RBAC) for statebits.

Users get permissions from their roles, which apply to every protected
statebit, and per statebit from ownership and explicit grants. The checks
protect against mistakes by cooperating code in one process, not against
hostile code: a caller with a reference to the Statebit object itself can
still call its methods directly. Hand out
:class:`GuardedStatebit` proxies from :meth:`AccessControl.guard` to have
every call checked.
"""

from __future__ import annotations

import enum
import functools
import inspect
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from statebits.core.errors import PermissionDenied, ValidationError, invalid_parameter
from statebits.core.statebit import Statebit

__all__ = ["AccessControl", "Permission", "User", "GuardedStatebit", "BUILTIN_ROLES"]


class Permission(enum.Enum):
    """A right to act on a statebit; ADMIN implies every other permission."""

    #: Read the value, history, queries, explanations and exports; fork.
    READ = "read"
    #: Record changes: ``transition``, ``batch_transition``, ``rollback``.
    WRITE = "write"
    #: Merge another statebit into this one.
    MERGE = "merge"
    #: Freeze, manage observers and sinks, and grant or revoke permissions.
    ADMIN = "admin"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, permission: Any) -> "Permission":
        """Return the Permission for a member or its name in any case, such as ``"write"``."""
        if isinstance(permission, cls):
            return permission
        if isinstance(permission, str):
            found = cls.__members__.get(permission.upper())
            if found is not None:
                return found
        allowed = ", ".join(member.name for member in cls)
        raise invalid_parameter("permission", permission, f"a Permission or one of {allowed}", "Permission")


_ALL = frozenset(Permission)

#: The roles every AccessControl starts with.
BUILTIN_ROLES: Mapping[str, frozenset[Permission]] = MappingProxyType(
    {
        "admin": _ALL,
        "editor": frozenset({Permission.READ, Permission.WRITE, Permission.MERGE}),
        "writer": frozenset({Permission.READ, Permission.WRITE}),
        "analyst": frozenset({Permission.READ}),
    }
)


@dataclass(frozen=True)
class User:
    """A user known to an :class:`AccessControl`.

    Attributes
    ----------
    name : str
    roles : tuple of str
        Role names in the order they were assigned.
    """

    name: str
    roles: tuple[str, ...]


@dataclass
class _Protection:
    owner: str
    grants: dict[str, set[Permission]]


class AccessControl:
    """Users, roles and per-statebit permissions.

    A user's permissions on a protected statebit are the union of

    - the permissions of the user's roles, on every protected statebit;
    - every permission, when the user owns the statebit;
    - the permissions granted on that statebit with :meth:`grant`.

    ADMIN implies all the others. Statebits must be protected with
    :meth:`protect_statebit` before they can be checked, so an unprotected
    statebit is never mistaken for a guarded one.

    Built-in roles:

    ========  ===========================
    role      permissions
    ========  ===========================
    admin     READ, WRITE, MERGE, ADMIN
    editor    READ, WRITE, MERGE
    writer    READ, WRITE
    analyst   READ
    ========  ===========================

    Examples
    --------
    >>> from statebits import AccessControl, Permission, Statebit
    >>> ac = AccessControl()
    >>> _ = ac.create_user("alice", roles=["admin"])
    >>> _ = ac.create_user("bob", roles=["analyst"])
    >>> sb = Statebit(identity="protected", initial_value=100)
    >>> ac.protect_statebit(sb, owner="alice")
    >>> ac.check_permission("bob", sb, Permission.WRITE)
    False
    >>> ac.grant("bob", sb, Permission.WRITE)
    >>> ac.check_permission("bob", sb, "write")
    True
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._roles: dict[str, frozenset[Permission]] = dict(BUILTIN_ROLES)
        self._users: dict[str, User] = {}
        # Keyed by the statebit object, since identities may repeat; weak so
        # protecting a statebit does not keep it alive.
        self._protected: weakref.WeakKeyDictionary[Statebit, _Protection] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"AccessControl(users={len(self._users)}, roles={len(self._roles)})"

    # -- roles ---------------------------------------------------------------------

    def define_role(self, name: str, permissions: Iterable[Permission | str]) -> frozenset[Permission]:
        """Define a custom role and return its permissions.

        Parameters
        ----------
        name : str
            A new role name; built-in and existing roles cannot be redefined.
        permissions : iterable of Permission or str
            Such as ``[Permission.READ, "merge"]``. May be empty.

        Raises
        ------
        ValidationError
            For an invalid name or permission, or a name already in use.
        """
        if not isinstance(name, str) or not name.strip():
            raise invalid_parameter("name", name, "a non-empty role name", "define_role")
        if isinstance(permissions, (str, Permission)) or not isinstance(permissions, Iterable):
            raise invalid_parameter("permissions", permissions, "a list of Permission members or names", "define_role")
        parsed = frozenset(Permission.parse(item) for item in permissions)
        with self._lock:
            if name in BUILTIN_ROLES:
                raise ValidationError(f"role {name!r} is built in and cannot be redefined; choose another name")
            if name in self._roles:
                raise ValidationError(f"role {name!r} already exists; choose another name")
            self._roles[name] = parsed
        return parsed

    def roles(self) -> Mapping[str, frozenset[Permission]]:
        """Return every role name with its permissions (a read-only snapshot)."""
        with self._lock:
            return MappingProxyType(dict(self._roles))

    def _check_role(self, role: Any) -> str:
        if not isinstance(role, str) or role not in self._roles:
            known = ", ".join(sorted(self._roles))
            raise ValidationError(f"unknown role {role!r}: define it with define_role() first; known roles: {known}")
        return role

    # -- users ---------------------------------------------------------------------

    def create_user(self, name: str, roles: Iterable[str] = ()) -> User:
        """Create a user with the given roles.

        Raises
        ------
        ValidationError
            For an invalid or existing name, or an unknown role.
        """
        if not isinstance(name, str) or not name.strip():
            raise invalid_parameter("name", name, "a non-empty user name", "create_user")
        if isinstance(roles, str) or not isinstance(roles, Iterable):
            raise invalid_parameter("roles", roles, "a list of role names such as ['analyst']", "create_user")
        with self._lock:
            checked = tuple(dict.fromkeys(self._check_role(role) for role in roles))
            if name in self._users:
                raise ValidationError(f"user {name!r} already exists; use assign_role() to change its roles")
            user = User(name, checked)
            self._users[name] = user
        return user

    def get_user(self, name: str) -> User:
        """Return the user called ``name``; raises ValidationError when it does not exist."""
        with self._lock:
            return self._user(name)

    def list_users(self) -> list[User]:
        """Return every user, in creation order."""
        with self._lock:
            return list(self._users.values())

    def assign_role(self, name: str, role: str) -> User:
        """Add ``role`` to a user and return the updated user; assigning a held role changes nothing."""
        with self._lock:
            user = self._user(name)
            self._check_role(role)
            if role not in user.roles:
                user = User(name, user.roles + (role,))
                self._users[name] = user
            return user

    def remove_role(self, name: str, role: str) -> User:
        """Remove ``role`` from a user and return the updated user.

        Raises ValidationError when the user does not hold the role.
        """
        with self._lock:
            user = self._user(name)
            if role not in user.roles:
                raise ValidationError(f"user {name!r} does not hold role {role!r}; its roles are {list(user.roles)}")
            user = User(name, tuple(item for item in user.roles if item != role))
            self._users[name] = user
            return user

    def delete_user(self, name: str) -> None:
        """Delete a user and every permission granted to it.

        Raises ValidationError while the user owns a protected statebit;
        transfer it first with :meth:`transfer_ownership`.
        """
        with self._lock:
            self._user(name)
            owned = [sb.identity for sb, protection in self._protected.items() if protection.owner == name]
            if owned:
                raise ValidationError(f"user {name!r} owns statebits {owned}; transfer them with transfer_ownership() first")
            for protection in self._protected.values():
                protection.grants.pop(name, None)
            del self._users[name]

    def _user(self, name: Any) -> User:
        user = self._users.get(name) if isinstance(name, str) else None
        if user is None:
            known = ", ".join(repr(item) for item in self._users) or "none"
            raise ValidationError(f"unknown user {name!r}: create it with create_user() first; known users: {known}")
        return user

    # -- statebits -------------------------------------------------------------------

    def protect_statebit(self, sb: Statebit, owner: str) -> None:
        """Put ``sb`` under access control, owned by ``owner``, who has every permission on it.

        Raises
        ------
        ValidationError
            For an unknown owner, an object that is not a Statebit, or a
            statebit that is already protected.
        """
        _check_statebit(sb, "protect_statebit")
        with self._lock:
            self._user(owner)
            existing = self._protected.get(sb)
            if existing is not None:
                raise ValidationError(
                    f"statebit {sb.identity!r} is already protected, owned by {existing.owner!r}; "
                    "use transfer_ownership() to change the owner"
                )
            self._protected[sb] = _Protection(owner=owner, grants={})

    def is_protected(self, sb: Statebit) -> bool:
        """Return True when ``sb`` is under this access control."""
        _check_statebit(sb, "is_protected")
        with self._lock:
            return sb in self._protected

    def owner_of(self, sb: Statebit) -> str:
        """Return the owner of a protected statebit."""
        with self._lock:
            return self._protection(sb).owner

    def transfer_ownership(self, sb: Statebit, new_owner: str) -> None:
        """Make ``new_owner`` the owner of a protected statebit."""
        with self._lock:
            protection = self._protection(sb)
            self._user(new_owner)
            protection.owner = new_owner

    def grant(self, user: str, sb: Statebit, permission: Permission | str) -> None:
        """Give ``user`` a permission on one protected statebit."""
        parsed = Permission.parse(permission)
        with self._lock:
            self._user(user)
            self._protection(sb).grants.setdefault(user, set()).add(parsed)

    def revoke(self, user: str, sb: Statebit, permission: Permission | str) -> None:
        """Take back a permission given with :meth:`grant`.

        Permissions that come from roles or ownership are not affected.
        Raises ValidationError when the permission was not granted.
        """
        parsed = Permission.parse(permission)
        with self._lock:
            self._user(user)
            granted = self._protection(sb).grants.get(user, set())
            if parsed not in granted:
                raise ValidationError(
                    f"user {user!r} was not granted {parsed.name} on statebit {sb.identity!r}; "
                    "permissions from roles are changed with remove_role()"
                )
            granted.discard(parsed)

    def _protection(self, sb: Any) -> _Protection:
        _check_statebit(sb, "AccessControl")
        protection = self._protected.get(sb)
        if protection is None:
            raise ValidationError(f"statebit {sb.identity!r} is not protected; call protect_statebit(sb, owner=...) first")
        return protection

    # -- checks ------------------------------------------------------------------------

    def permissions(self, user: str, sb: Statebit) -> frozenset[Permission]:
        """Return every permission ``user`` has on the protected statebit ``sb``."""
        with self._lock:
            account = self._user(user)
            protection = self._protection(sb)
            if protection.owner == user:
                return _ALL
            found: set[Permission] = set(protection.grants.get(user, ()))
            for role in account.roles:
                found |= self._roles[role]
        if Permission.ADMIN in found:
            return _ALL
        return frozenset(found)

    def check_permission(self, user: str, sb: Statebit, permission: Permission | str) -> bool:
        """Return True when ``user`` has ``permission`` on the protected statebit ``sb``.

        Raises
        ------
        ValidationError
            For an unknown user or permission, or an unprotected statebit.
        """
        parsed = Permission.parse(permission)
        return parsed in self.permissions(user, sb)

    def require(self, user: str, sb: Statebit, permission: Permission | str) -> None:
        """Raise :class:`PermissionDenied` unless ``user`` has ``permission`` on ``sb``."""
        parsed = Permission.parse(permission)
        if parsed in self.permissions(user, sb):
            return
        owner = self.owner_of(sb)
        raise PermissionDenied(
            f"user {user!r} lacks {parsed.name} permission on statebit {sb.identity!r}; "
            f"its owner {owner!r} or an admin can grant it"
        )

    def guard(self, sb: Statebit, user: str) -> "GuardedStatebit":
        """Return a proxy of ``sb`` that checks ``user``'s permission on every access.

        Raises ValidationError for an unknown user or an unprotected statebit.
        """
        with self._lock:
            self._user(user)
            self._protection(sb)
        return GuardedStatebit(self, sb, user)


#: The permission each public Statebit attribute needs through a guard.
#: Attributes missing here need ADMIN.
_REQUIRED: Mapping[str, Permission] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                "identity", "key", "branch", "value", "initial_value", "created_at", "history", "frozen",
                "lineage", "parent", "fork_point", "fork_reason",
                "query", "get_transitions_by_tag", "get_transitions_by_confidence", "get_transitions_in_range",
                "value_at", "as_recorded", "transition_at", "verify_integrity", "integrity_report",
                "explain", "merge_preview", "fork",
                "to_dict", "to_json", "to_pandas", "to_polars", "to_arrow",
            ),
            Permission.READ,
        ),
        **dict.fromkeys(("transition", "batch_transition", "rollback"), Permission.WRITE),
        "merge": Permission.MERGE,
    }
)


_MISSING = object()


class GuardedStatebit:
    """A view of a protected statebit that acts as one user.

    Reading an attribute checks the permission it needs. The attributes
    listed under :class:`Permission` need READ, WRITE or MERGE, and every
    other existing attribute, private ones included, needs ADMIN. Methods
    are checked again when called, so a revoked permission takes effect at
    once. Denied access raises :class:`PermissionDenied`. A name the
    statebit does not have raises AttributeError as usual.

    Examples
    --------
    >>> from statebits import AccessControl, Statebit
    >>> ac = AccessControl()
    >>> _ = ac.create_user("alice", roles=["admin"])
    >>> _ = ac.create_user("bob", roles=["analyst"])
    >>> sb = Statebit(identity="limits", initial_value=10)
    >>> ac.protect_statebit(sb, owner="alice")
    >>> as_bob = ac.guard(sb, "bob")
    >>> as_bob.value
    10
    >>> as_bob.transition(20, "Raise the limit")
    Traceback (most recent call last):
    ...
    statebits.core.errors.PermissionDenied: user 'bob' lacks WRITE permission on statebit 'limits'; its owner 'alice' or an admin can grant it
    """

    __slots__ = ("_access", "_statebit", "_user")

    def __init__(self, access: AccessControl, sb: Statebit, user: str) -> None:
        object.__setattr__(self, "_access", access)
        object.__setattr__(self, "_statebit", sb)
        object.__setattr__(self, "_user", user)

    @property
    def user(self) -> str:
        """Name of the user this view acts as."""
        return self._user

    def __getattr__(self, name: str) -> Any:
        # Missing names raise AttributeError before any check, so probes such
        # as getattr(guarded, "_repr_html_", None) by Jupyter keep working.
        if inspect.getattr_static(self._statebit, name, _MISSING) is _MISSING:
            raise AttributeError(f"{type(self._statebit).__name__!r} object has no attribute {name!r}")
        permission = _REQUIRED.get(name, Permission.ADMIN)
        self._access.require(self._user, self._statebit, permission)
        found = getattr(self._statebit, name)
        if not callable(found):
            return found

        @functools.wraps(found)
        def checked(*args: Any, **kwargs: Any) -> Any:
            self._access.require(self._user, self._statebit, permission)
            return found(*args, **kwargs)

        return checked

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"GuardedStatebit is read-only; cannot set {name!r}")

    def __len__(self) -> int:
        self._access.require(self._user, self._statebit, Permission.READ)
        return len(self._statebit)

    def __repr__(self) -> str:
        return f"GuardedStatebit(identity={self._statebit.identity!r}, user={self._user!r})"


def _check_statebit(sb: Any, owner: str) -> None:
    if not isinstance(sb, Statebit):
        raise invalid_parameter("sb", sb, "a Statebit", owner)
