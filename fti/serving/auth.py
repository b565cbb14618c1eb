"""API keys: created once (shown once), stored as SHA-256 hashes, checked as ``Bearer`` tokens.

Keys come from two places: the ``FTI_API_KEYS`` setting (comma-separated, for simple setups) and
the catalog (``fti keys create|list|revoke``). Auth is on when the setting has a key or the
catalog has ever had one (revoking the last key does not turn auth off). Keys
are 32 random bytes, so a plain SHA-256 is enough (no password-style stretching is needed) and
comparison is by hash lookup, which does not leak timing about the key.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from typing import TYPE_CHECKING

from fti._names import check_name
from fti.errors import AlreadyExistsError, AuthenticationError, NotFoundError
from fti.serving import records
from fti.serving.records import ApiKey

if TYPE_CHECKING:
    from fti.project import Project

__all__ = ["ApiKey", "KeyChecker", "create_key", "hash_key", "list_keys", "revoke_key"]

_PREFIX = "fti_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(project: Project, name: str) -> str:
    """Create a key named ``name`` and return it; it cannot be shown again.

    Raises:
        AlreadyExistsError: a key with this name exists (revoked keys keep their name).
    """
    check_name(name, "api key")
    key = _PREFIX + secrets.token_urlsafe(32)
    if not records.insert_key(project.backends.catalog, project.id, name, key[:10], hash_key(key)):
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
        self._stored: set[str] = set()
        self._any_stored = False
        self._loaded_at = 0.0
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        stored = records.key_hashes(self._project.backends.catalog, self._project.id)
        with self._lock:
            self._stored = {digest for digest, active in stored.items() if active}
            self._any_stored = bool(stored)
            self._loaded_at = time.monotonic()

    @property
    def enabled(self) -> bool:
        """Auth is on once any key exists (revoking every key does not open the server)."""
        return bool(self._static or self._any_stored)

    def needs_refresh(self, *, miss: bool = False) -> bool:
        age = time.monotonic() - self._loaded_at
        return age > (1.0 if miss else self._refresh_s)

    def check(self, authorization: str | None) -> None:
        """Raise AuthenticationError unless auth is off or the header carries a valid key.

        Call :meth:`refresh` (in a thread) first when :meth:`needs_refresh` says so.
        """
        if not self.enabled:
            return
        if not authorization:
            raise AuthenticationError("missing API key: send the header 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("malformed Authorization header: use 'Authorization: Bearer <key>'")
        digest = hash_key(token.strip())
        if digest not in self._static and digest not in self._stored:
            raise AuthenticationError("invalid or revoked API key")

    def is_valid(self, authorization: str | None) -> bool:
        try:
            self.check(authorization)
        except AuthenticationError:
            return False
        return True
