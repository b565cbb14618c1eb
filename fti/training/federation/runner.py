"""Running a prepared federated session: the Flower server here, the clients as processes.

With ``local_clients`` (what :func:`fti.training.federated` does) the server runs in a thread of
this process and every partition gets its own client process, started exactly as
``fti federated client`` starts one on another machine: it connects over gRPC on loopback and
reads its own partition only. Otherwise (``fti federated serve``) the server waits for clients
started elsewhere. Either way the run is recorded while it goes and ended as finished or failed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, FtiError
from fti.training.federation import _flower
from fti.training.federation.models import spec_config
from fti.training.federation.plan import Plan
from fti.training.federation.session import (
    FederatedResult,
    Session,
    evaluation_split,
    finish,
    log_round,
    project_of,
    start_run,
)

if TYPE_CHECKING:
    from fti.project import Project
    from fti.training.federation.server import FederatedStrategy


def make_strategy(session: Session) -> FederatedStrategy:
    """The Flower strategy of the session, wrapped with fti's setup phase and round records."""
    from fti.features.transformations import parse
    from fti.training.federation.server import FederatedStrategy, Setup, build_strategy

    fv, record, options = session.fv, session.record, session.options
    plan = Plan(
        feature_view=fv.name,
        feature_view_version=fv.version,
        training_dataset_version=record.version,
        partition_by=session.partition_by,
        eval_split=evaluation_split(record),
        model=spec_config(session.spec),
        seed=options.seed,
    )
    setup = Setup(
        plan=plan,
        partitions=session.partitions,
        specs={f: parse(s, f) for f, s in fv.transformations.items()},
        inputs=list(fv.feature_dtypes(transformed=False).items()),
        stored_statistics=record.transformation_stats,
        spec=session.spec,
        rounds=options.rounds,
        connect_timeout=options.connect_timeout,
    )
    inner = build_strategy(
        options.strategy,
        len(session.partitions),
        options.fraction_fit,
        options.proximal_mu,
        options.dp_noise,
        options.dp_clipping_norm,
    )
    run = session.run
    on_round = None if run is None else (lambda r: log_round(run, r))
    return FederatedStrategy(inner, setup, on_round)


def run(
    session: Session,
    *,
    run_name: str | None = None,
    address: str | None = None,
    local_clients: bool = True,
    certificates: tuple[bytes, bytes, bytes] | None = None,
    verbose: bool = False,
) -> FederatedResult:
    """Record the run, serve it (with local client processes or external ones), finish it."""
    from fti.training.federation.server import serve

    _flower.set_verbose(verbose)
    run_record = start_run(session, run_name)
    try:
        strategy = session.strategy = make_strategy(session)
        if local_clients:
            _serve_with_local_clients(session, strategy, verbose)
        else:
            assert address is not None
            serve(strategy, address, session.options.round_timeout, certificates=certificates)
        return finish(session)
    except BaseException as exc:
        if run_record.status == "running":
            run_record.end("failed", error=repr(exc))
        raise


def _serve_with_local_clients(session: Session, strategy: FederatedStrategy, verbose: bool) -> None:
    from fti.training.federation.server import serve

    project = project_of(session.fv)
    address = f"127.0.0.1:{_free_port()}"
    failure: list[BaseException] = []
    grpc_servers: list[Any] = []
    ready = threading.Event()

    def target() -> None:
        try:
            serve(strategy, address, session.options.round_timeout, ready=ready, started=grpc_servers.append)
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=target, name="fti-federated-server", daemon=True)
    thread.start()
    ready.wait()
    logs = Path(tempfile.mkdtemp(prefix="fti-federated-"))
    clients: dict[str, subprocess.Popen[bytes]] = {}
    crashed: dict[str, int] = {}
    try:
        if not failure:
            for name in session.partitions:
                clients[name] = _start_client(
                    project, address, f"{session.partition_by}={name}", logs, verbose
                )
        while thread.is_alive():
            _check_clients(clients, crashed)
            if crashed and strategy.aborted is None:
                name, code = next(iter(crashed.items()))
                strategy.aborted = f"the client of {session.partition_by}={name} exited with status {code}"
                for server in grpc_servers:
                    server.stop(grace=0)  # fails the calls in flight, so the round ends now
            thread.join(0.1)
        if failure:  # a client that failed the run is usually exiting with its error now
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and any(p.poll() is None for p in clients.values()):
                _check_clients(clients, crashed)
                if crashed:
                    break
                time.sleep(0.05)
            _check_clients(clients, crashed)
    except BaseException:
        strategy.aborted = "interrupted"
        for server in grpc_servers:
            server.stop(grace=0)
        thread.join(10)
        raise
    finally:
        _stop(clients)
        # the logs of the clients that failed go into the error; nothing is kept on disk
        tails = {name: _tail(logs, name) for name in crashed}
        shutil.rmtree(logs, ignore_errors=True)
    if failure:
        error = failure[0]
        if isinstance(error, FtiError) and not crashed:
            raise error
        logs_text = "".join(
            f"\n--- client of {session.partition_by}={name} (exit status {code}):\n{tails[name]}"
            for name, code in crashed.items()
        )
        reason = strategy.aborted or f"{type(error).__name__}: {error}"
        raise BackendError(f"federated training failed: {reason}{logs_text}") from error


def _check_clients(clients: dict[str, subprocess.Popen[bytes]], crashed: dict[str, int]) -> None:
    for name, process in clients.items():
        code = process.poll()
        if code not in (None, 0):
            crashed.setdefault(name, code)


def _start_client(
    project: Project, address: str, partition: str, logs: Path, verbose: bool
) -> subprocess.Popen[bytes]:
    settings = project.settings
    env = dict(os.environ)
    env.update(
        FTI_HOME=str(settings.home),
        FTI_CATALOG_URL=settings.resolved_catalog_url,
        FTI_OFFLINE_URL=settings.resolved_offline_url,
        FTI_ONLINE_URL=settings.resolved_online_url,
        FTI_ARTIFACTS_URL=settings.resolved_artifacts_url,
        PYTHONUNBUFFERED="1",
        **_flower.environment(),
    )
    name = partition.partition("=")[2]
    command = [sys.executable, "-m", "fti.training.federation.client", "--server", address]
    command += ["--partition", partition, "--project", project.name, *(["--verbose"] if verbose else [])]
    with (logs / f"{_safe(name)}.log").open("wb") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(clients: dict[str, subprocess.Popen[bytes]]) -> None:
    """Clients leave on their own once the server says goodbye; by then the run is complete, so
    any still tearing down (gRPC threads take a while) are terminated rather than waited for."""
    deadline = time.monotonic() + 0.5
    for process in clients.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in clients.values():
        if process.poll() is None:
            process.terminate()
    for process in clients.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(logs: Path, name: str, lines: int = 15) -> str:
    path = logs / f"{_safe(name)}.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "partition"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
