"""``fti serve``: run the model server for the project's deployments."""

from __future__ import annotations

import click

from fti.cli._common import handle_errors, state


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--lazy", is_flag=True, help="Load each model on its first request; unload it when idle.")
@click.option(
    "--idle-unload",
    default=300.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Idle seconds before --lazy unloads.",
)
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Math-library threads per worker.",
)
@click.option(
    "--poll-interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.05),
    help="Seconds between checks for alias moves (hot swap), new deployments and API keys.",
)
@click.option(
    "--max-body-bytes",
    default=8 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1),
    help="Larger bodies get 413.",
)
@click.option(
    "--max-inflight",
    default=64,
    show_default=True,
    type=click.IntRange(1),
    help="Inference requests per worker at once; more get 503 before their body is read.",
)
@click.option(
    "--max-buffered-bytes",
    default=256 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1),
    help="Request body bytes a worker holds at once (all requests); beyond, 503.",
)
@click.option(
    "--max-connections",
    default=2048,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections per worker; more are answered 503 and closed.",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds for a request's headers to arrive (408 and closed after).",
)
@click.option(
    "--body-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds for a request's body to arrive (408 and closed after).",
)
@click.option(
    "--keep-alive",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds an idle keep-alive connection stays open.",
)
@click.option("--no-access-log", is_flag=True, help="Do not write a JSON access-log line per request.")
@click.option(
    "--no-request-log", is_flag=True, help="Do not append inferences to <deployment>_inference_log."
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option("--no-ui", is_flag=True, help="Do not serve the web UI under /ui.")
@click.option(
    "--grpc-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Also serve the Open Inference Protocol over gRPC on this port (needs fti[grpc]).",
)
@handle_errors
def serve(
    host: str,
    port: int,
    workers: int,
    lazy: bool,
    idle_unload: float,
    threads: int,
    poll_interval: float,
    max_body_bytes: int,
    max_inflight: int,
    max_buffered_bytes: int,
    max_connections: int,
    header_timeout: float,
    body_timeout: float,
    keep_alive: float,
    no_access_log: bool,
    no_request_log: bool,
    log_level: str,
    no_ui: bool,
    grpc_port: int | None,
) -> None:
    """Serve the project's deployments over the Open Inference Protocol (KServe V2 REST, and gRPC
    with --grpc-port)."""
    from fti.serving.limits import ServerLimits
    from fti.serving.server import limit_threads

    limits = ServerLimits(
        max_body_bytes=max_body_bytes,
        max_inflight=max_inflight,
        max_buffered_bytes=max_buffered_bytes,
        body_timeout_s=body_timeout,
        header_timeout_s=header_timeout,
        max_connections=max_connections,
        keep_alive_s=keep_alive,
    )
    limit_threads(threads)  # before the project (and numpy) load
    st = state()
    project = st.project()  # fail early on an unknown project
    names = [d.name for d in project.serving.list() if d.status == "running"]
    click.echo(
        f"serving {len(names)} deployment(s) of project {project.name!r} on http://{host}:{port}: "
        f"{', '.join(names) or 'none yet (deploy with project.serving.deploy)'}",
        err=True,
    )
    if not no_ui:
        click.echo(f"web UI: http://{host}:{port}/ui/", err=True)
    if grpc_port is not None:
        click.echo(f"gRPC (Open Inference Protocol): {host}:{grpc_port}", err=True)
    from fti.serving.server import serve as run

    run(
        st.home,
        project.name,
        host=host,
        port=port,
        workers=workers,
        lazy=lazy,
        threads=threads,
        poll_interval_s=poll_interval,
        idle_unload_s=idle_unload,
        limits=limits,
        log_requests=not no_request_log,
        access_log=not no_access_log,
        log_level=log_level,
        ui=not no_ui,
        grpc_port=grpc_port,
    )
