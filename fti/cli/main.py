"""Entry point of the ``fti`` command: global options and lazily imported command groups.

Each command group lives in its own module and is imported only when invoked, so ``fti --help``
stays fast. Register a new group in ``COMMAND_GROUPS``.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from fti.cli._common import CliState

# command name -> "module:attribute" of a click command or group
COMMAND_GROUPS: dict[str, tuple[str, str]] = {
    "info": ("fti.cli.info:info", "Show settings, backend URLs and what the project holds."),
    "fg": ("fti.cli.fg:fg", "Feature groups: list, show, read, commits, stats."),
    "fv": ("fti.cli.fv:fv", "Feature views: list, show, training-datasets, delete."),
    "deployments": (
        "fti.cli.deployments:deployments",
        "Model deployments: list, deploy, stop, start, delete, logs, compare (A/B readout).",
    ),
    "serve": ("fti.cli.serve:serve", "Run the model server (Open Inference Protocol) for the deployments."),
    "keys": ("fti.cli.keys:keys", "API keys with a role (reader, writer, admin): create, list, revoke."),
    "secrets": (
        "fti.cli.secrets:secrets",
        "Secrets (credentials, encrypted in the catalog): set, list, delete.",
    ),
    "pipelines": (
        "fti.cli.pipelines:pipelines",
        "Pipelines: deploy, list, show, run, runs, logs, pause, resume, backfill.",
    ),
    "scheduler": ("fti.cli.scheduler:scheduler", "Run the pipeline scheduler in the foreground."),
    "models": ("fti.cli.models:models", "Model registry: list, show, alias, promote, delete."),
    "runs": ("fti.cli.runs:runs", "Training runs: list, show, compare."),
    "ui": ("fti.cli.ui:ui", "Serve the web UI (127.0.0.1:8081); fti serve also serves it under /ui."),
    "tags": (
        "fti.cli.tags:tags",
        "Tags on feature groups, feature views, model versions and runs: add, rm, list.",
    ),
    "batch": ("fti.cli.batch:batch", "Batch inference: score a model into a predictions feature group."),
    "federated": ("fti.cli.federated:federated", "Federated training (Flower): serve, client."),
    "monitor": (
        "fti.cli.monitor:monitor",
        "Monitors: create, list, show, run, backfill, labels, alerts.",
    ),
    "rollout": ("fti.cli.rollout:rollout", "Canary rollouts: start, status, pause, resume, abort."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMAND_GROUPS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMAND_GROUPS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home", envvar="FTI_HOME", default=None, help="fti home directory (default ./.fti; env FTI_HOME)."
)
@click.option(
    "--project", "-p", envvar="FTI_PROJECT", default="default", show_default=True, help="Project name."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.version_option(package_name="fti")
@click.pass_context
def cli(ctx: click.Context, home: str | None, project: str, as_json: bool) -> None:
    """fti: feature store, model registry, model serving and pipelines on one machine."""
    state = CliState(home, project, as_json)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="fti")


if __name__ == "__main__":  # pragma: no cover
    main()
