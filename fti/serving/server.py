"""Run the model server with uvicorn (``fti serve``).

Each worker process builds its app from environment variables (``app_factory``), so
``--workers N`` works with uvicorn's process manager. Math libraries get one thread per worker
by default (set before numpy loads, and enforced with threadpoolctl), so workers never
oversubscribe the cores. The server announces its URL in ``$FTI_HOME/serving/server.json`` so
``Deployment.predict`` can find it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import ConflictError, ValidationError
from fti.serving.limits import ServerLimits
from fti.serving.metrics import MULTIPROCESS_ENV

if TYPE_CHECKING:
    from starlette.applications import Starlette

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_ENV = "FTI_SERVE_OPTIONS"  # = fti.serving.connections.OPTIONS_ENV


def limit_threads(threads: int) -> None:
    """Cap math-library threads (env vars for libraries not loaded yet, threadpoolctl for loaded ones)."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return
    threadpool_limits(limits=threads)


def configure_logging(access_log: bool, level: str = "info") -> None:
    """JSON access lines and server messages to stderr (once per process)."""
    logger = logging.getLogger("fti")
    if not any(getattr(h, "_fti", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler._fti = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logging.getLogger("fti.serving.access").setLevel(logging.INFO if access_log else logging.WARNING)


def app_factory() -> Starlette:
    """Build the app of one worker from the options ``serve`` put in the environment."""
    options: dict[str, Any] = json.loads(os.environ[_ENV])
    limit_threads(int(options["threads"]))
    configure_logging(bool(options["access_log"]), str(options["log_level"]))
    from fti.registry.flavors import sklearn

    sklearn.skip_estimator_walk()  # this process only loads models: most of a cold start saved
    from fti.project import connect
    from fti.serving.app import create_app

    project = connect(options["home"], options["project"], create=False)
    from fti.serving.connections import limits_from_environment

    app = create_app(
        project,
        lazy=bool(options["lazy"]),
        poll_interval_s=float(options["poll_interval_s"]),
        idle_unload_s=float(options["idle_unload_s"]),
        log_requests=bool(options["log_requests"]),
        limits=limits_from_environment(),
        grpc_address=options.get("grpc_address"),
        # with several workers on one socket, a worker takes connections once its models loaded
        load_before_listening=int(options.get("workers", 1)) > 1,
    )
    if options.get("ui", True):
        mount_ui(app, project)
    return app


def mount_ui(app: Starlette, project: Any) -> bool:
    """Mount the web UI under ``/ui`` (False, with a log line, when fti[ui] is not installed).

    The UI's modules (templates, pages, the registry's evaluation code: ~0.2 s) are imported and
    its app built on its first request, not at server start: a model server's cold start is the
    time to its first prediction."""
    import importlib.util

    missing = [m for m in ("jinja2", "itsdangerous") if importlib.util.find_spec(m) is None]
    if missing:  # serve the models anyway
        logging.getLogger("fti.serving").warning(
            "the web UI is off (%s not installed): pip install 'fti[ui]'", ", ".join(missing)
        )
        return False
    app.mount("/ui", LazyApp(lambda: _ui_app(app, project)))
    return True


def _ui_app(app: Starlette, project: Any) -> Any:
    from fti.ui.app import create_app

    return create_app(project, server_app=app, mount_path="/ui")


class LazyApp:
    """An ASGI app built by ``build`` on its first call (once, even under concurrent calls)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._app: Any = None
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            with self._lock:  # builds on the event loop: no await while it is held
                if self._app is None:
                    self._app = self._build()
        await self._app(scope, receive, send)


def serve(
    home: str | Path | None,
    project: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    lazy: bool = False,
    threads: int = 1,
    poll_interval_s: float = 2.0,
    idle_unload_s: float = 300.0,
    log_requests: bool = True,
    access_log: bool = True,
    log_level: str = "info",
    ui: bool = True,
    limits: ServerLimits | None = None,
    grpc_port: int | None = None,
) -> None:
    """Serve ``project``'s running deployments (and the web UI under ``/ui``) until interrupted.

    ``limits`` (:class:`~fti.serving.limits.ServerLimits`) apply to each worker process: body
    size, in-flight requests, buffered bytes, header and body read timeouts, connections.
    With ``grpc_port`` each worker also serves the gRPC protocol on that port (shared by the
    workers with ``SO_REUSEPORT``; needs ``fti[grpc]``).

    Raises:
        ConflictError: the port is in use (checked before anything is loaded).
    """
    limits = limits or ServerLimits()
    limit_threads(threads)
    import importlib.util

    import uvicorn

    from fti.config import load_settings
    from fti.serving.connections import protocol_path

    settings = load_settings(home)
    options = {
        "home": str(settings.home),
        "project": project,
        "workers": workers,
        "threads": threads,
        "lazy": lazy,
        "poll_interval_s": poll_interval_s,
        "idle_unload_s": idle_unload_s,
        "limits": limits.to_dict(),
        "log_requests": log_requests,
        "access_log": access_log,
        "log_level": log_level,
        "ui": ui,
        "grpc_address": None if grpc_port is None else f"{host}:{grpc_port}",
    }
    os.environ[_ENV] = json.dumps(options)
    # bind before anything loads: a busy port is reported at once, not after the models loaded
    sock = bind_socket(host, port)
    if grpc_port is not None:
        if importlib.util.find_spec("grpc") is None:
            sock.close()
            raise ValidationError("--grpc-port needs grpcio: pip install 'fti[grpc]'")
        try:  # a busy gRPC port, too, is reported before anything loads
            bind_socket(host, grpc_port, what="--grpc-port").close()
        except Exception:
            sock.close()
            raise
    config = uvicorn.Config(
        "fti.serving.server:app_factory",
        factory=True,
        workers=workers,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        # uvicorn's protocol with a header timeout and a connection cap (fti.serving.connections)
        http=protocol_path(httptools=importlib.util.find_spec("httptools") is not None),
        timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]  # a float works
        ws="none",  # the protocols are plain HTTP; never load a websockets package found installed
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=30,
    )
    announce = settings.home / "serving" / "server.json"
    announce.parent.mkdir(parents=True, exist_ok=True)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    announce.write_text(
        json.dumps({"url": f"http://{url_host}:{port}", "pid": os.getpid(), "project": project})
    )
    metrics_dir = None
    if workers > 1 and not os.environ.get(MULTIPROCESS_ENV):
        # the workers' metrics go to files summed at each scrape (fti.serving.metrics)
        metrics_dir = tempfile.mkdtemp(prefix="fti-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
    try:
        if workers > 1:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    finally:
        sock.close()
        announce.unlink(missing_ok=True)
        if metrics_dir is not None:
            os.environ.pop(MULTIPROCESS_ENV, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


def bind_socket(host: str, port: int, what: str = "--port") -> socket.socket:
    """A listening-ready socket bound to ``host:port`` (IPv6 when the host has a ':').

    Raises:
        ConflictError: the port is in use.
        ValidationError: the address cannot be bound (unknown host, a privileged port).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConflictError(
                f"port {port} on {host} is already in use (another server?): stop it or choose "
                f"another port with {what}"
            ) from None
        raise ValidationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)  # worker processes inherit it
    return sock
