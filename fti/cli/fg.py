"""``fti fg``: list, show, read, commits and stats of feature groups; compact and vacuum them."""

from __future__ import annotations

import sys
from typing import Any

import click

from fti.cli._common import Column, emit, format_option, handle_errors, json_option, print_rows, state


@click.group()
def fg() -> None:
    """Feature groups: list, show, read, commits, stats, compact, vacuum."""


@fg.command("list")
@format_option
@json_option
@handle_errors
def list_(fmt: str) -> None:
    """List the project's feature groups."""
    groups = state().project(read_only=True).feature_store.list_feature_groups()
    data = [
        {
            "name": g.name,
            "version": g.version,
            "primary_key": g.primary_key,
            "event_time": g.event_time,
            "online_enabled": g.online_enabled,
            "commits": len(g.commits()),
            "description": g.description,
        }
        for g in groups
    ]
    print_rows(
        data,
        [
            Column("name", "name", 22),
            Column("version", "version"),
            Column("primary_key", "primary key", 16),
            Column("event_time", "event time", 10),
            Column("online_enabled", "online"),
            Column("commits", "commits"),
        ],
        fmt,
    )


@fg.command()
@click.argument("name")
@click.option("--version", "-v", type=int, default=None, help="Version (default: latest).")
@format_option
@json_option
@handle_errors
def commits(name: str, version: int | None, fmt: str) -> None:
    """List the commits of a feature group, oldest first: version, time, operation, rows, validation."""
    group = state().project(read_only=True).feature_store.get_feature_group(name, version)
    data = [
        {
            "version": c.version,
            "committed_at": c.committed_at.isoformat(),
            "operation": c.operation,
            "rows": c.rows_inserted,
            "validation": c.validation_status,
        }
        for c in group.commits()
    ]
    print_rows(
        data,
        [
            Column("version", "commit"),
            Column("committed_at", "committed at (UTC)"),
            Column("operation", "operation", 16),
            Column("rows", "rows"),
            Column("validation", "validation"),
        ],
        fmt,
    )


@fg.command()
@click.argument("name")
@click.option("--version", "-v", type=int, default=None, help="Feature group version (default: latest).")
@click.option(
    "--commit", "-c", type=int, default=None, help="Statistics as of this commit (default: latest)."
)
@format_option
@json_option
@handle_errors
def stats(name: str, version: int | None, commit: int | None, fmt: str) -> None:
    """Show the statistics of each feature: count, nulls, mean, std, min, max, distinct values."""
    group = state().project(read_only=True).feature_store.get_feature_group(name, version)
    statistics = group.statistics(commit)
    data = [
        {"feature": feature, **{k: v for k, v in values.items() if not isinstance(v, (dict, list))}}
        for feature, values in statistics.items()
    ]
    if state().as_json or fmt == "json":
        emit(statistics)  # histograms and top values included
        return
    print_rows(
        data,
        [
            Column("feature", "feature", 18),
            Column("count", "count"),
            Column("nulls", "nulls"),
            Column("mean", "mean", 9),
            Column("min", "min", 16),
            Column("max", "max", 16),
        ],
        fmt,
    )


@fg.command()
@click.argument("name")
@click.option("--version", "-v", type=int, default=None, help="Version (default: latest).")
@json_option
@handle_errors
def show(name: str, version: int | None) -> None:
    """Show a feature group: schema, commits and statistics."""
    group = state().project(read_only=True).feature_store.get_feature_group(name, version)
    data = group.to_dict()
    data["commits"] = [
        {
            "version": c.version,
            "committed_at": c.committed_at.isoformat(),
            "operation": c.operation,
            "rows_inserted": c.rows_inserted,
            "validation": c.validation_status,
        }
        for c in group.commits()
    ]
    data["statistics"] = group.statistics() if data["commits"] else {}

    def table(d: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        console.print(
            f"[bold]{d['name']}[/] v{d['version']}  key={d['primary_key']}  event_time={d['event_time']}  "
            f"online={'yes' if d['online_enabled'] else 'no'}"
        )
        if d["description"]:
            console.print(d["description"])
        if d.get("embedding_index"):
            index = d["embedding_index"]
            console.print(f"embedding index: {index['column']} ({index['metric']})")
        t = Table("feature", "dtype", "count", "nulls", "mean", "min", "max")
        stats = d["statistics"]
        for f in d["features"] or []:
            s = stats.get(f["name"], {})
            t.add_row(
                f["name"],
                f["dtype"],
                *(
                    str(s.get(k, "")) if s.get(k) is not None else ""
                    for k in ("count", "nulls", "mean", "min", "max")
                ),
            )
        console.print(t)
        c = Table("version", "committed at", "operation", "rows", "validation", title="commits")
        for row in d["commits"]:
            c.add_row(
                str(row["version"]),
                row["committed_at"],
                row["operation"],
                str(row["rows_inserted"]),
                row["validation"],
            )
        console.print(c)

    emit(data, table=table)


@fg.command()
@click.argument("name")
@click.option("--version", "-v", type=int, default=None, help="Feature group version (default: latest).")
@click.option("--as-of", "as_of", type=int, default=None, help="Commit version to read (time travel).")
@click.option("--limit", "-n", type=int, default=20, show_default=True, help="Rows to print (0 = all).")
@click.option("--columns", "-c", default=None, help="Comma-separated columns to read.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@json_option
@handle_errors
def read(
    name: str, version: int | None, as_of: int | None, limit: int, columns: str | None, fmt: str
) -> None:
    """Print a feature group's rows."""
    group = state().project(read_only=True).feature_store.get_feature_group(name, version)
    cols = [c.strip() for c in columns.split(",")] if columns else None
    table = group.read_arrow(as_of=as_of, columns=cols)
    if limit:
        table = table.slice(0, limit)
    if state().as_json or fmt == "json":
        emit(table.to_pylist())
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sys.stdout.buffer)
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(*table.column_names)
        for row in table.to_pylist():
            t.add_row(*("" if v is None else str(v) for v in row.values()))
        Console().print(t)


@fg.command()
@click.argument("name")
@click.option("--version", "-v", type=int, default=None, help="Feature group version (default: latest).")
@json_option
@handle_errors
def compact(name: str, version: int | None) -> None:
    """Rewrite a group's small offline files into few large ones (one commit that changes no row)."""
    group = state().project().feature_store.get_feature_group(name, version)
    committed = group.compact()
    emit(
        {"feature_group": group.name, "version": group.version, "commit": committed},
        table=lambda d: print(
            f"compacted {d['feature_group']} v{d['version']} as commit {d['commit']}"
            if d["commit"] is not None
            else f"{d['feature_group']} v{d['version']}: nothing to compact"
        ),
    )


@fg.command()
@click.argument("name")
@click.option("--version", "-v", type=int, default=None, help="Feature group version (default: latest).")
@click.option(
    "--retention",
    default="7d",
    show_default=True,
    help="Keep the files of every version younger than this (e.g. 36h, 7d; 0 keeps only the latest's).",
)
@json_option
@handle_errors
def vacuum(name: str, version: int | None, retention: str) -> None:
    """Delete offline files that no version younger than --retention needs (older versions can
    no longer be read)."""
    from datetime import timedelta

    from fti.pipelines.schedules import parse_duration

    keep = timedelta(0) if retention.strip() == "0" else parse_duration(retention, "--retention")
    group = state().project().feature_store.get_feature_group(name, version)
    removed = group.vacuum(keep)
    emit(
        {"feature_group": group.name, "version": group.version, "files_deleted": removed},
        table=lambda d: print(
            f"vacuumed {d['feature_group']} v{d['version']}: {d['files_deleted']} files deleted"
        ),
    )
