"""``fti info``: effective settings, backend URLs and a summary of the project."""

from __future__ import annotations

from typing import Any

import click

from fti.cli._common import emit, handle_errors, json_option, state


@click.command()
@click.option("--create", is_flag=True, help="Create the project if it does not exist.")
@json_option
@handle_errors
def info(create: bool) -> None:
    """Show settings, backend URLs and what the project holds."""
    import fti

    project = state().project(create=create, read_only=not create)
    data: dict[str, Any] = {
        "version": fti.__version__,
        "project": project.name,
        "settings": project.settings.describe(),
        "feature_groups": len(project.feature_store.list_feature_groups()),
        "secrets": len(project.secrets.list()),
    }

    def table(d: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"fti {d['version']} - project {d['project']}", show_header=False)
        for key, value in d["settings"].items():
            t.add_row(key, value)
        t.add_row("feature groups", str(d["feature_groups"]))
        t.add_row("secrets", str(d["secrets"]))
        Console().print(t)

    emit(data, table=table)
