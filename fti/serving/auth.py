"""API keys and roles: created once (shown once), stored as SHA-256 hashes, checked as ``Bearer`` tokens.

Keys come from two places: the ``FTI_API_KEYS`` setting (comma-separated, for simple setups;
these act as ``admin``) and the catalog (``fti keys create NAME --role reader|writer|admin``).
Auth is on when the setting has a key or the catalog has ever had one (revoking the last key does
not turn auth off). Keys are 32 random bytes, so a plain SHA-256 is enough (no password-style
stretching is needed) and comparison is by hash lookup, which does not leak timing about the key.

Roles are per project (a key belongs to one project) and ordered: a **reader** browses and
predicts; a **writer** also runs pipelines, moves aliases and deploys; an **admin** also manages
keys and loads or unloads models on a running server. A valid key whose role is too low gets
:class:`~fti.errors.PermissionDeniedError` (HTTP 403), the same in the UI and over HTTP.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fti._names import check_name
from fti.errors import (
    AlreadyExistsError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from fti.serving import records
from fti.serving.records import ApiKey, StoredKey

if TYPE_CHECKING:
    from fti.project import Project

__all__ = [
    "OPEN",
    "ROLES",
    "ApiKey",
    "KeyChecker",
    "Principal",
    "check_role",
    "create_key",
    "hash_key",
    "list_keys",
    "revoke_key",
]

_PREFIX = "fti_"
ROLES = ("reader", "writer", "admin")
"""Roles from least to most privileged; each role may do everything the ones before it may."""
STATIC_KEY_NAME = "FTI_API_KEYS"


def check_role(role: object) -> str:
    """Return ``role`` if it is one of :data:`ROLES`; else ValidationError."""
    if role not in ROLES:
        raise ValidationError(f"invalid role {role!r}: use one of {', '.join(ROLES)}")
    return str(role)


@dataclass(frozen=True)
class Principal:
    """Who is asking: the key's name and role (``authenticated`` is False when auth is off)."""

    name: str
    role: str
    authenticated: bool = True

    def allows(self, role: str) -> bool:
        """Whether this principal's role is ``role`` or a more privileged one."""
        return ROLES.index(self.role) >= ROLES.index(check_role(role))

    def require(self, role: str, action: str) -> None:
        """Raise PermissionDeniedError unless :meth:`allows` ``role``.

        Args:
            role: The least role the action needs.
            action: What was attempted, for the message (``"running a pipeline"``).
        """
        if not self.allows(role):
            raise PermissionDeniedError(
                f"{action} needs the {role} role; the API key {self.name!r} has the role {self.role!r} "
                f"(ask an admin for a {role} key: fti keys create NAME --role {role})"
            )


OPEN = Principal("anonymous", "admin", authenticated=False)
"""The principal of every request while auth is off (no key configured): everything is allowed."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(project: Project, name: str, role: str = "admin") -> str:
    """Create a key named ``name`` with ``role`` and return it; it cannot be shown again.

    Args:
        project: The project the key gives access to.
        name: 1-63 lowercase letters, digits or ``_``.
        role: ``reader``, ``writer`` or ``admin`` (see :data:`ROLES`).

    Raises:
        ValidationError: a bad name or role.
        AlreadyExistsError: a key with this name exists (revoked keys keep their name).
    """
    check_name(name, "api key")
    check_role(role)
    key = _PREFIX + secrets.token_urlsafe(32)
    if not records.insert_key(project.backends.catalog, project.id, name, key[:10], hash_key(key), role):
        raise AlreadyExistsError(
            f"an API key named {name!r} already exists in project {project.name!r}; pick another name"
        )
    return key


def list_keys(project: Project) -> list[ApiKey]:
    """Every key of the project (active and revoked), by name."""
    return records.list_keys(project.backends.catalog, project.id)


def revoke_key(project: Project, name: str) -> None:
    """Revoke the key ``name``; servers refuse it within their refresh interval (a few seconds)."""
    check_name(name, "api key")
    if not records.revoke_key(project.backends.catalog, project.id, name):
        known = [k.name for k in list_keys(project) if k.active]
        raise NotFoundError(f"no active API key named {name!r} (active keys: {known or 'none'})")


class KeyChecker:
    """Check ``Authorization`` headers against the setting's and the catalog's keys.

    The catalog's hashes are cached and refreshed every ``refresh_s`` seconds, and at most once
    a second on an unknown key, so a new key works at once and a revoked one stops quickly.
    """

    def __init__(self, project: Project, *, refresh_s: float = 5.0) -> None:
        self._project = project
        raw = project.settings.api_keys or ""
        self._static = {hash_key(k.strip()) for k in raw.split(",") if k.strip()}
        self._stored: dict[str, StoredKey] = {}
        self._any_stored = False
        self._loaded_at = 0.0
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        stored = records.key_hashes(self._project.backends.catalog, self._project.id)
        with self._lock:
            self._stored = {digest: key for digest, key in stored.items() if key.active}
            self._any_stored = bool(stored)
            self._loaded_at = time.monotonic()

    @property
    def enabled(self) -> bool:
        """Auth is on once any key exists (revoking every key does not open the server)."""
        return bool(self._static or self._any_stored)

    def needs_refresh(self, *, miss: bool = False) -> bool:
        age = time.monotonic() - self._loaded_at
        return age > (1.0 if miss else self._refresh_s)

    def principal(self, digest: str) -> Principal | None:
        """The principal of the active key whose SHA-256 is ``digest`` (None: unknown or revoked).

        With auth off every digest is :data:`OPEN`. Used by UI sessions, which keep the digest.
        """
        if not self.enabled:
            return OPEN
        if digest in self._static:
            return Principal(STATIC_KEY_NAME, "admin")
        stored = self._stored.get(digest)
        return None if stored is None else Principal(stored.name, stored.role)

    def identify(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization`` header (:data:`OPEN` while auth is off).

        Call :meth:`refresh` (in a thread) first when :meth:`needs_refresh` says so.

        Raises:
            AuthenticationError: auth is on and the header is missing, malformed or has an
                unknown or revoked key.
        """
        if not self.enabled:
            return OPEN
        if not authorization:
            raise AuthenticationError("missing API key: send the header 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("malformed Authorization header: use 'Authorization: Bearer <key>'")
        found = self.principal(hash_key(token.strip()))
        if found is None:
            raise AuthenticationError("invalid or revoked API key")
        return found

    def check(self, authorization: str | None) -> None:
        """Raise AuthenticationError unless auth is off or the header carries a valid key."""
        self.identify(authorization)

    def is_valid(self, authorization: str | None) -> bool:
        try:
            self.check(authorization)
        except AuthenticationError:
            return False
        return True
