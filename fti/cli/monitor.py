"""``fti monitor``: create, list, show, run, backfill, labels, alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from fti.cli._common import emit, handle_errors, json_option, state
from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.monitoring.monitors import Monitor
    from fti.monitoring.results import MonitorResult

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """One character per value, scaled between the smallest and largest; a gap for a missing one."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    span = high - low or 1.0
    return "".join(" " if v is None else SPARKS[min(7, int((v - low) / span * 7.999))] for v in values)


def _time(value: str | None, label: str) -> Any:
    from fti.cli.pipelines import _parse_time

    return None if value is None else _parse_time(value, label)


def _pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValidationError(f"invalid {what} {item!r}: use name=value")
        out[key.strip()] = value.strip()
    return out


@click.group()
def monitor() -> None:
    """Monitors: drift, performance and alerts of deployments and feature groups."""


@monitor.command()
@click.argument("name")
@click.option("--deployment", default=None, help="Monitor this deployment's inference log.")
@click.option("--feature-group", default=None, help="Or this feature group (e.g. batch predictions).")
@click.option("--feature-group-version", type=int, default=None, help="Its version (default: latest).")
@click.option("--model", default=None, help="The model judged (default for a deployment: the one it serves).")
@click.option("--window", default="1h", show_default=True, help="Window length (30m, 1h, 1d).")
@click.option("--schedule", default=None, help="Cron expression; each fire evaluates the last window.")
@click.option("--timezone", default="UTC", show_default=True, help="The schedule's time zone.")
@click.option("--feature", "features", multiple=True, help="A column to monitor (repeatable; default all).")
@click.option(
    "--test", "tests", multiple=True, help="column=test, e.g. amount=psi (repeatable; default auto)."
)
@click.option("--threshold", "thresholds", multiple=True, help="column-or-test=value, e.g. psi=0.2.")
@click.option("--reference-version", type=int, default=None, help="Training-dataset version as reference.")
@click.option("--reference-start", default=None, help="Or a window of the data as reference: its start.")
@click.option("--reference-end", default=None, help="... and its end.")
@click.option(
    "--slice", "slices", multiple=True, help="Slice performance by a column, or column=edge,edge,..."
)
@click.option("--performance", "conditions", multiple=True, help="metric=condition, e.g. 'roc_auc=< 0.85'.")
@click.option("--alert-event", default=None, help="Alert: fire this pipeline event (e.g. drift_detected).")
@click.option("--webhook", default=None, help="Alert: POST each alert as JSON to this URL.")
@click.option(
    "--cooldown", default="6h", show_default=True, help="Alert: at most one per kind within this time."
)
@click.option(
    "--alert-on", type=click.Choice(["dataset", "any", "none"]), default="dataset", show_default=True
)
@click.option("--description", default="", help="Free text.")
@json_option
@handle_errors
def create(name: str, **options: Any) -> None:
    """Create monitor NAME (profiles its reference; registers its schedule)."""
    import fti

    tests = _pairs(options["tests"], "--test")
    thresholds = {k: float(v) for k, v in _pairs(options["thresholds"], "--threshold").items()}
    reference: Any = options["reference_version"]
    if options["reference_start"] or options["reference_end"]:
        reference = (
            _time(options["reference_start"], "--reference-start"),
            _time(options["reference_end"], "--reference-end"),
        )
    slices: list[Any] = []
    for item in options["slices"]:
        column, sep, edges = item.partition("=")
        slices.append({column: [float(e) for e in edges.split(",")]} if sep else column)
    alert = None
    if options["alert_event"] or options["webhook"]:
        drift = None if options["alert_on"] == "none" else options["alert_on"]
        alert = fti.alert(
            event=options["alert_event"],
            webhook=options["webhook"],
            cooldown=options["cooldown"],
            drift=drift,
        )
    mon = (
        state()
        .project(create=True)
        .monitoring.create_monitor(
            name,
            deployment=options["deployment"],
            feature_group=options["feature_group"],
            feature_group_version=options["feature_group_version"],
            model=options["model"],
            window=options["window"],
            schedule=options["schedule"],
            timezone=options["timezone"],
            features=list(options["features"]) or None,
            tests=tests or "auto",
            thresholds=thresholds or None,
            reference=reference,
            slices=slices or None,
            performance=_pairs(options["conditions"], "--performance") or None,
            alert=alert,
            description=options["description"],
        )
    )

    def table(d: dict[str, Any]) -> None:
        click.echo(
            f"created monitor {d['name']} of {d['source']['kind']} {d['source']['name']}: {len(d['features'])} feature(s), {len(d['predictions'])} prediction(s)"
        )
        if d["pipeline"]:
            click.echo(
                f"scheduled as pipeline {d['pipeline']} ({d['schedule']['cron']}); run `fti scheduler`"
            )

    emit(mon.to_dict(), table=table)


def _summary(mon: Monitor) -> dict[str, Any]:
    last = mon.runs(limit=1)
    run = last[0] if last else None
    return {
        "name": mon.name,
        "source": f"{mon.data.kind} {mon.data.name}",
        "model": mon.model,
        "window": str(mon.window),
        "schedule": mon.schedule,
        "last_window": None if run is None else run.window_start.isoformat(),
        "status": None if run is None else run.status,
        "dataset_drift": None if run is None else run.dataset_drift,
        "drifted": [] if run is None else run.drifted,
    }


@monitor.command("list")
@json_option
@handle_errors
def list_() -> None:
    """List the monitors with their latest window."""
    data = [_summary(m) for m in state().project().monitoring.list_monitors()]

    def table(rows: list[dict[str, Any]]) -> None:
        from rich.console import Console
        from rich.table import Table

        t = Table("name", "monitors", "model", "window", "schedule", "last window", "status", "drifted")
        for r in rows:
            drift = ", ".join(r["drifted"]) if r["drifted"] else ("" if r["status"] is None else "none")
            t.add_row(
                r["name"],
                r["source"],
                r["model"] or "",
                r["window"],
                r["schedule"] or "manual",
                r["last_window"] or "",
                r["status"] or "",
                drift,
            )
        Console().print(t)

    emit(data, table=table)


@monitor.command()
@click.argument("name")
@click.option("--last", "last", type=int, default=24, show_default=True, help="Windows in the history.")
@json_option
@handle_errors
def show(name: str, last: int) -> None:
    """Show a monitor and each column's statistic over its last windows (sparklines)."""
    mon = state().project().monitoring.get_monitor(name)
    runs = list(reversed(mon.runs(limit=last)))
    runs = [r for r in runs if r.status != "failed"]
    columns = [*mon.features, *mon.predictions]
    history = {c: [r.summary.get("columns", {}).get(c, {}).get("statistic") for r in runs] for c in columns}
    data = {
        **mon.to_dict(),
        "windows": [r.to_dict() for r in runs],
        "history": history,
        "alerts": [a.to_dict() for a in mon.alerts(limit=5)],
    }

    def table(d: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        console.print(
            f"[bold]{d['name']}[/bold]: {d['source']['kind']} {d['source']['name']}, model {d['model']}, window {mon.window}, schedule {d['schedule'] or 'manual'}"
        )
        console.print(f"reference: {d['reference']}; results in feature group {d['results_group']}")
        t = Table("column", "test", f"last {len(runs)} windows", "latest", "threshold", "drifted")
        # the latest values are those of the latest window with data
        with_data = [r for r in runs if r.status == "ok"]
        latest = with_data[-1].summary.get("columns", {}) if with_data else {}
        for column in columns:
            info = latest.get(column, {})
            t.add_row(
                column,
                str(info.get("test", "")),
                sparkline(history[column]),
                "" if info.get("statistic") is None else f"{info['statistic']:.4g}",
                "" if info.get("threshold") is None else f"{info['threshold']:g}",
                "[red]yes[/red]" if info.get("drifted") else "no" if info else "",
            )
        console.print(t)
        if runs and runs[-1].summary.get("performance"):
            perf = ", ".join(
                f"{k} {v:.3f}" for k, v in runs[-1].summary["performance"].items() if v is not None
            )
            console.print(f"performance (latest window): {perf}")
        for a in d["alerts"]:
            console.print(
                f"alert {a['id']} {a['status']}: {a['kind']} in [{a['window_start']}, {a['window_end']})"
            )

    emit(data, table=table)


def _print_result(result: MonitorResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"window [{result.window_start.isoformat()}, {result.window_end.isoformat()}): {result.status}, {result.rows} rows, "
        f"dataset drift {'[red]yes[/red]' if result.dataset_drift else 'no'} ({result.drift_share:.0%} of features)"
    )
    if result.status != "ok":
        return
    t = Table("column", "role", "test", "statistic", "threshold", "p-value", "drifted")
    for o in result.outcomes:
        if o.kind != "drift":
            continue
        t.add_row(
            o.column, result.roles.get(o.column, ""), o.test, f"{o.statistic:.4g}", f"{o.threshold:g}",
            "" if o.p_value is None else f"{o.p_value:.3g}", "[red]yes[/red]" if o.drifted else "no",
        )  # fmt: skip
    console.print(t)
    for o in result.failed_checks:
        console.print(
            f"[yellow]check failed[/yellow]: {o.column} {o.test} {o.statistic:.3g} > {o.threshold:g}"
        )
    for p in result.performance:
        if p.model_version == 0 and not p.slice and p.value is not None:
            console.print(f"{p.kind} {p.metric}: {p.value:.4f} ({p.rows} rows)")
    for a in result.alerts:
        console.print(f"alert {a.id} {a.status}: {a.kind}")


@monitor.command()
@click.argument("name")
@click.option("--start", default=None, help="Window start (ISO 8601; default: the last complete window).")
@click.option("--end", default=None, help="Window end (ISO 8601).")
@json_option
@handle_errors
def run(name: str, start: str | None, end: str | None) -> None:
    """Evaluate one window of monitor NAME now."""
    mon = state().project().monitoring.get_monitor(name)
    result = mon.run(_time(start, "--start"), _time(end, "--end"))
    emit(result.to_dict(), table=lambda _: _print_result(result))


@monitor.command()
@click.argument("name")
@click.option("--start", required=True, help="Range start (ISO 8601).")
@click.option("--end", required=True, help="Range end (ISO 8601).")
@json_option
@handle_errors
def backfill(name: str, start: str, end: str) -> None:
    """Evaluate every window of [--start, --end) of monitor NAME, oldest first."""
    mon = state().project().monitoring.get_monitor(name)
    results = mon.backfill(_time(start, "--start"), _time(end, "--end"))
    data = [
        {
            "window_start": r.window_start.isoformat(),
            "window_end": r.window_end.isoformat(),
            "status": r.status,
            "rows": r.rows,
            "dataset_drift": r.dataset_drift,
            "drifted": r.drifted_columns,
            "alerts": [a.status for a in r.alerts],
        }
        for r in results
    ]

    def table(rows: list[dict[str, Any]]) -> None:
        from rich.console import Console
        from rich.table import Table

        t = Table("window start", "window end", "status", "rows", "dataset drift", "drifted", "alerts")
        for r in rows:
            t.add_row(
                r["window_start"],
                r["window_end"],
                r["status"],
                str(r["rows"]),
                "yes" if r["dataset_drift"] else "no",
                ", ".join(r["drifted"]),
                ", ".join(r["alerts"]),
            )
        Console().print(t)

    emit(data, table=table)


def read_frame(path: str) -> Any:
    """A Parquet, CSV or JSON-lines file as an Arrow table (by extension)."""
    from pathlib import Path

    import pyarrow as pa

    file = Path(path)
    if not file.is_file():
        raise ValidationError(f"no such file {path!r}")
    suffix = file.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(file)
        if suffix == ".csv":
            import pyarrow.csv as pcsv

            return pcsv.read_csv(file)
        if suffix in (".json", ".jsonl", ".ndjson"):
            import pyarrow.json as pjson

            return pjson.read_json(file)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"cannot read {path!r}: {exc}") from exc
    raise ValidationError(f"labels file {path!r}: use .parquet, .csv or .jsonl")


@monitor.command()
@click.argument("target")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--label", default=None, help="The label column (default: the model's label name).")
@click.option("--unknown", type=click.Choice(["error", "skip", "keep"]), default="error", show_default=True)
@click.option("--model", default=None, help="The model of a feature-group target.")
@json_option
@handle_errors
def labels(target: str, file: str, label: str | None, unknown: str, model: str | None) -> None:
    """Attach the labels in FILE (Parquet, CSV or JSON lines) to the predictions of TARGET."""
    result = (
        state()
        .project()
        .monitoring.log_labels(target, read_frame(file), label=label, unknown=unknown, model=model)
    )

    def table(d: dict[str, Any]) -> None:
        click.echo(
            f"{d['written']} label(s) written to {d['feature_group']} (joined by {d['join']}): "
            f"{d['matched']} match logged predictions, {d['unknown']} do not"
        )
        if d["unknown_examples"]:
            click.echo(f"unknown, e.g.: {d['unknown_examples']}")

    emit(result.to_dict(), table=table)


@monitor.command()
@click.argument("name", required=False)
@click.option("--limit", "-n", type=int, default=20, show_default=True)
@json_option
@handle_errors
def alerts(name: str | None, limit: int) -> None:
    """List alerts (of monitor NAME, or of all), newest first."""
    data = [a.to_dict() for a in state().project().monitoring.alerts(name, limit=limit)]

    def table(rows: list[dict[str, Any]]) -> None:
        from rich.console import Console
        from rich.table import Table

        t = Table("id", "monitor", "kind", "status", "window", "breaches", "event", "webhook")
        for r in rows:
            what = ", ".join(str(b.get("column") or b.get("condition")) for b in r["breaches"])
            hook = "" if r["webhook"] is None else f"{r['webhook']['status_code'] or r['webhook']['error']}"
            t.add_row(
                str(r["id"]),
                r["monitor"],
                r["kind"],
                r["status"],
                f"{r['window_start']} .. {r['window_end']}",
                what,
                str(r["event_id"] or ""),
                hook,
            )
        Console().print(t)

    emit(data, table=table)
