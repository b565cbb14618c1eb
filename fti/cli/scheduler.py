"""``fti scheduler``: run the pipeline scheduler of a project in the foreground."""

from __future__ import annotations

import logging
import signal
from typing import Any

import click

from fti.cli._common import handle_errors, state


@click.command()
@click.option("--tick", type=float, default=1.0, show_default=True, help="Seconds between scheduler passes.")
@click.option(
    "--lease-ttl", type=float, default=30.0, show_default=True, help="Seconds a leader's lease lasts."
)
@handle_errors
def scheduler(tick: float, lease_ttl: float) -> None:
    """Run deployed pipelines on their schedules and triggers, and advance canary rollouts, until Ctrl-C.

    Several schedulers may run on one catalog: one is the leader, the others take over within
    --lease-ttl seconds when it dies. Ctrl-C cancels the runs in progress and releases the lease.
    """
    from datetime import timedelta

    from fti.errors import ValidationError
    from fti.pipelines.scheduler import Scheduler

    if tick <= 0 or lease_ttl <= tick:
        raise ValidationError(
            f"--tick must be > 0 and --lease-ttl greater than --tick (got {tick}, {lease_ttl})"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    project = state().project(create=True)
    from fti.monitoring.abtest import realized_figures
    from fti.serving.rollouts.machine import advance

    sched = Scheduler(
        project,
        tick_interval=tick,
        lease_ttl=timedelta(seconds=lease_ttl),
        # canary rollouts: the leader alone moves them, with monitoring's realized metrics for gates
        duties=[lambda now: advance(project, now, realized_figures)],
    )

    def on_signal(signum: int, _frame: Any) -> None:
        sched.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    names = ", ".join(p.name for p in project.pipelines.list()) or "none deployed yet"
    click.echo(f"fti scheduler for project {project.name!r} ({names}); Ctrl-C to stop", err=True)
    sched.run()
    click.echo("scheduler stopped", err=True)
