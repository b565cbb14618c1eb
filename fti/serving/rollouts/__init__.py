"""Safe rollouts of a deployment: canary rollouts the scheduler advances (``machine``), the gates
and the servers' per-variant counters they read (``gates``), and their catalog records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError
from fti.serving.rollouts import records

if TYPE_CHECKING:
    from fti.project import Project
    from fti.serving.rollouts.records import RolloutEvent, RolloutRecord

__all__ = ["Rollout"]


class Rollout:
    """A canary rollout of one deployment. Get it from ``project.serving.rollout(...)`` (start) or
    ``project.serving.get_rollout(name)`` (the latest one)."""

    def __init__(self, project: Project, record: RolloutRecord) -> None:
        self._project = project
        self.record = record

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def deployment(self) -> str:
        return self.record.deployment

    @property
    def state(self) -> str:
        """``running``, ``paused``, ``succeeded``, ``rolled_back`` or ``aborted`` (as last read)."""
        return self.record.state

    def __repr__(self) -> str:
        r = self.record
        return (
            f"Rollout(id={r.id}, deployment={r.deployment!r}, candidate={r.candidate!r}, state={r.state!r})"
        )

    def refresh(self) -> Rollout:
        """Read the rollout again from the catalog."""
        found = records.find(self._project.backends.catalog, self._project.id, self.deployment, self.id)
        if found is None:
            raise NotFoundError(f"rollout #{self.id} of {self.deployment!r} no longer exists")
        self.record = found
        return self

    def events(self) -> list[RolloutEvent]:
        """Every recorded step (started, advanced, held, paused, promoted, rolled back, ...) with
        the figures that justified it, oldest first."""
        return records.events(self._project.backends.catalog, self.id)

    def status(self) -> dict[str, Any]:
        """The rollout as stored now: state, step, the candidate's share, gates, events."""
        r = self.refresh().record
        return {
            "id": r.id,
            "deployment": r.deployment,
            "candidate": r.candidate,
            "alias": r.alias,
            "state": r.state,
            "step": r.step + 1,
            "steps": r.steps,
            "percent": r.percent if r.state in records.ACTIVE else None,
            "every_s": r.every_s,
            "gates": r.gates,
            "min_requests": r.min_requests,
            "next_at": r.next_at.isoformat() if r.state == "running" else None,
            "reason": r.reason,
            "created_at": r.created_at.isoformat(),
            "created_by": r.created_by,
            "events": [e.to_dict() for e in self.events()],
        }

    def pause(self, reason: str = "") -> None:
        """Hold the traffic at the current step; the scheduler judges nothing until :meth:`resume`."""
        self._act("pause", reason)

    def resume(self, reason: str = "") -> None:
        """Continue a paused rollout with a fresh step at the same share."""
        self._act("resume", reason)

    def abort(self, reason: str = "") -> None:
        """End the rollout: the traffic goes back to the champion; the alias does not move."""
        self._act("abort", reason)

    def _act(self, action: str, reason: str) -> None:
        from fti.serving.rollouts.machine import set_state

        if not isinstance(reason, str):
            raise ValidationError(f"reason must be a string, got {type(reason).__name__}")
        self.record = set_state(self._project, self.deployment, action, datetime.now(UTC), reason)
