"""Secrets of a project: set, get, list and delete named values kept encrypted in the catalog.

Get it as ``project.secrets``. Values are encrypted with the secret key (:mod:`fti.secrets.keys`)
before they reach the catalog and decrypted only by :meth:`Secrets.get`; listings show names and
who set them when, never values.

Inside a pipeline run the process holds only the secrets its pipeline declared
(``secrets=[...]`` on the decorator): the runner grants them with :func:`grant_run_secrets`, and
from then on every ``Secrets`` of the process answers from that grant, refuses any other name, and
neither reads the catalog nor changes it.
"""

from __future__ import annotations

import builtins
import getpass
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti._names import check_secret_name
from fti.errors import NotFoundError, PermissionDeniedError, ValidationError
from fti.secrets import records

if TYPE_CHECKING:
    from fti.project import Project
    from fti.secrets.keys import SecretKey

MAX_VALUE_BYTES = 64 * 1024

# The secrets granted to this process when it is a pipeline run (None otherwise).
_run_grant: dict[str, str] | None = None
_run_pipeline: str | None = None


def grant_run_secrets(pipeline: str, values: Mapping[str, str]) -> None:
    """Restrict this process to ``values``: called once by the pipeline runner before user code."""
    global _run_grant, _run_pipeline
    _run_grant = dict(values)
    _run_pipeline = pipeline


@dataclass(frozen=True)
class SecretInfo:
    """What a listing shows of a secret: never its value."""

    name: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
        }


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:255]


class Secrets:
    """The secrets of one project. Get it as ``project.secrets``."""

    def __init__(self, project: Project) -> None:
        self._project = project

    @property
    def _engine(self) -> Any:
        return self._project.backends.catalog.engine

    def _key(self, *, create: bool = False) -> SecretKey:
        from fti.secrets.keys import load_key

        return load_key(self._project.settings, create=create)

    def _refuse_change(self, action: str) -> None:
        if _run_grant is not None:
            raise PermissionDeniedError(
                f"pipeline {_run_pipeline!r} cannot {action} secrets: runs only read the secrets they "
                "declare; change secrets with `fti secrets set|delete`"
            )

    def set(self, name: str, value: str) -> SecretInfo:
        """Store ``value`` as secret ``name``, replacing an existing one.

        Args:
            name: 1-63 lowercase letters, digits, ``_``, ``-`` or ``.``.
            value: A password, a token, or a JSON object of connection fields (up to 64 KiB).

        Raises:
            ValidationError: bad name or an empty or too long value (the message never shows it).
            PermissionDeniedError: called inside a pipeline run.
        """
        from datetime import UTC, datetime

        self._refuse_change("set")
        check_secret_name(name)
        if not isinstance(value, str):
            raise ValidationError(f"secret {name!r}: the value must be a string, got {type(value).__name__}")
        if not value:
            raise ValidationError(f"secret {name!r}: the value is empty")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise ValidationError(f"secret {name!r}: the value is longer than {MAX_VALUE_BYTES} bytes")
        key = self._key(create=True)
        token = key.encrypt(value)
        records.put(self._engine, self._project.id, name, token, key.key_id, _who(), datetime.now(UTC))
        return self.info(name)

    def get(self, name: str) -> str:
        """The value of secret ``name``.

        Raises:
            NotFoundError: no such secret.
            PermissionDeniedError: inside a pipeline run that did not declare ``name``.
            BackendError: no secret key, or a different one than the secret was stored with.
            IntegrityError: the stored token was modified.
        """
        return self.get_many([name])[name]

    def get_many(self, names: Iterable[str]) -> dict[str, str]:
        """The values of several secrets (one catalog read), in the order given."""
        wanted = [check_secret_name(n) for n in names]
        if _run_grant is not None:
            missing = [n for n in wanted if n not in _run_grant]
            if missing:
                raise PermissionDeniedError(
                    f"pipeline {_run_pipeline!r} did not declare secret {', '.join(map(repr, missing))}: "
                    f"add it to secrets=[...] on the pipeline's decorator and deploy it again"
                )
            return {n: _run_grant[n] for n in wanted}
        if not wanted:
            return {}
        with self._engine.connect() as conn:
            rows = {n: records.get(conn, self._project.id, n) for n in dict.fromkeys(wanted)}
            missing = [n for n, r in rows.items() if r is None]
            if missing:
                existing = ", ".join(records.names(conn, self._project.id)) or "none yet"
                listed = f"secret {missing[0]!r} does" if len(missing) == 1 else f"secrets {missing!r} do"
                raise NotFoundError(
                    f"{listed} not exist in project "
                    f"{self._project.name!r} (existing: {existing}); set one with "
                    f"`fti secrets set {missing[0]}`"
                )
        key = self._key()
        return {n: key.decrypt(r.token, r.key_id, n) for n, r in rows.items() if r is not None}

    def info(self, name: str) -> SecretInfo:
        """Who set secret ``name`` and when (not its value)."""
        check_secret_name(name)
        for item in self.list():
            if item.name == name:
                return item
        raise NotFoundError(f"secret {name!r} does not exist in project {self._project.name!r}")

    def list(self) -> builtins.list[SecretInfo]:
        """Every secret of the project by name: names, who and when, never values.

        In a pipeline run: the secrets the run was granted (their names only).
        """
        if _run_grant is not None:
            raise PermissionDeniedError(
                f"pipeline {_run_pipeline!r} cannot list the project's secrets: it holds "
                f"{', '.join(sorted(_run_grant)) or 'none'}"
            )
        with self._engine.connect() as conn:
            rows = records.list_all(conn, self._project.id)
        return [SecretInfo(r.name, r.created_at, r.created_by, r.updated_at, r.updated_by) for r in rows]

    def delete(self, name: str) -> None:
        """Delete secret ``name``.

        Raises:
            NotFoundError: no such secret.
        """
        self._refuse_change("delete")
        check_secret_name(name)
        with self._engine.begin() as conn:
            if not records.remove(conn, self._project.id, name):
                raise NotFoundError(f"secret {name!r} does not exist in project {self._project.name!r}")

    def rotate_key(self) -> int:
        """Re-encrypt every secret of the project with the first key of ``FTI_SECRET_KEY``.

        Set ``FTI_SECRET_KEY=new,old`` (the old key or keys after the new one), rotate, then drop
        the old keys. Returns the number of secrets re-encrypted.
        """
        self._refuse_change("rotate")
        key = self._key()
        done = 0
        with self._engine.connect() as conn:
            rows = records.list_all(conn, self._project.id)
        for row in rows:
            if row.key_id == key.key_id:
                continue
            token = key.encrypt(key.decrypt(row.token, row.key_id, row.name))
            with self._engine.begin() as conn:
                done += records.replace_token(conn, self._project.id, row.name, row.token, token, key.key_id)
        return done

    def __repr__(self) -> str:
        return f"Secrets(project={self._project.name!r})"
