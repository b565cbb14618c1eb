"""A deployed pipeline: the catalog's record of one declaration, and the checks a run's parameters pass.

``fti.pipelines.definitions`` declares pipelines in code (``PipelineSpec``); deploying them
(``project.pipelines.deploy``) stores them, and :class:`Pipeline` is what the catalog, the
scheduler and the executor read back (``fti.pipelines.records`` builds it from the row).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fti.errors import ValidationError
from fti.pipelines.definitions import WINDOW_PARAMS, Signature, Trigger
from fti.pipelines.schedules import Schedule


@dataclass(frozen=True)
class Pipeline:
    """A deployed pipeline (see :mod:`fti.pipelines.definitions` for the meaning of each policy)."""

    id: int
    name: str
    kind: str
    function: str
    source_path: str
    source_digest: str
    schedule: Schedule | None
    trigger: Trigger | None
    retries: int
    retry_backoff: float
    timeout: float | None
    concurrency: str
    missed: str
    signature: Signature
    description: str
    paused: bool
    cursor: datetime | None
    created_at: datetime
    updated_at: datetime
    secrets: tuple[str, ...] = ()
    """Names of the secrets a run receives."""
    environment: dict[str, Any] | None = None
    """The isolated environment runs need (requirements, Python), or None: the scheduler's."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "function": self.function,
            "source_path": self.source_path,
            "source_digest": self.source_digest,
            "schedule": None if self.schedule is None else self.schedule.to_dict(),
            "trigger": None if self.trigger is None else self.trigger.to_dict(),
            "retries": self.retries,
            "retry_backoff": self.retry_backoff,
            "timeout": self.timeout,
            "concurrency": self.concurrency,
            "missed": self.missed,
            "parameters": self.signature.to_dict(),
            "environment": self.environment,
            "description": self.description,
            "paused": self.paused,
            "secrets": list(self.secrets),
            "next_run": None if self.next_run is None else self.next_run.isoformat(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @property
    def next_run(self) -> datetime | None:
        """The next scheduled fire time (None when unscheduled or paused)."""
        if self.schedule is None or self.paused:
            return None
        return self.schedule.next_after(self.cursor or datetime.now(UTC))

    def check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validate run parameters against the function's signature."""
        if not isinstance(params, dict):
            raise ValidationError(f"params must be a dict of name -> value, got {params!r}")
        sig = self.signature
        for key in params:
            if not isinstance(key, str) or not key.isidentifier():
                raise ValidationError(f"invalid parameter name {key!r}: use a Python identifier")
            if key in (*WINDOW_PARAMS, "event"):
                raise ValidationError(
                    f"parameter {key!r} is set by fti; pass the window with start=/end= (--start/--end)"
                )
            if key not in sig.params and not sig.var_keyword:
                accepted = ", ".join(p for p in sig.params if p not in (*WINDOW_PARAMS, "event")) or "none"
                raise ValidationError(
                    f"pipeline {self.name!r} has no parameter {key!r} (accepted: {accepted})"
                )
        missing = [p for p in sig.required if p not in params and p != "event"]
        if missing:
            raise ValidationError(
                f"pipeline {self.name!r} needs parameter(s) {', '.join(missing)}: pass --param k=v"
            )
        try:
            json.dumps(params)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"params must be JSON-serialisable: {exc}") from exc
        return dict(params)
