"""``fti rollout``: start, watch, pause, resume and abort canary rollouts of a deployment."""

from __future__ import annotations

from typing import Any

import click

from fti.cli._common import emit, handle_errors, json_option, state
from fti.errors import ValidationError


@click.group()
def rollout() -> None:
    """Canary rollouts: start, status, pause, resume, abort (advanced by `fti scheduler`)."""


def _show(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    share = "-" if data["percent"] is None else f"{data['percent']:g} %"
    console.print(
        f"rollout #{data['id']} of {data['deployment']}: {data['candidate']} -> @{data['alias']}  "
        f"[bold]{data['state']}[/bold]  step {data['step']}/{len(data['steps'])} ({share})"
        + (f"  reason: {data['reason']}" if data["reason"] else "")
    )
    t = Table("at", "action", "share", "canary req/err/p99", "champion req/err/p99", "reason")
    for e in data["events"]:
        cells = []
        for variant in ("canary", "champion"):
            f = e["figures"].get(variant)
            cells.append("" if f is None else f"{f['requests']}/{f['errors']}/{f['p99_ms'] or '-'} ms")
        t.add_row(e["at"], e["action"], f"{e['percent']:g} %", *cells, e["reason"])
    console.print(t)


@rollout.command()
@click.argument("deployment")
@click.option("--to", "to", required=True, help="The candidate version, e.g. fraud:4.")
@click.option("--steps", default="5,25,50,100", show_default=True, help="Canary shares in percent.")
@click.option("--every", default="10m", show_default=True, help="How long each step lasts (30s, 10m, 1h).")
@click.option(
    "--gate", "gates", multiple=True, help="A gate such as 'error_rate<0.01' or 'p99_ms<=champion*1.2'."
)
@click.option(
    "--min-requests", type=int, default=100, show_default=True, help="Canary requests a step needs."
)
@json_option
@handle_errors
def start(
    deployment: str, to: str, steps: str, every: str, gates: tuple[str, ...], min_requests: int
) -> None:
    """Start a canary rollout of --to on DEPLOYMENT (which must follow an alias)."""
    try:
        shares = [float(s) for s in steps.split(",")]
    except ValueError:
        raise ValidationError(f"invalid --steps {steps!r}: write percentages such as 5,25,50,100") from None
    parsed: dict[str, str] = {}
    for text in gates:
        name, op, rest = text.partition("<") if "<" in text else text.partition(">")
        if not op:
            raise ValidationError(f"invalid --gate {text!r}: write FIGURE<VALUE, e.g. 'error_rate<0.01'")
        parsed[name.strip()] = op + rest
    ro = (
        state()
        .project()
        .serving.rollout(
            deployment, to=to, steps=shares, every=every, gates=parsed, min_requests=min_requests
        )
    )
    emit(ro.status(), table=_show)


def _act(deployment: str, action: str, reason: str) -> None:
    ro = state().project().serving.get_rollout(deployment)
    getattr(ro, action)(reason)
    emit(ro.status(), table=_show)


@rollout.command()
@click.argument("deployment")
@json_option
@handle_errors
def status(deployment: str) -> None:
    """The latest rollout of DEPLOYMENT: state, step, and every step with its figures."""
    emit(state().project().serving.get_rollout(deployment).status(), table=_show)


@rollout.command()
@click.argument("deployment")
@click.option("--reason", default="", help="Recorded with the event.")
@json_option
@handle_errors
def pause(deployment: str, reason: str) -> None:
    """Hold DEPLOYMENT's rollout at its current share."""
    _act(deployment, "pause", reason)


@rollout.command()
@click.argument("deployment")
@click.option("--reason", default="", help="Recorded with the event.")
@json_option
@handle_errors
def resume(deployment: str, reason: str) -> None:
    """Continue DEPLOYMENT's paused rollout with a fresh step."""
    _act(deployment, "resume", reason)


@rollout.command()
@click.argument("deployment")
@click.option("--reason", default="", help="Recorded with the event.")
@json_option
@handle_errors
def abort(deployment: str, reason: str) -> None:
    """End DEPLOYMENT's rollout: traffic back to the champion, the alias stays."""
    _act(deployment, "abort", reason)
