"""``fti batch``: batch inference from the command line, with a progress bar."""

from __future__ import annotations

from typing import Any

import click

from fti.cli._common import emit, handle_errors, json_option, parse_time, state
from fti.inference.selection import BATCH_PREFER


@click.group()
def batch() -> None:
    """Batch inference: score a model into a predictions feature group."""


@batch.command()
@click.argument("model")
@click.option(
    "--start", default=None, help="Inclusive start of the event-time range (ISO 8601; naive times are UTC)."
)
@click.option(
    "--end", default=None, help="Exclusive end of the event-time range (ISO 8601; naive times are UTC)."
)
@click.option("--output", "-o", required=True, help="Feature group receiving the predictions.")
@click.option(
    "--output-version", type=int, default=1, show_default=True, help="Version of that feature group."
)
@click.option("--chunk-rows", type=int, default=None, help="Rows read and scored at once (memory bound).")
@click.option(
    "--scorer",
    type=click.Choice(BATCH_PREFER),
    default="fastest",
    show_default=True,
    help="fastest: the quickest scorer verified against native predictions; factorized: a linear "
    "model scored per row of the joined groups, without materializing the join.",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="duckdb: this process; spark: the executors of FTI_SPARK_MASTER (see `fti info`).",
)
@json_option
@handle_errors
def score(
    model: str,
    start: str | None,
    end: str | None,
    output: str,
    output_version: int,
    chunk_rows: int | None,
    scorer: str,
    engine: str,
) -> None:
    """Score MODEL ("name@alias", "name" or "name:version") over its feature view's rows.

    Example: fti batch score fraud@production --start 2024-06-01 --end 2024-06-02 -o fraud_predictions
    (add --engine spark to score on a Spark cluster)
    """
    import fti.batch
    from fti.batch.job import DEFAULT_CHUNK_ROWS

    start_time, end_time = parse_time(start, "--start"), parse_time(end, "--end")
    project = state().project()
    options: dict[str, Any] = {
        "start_time": start_time,
        "end_time": end_time,
        "output": output,
        "output_version": output_version,
        "chunk_rows": DEFAULT_CHUNK_ROWS if chunk_rows is None else chunk_rows,
        "prefer": scorer,
        "engine": engine,
    }
    if state().as_json:
        result = fti.batch.score(project, model, **options)
    else:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (
            TextColumn("scoring {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(model, total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = fti.batch.score(project, model, progress=advance, **options)

    def table(data: dict[str, Any]) -> None:
        from rich.console import Console

        if data["output"] is None:
            Console().print(
                f"no rows in the range: nothing scored for {data['model_name']}:{data['model_version']}"
            )
            return
        Console().print(
            f"scored [bold]{data['rows']:,}[/] rows with {data['model_name']}:{data['model_version']} "
            f"({data['scorer']} scorer, {data['rows_per_second']:,.0f} rows/s) into feature group "
            f"[bold]{data['output']}[/] v{data['output_version']} (commit {data['commit_versions']})"
        )

    emit(result.to_dict(), table=table)
