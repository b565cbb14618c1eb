"""``fti secrets``: credentials stored encrypted in the catalog (values are never printed)."""

from __future__ import annotations

import os
import sys

import click

from fti.cli._common import Column, emit, format_option, handle_errors, json_option, print_rows, state
from fti.errors import ValidationError


@click.group()
def secrets() -> None:
    """Secrets: set, list, delete (values are encrypted and never shown)."""


def _read_value(name: str, from_env: str | None) -> str:
    if from_env is not None:
        value = os.environ.get(from_env)
        if not value:
            raise ValidationError(f"--from-env {from_env}: the environment variable is not set or empty")
        return value
    if sys.stdin.isatty():
        return str(click.prompt(f"Value of secret {name}", hide_input=True, confirmation_prompt=True))
    value = sys.stdin.read()
    # `echo pw | fti secrets set x` must not store the newline echo adds
    return value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")


@secrets.command("set")
@click.argument("name")
@click.option("--from-env", metavar="VAR", help="Take the value from environment variable VAR.")
@json_option
@handle_errors
def set_(name: str, from_env: str | None) -> None:
    """Set secret NAME (created or replaced).

    The value comes from a hidden prompt, or standard input when it is not a terminal
    (`fti secrets set NAME < file`), or `--from-env VAR`. It is never echoed.
    """
    from fti._names import check_secret_name

    check_secret_name(name)  # before asking for the value
    value = _read_value(name, from_env)
    info = state().project().secrets.set(name, value)
    emit(info.to_dict(), table=lambda d: click.echo(f"secret {d['name']} set"))


@secrets.command("list")
@format_option
@json_option
@handle_errors
def list_(fmt: str) -> None:
    """List secrets: names, who set them and when (never values)."""
    rows = [s.to_dict() for s in state().project(read_only=True).secrets.list()]

    print_rows(
        rows,
        [
            Column("name", "name", 28),
            Column("updated_at", "updated (UTC)"),
            Column("updated_by", "by", 16),
            Column("created_at", "created (UTC)"),
        ],
        fmt,
    )


@secrets.command()
@click.argument("name")
@json_option
@handle_errors
def delete(name: str) -> None:
    """Delete secret NAME."""
    state().project().secrets.delete(name)
    emit({"name": name, "deleted": True}, table=lambda d: click.echo(f"deleted secret {d['name']}"))


@secrets.command("generate-key")
def generate_key() -> None:
    """Print a new random key for FTI_SECRET_KEY."""
    from fti.secrets.keys import generate_key

    click.echo(generate_key())


@secrets.command("rotate-key")
@json_option
@handle_errors
def rotate_key() -> None:
    """Re-encrypt every secret with the first key of FTI_SECRET_KEY=new,old."""
    done = state().project().secrets.rotate_key()
    emit({"reencrypted": done}, table=lambda d: click.echo(f"re-encrypted {d['reencrypted']} secret(s)"))
