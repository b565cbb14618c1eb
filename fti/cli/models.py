"""``fti models``: list, show, evaluate, alias, roll back, promote and delete registered model versions."""

from __future__ import annotations

import re
from typing import Any

import click

from fti.cli._common import (
    Column,
    emit,
    format_option,
    handle_errors,
    json_option,
    parse_time,
    print_rows,
    state,
)
from fti.errors import ValidationError

# METRIC[@SCOPE] OP TARGET; the scope may hold "=" (auc@category=travel>=0.8), so the metric part is
# the shortest prefix followed by an operator
_REQUIRE = re.compile(r"^\s*([^<>!\s]+?)\s*((?:>=|<=|==|!=|>|<).*)$")
_BINS = re.compile(r"^(?:([^=:]+)=)?([^=:]+):([^:]+)(?::(.+))?$")


@click.group()
def models() -> None:
    """Model registry: list, show, evaluate, alias, rollback, promote, delete."""


def _row(mv: Any) -> dict[str, Any]:
    return {
        "name": mv.name,
        "version": mv.version,
        "flavor": mv.flavor,
        "aliases": mv.aliases,
        "metrics": mv.metrics,
        "feature_view": None
        if mv.feature_view_name is None
        else f"{mv.feature_view_name}:{mv.feature_view_version}",
        "training_dataset_version": mv.training_dataset_version,
        "run_id": mv.run_id,
        "created_at": mv.created_at.isoformat(),
    }


def _metrics_text(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())


@models.command("list")
@click.argument("name", required=False)
@format_option
@json_option
@handle_errors
def list_(name: str | None, fmt: str) -> None:
    """List model versions (of NAME only, when given)."""
    data = [_row(mv) for mv in state().project(read_only=True).model_registry.list_models(name)]
    print_rows(
        data,
        [
            Column("name", "name", 20),
            Column("version", "version"),
            Column("flavor", "flavor"),
            Column("aliases", "aliases", 12),
            Column("metrics", "metrics", 20, _metrics_text),
            Column("created_at", "created (UTC)"),
        ],
        fmt,
    )


@models.command()
@click.argument("ref")
@click.option(
    "--version", "-v", type=int, default=None, help="Version (default: latest, or REF's @alias or :version)."
)
@json_option
@handle_errors
def show(ref: str, version: int | None) -> None:
    """Show one model version: REF is NAME (latest), NAME:VERSION or NAME@ALIAS."""
    mr = state().project(read_only=True).model_registry
    mv = mr.get_model(ref, version=version)
    data = mv.to_dict()
    data["lineage"] = mv.lineage.to_dict()
    data["alias_history"] = [h.to_dict() for h in mr.alias_history(mv.name)]

    def table(d: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        t = Table(title=f"model {d['name']} version {d['version']}", show_header=False)
        for key in (
            "flavor",
            "description",
            "aliases",
            "metrics",
            "feature_view",
            "created_at",
            "created_by",
        ):
            value = d["lineage"][key] if key == "feature_view" else d[key]
            if key == "aliases":
                value = ", ".join(value)
            elif key == "metrics":
                value = _metrics_text(value)
            elif key == "feature_view" and value is not None:
                value = (
                    f"{value}:{d['feature_view_version']} (training dataset {d['training_dataset_version']})"
                )
            t.add_row(key, "" if value is None else str(value))
        run = d["lineage"]["run"]
        if run is not None:
            t.add_row("run", f"{run['id']} {run['name']} ({run['status']})")
            t.add_row("git", f"{run['git_commit'] or '-'}{' (dirty)' if run['git_dirty'] else ''}")
        console.print(t)
        s = Table("kind", "name", "datatype", "shape", title="signature")
        for kind in ("inputs", "outputs"):
            for spec in d["signature"][kind]:
                s.add_row(kind[:-1], spec["name"], spec["datatype"], str(spec["shape"]))
        console.print(s)
        if d["alias_history"]:
            h = Table("alias", "from", "to", "changed at", "by", "reason", title="alias history")
            for c in d["alias_history"]:
                h.add_row(
                    c["alias"],
                    str(c["from_version"] or "-"),
                    str(c["to_version"] or "-"),
                    c["changed_at"],
                    c["changed_by"],
                    c["reason"],
                )
            console.print(h)

    emit(data, table=table)


@models.command()
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int, required=False)
@click.option("--delete", "remove", is_flag=True, help="Remove the alias instead of setting it.")
@click.option("--reason", default="", help="Note recorded in the alias history.")
@json_option
@handle_errors
def alias(name: str, alias: str, version: int | None, remove: bool, reason: str) -> None:
    """Point ALIAS of model NAME at VERSION (or remove it with --delete)."""
    mr = state().project().model_registry
    if remove:
        if version is not None:
            raise ValidationError("give either VERSION (to set the alias) or --delete, not both")
        mr.delete_alias(name, alias)
        emit(
            {"name": name, "alias": alias, "version": None},
            table=lambda d: click.echo(f"removed {name}@{alias}"),
        )
        return
    if version is None:
        raise ValidationError(f"missing VERSION: fti models alias {name} {alias} <version> (or --delete)")
    mv = mr.set_alias(name, version, alias, reason=reason)
    emit(
        {"name": name, "alias": alias, "version": mv.version},
        table=lambda d: click.echo(f"{name}@{alias} -> version {mv.version}"),
    )


@models.command()
@click.argument("name")
@click.option("--alias", "alias_", default="production", show_default=True, help="The alias to move back.")
@click.option("--reason", required=True, help="Why (recorded in the alias history).")
@json_option
@handle_errors
def rollback(name: str, alias_: str, reason: str) -> None:
    """Move ALIAS of model NAME back to the version it held before (from the alias history).

    Servers following NAME@ALIAS hot-swap to it at their next poll, enriching with that version's
    own feature view version.
    """
    mr = state().project().model_registry
    held = mr.aliases(name).get(alias_)
    mv = mr.rollback(name, alias_, reason=reason)
    emit(
        {"name": name, "alias": alias_, "from_version": held, "version": mv.version, "reason": reason},
        table=lambda d: click.echo(f"{name}@{alias_}: version {held} -> {mv.version} ({reason})"),
    )


@models.command()
@click.argument("name")
@click.argument("version", type=int)
@click.argument("alias")
@click.option(
    "--require",
    "-r",
    "requirements",
    multiple=True,
    help="A gate condition such as 'auc>=0.9', 'auc@slice>=0.85', 'demographic_parity_difference<=0.1' "
    "or 'auc>=baseline-0.01' (repeatable; judged on the latest evaluation).",
)
@click.option(
    "--compare-to", default=None, help="Alias whose current version the candidate must not be worse than."
)
@click.option(
    "--evaluation", type=int, default=None, help="Judge this evaluation number (default: the latest)."
)
@json_option
@handle_errors
def promote(
    name: str,
    version: int,
    alias: str,
    requirements: tuple[str, ...],
    compare_to: str | None,
    evaluation: int | None,
) -> None:
    """Move ALIAS to VERSION of NAME if it passes the gate (exit status 2 and the failed conditions if not)."""
    require: dict[str, list[str]] = {}
    for text in requirements:
        match = _REQUIRE.match(text)
        if match is None:
            raise ValidationError(
                f"invalid --require {text!r}: write METRIC[@SCOPE] OP NUMBER or OP baseline[+-NUMBER], e.g. "
                "'auc>=0.9', 'auc@slice>=0.85', 'auc>=baseline-0.01'"
            )
        require.setdefault(match.group(1), []).append(match.group(2))
    mv = (
        state()
        .project()
        .model_registry.promote(
            name, version, alias, require=require, compare_to=compare_to, evaluation=evaluation
        )
    )
    emit(
        {"name": name, "alias": alias, "version": mv.version, "require": require, "compare_to": compare_to},
        table=lambda d: click.echo(f"promoted {name} version {mv.version} to {alias!r}"),
    )


def _spec(text: str, option: str) -> Any:
    """``category``, ``amount:0,50,500`` or ``age_group=birth_year:1900,1966,1986,2100:60+,40-59,under 40``."""
    from fti.registry.evaluation import bins

    match = _BINS.match(text)
    if match is None:
        return text
    name, column, edges, labels = match.groups()
    try:
        numbers = [float(e) for e in edges.split(",")]
    except ValueError:
        raise ValidationError(
            f"invalid {option} {text!r}: bins are COLUMN:EDGE,EDGE,... with numbers, e.g. 'amount:0,50,500'"
        ) from None
    return bins(column, numbers, labels=None if labels is None else labels.split(","), name=name)


@models.command()
@click.argument("ref")
@click.option("--split", default=None, help="Split of the model's training dataset (default: test).")
@click.option("--start", default=None, help="Evaluate on the view's rows from this time instead (ISO 8601).")
@click.option("--end", default=None, help="... until this time (exclusive).")
@click.option(
    "--slice",
    "slices",
    multiple=True,
    help="Slice by a column ('category') or bins of one ('amount:0,50,500', "
    "'age_group=birth_year:1900,1966,1986,2100:60+,40-59,under 40'); repeatable.",
)
@click.option("--sensitive", multiple=True, help="A sensitive feature for fairness metrics, like --slice.")
@click.option("--baseline", default=None, help="A model scored on the same rows, e.g. fraud@production.")
@click.option("--min-rows", type=int, default=50, show_default=True, help="Smaller slices are not gated.")
@click.option("--label", default=None, help="The label column, when the feature view has several.")
@json_option
@handle_errors
def evaluate(
    ref: str,
    split: str | None,
    start: str | None,
    end: str | None,
    slices: tuple[str, ...],
    sensitive: tuple[str, ...],
    baseline: str | None,
    min_rows: int,
    label: str | None,
) -> None:
    """Evaluate model REF on its feature view's data and store the result with the version.

    Example: fti models evaluate fraud:4 --slice category --slice amount:0,50,500
    --sensitive age_group=birth_year:1900,1966,1986,2100 --baseline fraud@production
    """
    ev = (
        state()
        .project()
        .model_registry.evaluate(
            ref,
            split=split,
            start_time=parse_time(start, "--start"),
            end_time=parse_time(end, "--end"),
            slices=[_spec(s, "--slice") for s in slices],
            sensitive=[_spec(s, "--sensitive") for s in sensitive],
            baseline=baseline,
            min_rows=min_rows,
            label=label,
        )
    )
    emit(ev.to_dict(), table=lambda d: click.echo(ev.report()))


@models.command()
@click.argument("ref")
@click.argument("number", type=int, required=False)
@click.option("--all", "every", is_flag=True, help="List every evaluation of the version instead.")
@json_option
@handle_errors
def evaluation(ref: str, number: int | None, every: bool) -> None:
    """Show evaluation NUMBER (default: the latest) of model REF, or list them with --all."""
    mr = state().project().model_registry
    if not every:
        ev = mr.get_evaluation(ref, number)
        emit(ev.to_dict(), table=lambda d: click.echo(ev.report()))
        return
    if number is not None:
        raise ValidationError("give either NUMBER (one evaluation) or --all, not both")
    found = [e.to_dict() for e in mr.evaluations(ref)]

    def table(rows: list[dict[str, Any]]) -> None:
        from rich.console import Console
        from rich.table import Table

        t = Table("number", "rows", "source", "metrics", "slices", "sensitive", "baseline", "created at")
        for r in rows:
            source = r["source"]
            t.add_row(
                str(r["number"]),
                f"{r['rows']:,}",
                f"{source['split']} of td v{source['training_dataset_version']}"
                if "split" in source
                else f"{source['start_time'] or '-'} .. {source['end_time'] or '-'}",
                _metrics_text(r["metrics"]),
                ", ".join(r["slices"]),
                ", ".join(r["sensitive"]),
                "" if r["compare"] is None else str(r["compare"]["model"] or r["compare"]["ref"]),
                r["created_at"],
            )
        Console().print(t)

    emit(found, table=table)


@models.command()
@click.argument("name")
@click.argument("version", type=int)
@click.option("--force", is_flag=True, help="Also remove aliases that point to the version.")
@json_option
@handle_errors
def delete(name: str, version: int, force: bool) -> None:
    """Hard-delete VERSION of model NAME: catalog rows and artifact files."""
    state().project().model_registry.delete_version(name, version, force=force)
    emit(
        {"name": name, "version": version, "deleted": True},
        table=lambda d: click.echo(f"deleted {name} version {version}"),
    )
