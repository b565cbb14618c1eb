"""``fti keys``: API keys of the model server (stored hashed in the catalog)."""

from __future__ import annotations

import click

from fti.cli._common import Column, emit, format_option, handle_errors, json_option, print_rows, state
from fti.serving.auth import ROLES


@click.group()
def keys() -> None:
    """API keys for the model server and the web UI: create, list, revoke."""


@keys.command()
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="admin",
    show_default=True,
    help="reader: browse and predict; writer: also run pipelines, move aliases, deploy; "
    "admin: also manage keys and load/unload models.",
)
@json_option
@handle_errors
def create(name: str, role: str) -> None:
    """Create the key NAME with a role and print it (it is shown only once)."""
    from fti.serving.auth import create_key

    key = create_key(state().project(), name, role)
    emit({"name": name, "role": role, "key": key}, table=lambda d: click.echo(d["key"]))
    if not state().as_json:
        click.echo("Store this key now: it cannot be shown again.", err=True)


@keys.command("list")
@format_option
@json_option
@handle_errors
def list_(fmt: str) -> None:
    """List keys (names, prefixes, status; never the keys)."""
    from fti.serving.auth import list_keys

    rows = [
        {
            "name": k.name,
            "role": k.role,
            "prefix": k.prefix,
            "created_at": k.created_at.isoformat(),
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            "active": k.active,
        }
        for k in list_keys(state().project(read_only=True))
    ]

    print_rows(
        rows,
        [
            Column("name", "name", 24),
            Column("role", "role"),
            Column("prefix", "prefix", fmt=lambda p: p + "..."),
            Column("created_at", "created (UTC)"),
            Column("active", "status", fmt=lambda a: "active" if a else "revoked"),
        ],
        fmt,
    )


@keys.command()
@click.argument("name")
@json_option
@handle_errors
def revoke(name: str) -> None:
    """Revoke the key NAME (servers refuse it within seconds)."""
    from fti.serving.auth import revoke_key

    revoke_key(state().project(), name)
    emit({"name": name, "revoked": True}, table=lambda d: click.echo(f"revoked {d['name']}"))
