"""The rollouts' catalog records: the only module that touches ``rollouts``, ``rollout_events`` and
``variant_stats`` (``fti.storage.metadata.tables.rollouts``).

A rollout changes by compare-and-set on its ``revision``: :func:`change` applies a change only if
nobody changed the row since it was read, so two actors (a scheduler and a user's ``pause``, or
two schedulers during a lease hand-over) can never both act on the same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.storage.metadata.tables import rollout_events, rollouts, variant_stats
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog

ACTIVE = ("running", "paused")
FINAL = ("succeeded", "rolled_back", "aborted")


@dataclass(frozen=True)
class RolloutRecord:
    """A stored rollout."""

    id: int
    deployment: str
    candidate: str
    alias: str
    steps: list[float]
    every_s: float
    gates: dict[str, str]
    min_requests: int
    state: str
    step: int
    step_started_at: datetime
    next_at: datetime
    baseline: dict[str, Any]
    reason: str
    revision: int
    created_at: datetime
    created_by: str
    updated_at: datetime

    @property
    def percent(self) -> float:
        """The candidate's share of the traffic at the current step."""
        return float(self.steps[self.step])


@dataclass(frozen=True)
class RolloutEvent:
    """One recorded step of a rollout, with the figures that justified it."""

    at: datetime
    action: str
    step: int
    percent: float
    figures: dict[str, Any]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "action": self.action,
            "step": self.step,
            "percent": self.percent,
            "figures": self.figures,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class VariantStats:
    """One server worker's cumulative counters of one deployment variant and version."""

    server: str
    variant: str
    model_version: int
    requests: int
    errors: int
    latency: list[list[Any]]
    """Cumulative histogram ``[[upper bound in seconds as Prometheus writes it, count], ...]``."""
    """Cumulative histogram ``[[upper bound in seconds, count], ...]`` ending with ``inf``."""


def _rollout(row: Any) -> RolloutRecord:
    return RolloutRecord(**{k: row[k] for k in RolloutRecord.__dataclass_fields__})


def insert_rollout(
    catalog: Catalog, project_id: int, values: dict[str, Any], event: RolloutEvent
) -> int | None:
    """Store a new rollout and its first event, unless the deployment has an active one (None)."""
    with catalog.begin() as conn:
        busy = conn.execute(
            select(rollouts.c.id).where(
                rollouts.c.project_id == project_id,
                rollouts.c.deployment == values["deployment"],
                rollouts.c.state.in_(ACTIVE),
            )
        ).first()
        if busy is not None:
            return None
        now = utcnow()
        inserted = conn.execute(
            insert(rollouts).values(
                project_id=project_id, revision=0, created_at=now, updated_at=now, **values
            )
        ).inserted_primary_key
        assert inserted is not None
        rollout_id = inserted[0]
        _add_event(conn, int(rollout_id), event)
    return int(rollout_id)


def find(
    catalog: Catalog, project_id: int, deployment: str, rollout_id: int | None = None
) -> RolloutRecord | None:
    """Rollout ``rollout_id`` of the deployment, or its latest one."""
    query = select(rollouts).where(rollouts.c.project_id == project_id, rollouts.c.deployment == deployment)
    if rollout_id is not None:
        query = query.where(rollouts.c.id == rollout_id)
    with catalog.connect() as conn:
        row = conn.execute(query.order_by(rollouts.c.id.desc()).limit(1)).mappings().first()
    return None if row is None else _rollout(row)


def active(catalog: Catalog, project_id: int) -> list[RolloutRecord]:
    """The project's running and paused rollouts."""
    query = select(rollouts).where(rollouts.c.project_id == project_id, rollouts.c.state.in_(ACTIVE))
    with catalog.connect() as conn:
        return [_rollout(r) for r in conn.execute(query.order_by(rollouts.c.id)).mappings()]


def change(
    catalog: Catalog, found: RolloutRecord, changes: dict[str, Any], event: RolloutEvent | None
) -> bool:
    """Apply ``changes`` (and record ``event``) if the rollout is still at ``found.revision``."""
    with catalog.begin() as conn:
        done = conn.execute(
            update(rollouts)
            .where(rollouts.c.id == found.id, rollouts.c.revision == found.revision)
            .values(**changes, revision=found.revision + 1, updated_at=utcnow())
        ).rowcount
        if done != 1:
            return False
        if event is not None:
            _add_event(conn, found.id, event)
    return True


def events(catalog: Catalog, rollout_id: int) -> list[RolloutEvent]:
    """Every recorded event of a rollout, oldest first."""
    query = (
        select(rollout_events).where(rollout_events.c.rollout_id == rollout_id).order_by(rollout_events.c.id)
    )
    with catalog.connect() as conn:
        return [
            RolloutEvent(r["at"], r["action"], r["step"], r["percent"], r["figures"], r["reason"])
            for r in conn.execute(query).mappings()
        ]


def _add_event(conn: Any, rollout_id: int, event: RolloutEvent) -> None:
    conn.execute(
        insert(rollout_events).values(
            rollout_id=rollout_id, at=event.at, action=event.action, step=event.step, percent=event.percent,
            figures=event.figures, reason=event.reason,
        )
    )  # fmt: skip


# --- the servers' counters ---------------------------------------------------------------------
def save_stats(
    catalog: Catalog, project_id: int, server: str, rows: dict[tuple[str, str, int], dict[str, Any]]
) -> None:
    """Store one server worker's cumulative counters, ``{(deployment, variant, version): {requests,
    errors, latency}}`` (one transaction; rows of this worker are replaced)."""
    if not rows:
        return
    now = utcnow()
    c = variant_stats.c
    with catalog.begin() as conn:
        for (deployment, variant, version), values in rows.items():
            key = (c.project_id == project_id, c.server == server, c.deployment == deployment,
                   c.variant == variant, c.model_version == version)  # fmt: skip
            if conn.execute(update(variant_stats).where(*key).values(**values, updated_at=now)).rowcount == 1:
                continue
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(variant_stats).values(
                            project_id=project_id, server=server, deployment=deployment, variant=variant,
                            model_version=version, updated_at=now, **values,
                        )
                    )  # fmt: skip
            except SqlIntegrityError:  # only this worker writes its rows: a retry after a lost reply
                conn.execute(update(variant_stats).where(*key).values(**values, updated_at=now))


def stats(catalog: Catalog, project_id: int, deployment: str) -> list[VariantStats]:
    """Every server worker's counters of one deployment."""
    c = variant_stats.c
    query = select(variant_stats).where(c.project_id == project_id, c.deployment == deployment).order_by(c.id)
    with catalog.connect() as conn:
        return [
            VariantStats(
                r["server"], r["variant"], r["model_version"], r["requests"], r["errors"], r["latency"]
            )
            for r in conn.execute(query).mappings()
        ]
