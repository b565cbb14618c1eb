"""``fti deployments``: list, deploy, stop, start, delete deployments, read their inference logs and
compare the variants of a split deployment (A/B readout)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from fti.cli._common import (
    Column,
    emit,
    format_option,
    handle_errors,
    json_option,
    parse_time,
    print_rows,
    state,
)
from fti.errors import FtiError, NotFoundError


@click.group()
def deployments() -> None:
    """Model deployments: list, deploy, stop, start, delete, logs, compare."""


def _row(dep: Any) -> dict[str, Any]:
    data: dict[str, Any] = dep.to_dict()
    try:
        data["serves"] = dep.model_version().ref
    except FtiError as exc:  # the model or its alias is gone: the listing still shows the rest
        data["serves"] = f"({exc.message})"
    config = data.get("config") or {}
    variants = [f"{n} {v['model']} {v['percent']:g} %" for n, v in (config.get("variants") or {}).items()]
    data["split"] = ", ".join(variants + ([f"shadow {config['shadow']}"] if config.get("shadow") else []))
    return data


@deployments.command("list")
@format_option
@json_option
@handle_errors
def list_(fmt: str) -> None:
    """List the project's deployments and the model version each serves now."""
    data = [_row(d) for d in state().project(read_only=True).serving.list()]
    print_rows(
        data,
        [
            Column("name", "name", 22),
            Column("model", "follows", 22),
            Column("serves", "serves", 22),
            Column("status", "status"),
            Column("split", "split", 24),
        ],
        fmt,
    )


@deployments.command()
@click.argument("name")
@click.option("--model", "-m", "model", required=True, help="NAME (latest), NAME@ALIAS or NAME:VERSION.")
@click.option(
    "--max-batch-size", type=int, default=32, show_default=True, help="Rows merged into one predict."
)
@click.option(
    "--max-batch-delay-ms", type=float, default=2.0, show_default=True, help="Longest wait for a batch."
)
@click.option("--timeout-ms", type=int, default=10_000, show_default=True, help="504 after this long.")
@click.option("--enrich", is_flag=True, help="Look up the model's feature view online by primary key.")
@click.option("--allow-missing", is_flag=True, help="Accept null/NaN feature values.")
@click.option("--no-log", is_flag=True, help="Do not log the requests to <name>_inference_log.")
@click.option(
    "--scorer", type=click.Choice(["fastest", "converted", "native"]), default="fastest", show_default=True
)
@json_option
@handle_errors
def deploy(
    name: str,
    model: str,
    max_batch_size: int,
    max_batch_delay_ms: float,
    timeout_ms: int,
    enrich: bool,
    allow_missing: bool,
    no_log: bool,
    scorer: str,
) -> None:
    """Create or update deployment NAME serving --model (`fti serve` picks it up)."""
    dep = (
        state()
        .project()
        .serving.deploy(
            name,
            model,
            max_batch_size=max_batch_size,
            max_batch_delay_ms=max_batch_delay_ms,
            timeout_ms=timeout_ms,
            enrich=enrich,
            allow_missing=allow_missing,
            log_requests=not no_log,
            scorer=scorer,
        )
    )
    data = _row(dep)
    emit(data, table=lambda d: click.echo(f"deployed {d['name']}: {d['model']} (serves {d['serves']})"))


def _set(name: str, action: str) -> None:
    dep = state().project().serving.get(name)
    getattr(dep, action)()
    past = {"stop": "stopped", "start": "started", "delete": "deleted"}[action]
    emit({"name": name, "status": past}, table=lambda d: click.echo(f"{past} {name}"))


@deployments.command()
@click.argument("name")
@json_option
@handle_errors
def stop(name: str) -> None:
    """Stop serving NAME (servers unload it within their poll interval)."""
    _set(name, "stop")


@deployments.command()
@click.argument("name")
@json_option
@handle_errors
def start(name: str) -> None:
    """Serve NAME again."""
    _set(name, "start")


@deployments.command()
@click.argument("name")
@json_option
@handle_errors
def delete(name: str) -> None:
    """Delete deployment NAME (its inference log stays, as a feature group)."""
    _set(name, "delete")


@deployments.command()
@click.argument("name")
@click.option("--limit", "-n", type=int, default=20, show_default=True, help="Newest requests to show.")
@click.option("--since", default=None, help="Only requests logged since, e.g. 1h, 30m, 2d.")
@format_option
@json_option
@handle_errors
def logs(name: str, limit: int, since: str | None, fmt: str) -> None:
    """Show the newest logged inferences of NAME (its <name>_inference_log feature group)."""
    from fti.pipelines.schedules import parse_duration
    from fti.serving.request_log import log_group_name

    project = state().project(read_only=True)
    project.serving.get(name)  # NotFoundError for an unknown deployment
    try:
        group = project.feature_store.get_feature_group(log_group_name(name))
    except NotFoundError:
        raise NotFoundError(
            f"deployment {name!r} has logged no request yet (its log group {log_group_name(name)!r} "
            "does not exist): send a request to `fti serve` first"
        ) from None
    query = group.select_all()
    if since is not None:
        query = query.filter(
            group.get_feature("timestamp") >= datetime.now(UTC) - parse_duration(since, "--since")
        )
    frame = query.read()
    rows = frame.tail(max(limit, 0)).to_dict("records")
    data = [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()} for row in rows]
    shown = ["timestamp", "request_id", "model_version"]
    others = [k for k in (data[0] if data else {}) if k not in (*shown, "row", "model_name", "variant")]
    print_rows(
        data,
        [
            Column("timestamp", "time (UTC)"),
            Column("request_id", "request", 12),
            Column("model_version", "version"),
            *[Column(k, k, 10) for k in others[:4]],
        ],
        fmt,
    )


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


@deployments.command()
@click.argument("name")
@click.option(
    "--prediction", default="predict", show_default=True, help="The logged output compared with the labels."
)
@click.option("--start", default=None, help="Only predictions from this time (ISO 8601).")
@click.option("--end", default=None, help="... until this time (exclusive).")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Significance level of the tests.")
@json_option
@handle_errors
def compare(name: str, prediction: str, start: str | None, end: str | None, alpha: float) -> None:
    """A/B readout of deployment NAME: per variant requests, errors, p99, and realized accuracy (or
    MAE) from logged labels with a 95 % interval and a test against the champion."""
    readout = (
        state()
        .project()
        .monitoring.compare(
            name,
            prediction=prediction,
            start=parse_time(start, "--start"),
            end=parse_time(end, "--end"),
            alpha=alpha,
        )
    )
    data = [r.to_dict() for r in readout]

    def table(rows: list[dict[str, Any]]) -> None:
        from rich.console import Console
        from rich.table import Table

        t = Table(
            "variant",
            "requests",
            "errors",
            "p99 ms",
            "labelled",
            "metric",
            "95 % CI",
            "p vs champion",
            "significant",
        )
        for r in rows:
            ci = "-" if r["ci_low"] is None else f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
            metric = "-" if r["metric"] is None else f"{r['metric']} {_num(r['value'])}"
            significant = "-" if r["significant"] is None else ("yes" if r["significant"] else "no")
            t.add_row(r["variant"], str(r["requests"]), str(r["errors"]), _num(r["p99_ms"]), str(r["labelled"]),
                      metric, ci, _num(r["p_value"], 3), significant)  # fmt: skip
        Console().print(t)

    emit(data, table=table)
