"""``fti tags``: tag feature groups, feature views, model versions and runs; list tags."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from fti.cli._common import emit, handle_errors, json_option, state
from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.project import Project

KIND_CHOICES = ("fg", "fv", "model", "run")
_REF_HELP = "fg/fv: NAME or NAME:VERSION (default: latest); model: NAME, NAME:VERSION or NAME@ALIAS; run: ID."


def _split(ref: str) -> tuple[str, int | None]:
    name, sep, version = ref.partition(":")
    if not sep:
        return name, None
    if not version.isdecimal():
        raise ValidationError(f"invalid reference {ref!r}: use NAME or NAME:VERSION (e.g. transactions:2)")
    return name, int(version)


def resolve(project: Project, kind: str, ref: str) -> Any:
    """The object a ``KIND REF`` pair names (a FeatureGroup, FeatureView, ModelVersion or Run)."""
    if kind == "fg":
        return project.feature_store.get_feature_group(*_split(ref))
    if kind == "fv":
        return project.feature_store.get_feature_view(*_split(ref))
    if kind == "model":
        if "@" in ref:
            return project.model_registry.get_model(ref)
        name, version = _split(ref)
        return project.model_registry.get_model(name, version=version)
    from fti.training.runs import get_run

    if not ref.isdecimal():
        raise ValidationError(f"invalid run id {ref!r}: runs are numbered (see `fti runs list`)")
    return get_run(project, int(ref))


@click.group()
def tags() -> None:
    """Tags on feature groups (fg), feature views (fv), model versions (model) and runs (run)."""


@tags.command()
@click.argument("kind", type=click.Choice(KIND_CHOICES))
@click.argument("ref")
@click.argument("tag", nargs=-1, required=True)
@json_option
@handle_errors
def add(kind: str, ref: str, tag: tuple[str, ...]) -> None:
    """Add TAG(s) to the object KIND REF (e.g. `fti tags add fg transactions:1 pii`)."""
    target = resolve(state().project(), kind, ref)
    for t in tag:
        target.add_tag(t)
    emit({"kind": kind, "ref": ref, "tags": target.tags}, table=lambda d: click.echo(", ".join(d["tags"])))


@tags.command()
@click.argument("kind", type=click.Choice(KIND_CHOICES))
@click.argument("ref")
@click.argument("tag", nargs=-1, required=True)
@json_option
@handle_errors
def rm(kind: str, ref: str, tag: tuple[str, ...]) -> None:
    """Remove TAG(s) from the object KIND REF."""
    target = resolve(state().project(), kind, ref)
    for t in tag:
        target.remove_tag(t)
    emit(
        {"kind": kind, "ref": ref, "tags": target.tags},
        table=lambda d: click.echo(", ".join(d["tags"]) or "(no tags left)"),
    )


@tags.command("list")
@click.argument("kind", type=click.Choice(KIND_CHOICES), required=False)
@click.argument("ref", required=False)
@json_option
@handle_errors
def list_(kind: str | None, ref: str | None) -> None:
    """Tags of the object KIND REF, or every tag in use with how many objects carry it."""
    project = state().project(read_only=True)
    if kind is not None:
        if ref is None:
            raise ValidationError(
                f"give the object to list the tags of: fti tags list {kind} REF ({_REF_HELP})"
            )
        found = resolve(project, kind, ref)
        emit({"kind": kind, "ref": ref, "tags": found.tags}, table=lambda d: click.echo("\n".join(d["tags"])))
        return
    from fti import tags as tagging

    rows = [{"tag": t, "kind": k, "objects": n} for t, k, n in tagging.counts(project)]

    def table(data: list[dict[str, Any]]) -> None:
        from rich.console import Console
        from rich.table import Table

        t = Table("tag", "kind", "objects")
        for r in data:
            t.add_row(r["tag"], r["kind"], str(r["objects"]))
        Console().print(t)

    emit(rows, table=table)
