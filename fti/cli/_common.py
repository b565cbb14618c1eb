"""What every command group shares: the project from the global options, output and errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fti.errors import FtiError, ValidationError

if TYPE_CHECKING:
    from fti.project import Project

F = TypeVar("F", bound=Callable[..., Any])


class CliState:
    """Global options, with the project opened on first use."""

    def __init__(self, home: str | None, project: str, as_json: bool) -> None:
        self.home = home
        self.project_name = project
        self.as_json = as_json
        self._project: Project | None = None

    def project(self, *, create: bool = False) -> Project:
        if self._project is None:
            from fti.project import connect

            self._project = connect(
                self.home, self.project_name, create=create or self.project_name == "default"
            )
        return self._project

    def close(self) -> None:
        if self._project is not None:
            self._project.close()


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
