"""Canary rollouts: a state machine in the catalog that the scheduler advances.

``project.serving.rollout("fraud", to="fraud:4", steps=[5, 25, 50, 100], every="10m",
gates={"error_rate": "< 0.01", "p99_ms": "< 50"})`` gives the candidate a ``canary`` variant of
the deployment with 5 % of the traffic (through the deployment's split, so every server routes
alike) and records the rollout ``running`` at step 0. From then on the scheduler's leader
(:func:`advance`, one of its duties at every tick) judges it:

- at every tick, once the canary has ``min_requests`` requests in the step: a failed gate rolls
  the traffic back to the champion at once (``rolled_back``, with the failed gates and figures);
- when the step's time is up: all gates pass -> the next step (``advanced``); too few canary
  requests -> the step is extended (``held``); after the last step (100 %) the deployment's alias
  moves to the candidate and the canary variant is removed (``promoted``, state ``succeeded``).

Each change is one compare-and-set on the rollout's row plus an event with the figures that
justified it, so a scheduler that dies mid-rollout is replaced (its lease expires) by one that
continues from the stored step, and a user's ``pause``/``abort`` and the scheduler never both act.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import ConflictError, NotFoundError, ValidationError
from fti.registry.metrics import current_user
from fti.serving import records as serving_records
from fti.serving.rollouts import records
from fti.serving.rollouts.gates import REALIZED_FIGURES, figures, jsonable, parse_gates, snapshot
from fti.serving.rollouts.records import FINAL, RolloutEvent, RolloutRecord
from fti.types import ModelRef

if TYPE_CHECKING:
    from fti.project import Project
    from fti.serving.rollouts.gates import Realized

CANARY = "canary"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(every: object) -> float:
    """Seconds of ``"30s"``, ``"10m"``, ``"1h"``, a number of seconds or a timedelta (> 0)."""
    if isinstance(every, timedelta):
        seconds = every.total_seconds()
    elif isinstance(every, int | float) and not isinstance(every, bool):
        seconds = float(every)
    elif isinstance(every, str) and (m := _DURATION.match(every)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValidationError(f"every must be a duration such as '10m', '30s' or seconds, got {every!r}")
    if not seconds > 0:
        raise ValidationError(f"every must be longer than 0 seconds, got {every!r}")
    return seconds


def check_steps(steps: object) -> list[float]:
    """Strictly increasing percentages in (0, 100], ending at 100."""
    items: list[Any] = list(steps) if isinstance(steps, list | tuple) else []
    ok = bool(items)
    values = []
    for step in items:
        if isinstance(step, bool) or not isinstance(step, int | float) or not 0 < step <= 100:
            ok = False
            break
        values.append(float(step))
    if not ok or values != sorted(set(values)) or values[-1] != 100:
        raise ValidationError(
            f"steps must be increasing percentages of the traffic ending at 100, e.g. [5, 25, 50, 100]; got {steps!r}"
        )
    return values


def start(
    project: Project, deployment: str, to: str | ModelRef, *, steps: object, every: object, gates: object,
    min_requests: int, now: datetime,
) -> int:  # fmt: skip
    """Validate, give the candidate its first step of traffic, and store the rollout; its id."""
    checked_steps, every_s = check_steps(steps), parse_every(every)
    parse_gates(gates)  # refuse a malformed gate before anything changes
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
        raise ValidationError(f"min_requests must be a positive integer, got {min_requests!r}")
    dep = project.serving.get(deployment)
    followed = ModelRef.parse(dep.model)
    if followed.alias is None or dep.spec.model_version is not None:
        raise ValidationError(
            f"deployment {deployment!r} serves {dep.ref}, not an alias: a rollout ends by moving the alias "
            "the deployment follows; deploy it with model='name@alias' first"
        )
    ref = ModelRef.parse(to)
    if ref.name != followed.name:
        raise ValidationError(
            f"the candidate {ref} must be a version of model {followed.name!r}, the one deployed"
        )
    candidate = project.model_registry.get_model(ref)  # NotFoundError for an unknown version
    champion = project.model_registry.get_model(followed)
    if candidate.version == champion.version:
        raise ValidationError(f"{candidate.ref} is already what {followed} points to; nothing to roll out")
    pinned = f"{followed.name}:{candidate.version}"
    active = records.find(project.backends.catalog, project.id, deployment)
    if active is not None and active.state not in FINAL:
        raise ConflictError(
            f"deployment {deployment!r} already has a {active.state} rollout (#{active.id}); abort it first"
        )
    others = {n: (r, w) for n, r, w in dep.spec.variants if n != CANARY}
    config = {**dep.spec.config(), "variants": {CANARY: (pinned, checked_steps[0]), **others}}
    project.serving.deploy(deployment, model=dep.model, **config)  # checks the candidate as a variant
    baseline = snapshot(records.stats(project.backends.catalog, project.id, deployment))
    values = {
        "deployment": deployment, "candidate": pinned, "alias": followed.alias, "steps": checked_steps,
        "every_s": every_s, "gates": dict(gates or {}), "min_requests": min_requests,  # type: ignore[call-overload]
        "state": "running", "step": 0, "step_started_at": now, "next_at": now + timedelta(seconds=every_s),
        "baseline": baseline, "reason": "", "created_by": current_user(),
    }  # fmt: skip
    event = RolloutEvent(now, "started", 0, checked_steps[0], {}, f"{pinned} gets {checked_steps[0]:g} %")
    rollout_id = records.insert_rollout(project.backends.catalog, project.id, values, event)
    if rollout_id is None:
        _set_canary(project, deployment, None)
        raise ConflictError(f"deployment {deployment!r} got another rollout meanwhile; abort it first")
    return rollout_id


def _set_canary(project: Project, deployment: str, traffic: tuple[str, float] | None) -> None:
    """Route ``percent`` of the deployment's traffic to the candidate (None: no canary)."""
    found = serving_records.find_deployment(project.backends.catalog, project.id, deployment)
    if found is None:
        raise NotFoundError(f"deployment {deployment!r} was deleted during its rollout")
    others = tuple(v for v in found.spec.variants if v[0] != CANARY)
    variants = others if traffic is None else ((CANARY, traffic[0], traffic[1]), *others)
    serving_records.save_deployment(
        project.backends.catalog, project.id, replace(found.spec, variants=variants)
    )


def advance(project: Project, now: datetime, realized: Realized | None = None) -> None:
    """One pass over the project's running rollouts (the scheduler leader's duty at every tick).

    ``realized`` gives the metrics realized from labels that ``accuracy``/``mae`` gates judge
    (``fti scheduler`` passes monitoring's); without it those gates are not judged.
    """
    for found in records.active(project.backends.catalog, project.id):
        if found.state == "running":
            judge(project, found, now, realized)


def judge(
    project: Project, found: RolloutRecord, now: datetime, realized: Realized | None = None
) -> str | None:
    """Judge one running rollout now; the action taken (None: nothing yet)."""
    catalog = project.backends.catalog
    seen = figures(records.stats(catalog, project.id, found.deployment), found.baseline)
    if realized is not None and any(g in REALIZED_FIGURES for g in found.gates):
        for variant, values in realized(project, found.deployment, found.step_started_at, now).items():
            seen.setdefault(variant, {"requests": 0, "errors": 0, "error_rate": None, "p99_ms": None}).update(
                values
            )
    canary = seen.get(CANARY, {"requests": 0})
    champion = seen.get("champion", {})
    failed = [
        why
        for gate in parse_gates(found.gates)
        if (why := gate.judge(canary.get(gate.figure), champion.get(gate.figure))) is not None
    ]
    enough = canary["requests"] >= found.min_requests
    if enough and failed:
        reason = f"step {found.step + 1} ({found.percent:g} %): " + "; ".join(failed)
        return _finish(project, found, now, "rolled_back", seen, reason)
    if now < found.next_at:
        return None
    if not enough:
        reason = (
            f"{canary['requests']} canary requests in the step, fewer than min_requests={found.min_requests}"
        )
        later = {"next_at": now + timedelta(seconds=found.every_s)}
        event = RolloutEvent(now, "held", found.step, found.percent, jsonable(seen), reason)
        return "held" if records.change(catalog, found, later, event) else None
    if found.step + 1 >= len(found.steps):
        return _finish(project, found, now, "succeeded", seen, "every step passed its gates")
    step = found.step + 1
    percent = float(found.steps[step])
    _set_canary(project, found.deployment, (found.candidate, percent))
    changes = {
        "step": step, "step_started_at": now, "next_at": now + timedelta(seconds=found.every_s),
        "baseline": snapshot(records.stats(catalog, project.id, found.deployment)),
    }  # fmt: skip
    reason = f"gates passed at {found.percent:g} %; {found.candidate} gets {percent:g} %"
    event = RolloutEvent(now, "advanced", step, percent, jsonable(seen), reason)
    if records.change(catalog, found, changes, event):
        return "advanced"
    _set_canary(project, found.deployment, (found.candidate, found.percent))  # lost the race: undo
    return None


def _finish(
    project: Project, found: RolloutRecord, now: datetime, state: str, seen: dict[str, Any], reason: str
) -> str | None:
    """End a rollout: ``succeeded`` moves the alias to the candidate; every end removes the canary."""
    catalog = project.backends.catalog
    action = {"succeeded": "promoted"}.get(state, state)
    event = RolloutEvent(
        now, action, found.step, 100.0 if state == "succeeded" else 0.0, jsonable(seen), reason
    )
    if not records.change(catalog, found, {"state": state, "reason": reason}, event):
        return None  # someone else acted first
    if state == "succeeded":
        ref = ModelRef.parse(found.candidate)
        assert ref.version is not None
        project.model_registry.set_alias(
            ref.name, ref.version, found.alias, reason=f"rollout #{found.id}: {reason}"
        )
    _set_canary(project, found.deployment, None)
    return action


def set_state(
    project: Project, deployment: str, action: str, now: datetime, reason: str = ""
) -> RolloutRecord:
    """``pause``, ``resume`` or ``abort`` the deployment's active rollout (by the user)."""
    found = records.find(project.backends.catalog, project.id, deployment)
    if found is None or found.state in FINAL:
        what = "no rollout" if found is None else f"no active rollout (#{found.id} is {found.state})"
        raise NotFoundError(
            f"deployment {deployment!r} has {what} to {action}; start one with serving.rollout"
        )
    allowed = {"pause": ("running",), "resume": ("paused",), "abort": ("running", "paused")}[action]
    if found.state not in allowed:
        raise ConflictError(f"rollout #{found.id} of {deployment!r} is {found.state}; cannot {action} it")
    why = reason or f"{action}d by {current_user()}"
    if action == "abort":
        if _finish(project, found, now, "aborted", {}, why) is None:
            raise ConflictError(f"rollout #{found.id} changed meanwhile; look at its status and retry")
    else:
        changes: dict[str, Any] = {"state": "paused" if action == "pause" else "running"}
        if action == "resume":  # a fresh step: figures from now, judged after a full step
            changes |= {"step_started_at": now, "next_at": now + timedelta(seconds=found.every_s),
                        "baseline": snapshot(records.stats(project.backends.catalog, project.id, deployment))}  # fmt: skip
        event = RolloutEvent(now, f"{action}d", found.step, found.percent, {}, why)
        if not records.change(project.backends.catalog, found, changes, event):
            raise ConflictError(f"rollout #{found.id} changed meanwhile; look at its status and retry")
    refreshed = records.find(project.backends.catalog, project.id, deployment, found.id)
    assert refreshed is not None
    return refreshed
