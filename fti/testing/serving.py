"""A real uvicorn model server on a free loopback port, in a background thread (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def running_server(app: Any, *, startup_timeout_s: float = 30.0, wait_loaded: bool = True) -> Iterator[str]:
    """Serve ``app`` on ``127.0.0.1:<free port>`` until the block exits; yields the base URL.

    A model server listens at once and loads its deployments in the background; with
    ``wait_loaded`` this returns only once that loading is done (whether or not it succeeded).
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    limits = getattr(getattr(getattr(app, "state", None), "fti", None), "limits", None)
    extra: dict[str, Any] = {}
    if limits is not None:  # a model server app: its connection limits, as `fti serve` has them
        from fti.serving.connections import protocol_class

        extra = {"http": protocol_class(limits), "timeout_keep_alive": limits.keep_alive_s}
    config = uvicorn.Config(
        app,
        **extra,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        ws="none",  # as fti.serving.server: no websockets import, whatever else is installed
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fti-test-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the model server did not start (see the log above)")
        time.sleep(0.01)
    repository = getattr(getattr(getattr(app, "state", None), "fti", None), "repository", None)
    while wait_loaded and repository is not None and repository.loading:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()
            raise RuntimeError("the model server did not finish loading its deployments")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
