"""``fti federated``: the server and the clients of federated training on separate machines.

The server side (``serve``) picks or creates the training dataset, waits for one client per
partition, runs the rounds, records the training run and optionally registers the model. Each
party runs ``client`` with its own partition: it reads only those rows, from its fti settings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from fti.cli._common import emit, handle_errors, json_option, state
from fti.errors import ValidationError


@click.group()
def federated() -> None:
    """Federated training (Flower): serve the rounds, or be the client of one partition."""


@federated.command()
@click.argument("feature_view")
@click.option("--partition-by", required=True, help="Column of the training data: one client per value.")
@click.option("--partitions", default=None, help="Comma-separated partition values expected (default: all).")
@click.option("--address", default="0.0.0.0:8085", show_default=True, help="host:port to listen on.")
@click.option("--training-dataset-version", type=int, default=None, help="Default: create a new split.")
@click.option("--split", type=click.Choice(["random", "time"]), default="random", show_default=True)
@click.option("--test-size", type=float, default=0.2, show_default=True, help="Test fraction (random split).")
@click.option("--test-start", default=None, help="Start of the test period (time split, ISO 8601).")
@click.option("--rounds", type=int, default=20, show_default=True)
@click.option(
    "--fraction-fit", type=float, default=1.0, show_default=True, help="Clients training per round."
)
@click.option("--strategy", type=click.Choice(["fedavg", "fedprox"]), default="fedavg", show_default=True)
@click.option("--proximal-mu", type=float, default=0.1, show_default=True, help="FedProx's proximal term.")
@click.option("--dp-noise", type=float, default=None, help="Server-side DP noise multiplier (default: off).")
@click.option("--dp-clipping-norm", type=float, default=1.0, show_default=True)
@click.option("--model", "model_class", default=None, help="A ModelSpec class, module:Class (default: SGD).")
@click.option("--model-param", multiple=True, help="key=value (JSON value) for the model spec; repeatable.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--connect-timeout", type=float, default=600.0, show_default=True, help="Seconds to wait for clients."
)
@click.option("--round-timeout", type=float, default=600.0, show_default=True)
@click.option("--register", "register_as", default=None, help="Register the model under this name.")
@click.option("--certificates", nargs=3, type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS: CA certificate, server certificate, server key (PEM).")  # fmt: skip
@click.option("--verbose", is_flag=True, help="Show Flower's logs.")
@json_option
@handle_errors
def serve(
    feature_view: str,
    partition_by: str,
    partitions: str | None,
    address: str,
    training_dataset_version: int | None,
    split: str,
    test_size: float,
    test_start: str | None,
    rounds: int,
    fraction_fit: float,
    strategy: str,
    proximal_mu: float,
    dp_noise: float | None,
    dp_clipping_norm: float,
    model_class: str | None,
    model_param: tuple[str, ...],
    seed: int,
    connect_timeout: float,
    round_timeout: float,
    register_as: str | None,
    certificates: tuple[str, str, str] | None,
    verbose: bool,
) -> None:
    """Serve federated training of FEATURE_VIEW ("name" or "name:version") to one client per partition.

    Example: fti federated serve fraud_federated:1 --partition-by region --rounds 20 --register fraud_fed
    """
    from fti.training.federation import runner
    from fti.training.federation.session import check_options, prepare

    options = check_options(
        rounds,
        fraction_fit,
        strategy,
        proximal_mu,
        False,
        dp_noise,
        dp_clipping_norm,
        seed,
        connect_timeout,
        round_timeout,
    )
    fv = _feature_view(feature_view)
    wanted = None if partitions is None else [p.strip() for p in partitions.split(",") if p.strip()]
    session = prepare(
        fv,
        partition_by,
        _model(model_class, model_param),
        options,
        partitions=wanted,
        training_dataset_version=training_dataset_version,
        split=split,
        test_size=test_size,
        test_start=_parse_time(test_start, "--test-start"),
    )
    click.echo(
        f"listening on {address} for {len(session.partitions)} clients, one per partition of "
        f"{partition_by}: {', '.join(session.partitions)} (training dataset v{session.record.version})\n"
        f"start each with: fti federated client --server <this host>:{address.rsplit(':', 1)[-1]} "
        f"--partition {partition_by}=<value>",
        err=True,
    )
    pem = None if certificates is None else tuple(Path(p).read_bytes() for p in certificates)
    result = runner.run(session, address=address, local_clients=False, certificates=pem, verbose=verbose)  # type: ignore[arg-type]
    summary: dict[str, Any] = {
        "run_id": result.run.id,
        "training_dataset_version": result.training_dataset_version,
        "metrics": result.metrics,
        "partitions": result.partitions,
        "rounds": [{"round": r.round, **r.evaluation} for r in result.rounds],
        "seconds": result.seconds,
        "bytes_per_round": result.bytes_per_round,
    }
    if register_as is not None:
        version = fv.project.model_registry.register(
            register_as,
            result.model,
            run=result.run,
            feature_view=fv,
            training_dataset_version=result.training_dataset_version,
            metrics=result.metrics,
            description=f"federated over {partition_by} ({len(result.partitions)} partitions)",
        )
        summary["model"] = {"name": register_as, "version": version.version}

    def table(data: dict[str, Any]) -> None:
        from rich.console import Console

        metrics = ", ".join(f"{k} {v:.4f}" for k, v in data["metrics"].items())
        registered = f"; registered {register_as}:{data['model']['version']}" if "model" in data else ""
        Console().print(
            f"federated training finished: {len(data['rounds'])} rounds in {data['seconds']:.1f} s, "
            f"{metrics} (run {data['run_id']}{registered})"
        )

    emit(summary, table=table)


@federated.command()
@click.option("--server", required=True, help="host:port of `fti federated serve`.")
@click.option("--partition", required=True, help="This client's partition, COLUMN=VALUE (e.g. region=texas).")
@click.option("--root-certificates", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM root certificates to verify the server (TLS); default: no TLS.")  # fmt: skip
@click.option(
    "--max-wait", type=float, default=300.0, show_default=True, help="Seconds to keep trying to connect."
)
@click.option("--feature-view", default=None, help="Only train on this feature view (NAME or NAME:VERSION).")
@click.option("--verbose", is_flag=True, help="Show Flower's logs.")
@handle_errors
def client(
    server: str,
    partition: str,
    root_certificates: str | None,
    max_wait: float,
    feature_view: str | None,
    verbose: bool,
) -> None:
    """Train on this party's partition only, until the server finishes.

    Example: fti federated client --server 10.0.0.5:8085 --partition region=texas
    """
    from fti.training.federation import _flower
    from fti.training.federation.client import run_client

    _flower.set_verbose(verbose)
    pem = None if root_certificates is None else Path(root_certificates).read_bytes()
    run_client(
        state().project(),
        server,
        partition,
        root_certificates=pem,
        max_wait_seconds=max_wait,
        feature_view=feature_view,
    )
    click.echo(f"client of {partition}: the server finished", err=True)


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{option} {value!r} is not an ISO 8601 time, e.g. 2024-06-01") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _feature_view(text: str) -> Any:
    name, _, version = text.partition(":")
    if version and not version.isdigit():
        raise ValidationError(f"feature view must be NAME or NAME:VERSION, got {text!r}")
    return state().project().feature_store.get_feature_view(name, version=int(version) if version else None)


def _model(model_class: str | None, params: tuple[str, ...]) -> Any:
    from fti.training.federation.models import SGDClassifierSpec, load_spec

    parsed: dict[str, Any] = {}
    for item in params:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"--model-param must be key=value, got {item!r}")
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw  # a bare string
    if model_class is None:
        try:
            return SGDClassifierSpec(**parsed)
        except TypeError as exc:
            raise ValidationError(f"bad --model-param for the SGD classifier: {exc}") from None
    try:
        return load_spec({"class": model_class, "params": parsed})
    except TypeError as exc:
        raise ValidationError(f"bad --model-param for {model_class}: {exc}") from None
