"""``fti ui``: serve the web UI alone (``fti serve`` also serves it under ``/ui``)."""

from __future__ import annotations

import click

from fti.cli._common import handle_errors, state


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark the session cookie Secure (when the UI is served over HTTPS).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@handle_errors
def ui(host: str, port: int, secure_cookies: bool, log_level: str) -> None:
    """Serve the web UI: feature groups, lineage, models, deployments, pipelines; login with an API key."""
    import uvicorn

    from fti.serving.server import configure_logging
    from fti.ui.app import create_app

    project = state().project()
    configure_logging(access_log=False, level=log_level)
    app = create_app(project, secure_cookies=secure_cookies)
    click.echo(f"fti web UI of project {project.name!r} on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, ws="none", access_log=False)
