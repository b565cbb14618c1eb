"""What every command group shares: the project from the global options, output and errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fti.errors import FtiError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from pathlib import Path

    from fti.project import Project

F = TypeVar("F", bound=Callable[..., Any])


class CliState:
    """Global options, with the project opened on first use."""

    def __init__(self, home: str | None, project: str, as_json: bool) -> None:
        self.home = home
        self.project_name = project
        self.as_json = as_json
        self._project: Project | None = None

    def project(self, *, create: bool = False, read_only: bool = False) -> Project:
        """The project of the global options.

        Args:
            create: Create the project if it does not exist (the default project always is).
            read_only: The command only reads: a home that holds no catalog yet is an error that
                names the home, instead of a new, empty ``./.fti`` left behind.
        """
        if self._project is None:
            from fti.config import load_settings
            from fti.project import connect

            settings = load_settings(self.home)
            # a home that is a file: connect says so
            fresh = (
                settings.catalog_url is None
                and not (settings.home / "catalog.db").exists()
                and not settings.home.is_file()
            )
            if fresh and read_only:
                raise NotFoundError(
                    f"no fti project here: the fti home {_home_text(settings.home, self.home)} has no "
                    "catalog yet. Pass --home (or set FTI_HOME) to the home you meant, or create "
                    "this one with `fti info --create`"
                )
            self._project = connect(
                settings=settings, project=self.project_name, create=create or self.project_name == "default"
            )
            if fresh and self.home is None:  # the default ./.fti: say where it went
                click.echo(
                    f"created the fti home {_home_text(settings.home, self.home)} (pass --home or set "
                    "FTI_HOME to use another)",
                    err=True,
                )
        return self._project

    def close(self) -> None:
        if self._project is not None:
            self._project.close()


def _home_text(home: Path, given: str | None) -> str:
    """The home and where it came from, for messages."""
    import os

    if given is not None and os.environ.get("FTI_HOME") != given:
        source = "--home"
    elif os.environ.get("FTI_HOME"):
        source = "FTI_HOME"
    else:
        source = "the default ./.fti in the current directory; FTI_HOME is not set"
    return f"{str(home)!r} ({source})"


def state() -> CliState:
    ctx = click.get_current_context()
    obj = ctx.find_object(CliState)
    assert obj is not None
    return obj


def json_option(func: F) -> F:
    """Add ``--json`` to a command (also accepted globally before the command)."""

    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            state().as_json = True
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=callback,
        help="Print JSON instead of a table.",
    )(func)


def emit(data: Any, *, table: Callable[[Any], None] | None = None) -> None:
    """Print ``data`` as JSON when ``--json`` was given, else with ``table`` (rich) or as text."""
    if state().as_json or table is None:
        import orjson

        sys.stdout.write(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode()
            + "\n"
        )
    else:
        table(data)


def handle_errors(func: F) -> F:
    """Turn FtiError into a clean message (or JSON body) and exit status 1 (2 for bad usage)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FtiError as exc:
            ctx = click.get_current_context(silent=True)
            obj = ctx.find_object(CliState) if ctx else None
            if obj is not None and obj.as_json:
                import orjson

                sys.stderr.write(orjson.dumps(exc.to_dict(), default=str).decode() + "\n")
            else:
                click.echo(f"Error: {exc.message}", err=True)
            sys.exit(2 if exc.http_status < 500 else 1)

    return wrapper  # type: ignore[return-value]


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time given to ``option`` (naive times are UTC), or None."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"{option} {value!r} is not an ISO 8601 time; use e.g. 2024-06-01 or 2024-06-01T12:00:00+00:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


FORMATS = ("table", "csv", "json")


def format_option(func: F) -> F:
    """Add ``--format table|csv|json`` to a listing command (``--json`` is ``--format json``)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table (fits the terminal, long values cut), csv or json (every column, whole values).",
    )(func)


@dataclass(frozen=True)
class Column:
    """A column of a listing table: the row key, its header and how wide it may get."""

    key: str
    header: str
    width: int | None = None
    """Longest text shown; longer values end in '…' (None: no limit)."""
    fmt: Callable[[Any], str] | None = None


def print_rows(rows: list[dict[str, Any]], columns: list[Column], fmt: str = "table") -> None:
    """Print ``rows`` as a table of ``columns``, or with every key as CSV or JSON.

    The table fits the terminal (80 columns when the output is not one): values longer than a
    column's width end in '…', and a last line says how to see everything (``--format csv|json``).
    """
    if state().as_json or fmt == "json":
        emit(rows)
        return
    if fmt == "csv":
        import csv

        keys = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.DictWriter(sys.stdout, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in keys})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(
            column.header,
            min_width=len(column.header),  # headers are never cut; long values are
            max_width=column.width,
            overflow="ellipsis",
            no_wrap=True,
        )
    cut = False
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column.key)
            text = column.fmt(value) if column.fmt is not None else cell(value)
            cut = cut or (column.width is not None and len(text) > column.width)
            cells.append(text)
        table.add_row(*cells)
    console.print(table)
    hidden = {k for row in rows for k in row} - {c.key for c in columns}
    if cut or hidden:
        console.print(
            "[dim](some values are cut or left out: --format csv or --format json shows them all)[/]"
        )


def cell(value: Any) -> str:
    """A value as table text: times to the minute in UTC, lists joined, floats short."""
    from datetime import datetime

    if value is None:
        return ""
    if isinstance(value, str) and len(value) >= 19 and value[10:11] in ("T", " ") and value[4:5] == "-":
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    return str(value)


def _csv_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        import orjson

        return orjson.dumps(value, default=str).decode()
    return value
