"""``fti runs``: list and show training runs."""

from __future__ import annotations

from typing import Any

import click

from fti.cli._common import Column, emit, format_option, handle_errors, json_option, print_rows, state


@click.group()
def runs() -> None:
    """Training runs: list, show."""


@runs.command("list")
@click.option("--name", default=None, help="Only runs with this name.")
@format_option
@json_option
@handle_errors
def list_(name: str | None, fmt: str) -> None:
    """List the project's training runs, newest first."""
    from fti.training.runs import list_runs

    data = [r.record().to_dict(packages=False) for r in list_runs(state().project(read_only=True), name)]
    print_rows(
        data,
        [
            Column("id", "id"),
            Column("name", "name", 18),
            Column("status", "status"),
            Column("start_time", "started (UTC)"),
            Column("metrics", "metrics", 24, lambda m: ", ".join(f"{k}={v:.4g}" for k, v in m.items())),
        ],
        fmt,
    )


@runs.command()
@click.argument("run_id", type=int)
@json_option
@handle_errors
def show(run_id: int) -> None:
    """Show a run: params, metric series, status, git commit, Python and packages."""
    from fti.training.runs import get_run

    run = get_run(state().project(read_only=True), run_id)
    data = run.record().to_dict()
    data["metric_history"] = {
        key: [{"step": p.step, "value": p.value, "logged_at": p.logged_at.isoformat()} for p in points]
        for key, points in run.metric_history().items()
    }
    data["models"] = [f"{mv.name}:{mv.version}" for mv in run.models()]

    def table(d: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        t = Table(title=f"run {d['id']} {d['name']}", show_header=False)
        for key in ("status", "start_time", "end_time", "error", "git_commit", "git_dirty", "python_version"):
            t.add_row(key, "" if d[key] is None else str(d[key]))
        t.add_row("packages", str(len(d["packages"])))
        t.add_row("params", ", ".join(f"{k}={v}" for k, v in d["params"].items()))
        t.add_row("models", ", ".join(d["models"]))
        console.print(t)
        m = Table("metric", "step", "value", title="metrics")
        for key, points in d["metric_history"].items():
            for p in points:
                m.add_row(key, str(p["step"]), f"{p['value']:.6g}")
        console.print(m)

    emit(data, table=table)
