"""The registry domain's catalog records: the only module that touches ``models``,
``model_versions``, ``model_aliases`` and ``alias_history`` (``fti.storage.metadata.tables.registry``).

The ``ModelRegistry`` facade composes these functions inside one transaction (they take a
``Connection``); :func:`write` runs such a transaction and retries it when a concurrent writer
won a unique key. Versions come back as detached :class:`ModelVersion` records (no registry
attached).

Moving an alias is one transaction (the alias row and its history row change together), so
readers see the old or the new version, never none. Every change records who, when, from and to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.errors import ConflictError, NotFoundError
from fti.registry.aliases import AliasChange, rollback_target
from fti.registry.model_version import ModelVersion
from fti.registry.signature import ModelSignature
from fti.storage.metadata.tables import alias_history, model_aliases, model_versions, models
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog, Connection

T = TypeVar("T")


def write(catalog: Catalog, body: Callable[[Connection], T], *, attempts: int, conflict: str) -> T:
    """Run ``body`` in one transaction, retrying when a concurrent writer won a unique key.

    Raises:
        ConflictError: with the message ``conflict`` when every attempt lost such a race.
    """
    for attempt in range(attempts):
        try:
            with catalog.begin() as conn:
                return body(conn)
        except SqlIntegrityError as exc:
            if attempt == attempts - 1:
                raise ConflictError(conflict) from exc
    raise AssertionError("unreachable")


# --- models ----------------------------------------------------------------------------------
def model_id(conn: Connection, project_id: int, name: str, *, create: bool) -> int | None:
    """The id of model ``name`` (inserted first with ``create``), or None."""
    query = select(models.c.id).where(models.c.project_id == project_id, models.c.name == name)
    found = conn.execute(query).scalar_one_or_none()
    if found is not None or not create:
        return None if found is None else int(found)
    result = conn.execute(insert(models).values(project_id=project_id, name=name, created_at=utcnow()))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def model_names(conn: Connection, project_id: int) -> list[str]:
    """Names of the project's models, sorted."""
    query = select(models.c.name).where(models.c.project_id == project_id).order_by(models.c.name)
    return list(conn.execute(query).scalars())


# --- versions --------------------------------------------------------------------------------
def _version(row: Any, name: str) -> ModelVersion:
    return ModelVersion(
        id=int(row["id"]),
        model_id=int(row["model_id"]),
        name=name,
        version=int(row["version"]),
        flavor=row["flavor"],
        flavor_options=dict(row["flavor_options"]),
        artifacts=dict(row["artifacts"]),
        artifact_prefix=row["artifact_prefix"],
        signature=ModelSignature.from_dict(row["signature"]),
        metrics={str(k): float(v) for k, v in row["metrics"].items()},
        description=row["description"],
        run_id=row["run_id"],
        feature_view_id=row["feature_view_id"],
        feature_view_name=row["feature_view_name"],
        feature_view_version=row["feature_view_version"],
        training_dataset_version=row["training_dataset_version"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        example=row["input_example"],
    )


def version_numbers(conn: Connection, model_id: int) -> list[int]:
    """The versions of a model, ascending."""
    query = select(model_versions.c.version).where(model_versions.c.model_id == model_id)
    return sorted(int(v) for v in conn.execute(query).scalars())


def next_version(conn: Connection, model_id: int) -> int:
    """One more than the model's highest version (1 for the first)."""
    last = conn.execute(
        select(func.max(model_versions.c.version)).where(model_versions.c.model_id == model_id)
    ).scalar_one_or_none()
    return 1 if last is None else int(last) + 1


def insert_version(
    conn: Connection, model_id: int, version: int, artifact_prefix: str, values: Mapping[str, Any]
) -> None:
    """Insert a version row; ``values`` are its remaining columns (flavor, artifacts, lineage...).

    A concurrent insert of the same version fails on the unique key (retry with :func:`write`).
    """
    from fti.registry.records.metrics import record

    now = utcnow()
    result = conn.execute(
        insert(model_versions).values(
            model_id=model_id, version=version, artifact_prefix=artifact_prefix, created_at=now, **values
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    record(conn, int(key[0]), values.get("metrics") or {}, now, values["created_by"])


def find_version(conn: Connection, model_id: int, name: str, version: int | None) -> ModelVersion | None:
    """Version ``version`` of the model (its latest with None), or None."""
    query = select(model_versions).where(model_versions.c.model_id == model_id)
    if version is None:
        query = query.order_by(model_versions.c.version.desc()).limit(1)
    else:
        query = query.where(model_versions.c.version == version)
    row = conn.execute(query).mappings().first()
    return None if row is None else _version(row, name)


def list_versions(
    conn: Connection,
    project_id: int,
    *,
    name: str | None = None,
    feature_view_id: int | None = None,
    run_id: int | None = None,
) -> list[ModelVersion]:
    """The project's versions (of one model, feature view or run), by model name then version."""
    query = (
        select(model_versions, models.c.name.label("model_name"))
        .select_from(model_versions.join(models, model_versions.c.model_id == models.c.id))
        .where(models.c.project_id == project_id)
        .order_by(models.c.name, model_versions.c.version)
    )
    if name is not None:
        query = query.where(models.c.name == name)
    if feature_view_id is not None:
        query = query.where(model_versions.c.feature_view_id == feature_view_id)
    if run_id is not None:
        query = query.where(model_versions.c.run_id == run_id)
    return [_version(r, r["model_name"]) for r in conn.execute(query).mappings()]


def delete_version(conn: Connection, version_id: int) -> None:
    """Delete a version row (fails on its foreign key while an alias points to it)."""
    conn.execute(delete(model_versions).where(model_versions.c.id == version_id))


# --- aliases ---------------------------------------------------------------------------------
def aliased_version(conn: Connection, model_id: int, alias: str, *, lock: bool = False) -> int | None:
    """The version ``alias`` points to, or None.

    With ``lock``, the alias row stays locked until the transaction ends (PostgreSQL; SQLite
    transactions are already serialised), so concurrent moves record exact from/to history.
    """
    # Lock the alias row alone: a FOR UPDATE over a join would re-check the join after a
    # concurrent move and lose the row (PostgreSQL EvalPlanQual), turning a move into an insert.
    query = select(model_aliases.c.model_version_id).where(
        model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
    )
    if lock:
        query = query.with_for_update()
    version_id = conn.execute(query).scalar_one_or_none()
    if version_id is None:
        return None
    found = conn.execute(
        select(model_versions.c.version).where(model_versions.c.id == version_id)
    ).scalar_one()
    return int(found)


def aliases_of(conn: Connection, model_version_id: int) -> list[str]:
    """The aliases pointing at one version row."""
    query = (
        select(model_aliases.c.alias)
        .where(model_aliases.c.model_version_id == model_version_id)
        .order_by(model_aliases.c.alias)
    )
    return list(conn.execute(query).scalars())


def set_alias(
    conn: Connection, model_id: int, alias: str, version_id: int, version: int, user: str, reason: str = ""
) -> int | None:
    """Point ``alias`` at a version row (in the caller's transaction); returns the previous version."""
    previous = aliased_version(conn, model_id, alias, lock=True)
    now = utcnow()
    if previous is None:
        conn.execute(
            insert(model_aliases).values(
                model_id=model_id, alias=alias, model_version_id=version_id, updated_at=now, updated_by=user
            )
        )
    elif previous != version:
        conn.execute(
            update(model_aliases)
            .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
            .values(model_version_id=version_id, updated_at=now, updated_by=user)
        )
    else:
        return previous  # already there: not a change, no history row
    _record(conn, model_id, alias, previous, version, user, reason, now)
    return previous


def delete_alias(
    conn: Connection, model_id: int, model_name: str, alias: str, user: str, reason: str = ""
) -> int:
    """Remove ``alias`` (in the caller's transaction); returns the version it pointed to."""
    previous = aliased_version(conn, model_id, alias, lock=True)
    if previous is None:
        raise NotFoundError(
            f"model {model_name!r} has no alias {alias!r} (aliases: {list_aliases(conn, model_id) or 'none'})"
        )
    conn.execute(
        delete(model_aliases).where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
    )
    _record(conn, model_id, alias, previous, None, user, reason, utcnow())
    return previous


def roll_back(conn: Connection, model_id: int, name: str, alias: str, user: str, reason: str) -> ModelVersion:
    """Move ``alias`` back to the version it held before (in the caller's transaction).

    Raises:
        NotFoundError: no such alias. ConflictError: no earlier version, or it was deleted.
    """
    held = aliased_version(conn, model_id, alias, lock=True)
    if held is None:
        raise NotFoundError(
            f"model {name!r} has no alias {alias!r} to roll back (aliases: {list_aliases(conn, model_id) or 'none'})"
        )
    current, previous = rollback_target(history(conn, model_id, alias))
    if previous is None or current != held:
        raise ConflictError(
            f"alias {alias!r} of model {name!r} has no earlier version to roll back to (it points at "
            f"version {held}; see `fti models show {name}` for its history); set it with set_alias"
        )
    target = find_version(conn, model_id, name, previous)
    if target is None:
        raise ConflictError(
            f"alias {alias!r} of model {name!r} held version {previous} before, which was deleted; "
            "set the alias explicitly with set_alias"
        )
    set_alias(conn, model_id, alias, target.id, target.version, user, reason)
    return target


def list_aliases(conn: Connection, model_id: int) -> dict[str, int]:
    """``{alias: version}`` of one model."""
    query = (
        select(model_aliases.c.alias, model_versions.c.version)
        .select_from(
            model_aliases.join(model_versions, model_aliases.c.model_version_id == model_versions.c.id)
        )
        .where(model_aliases.c.model_id == model_id)
        .order_by(model_aliases.c.alias)
    )
    return {str(a): int(v) for a, v in conn.execute(query)}


def history(conn: Connection, model_id: int, alias: str | None = None) -> list[AliasChange]:
    """Every recorded change of the model's aliases (or of one alias), oldest first."""
    query = select(alias_history).where(alias_history.c.model_id == model_id).order_by(alias_history.c.id)
    if alias is not None:
        query = query.where(alias_history.c.alias == alias)
    return [
        AliasChange(
            alias=r["alias"],
            from_version=r["from_version"],
            to_version=r["to_version"],
            changed_at=r["changed_at"],
            changed_by=r["changed_by"],
            reason=r["reason"],
        )
        for r in conn.execute(query).mappings()
    ]


def _record(
    conn: Connection,
    model_id: int,
    alias: str,
    from_version: int | None,
    to_version: int | None,
    user: str,
    reason: str,
    at: datetime,
) -> None:
    conn.execute(
        insert(alias_history).values(
            model_id=model_id,
            alias=alias,
            from_version=from_version,
            to_version=to_version,
            changed_at=at,
            changed_by=user,
            reason=reason,
        )
    )


# --- listings and search (the web UI, mr.search_*) ---------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    """A registered model as listings show it: its versions and aliases at a glance."""

    name: str
    created_at: datetime
    versions: int
    latest_version: int | None
    latest_created_at: datetime | None
    description: str
    """The latest version's description."""
    aliases: dict[str, int] = field(default_factory=dict)


def search_models(
    conn: Connection,
    project_id: int,
    *,
    text: str,
    also_version_ids: Sequence[int] = (),
    offset: int,
    limit: int,
) -> tuple[list[ModelInfo], int]:
    """A page of the project's models by name: those whose name or any version's description
    contains ``text`` (lowercase), or that have a version in ``also_version_ids``."""
    m, v = models.c, model_versions.c
    where = [m.project_id == project_id]
    if text:
        matching_versions = select(v.model_id).where(
            or_(func.lower(v.description).contains(text, autoescape=True), v.id.in_(list(also_version_ids)))
        )
        where.append(or_(func.lower(m.name).contains(text, autoescape=True), m.id.in_(matching_versions)))
    total = int(conn.execute(select(func.count()).select_from(models).where(*where)).scalar_one())
    if not limit or offset >= total:
        return [], total
    rows = conn.execute(
        select(m.id, m.name, m.created_at).where(*where).order_by(m.name).offset(offset).limit(limit)
    ).all()
    ids = [int(r.id) for r in rows]
    latest = (
        select(v.model_id, func.count().label("n"), func.max(v.version).label("latest"))
        .where(v.model_id.in_(ids))
        .group_by(v.model_id)
        .subquery()
    )
    heads = {
        int(r.model_id): r
        for r in conn.execute(
            select(latest.c.model_id, latest.c.n, latest.c.latest, v.created_at, v.description).join(
                model_versions, and_(v.model_id == latest.c.model_id, v.version == latest.c.latest)
            )
        )
    }
    aliases: dict[int, dict[str, int]] = {i: {} for i in ids}
    query = (
        select(model_aliases.c.model_id, model_aliases.c.alias, v.version)
        .join(model_versions, model_aliases.c.model_version_id == v.id)
        .where(model_aliases.c.model_id.in_(ids))
        .order_by(model_aliases.c.alias)
    )
    for model_id, alias, version in conn.execute(query):
        aliases[int(model_id)][str(alias)] = int(version)
    infos = []
    for r in rows:
        head = heads.get(int(r.id))  # None: every version was deleted
        infos.append(
            ModelInfo(
                name=r.name,
                created_at=r.created_at,
                versions=0 if head is None else int(head.n),
                latest_version=None if head is None else int(head.latest),
                latest_created_at=None if head is None else head.created_at,
                description="" if head is None else head.description,
                aliases=aliases[int(r.id)],
            )
        )
    return infos, total


def search_versions(
    conn: Connection,
    project_id: int,
    *,
    text: str,
    name: str | None = None,
    feature_view_id: int | None = None,
    also_ids: Sequence[int] = (),
    only_ids: Sequence[int] | None = None,
    order_by: tuple[str, bool],
    offset: int,
    limit: int,
) -> tuple[list[ModelVersion], int]:
    """A page of the project's model versions, and how many match.

    Args:
        text: Lowercase text the model name or the version's description contains ("" for all).
        name: Only versions of this model.
        feature_view_id: Only versions trained from this feature view.
        also_ids, only_ids: Versions that match anyway / the only versions allowed (tags).
        order_by: ``(key, descending)``; key ``"version"`` (model name, then version),
            ``"created_at"`` or ``"metrics.<name>"`` (versions without that metric last).
    """
    m, v = models.c, model_versions.c
    where = [m.project_id == project_id]
    if name is not None:
        where.append(m.name == name)
    if feature_view_id is not None:
        where.append(v.feature_view_id == feature_view_id)
    if text:
        where.append(
            or_(
                func.lower(m.name).contains(text, autoescape=True),
                func.lower(v.description).contains(text, autoescape=True),
                v.id.in_(list(also_ids)),
            )
        )
    if only_ids is not None:
        where.append(v.id.in_(list(only_ids)))
    joined = model_versions.join(models, v.model_id == m.id)
    total = int(conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one())
    if not limit or offset >= total:
        return [], total
    key, descending = order_by
    base = select(model_versions, m.name.label("model_name")).select_from(joined).where(*where)
    if key.startswith("metrics."):
        # metrics are JSON: rank the matching versions here, then read only the page's rows
        metric = key.removeprefix("metrics.")
        ranked = conn.execute(select(v.id, v.metrics).select_from(joined).where(*where)).all()
        present = [(float(r.metrics[metric]), int(r.id)) for r in ranked if metric in (r.metrics or {})]
        present.sort(reverse=descending)
        missing = sorted(int(r.id) for r in ranked if metric not in (r.metrics or {}))
        page_ids = ([i for _, i in present] + missing)[offset : offset + limit]
        rows = {int(r["id"]): r for r in conn.execute(base.where(v.id.in_(page_ids))).mappings()}
        return [_version(rows[i], rows[i]["model_name"]) for i in page_ids], total
    if key == "created_at":
        order = [v.created_at.desc() if descending else v.created_at, v.id.desc() if descending else v.id]
    else:
        order = [m.name, v.version.desc() if descending else v.version]
    rows_page = conn.execute(base.order_by(*order).offset(offset).limit(limit)).mappings()
    return [_version(r, r["model_name"]) for r in rows_page], total
