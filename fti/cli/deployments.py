"""``fti deployments``: list deployments (with their traffic split) and compare their variants."""

from __future__ import annotations

from typing import Any

import click

from fti.cli._common import emit, handle_errors, json_option, parse_time, state


@click.group()
def deployments() -> None:
    """Deployments: list, compare (A/B readout of the variants)."""


@deployments.command("list")
@json_option
@handle_errors
def list_() -> None:
    """Every deployment with its model, status and traffic split."""
    data = [d.to_dict() for d in state().project().serving.list()]

    def table(rows: list[dict[str, Any]]) -> None:
        from rich.console import Console
        from rich.table import Table

        t = Table("name", "model", "status", "variants", "shadow")
        for r in rows:
            variants = ", ".join(
                f"{n} {v['model']} {v['percent']:g} %" for n, v in r["config"]["variants"].items()
            )
            t.add_row(r["name"], r["model"], r["status"], variants, r["config"]["shadow"] or "")
        Console().print(t)

    emit(data, table=table)


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
