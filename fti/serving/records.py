"""The serving domain's catalog records: the only module that touches ``deployments`` and
``api_keys`` (``fti.storage.metadata.tables.serving``).

``fti.serving.deployments`` (the ``Serving`` facade, ``Deployment``) and ``fti.serving.auth``
(API keys) go through these functions; each is one transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.errors import FtiError
from fti.storage.metadata.tables import api_keys, deployments
from fti.storage.metadata.tables._base import utcnow
from fti.types import ModelRef

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog


@dataclass(frozen=True)
class DeploymentSpec:
    """What a server needs to serve a deployment."""

    name: str
    model: str  # "name" (latest) or "name@alias"
    model_version: int | None = None  # pinned version (ignores the alias)
    max_batch_size: int = 32
    max_batch_delay_ms: float = 2.0
    max_queue_size: int = 1024
    timeout_ms: int = 10_000
    enrich: bool = False
    allow_missing: bool = False
    log_requests: bool = True
    scorer: str = "fastest"
    status: str = "running"
    variants: tuple[tuple[str, str, float], ...] = ()
    """``(name, model reference, percent)`` of each variant besides the champion (see
    ``fti.serving.routing``)."""
    sticky: str | None = None  # the input whose value routes a request (same entity, same variant)
    shadow: str | None = None  # a model reference that sees every request and answers none

    @property
    def ref(self) -> ModelRef:
        """The model reference served: the pinned version if there is one, else ``model``."""
        ref = ModelRef.parse(self.model)
        return ref if self.model_version is None else ModelRef(ref.name, version=self.model_version)

    def config(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("name", "model", "model_version", "status"):
            data.pop(key)
        return data


@dataclass(frozen=True)
class DeploymentRecord:
    """A stored deployment: its spec and when it was created."""

    spec: DeploymentSpec
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    """A stored key's metadata (the key itself is never stored)."""

    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    role: str = "admin"
    """``reader``, ``writer`` or ``admin`` in the key's project (see ``fti.serving.auth.ROLES``)."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class StoredKey:
    """What an auth check needs of a stored key: its name, role and whether it is still active."""

    name: str
    role: str
    active: bool


# --- deployments -----------------------------------------------------------------------------
def _deployment(row: Any) -> DeploymentRecord:
    config = dict(row["config"] or {})
    known = {k: v for k, v in config.items() if k in DeploymentSpec.__dataclass_fields__}
    if "variants" in known:  # JSON lists back to the tuples specs compare equal with
        known["variants"] = tuple((str(n), str(r), float(w)) for n, r, w in known["variants"])
    spec = DeploymentSpec(
        name=row["name"],
        model=row["model"],
        model_version=row["model_version"],
        status=row["status"],
        **known,
    )
    return DeploymentRecord(spec, row["created_at"])


def list_deployments(catalog: Catalog, project_id: int) -> list[DeploymentRecord]:
    """Every deployment of the project (running and stopped), by name."""
    query = select(deployments).where(deployments.c.project_id == project_id).order_by(deployments.c.name)
    with catalog.connect() as conn:
        return [_deployment(row) for row in conn.execute(query).mappings()]


def find_deployment(catalog: Catalog, project_id: int, name: str) -> DeploymentRecord | None:
    """The deployment ``name``, or None."""
    query = select(deployments).where(deployments.c.project_id == project_id, deployments.c.name == name)
    with catalog.connect() as conn:
        row = conn.execute(query).mappings().one_or_none()
    return None if row is None else _deployment(row)


def save_deployment(catalog: Catalog, project_id: int, spec: DeploymentSpec) -> None:
    """Create the deployment ``spec.name`` or replace its model, version, config and status.

    Raises:
        FtiError: another process created the same deployment at the same moment (retry).
    """
    now = utcnow()
    values = {
        "model": spec.model,
        "model_version": spec.model_version,
        "config": spec.config(),
        "status": spec.status,
    }
    where = (deployments.c.project_id == project_id, deployments.c.name == spec.name)
    with catalog.begin() as conn:
        found = conn.execute(select(deployments.c.id).where(*where)).scalar_one_or_none()
        if found is not None:
            conn.execute(
                update(deployments).where(deployments.c.id == found).values(**values, updated_at=now)
            )
    if found is not None:
        return
    try:
        with catalog.begin() as conn:
            conn.execute(
                insert(deployments).values(
                    project_id=project_id, name=spec.name, created_at=now, updated_at=now, **values
                )
            )
    except SqlIntegrityError:
        raise FtiError(f"deployment {spec.name!r} was created concurrently; retry") from None


def set_deployment_status(catalog: Catalog, project_id: int, name: str, status: str) -> None:
    """Mark deployment ``name`` ``running`` or ``stopped``."""
    with catalog.begin() as conn:
        conn.execute(
            update(deployments)
            .where(deployments.c.project_id == project_id, deployments.c.name == name)
            .values(status=status, updated_at=utcnow())
        )


def delete_deployment(catalog: Catalog, project_id: int, name: str) -> None:
    """Remove deployment ``name`` (nothing happens when there is none)."""
    with catalog.begin() as conn:
        conn.execute(
            delete(deployments).where(deployments.c.project_id == project_id, deployments.c.name == name)
        )


# --- API keys --------------------------------------------------------------------------------
def insert_key(
    catalog: Catalog, project_id: int, name: str, prefix: str, key_hash: str, role: str = "admin"
) -> bool:
    """Store a new key's hash and role under ``name``; False when the name is taken (revoked keys
    keep theirs)."""
    try:
        with catalog.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    project_id=project_id,
                    name=name,
                    prefix=prefix,
                    key_hash=key_hash,
                    created_at=utcnow(),
                    revoked_at=None,
                    role=role,
                )
            )
    except SqlIntegrityError:
        return False
    return True


def list_keys(catalog: Catalog, project_id: int) -> list[ApiKey]:
    """Every key of the project (active and revoked), by name."""
    query = select(api_keys).where(api_keys.c.project_id == project_id).order_by(api_keys.c.name)
    with catalog.connect() as conn:
        return [
            ApiKey(r["name"], r["prefix"], r["created_at"], r["revoked_at"], r["role"])
            for r in conn.execute(query).mappings()
        ]


def revoke_key(catalog: Catalog, project_id: int, name: str) -> bool:
    """Revoke the active key ``name``; False when there is none."""
    with catalog.begin() as conn:
        result = conn.execute(
            update(api_keys)
            .where(
                api_keys.c.project_id == project_id, api_keys.c.name == name, api_keys.c.revoked_at.is_(None)
            )
            .values(revoked_at=utcnow())
        )
    return bool(result.rowcount == 1)


def key_hashes(catalog: Catalog, project_id: int) -> dict[str, StoredKey]:
    """``{key hash: name, role, active}`` of every key the project has ever had."""
    query = select(api_keys.c.key_hash, api_keys.c.name, api_keys.c.role, api_keys.c.revoked_at).where(
        api_keys.c.project_id == project_id
    )
    with catalog.connect() as conn:
        return {
            str(digest): StoredKey(str(name), str(role), revoked_at is None)
            for digest, name, role, revoked_at in conn.execute(query)
        }
