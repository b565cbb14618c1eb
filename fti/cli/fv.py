"""``fti fv``: list, show, training-datasets and delete feature views."""

from __future__ import annotations

from typing import Any

import click

from fti.cli._common import Column, emit, format_option, handle_errors, json_option, print_rows, state
from fti.errors import FtiError


@click.group()
def fv() -> None:
    """Feature views: list, show, training-datasets, delete."""


def _joins(query: dict[str, Any]) -> str:
    return ", ".join(f"{p['group']}:{p['version']}" for p in query["parts"][1:])


@fv.command("list")
@format_option
@json_option
@handle_errors
def list_(fmt: str) -> None:
    """List the project's feature views."""
    views = state().project(read_only=True).feature_store.list_feature_views()
    data = []
    for view in views:
        query = view.to_dict()["query"]  # the stored definition
        data.append(
            {
                "name": view.name,
                "version": view.version,
                "spine": f"{query['parts'][0]['group']}:{query['parts'][0]['version']}",
                "joins": _joins(query),
                "labels": view.labels,
                "training_datasets": len(view.training_dataset_versions()),
                "description": view.description,
            }
        )
    print_rows(
        data,
        [
            Column("name", "name", 24),
            Column("version", "version"),
            Column("spine", "spine", 18),
            Column("joins", "joins", 18),
            Column("labels", "labels", 12),
            Column("training_datasets", "datasets"),
        ],
        fmt,
    )


@fv.command()
@click.argument("name")
@click.option("--version", "-v", type=int, default=None, help="Version (default: latest).")
@json_option
@handle_errors
def show(name: str, version: int | None) -> None:
    """Show a feature view: its query, features with their transformations, training datasets."""
    view = state().project(read_only=True).feature_store.get_feature_view(name, version)
    data = view.to_dict()
    try:
        data["features"] = [
            {"name": n, "dtype": d, "transformation": view.transformations.get(n, "")}
            for n, d in view.feature_dtypes(transformed=False).items()
        ]
    except FtiError as exc:  # a group it reads was deleted: show the rest
        data["features"], data["problem"] = [], exc.message
    data["training_datasets"] = [
        _dataset(view.training_dataset(v)) for v in data.pop("training_dataset_versions")
    ]
    data["models"] = [f"{m.name}:{m.version}" for m in view.models()]

    def table(d: dict[str, Any]) -> None:
        from rich.console import Console

        console = Console()
        parts = d["query"]["parts"]
        console.print(
            f"[bold]{d['name']}[/] v{d['version']}  spine={parts[0]['group']}:{parts[0]['version']}"
        )
        for p in parts[1:]:
            on = ", ".join(p.get("left_on") or p["on"])
            extra = f" prefix={p['prefix']!r}" if p["prefix"] else ""
            console.print(f"  join {p['group']}:{p['version']} on {on} ({p.get('join_type', 'left')}){extra}")
        if d["query"].get("filter"):
            console.print("  filter: yes (see --json)")
        console.print(f"labels: {', '.join(d['labels']) or '-'}   models: {', '.join(d['models']) or '-'}")
        if d["description"]:
            console.print(d["description"])
        if d.get("problem"):
            console.print(f"[red]{d['problem']}[/]")
        print_rows(
            d["features"],
            [
                Column("name", "feature", 28),
                Column("dtype", "dtype"),
                Column("transformation", "transformation", 28),
            ],
        )
        if d["training_datasets"]:
            console.print("training datasets:")
            print_rows(d["training_datasets"], _DATASET_COLUMNS)

    emit(data, table=table)


def _dataset(td: Any) -> dict[str, Any]:
    return {
        "version": td.version,
        "split": td.split["kind"],
        "rows": td.row_counts,
        "created_at": td.created_at.isoformat(),
        "description": td.description,
        "input_versions": td.input_versions,
    }


_DATASET_COLUMNS = [
    Column("version", "version"),
    Column("split", "split"),
    Column("rows", "rows", 36),
    Column("created_at", "created (UTC)"),
    Column("description", "description", 16),
]


@fv.command("training-datasets")
@click.argument("name")
@click.option("--version", "-v", type=int, default=None, help="Feature view version (default: latest).")
@format_option
@json_option
@handle_errors
def training_datasets(name: str, version: int | None, fmt: str) -> None:
    """List the training datasets of a feature view: split, row counts, creation time."""
    view = state().project(read_only=True).feature_store.get_feature_view(name, version)
    data = [_dataset(view.training_dataset(v)) for v in view.training_dataset_versions()]
    print_rows(data, _DATASET_COLUMNS, fmt)


@fv.command()
@click.argument("name")
@click.argument("version", type=int)
@click.option(
    "--training-dataset", "-t", "dataset", type=int, default=None,
    help="Delete only this training-dataset version of the view.",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Also when models were trained on the training dataset.")
@json_option
@handle_errors
def delete(name: str, version: int, dataset: int | None, force: bool) -> None:
    """Delete VERSION of feature view NAME (its training datasets too), or one training dataset."""
    view = state().project().feature_store.get_feature_view(name, version)
    if dataset is not None:
        view.delete_training_dataset(dataset, force=force)
        what = f"training dataset {dataset} of feature view {name} version {version}"
    else:
        view.delete()
        what = f"feature view {name} version {version}"
    emit(
        {"name": name, "version": version, "training_dataset": dataset, "deleted": True},
        table=lambda d: click.echo(f"deleted {what}"),
    )
