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
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update

from fti._names import check_name
from fti.errors import AlreadyExistsError, AuthenticationError, NotFoundError
from fti.storage.metadata.tables import api_keys
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.project import Project

_PREFIX = "fti_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A stored key's metadata (the key itself is never stored)."""

    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def create_key(project: Project, name: str) -> str:
    """Create a key named ``name`` and return it; it cannot be shown again.

    Raises:
        AlreadyExistsError: a key with this name exists (revoked keys keep their name).
    """
    check_name(name, "api key")
    key = _PREFIX + secrets.token_urlsafe(32)
    from sqlalchemy.exc import IntegrityError as SqlIntegrityError

    try:
        with project.backends.catalog.engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    project_id=project.id,
                    name=name,
                    prefix=key[:10],
                    key_hash=hash_key(key),
                    created_at=utcnow(),
                    revoked_at=None,
                )
            )
    except SqlIntegrityError:
        raise AlreadyExistsError(
            f"an API key named {name!r} already exists in project {project.name!r}; pick another name"
        ) from None
    return key


def list_keys(project: Project) -> list[ApiKey]:
    """Every key of the project (active and revoked), by name."""
    query = select(api_keys).where(api_keys.c.project_id == project.id).order_by(api_keys.c.name)
    with project.backends.catalog.engine.connect() as conn:
        return [
            ApiKey(r["name"], r["prefix"], r["created_at"], r["revoked_at"])
            for r in conn.execute(query).mappings()
        ]


def revoke_key(project: Project, name: str) -> None:
    """Revoke the key ``name``; servers refuse it within their refresh interval (a few seconds)."""
    check_name(name, "api key")
    with project.backends.catalog.engine.begin() as conn:
        result = conn.execute(
            update(api_keys)
            .where(
                api_keys.c.project_id == project.id, api_keys.c.name == name, api_keys.c.revoked_at.is_(None)
            )
            .values(revoked_at=utcnow())
        )
    if result.rowcount == 0:
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
        query = select(api_keys.c.key_hash, api_keys.c.revoked_at).where(
            api_keys.c.project_id == self._project.id
        )
        with self._project.backends.catalog.engine.connect() as conn:
            rows = conn.execute(query).all()
        with self._lock:
            self._stored = {digest for digest, revoked_at in rows if revoked_at is None}
            self._any_stored = bool(rows)
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
