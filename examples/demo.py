"""``make demo``: both example systems end to end on the embedded defaults, then a live model server.

Runs ``python -m examples.demo``. In ``$FTI_HOME`` (default ``./.fti``) it registers the iris and
fraud pipelines with the scheduler, runs each of them once (feature pipelines, training with a
promotion gate, batch inference) as recorded pipeline runs, starts ``fti serve`` on 127.0.0.1,
sends real prediction requests over HTTP, prints them and the ``curl`` lines to try, and keeps
the server (and the web UI at ``/ui/``) running until Ctrl-C.

Environment:
    DEMO_EXIT=1       stop after the requests (for tests and CI).
    DEMO_PORT=8080    the server's port (default: a free one).
    DEMO_CARDS=1000   cards in the synthetic fraud data; DEMO_DAYS=90 days of transactions.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import fti
from examples.fraud import inference as fraud_inference
from examples.fraud.generator import DATA_START
from examples.iris import pipelines as iris

HERE = Path(__file__).resolve().parent
IRIS_PIPELINES = HERE / "iris" / "pipelines.py"
FRAUD_PIPELINES = HERE / "fraud" / "pipelines.py"


class DemoError(Exception):
    """A step failed; the message says which and shows its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_pipeline(project: fti.Project, name: str, **kwargs: Any) -> Any:
    """Run a deployed pipeline once (in its own process, recorded in the run history)."""
    run = project.pipelines.run(name, **kwargs)
    if run.status != "succeeded":
        logs = project.pipelines.logs(run.id)
        raise DemoError(f"pipeline {name!r} run {run.id} {run.status}:\n" + "\n".join(logs.values()))
    return run


def oip_body(row: dict[str, Any]) -> dict[str, Any]:
    """An Open Inference Protocol request body for one row (one input tensor per field)."""
    from fti.serving.deployments import to_inputs

    return {"inputs": to_inputs(row)}


def infer(url: str, deployment: str, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """POST rows to ``/v2/models/<deployment>/infer``; returns ``{output: values per row}``."""
    import httpx

    from fti.serving.deployments import to_inputs

    response = httpx.post(f"{url}/v2/models/{deployment}/infer", json={"inputs": to_inputs(rows)}, timeout=30)
    if response.status_code != 200:
        raise DemoError(f"{deployment}: HTTP {response.status_code}: {response.text}")
    return {o["name"]: o["data"] if len(o["shape"]) == 1 else _rows(o) for o in response.json()["outputs"]}


def _rows(output: dict[str, Any]) -> list[list[Any]]:
    width = int(output["shape"][1])
    data = output["data"]
    return [data[i : i + width] for i in range(0, len(data), width)]


def start_server(project: fti.Project, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``fti serve`` on 127.0.0.1:port in a child process (its output goes to ``log_path``)."""
    log = log_path.open("wb")
    command = [sys.executable, "-m", "fti.cli.main", "--home", str(project.settings.home)]
    command += ["--project", project.name, "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_ready(
    url: str, deployments: list[str], server: subprocess.Popen[bytes], timeout_s: float = 90
) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    pending = list(deployments)
    while pending:
        if server.poll() is not None:
            raise DemoError(f"the server exited with status {server.returncode}")
        try:
            if httpx.get(f"{url}/v2/models/{pending[0]}/ready", timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise DemoError(f"deployment(s) {pending} not ready after {timeout_s:.0f}s")
        time.sleep(0.2)


def curl_line(url: str, deployment: str, row: dict[str, Any]) -> str:
    body = json.dumps(oip_body(row), separators=(",", ":"), default=str)
    return f"curl -s {url}/v2/models/{deployment}/infer -H 'Content-Type: application/json' -d {shlex.quote(body)}"


def build_steps(project: fti.Project, cards: int, days: int) -> list[tuple[str, Callable[[], Any]]]:
    end = DATA_START + timedelta(days=days)
    fraud_params = {"cards": cards}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("register the iris pipelines", lambda: project.pipelines.deploy(IRIS_PIPELINES)),
        ("iris: feature pipeline (150 flowers)", lambda: run_pipeline(project, "iris_features")),
        ("iris: training pipeline (k-NN, gate, deploy)", lambda: run_pipeline(project, "train_iris")),
        ("iris: batch inference", lambda: run_pipeline(project, "score_iris")),
        ("register the fraud pipelines", lambda: project.pipelines.deploy(FRAUD_PIPELINES)),
        (
            f"fraud: card profiles ({cards} cards)",
            lambda: run_pipeline(project, "card_profiles", start=DATA_START, end=end, params=fraud_params),
        ),
    ]
    window = timedelta(days=30)
    start = DATA_START
    while start < end:
        stop = min(start + window, end)
        steps.append(
            (
                f"fraud: transaction features {start:%Y-%m-%d} .. {stop:%Y-%m-%d}",
                lambda a=start, b=stop: run_pipeline(  # type: ignore[misc]
                    project, "fraud_features", start=a, end=b, params=fraud_params
                ),
            )
        )
        start = stop
    steps += [
        (
            "fraud: training pipeline (gradient boosting, gate, deploy)",
            lambda: run_pipeline(project, "train_fraud"),
        ),
        (
            "fraud: batch inference of the last 7 days",
            lambda: run_pipeline(project, "score_fraud", start=end - timedelta(days=7), end=end),
        ),
    ]
    return steps


def main() -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console()
    exit_after = os.environ.get("DEMO_EXIT", "") == "1"
    cards = int(os.environ.get("DEMO_CARDS", "1000"))
    days = int(os.environ.get("DEMO_DAYS", "90"))
    port = int(os.environ.get("DEMO_PORT") or free_port())
    url = f"http://127.0.0.1:{port}"
    began = time.monotonic()

    project = fti.connect()
    console.rule("[bold]fti demo: two FTI systems on one machine")
    console.print(f"home: {project.settings.home}  project: {project.name}")
    steps = build_steps(project, cards, days)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            overall = progress.add_task("starting", total=len(steps))
            for label, step in steps:
                progress.update(overall, description=label)
                t0 = time.monotonic()
                step()
                progress.console.print(f"[green]✓[/green] {label} [dim]({time.monotonic() - t0:.1f}s)[/dim]")
                progress.advance(overall)
            progress.update(overall, description="pipelines done")

        registry = project.model_registry
        iris_model = registry.get_model("iris@production")
        fraud_model = registry.get_model("fraud@production")
        fs = project.feature_store
        summary = Table(title="models and batch predictions")
        for column in ("model", "version", "metric", "batch predictions"):
            summary.add_column(column)
        summary.add_row(
            "iris",
            str(iris_model.version),
            f"accuracy {iris_model.metrics['accuracy']:.3f}",
            f"{fs.get_feature_group(iris.PREDICTIONS).read_arrow().num_rows} rows in {iris.PREDICTIONS}",
        )
        summary.add_row(
            "fraud",
            str(fraud_model.version),
            f"AUC {fraud_model.metrics['auc']:.3f} (test split)",
            f"{fs.get_feature_group(fraud_inference.PREDICTIONS).read_arrow().num_rows} rows in "
            f"{fraud_inference.PREDICTIONS}",
        )
        console.print(summary)

        log_path = project.settings.home / "demo-server.log"
        console.print(f"starting [bold]fti serve[/bold] on {url} (log: {log_path})")
        server = start_server(project, port, log_path)
    except DemoError as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        project.close()
        return 1
    try:
        wait_ready(url, [iris.DEPLOYMENT, fraud_inference.DEPLOYMENT], server)
        show_requests(console, project, url)
        console.print(f"[dim]demo took {time.monotonic() - began:.0f}s[/dim]")
        if exit_after:
            return 0
        console.print(
            f"\nthe server keeps running on {url} (web UI: {url}/ui/); press [bold]Ctrl-C[/bold] to stop it"
        )
        server.wait()
        return server.returncode or 0
    except DemoError as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("stopping the server")
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        project.close()


def show_requests(console: Any, project: fti.Project, url: str) -> None:
    """Send real requests to both deployments and print them, then the curl lines to try."""
    from rich.table import Table

    flowers = iris.sample_requests()
    answer = infer(url, iris.DEPLOYMENT, flowers)
    table = Table(title=f"POST {url}/v2/models/iris/infer")
    for column in (*iris.FEATURES, "predicted variety"):
        table.add_column(column)
    for flower, variety in zip(flowers, answer["predict"], strict=True):
        table.add_row(*(f"{flower[f]:.1f}" for f in iris.FEATURES), str(variety))
    console.print(table)

    live = fraud_inference.sample_transactions(project)
    requests = [fraud_inference.request_for(t) for t in live]
    answer = infer(url, fraud_inference.DEPLOYMENT, requests)
    table = Table(
        title=f"POST {url}/v2/models/fraud/infer (cc_num + raw live transaction; on-demand features "
        "computed and online features looked up by the server)"
    )
    table.add_column("cc_num", no_wrap=True)
    table.add_column("live transaction")
    table.add_column("time (UTC)")
    table.add_column("place", justify="right")
    table.add_column("fraud probability", justify="right")
    for txn, proba in zip(live, answer["predict_proba"], strict=True):
        table.add_row(
            str(txn["cc_num"]),
            f"{txn['amount']:.2f} {txn['category']}",
            f"{txn['datetime']:%Y-%m-%d %H:%M}",
            f"{txn['lat']:.2f}, {txn['lon']:.2f}",
            f"{proba[1]:.3f}",
        )
    console.print(table)

    console.rule("try it")
    console.print(f"web UI: {url}/ui/  (browse the features, models, lineage and pipelines; try the models)")
    for line in (
        curl_line(url, iris.DEPLOYMENT, flowers[2]),
        curl_line(url, fraud_inference.DEPLOYMENT, requests[1]),
        f"curl -s {url}/v2/models/fraud",
        f"curl -s {url}/metrics | grep fti_",
    ):
        console.print(line, soft_wrap=True, highlight=False, markup=False)


if __name__ == "__main__":
    sys.exit(main())
