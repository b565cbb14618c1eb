"""``fti pipelines``: deploy, list, show, run, runs, logs, pause, resume, backfill."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from fti.cli._common import Column, emit, format_option, handle_errors, json_option, print_rows, state
from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.pipelines.pipeline import Pipeline
    from fti.pipelines.runs import PipelineRun


@click.group()
def pipelines() -> None:
    """Pipelines: deploy, list, show, run, runs, logs, pause, resume, backfill."""


def _parse_time(value: str, label: str) -> datetime:
    """ISO 8601 (``2024-01-01``, ``2024-01-01T06:00``, ``...+02:00``); naive means UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(
            f"invalid {label} {value!r}: use ISO 8601 like 2024-01-01 or 2024-01-01T06:00:00+00:00"
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"invalid --param {item!r}: use --param name=value")
        params[key.strip()] = value
    return params


def _summary(p: Pipeline, service: dict[str, Any] | None = None) -> dict[str, Any]:
    when = p.schedule.describe() if p.schedule is not None else ""
    if p.kind == "stream":  # a service: its state and lag
        lag = None if service is None else service.get("lag")
        when = (
            "stream service, run by fti scheduler"
            if service is None
            else f"stream service {service['state']}"
        )
        when += "" if lag is None else f", lag {lag}"
    if p.trigger is not None:
        t = p.trigger.to_dict()
        what = (
            f"new data in {t['feature_group']} (>= {t['min_rows']} rows)"
            if t["type"] == "new_data"
            else f"event {t['event']}"
        )
        when = f"{when}; {what}" if when else what
    return {
        "name": p.name,
        "kind": p.kind,
        "when": when or "manual",
        "paused": p.paused,
        "next_run": None if p.next_run is None else p.next_run.isoformat(),
        "retries": p.retries,
        "timeout": p.timeout,
        "concurrency": p.concurrency,
        **({} if service is None else {"service": service}),
    }


def _services(project: Any, pipelines: list[Pipeline], dead_letters: int = 0) -> dict[str, dict[str, Any]]:
    from fti.pipelines.services import service_status

    return service_status(project, pipelines, dead_letters=dead_letters)


def _print_runs(rows: list[dict[str, Any]], fmt: str = "table") -> None:
    print_rows(
        rows,
        [
            Column("id", "id"),
            Column("pipeline", "pipeline", 16),
            Column("status", "status"),
            Column("trigger", "trigger", 8),
            Column("attempt", "try"),
            Column("started_at", "started (UTC)"),
            Column("duration", "seconds", fmt=lambda d: "" if d is None else f"{d:.1f}"),
            Column("error", "error", 14),
        ],
        fmt,
    )


@pipelines.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--check-env",
    is_flag=True,
    help="Build (or find cached) the isolated environment of every pipeline with requirements now; "
    "a requirement that does not resolve fails the deploy with uv's message.",
)
@json_option
@handle_errors
def deploy(path: str, check_env: bool) -> None:
    """Register (or update) the pipelines declared in the Python module at PATH."""
    from pathlib import Path

    catalog = state().project(create=True).pipelines
    source = str(Path(path).expanduser().resolve())
    before = {p.name for p in catalog.list() if p.source_path == source and not p.paused}
    deployed = catalog.deploy(path, check_env=check_env)
    data = [_summary(p) for p in deployed]
    vanished = sorted(before - {p.name for p in deployed})

    def table(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            click.echo(f"deployed {r['kind']} pipeline {r['name']}: {r['when']}")
        for name in vanished:
            click.echo(f"paused pipeline {name}: {path} no longer declares it")

    emit(data, table=table)


@pipelines.command("list")
@format_option
@json_option
@handle_errors
def list_(fmt: str) -> None:
    """List the deployed pipelines."""
    project = state().project(read_only=True)
    deployed = project.pipelines.list()
    services = _services(project, deployed)
    data = [_summary(p, services.get(p.name)) for p in deployed]
    print_rows(
        data,
        [
            Column("name", "name", 18),
            Column("kind", "kind"),
            Column("when", "when", 22),
            Column("next_run", "next run (UTC)"),
            Column("paused", "paused"),
        ],
        fmt,
    )


@pipelines.command()
@click.argument("name")
@json_option
@handle_errors
def show(name: str) -> None:
    """Show a pipeline's definition and its latest runs."""
    project = state().project(read_only=True)
    catalog = project.pipelines
    pipeline = catalog.get(name)
    data = pipeline.to_dict()
    data["runs"] = [r.to_dict() for r in catalog.runs(name, limit=10)]
    if pipeline.kind == "stream":
        data["service"] = _services(project, [pipeline], dead_letters=5)[name]

    def table(d: dict[str, Any]) -> None:
        for key in (
            "name",
            "kind",
            "function",
            "source_path",
            "source_digest",
            "schedule",
            "trigger",
            "retries",
            "retry_backoff",
            "timeout",
            "concurrency",
            "missed",
            "paused",
            "next_run",
        ):
            click.echo(f"{key:>14}: {d[key]}")
        if d["description"]:
            click.echo(d["description"])
        if "service" in d:
            for key, value in d["service"].items():
                if key != "recent_dead_letters":
                    click.echo(f"{key:>16}: {'' if value is None else value}")
            for letter in d["service"].get("recent_dead_letters", []):
                click.echo(f"dead letter {letter['id']}: {letter['reason']}")
            return
        _print_runs(d["runs"])

    emit(data, table=table)


def _report(run: PipelineRun) -> None:
    data = run.to_dict()

    def table(d: dict[str, Any]) -> None:
        seconds = "" if d["duration"] is None else f" in {d['duration']:.1f}s"
        click.echo(f"run {d['id']} of {d['pipeline']}: {d['status']}{seconds} (exit code {d['exit_code']})")
        if d["error"]:
            click.echo(f"error: {d['error']}", err=True)
        click.echo(f"logs: fti pipelines logs {d['id']}")

    emit(data, table=table)


HEARTBEAT_SECONDS = 15.0
"""How often a line says that a run is still going, when no spinner shows it (output not a terminal)."""


class _Lines:
    """Progress of ``run`` and ``backfill`` on stderr (stdout keeps the result, also for --json):
    a line when each attempt starts and ends, the retries, and while a run goes on without a
    spinner on screen (output to a file or a CI log), a line every :data:`HEARTBEAT_SECONDS`."""

    def __init__(self) -> None:
        self._stop: threading.Event | None = None

    @staticmethod
    def _what(run: PipelineRun) -> str:
        if run.window_start is not None and run.window_end is not None:
            return f"{run.pipeline} window {run.window_start.isoformat()} to {run.window_end.isoformat()}"
        return run.pipeline

    def start(self, run: PipelineRun, allowed: int) -> None:
        what = self._what(run)
        attempt = f" (attempt {run.attempt} of {allowed})" if allowed > 1 else ""
        click.echo(f"{what}: run {run.id} started{attempt}", err=True)
        from fti import _progress

        if not _progress.enabled():
            self._stop = threading.Event()
            threading.Thread(target=self._beat, args=(what, run.id, self._stop), daemon=True).start()

    @staticmethod
    def _beat(what: str, run_id: int, stop: threading.Event) -> None:
        started = time.monotonic()
        while not stop.wait(HEARTBEAT_SECONDS):
            click.echo(f"{what}: run {run_id} still running ({time.monotonic() - started:.0f}s)", err=True)

    def attempt(self, run: PipelineRun, allowed: int, delay: float | None) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        took = "" if run.duration is None else f" in {run.duration:.1f}s"
        if allowed > 1:
            line = f"{self._what(run)}: attempt {run.attempt} of {allowed} {run.status}{took} (run {run.id})"
        else:
            line = f"{self._what(run)}: run {run.id} {run.status}{took}"
        click.echo(line + (f": {run.error}" if run.error else ""), err=True)
        if delay is not None:
            click.echo(f"retrying in {delay:.1f}s: attempt {run.attempt + 1} of {allowed}", err=True)


no_retries_option = click.option(
    "--no-retries",
    is_flag=True,
    help="One attempt (per window) whatever the pipeline's retries say.",
)


@pipelines.command()
@click.argument("name")
@click.option("--param", "params", multiple=True, help="name=value passed to the function (repeatable).")
@click.option("--start", default=None, help="Window start (ISO 8601; default: the last closed window).")
@click.option("--end", default=None, help="Window end (ISO 8601).")
@no_retries_option
@json_option
@handle_errors
def run(name: str, params: tuple[str, ...], start: str | None, end: str | None, no_retries: bool) -> None:
    """Run pipeline NAME now, in a subprocess, and wait for the outcome (exit status 1 if it failed).

    A failed attempt is retried per the pipeline's retries and backoff (--no-retries: one attempt).
    Progress goes to stderr: each attempt's start and outcome, and a line every 15 s while it runs.
    """
    lines = _Lines()
    result = (
        state()
        .project()
        .pipelines.run(
            name,
            params=_parse_params(params),
            start=None if start is None else _parse_time(start, "--start"),
            end=None if end is None else _parse_time(end, "--end"),
            retries=not no_retries,
            on_attempt=lines.attempt,
            on_start=lines.start,
        )
    )
    _report(result)
    if result.status != "succeeded":
        sys.exit(1)


@pipelines.command()
@click.argument("name", required=False)
@click.option("--limit", "-n", type=int, default=20, show_default=True, help="Runs to show.")
@format_option
@json_option
@handle_errors
def runs(name: str | None, limit: int, fmt: str) -> None:
    """List runs of pipeline NAME (or of all pipelines), newest first."""
    data = [r.to_dict() for r in state().project(read_only=True).pipelines.runs(name, limit=limit)]
    _print_runs(data, fmt)


@pipelines.command()
@click.argument("run_id", type=int)
@click.option("--stream", type=click.Choice(["stdout", "stderr", "both"]), default="both", show_default=True)
@json_option
@handle_errors
def logs(run_id: int, stream: str) -> None:
    """Print the captured output of run RUN_ID."""
    data = state().project(read_only=True).pipelines.logs(run_id)
    if stream != "both":
        data = {stream: data[stream]}

    def table(d: dict[str, str]) -> None:
        for name, text in d.items():
            if len(d) > 1:
                click.echo(f"----- {name} -----")
            click.echo(text, nl=not text.endswith("\n"))

    emit(data, table=table)


@pipelines.command()
@click.argument("name")
@json_option
@handle_errors
def pause(name: str) -> None:
    """Stop scheduling and triggering NAME."""
    emit(_summary(state().project().pipelines.pause(name)), table=lambda d: click.echo(f"paused {d['name']}"))


@pipelines.command()
@click.argument("name")
@json_option
@handle_errors
def resume(name: str) -> None:
    """Resume NAME (missed fire times follow its missed-run policy)."""
    emit(
        _summary(state().project().pipelines.resume(name)), table=lambda d: click.echo(f"resumed {d['name']}")
    )


@pipelines.command()
@click.argument("name")
@click.option("--start", required=True, help="Start of the range (ISO 8601; naive means UTC).")
@click.option("--end", required=True, help="End of the range (ISO 8601).")
@click.option(
    "--step", default=None, help="Window length, e.g. 1h or 1d (default: the schedule's fire times)."
)
@click.option("--param", "params", multiple=True, help="name=value passed to every run (repeatable).")
@no_retries_option
@json_option
@handle_errors
def backfill(
    name: str, start: str, end: str, step: str | None, params: tuple[str, ...], no_retries: bool
) -> None:
    """Run NAME over [START, END) window by window, oldest first (exit status 1 if any failed).

    Each window is retried per the pipeline's retries before the next starts (--no-retries: one
    attempt per window). Progress goes to stderr, as for ``run``.
    """
    lines = _Lines()
    results = (
        state()
        .project()
        .pipelines.backfill(
            name,
            _parse_time(start, "--start"),
            _parse_time(end, "--end"),
            step=step,
            params=_parse_params(params),
            retries=not no_retries,
            on_attempt=lines.attempt,
            on_start=lines.start,
        )
    )
    emit([r.to_dict() for r in results], table=_print_runs)
    if any(r.status != "succeeded" for r in results):
        sys.exit(1)
