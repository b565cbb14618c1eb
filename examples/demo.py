"""``make demo``: both example systems end to end on the embedded defaults, then a live model server.

Runs ``python -m examples.demo``. In ``$FTI_HOME`` (default ``./.fti``) it registers the iris and
fraud pipelines with the scheduler, runs each of them once (feature pipelines, training with a
promotion gate, batch inference) as recorded pipeline runs, starts ``fti serve`` on 127.0.0.1,
sends real prediction requests over HTTP, prints them and the ``curl`` lines to try, then closes
the monitoring loop of the fraud system (drifted data and live traffic, the monitor finds the
drift and fires ``drift_detected``, the scheduler runs the retraining pipeline, the new version
passes the gate; labels arrive and the realized AUC per week is shown), and keeps the server
(and the web UI at ``/ui/``) running until Ctrl-C.

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
from examples.fraud import monitoring as fraud_monitoring
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
        close_the_loop(console, project, url, cards, days)
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


DRIFT_DAYS = 14
LIVE_ROWS = 500


def _step(console: Any, label: str, action: Callable[[], Any]) -> Any:
    console.print(f"[bold]…[/bold] {label}")
    t0 = time.monotonic()
    result = action()
    console.print(f"[green]✓[/green] {label} [dim]({time.monotonic() - t0:.1f}s)[/dim]")
    return result


def wait_logged(project: fti.Project, since: Any, rows: int, timeout_s: float = 30) -> int:
    """Wait until the server's request logger wrote ``rows`` rows logged at or after ``since``."""
    from fti.errors import NotFoundError

    deadline = time.monotonic() + timeout_s
    logged = 0
    while time.monotonic() < deadline:
        try:
            log = project.feature_store.get_feature_group(f"{fraud_inference.DEPLOYMENT}_inference_log")
            times = log.read_arrow(columns=["timestamp"]).column("timestamp").to_pylist()
            logged = sum(t >= since for t in times)
        except NotFoundError:
            logged = 0
        if logged >= rows:
            return logged
        time.sleep(0.3)
    raise DemoError(f"the inference log holds {logged} of {rows} live rows after {timeout_s:.0f}s")


def retrain_on_event(project: fti.Project, timeout_s: float = 600) -> Any:
    """Run the scheduler for ``retrain_fraud`` only until the run that ``drift_detected`` triggers
    has finished (the other pipelines' schedules are left alone)."""
    from fti.pipelines.scheduler import Scheduler

    scheduler = Scheduler(project, only=["retrain_fraud"], tick_interval=0.5)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            scheduler.tick()
            runs = [
                r for r in project.pipelines.runs("retrain_fraud", limit=5) if r.trigger in ("event", "retry")
            ]
            if runs and runs[0].status not in ("queued", "running") and not scheduler.active_runs:
                run = runs[0]
                if run.status != "succeeded":
                    logs = project.pipelines.logs(run.id)
                    raise DemoError(f"retrain_fraud run {run.id} {run.status}:\n" + "\n".join(logs.values()))
                return run
            time.sleep(0.5)
    finally:
        scheduler.shutdown()
    raise DemoError(f"retrain_fraud did not finish within {timeout_s:.0f}s")


def close_the_loop(console: Any, project: fti.Project, url: str, cards: int, days: int) -> None:
    """Drifted data and traffic -> the monitor finds drift -> drift_detected -> retraining -> a new
    version behind the gate; then labels -> the realized AUC per week, before and after."""
    from datetime import UTC, datetime

    from rich.table import Table

    end = DATA_START + timedelta(days=days)
    drift_end = end + timedelta(days=DRIFT_DAYS)
    console.rule("monitoring: the fraud system's closed loop")
    live, _ = _step(
        console,
        "declare monitors fraud_live (the fraud deployment) and fraud_batch (batch predictions)",
        lambda: fraud_monitoring.declare_monitors(project),
    )
    params = {"cards": cards, "drift_day": days}
    _step(
        console,
        f"fraud: {DRIFT_DAYS} more days from a drifted source (prices +50%, a new 'crypto' category, "
        "a fraud pattern moves)",
        lambda: run_pipeline(project, "fraud_features", start=end, end=drift_end, params=params),
    )
    _step(
        console,
        "fraud: batch inference of the drifted days with the production model",
        lambda: run_pipeline(project, "score_fraud", start=end, end=drift_end),
    )
    since = datetime.now(UTC)
    sent = _step(
        console,
        f"live traffic: {LIVE_ROWS} drifted transactions to POST {url}/v2/models/fraud/infer",
        lambda: fraud_monitoring.replay(url, project, end, drift_end, LIVE_ROWS),
    )
    _step(
        console,
        "the server logs them (keys, untransformed features, predictions)",
        lambda: wait_logged(project, since, sent),
    )
    result = _step(
        console,
        "monitor fraud_live: the live window against the training data",
        lambda: live.run(since, datetime.now(UTC) + timedelta(seconds=1)),
    )
    table = Table(
        title=f"fraud_live: {result.rows} live rows, {result.drift_share:.0%} of the features drifted"
    )
    for column in ("column", "test", "statistic", "threshold", "drifted"):
        table.add_column(column)
    for o in result.outcomes:
        if o.kind == "drift":
            flag = "[red]drift[/red]" if o.drifted else ""
            table.add_row(o.column, o.test, f"{o.statistic:.3f}", f"{o.threshold:g}", flag)
    console.print(table)
    if not result.dataset_drift or not result.alerts:
        raise DemoError(f"fraud_live found no dataset drift in the drifted traffic: {result.to_dict()}")
    alert = result.alerts[0]
    console.print(
        f"alert {alert.id} ({alert.status}): drift in {', '.join(result.drifted_features)}; "
        f"fired event drift_detected (id {alert.event_id})"
    )
    before = project.model_registry.get_model("fraud@production")
    run = _step(
        console, "scheduler: drift_detected triggers retrain_fraud", lambda: retrain_on_event(project)
    )
    after = project.model_registry.get_model("fraud@production")
    console.print(
        f"retrain_fraud run {run.id} ({run.trigger}): fraud version {after.version} passed the gate "
        f"(AUC {after.metrics['auc']:.3f} >= 0.85 on its test split) and replaced version {before.version} "
        "in production; the server swaps to it on its next poll"
    )
    first = end - timedelta(days=7)
    labels = _step(
        console,
        "labels arrive (chargebacks): log the fraud labels of the scored weeks",
        lambda: fraud_monitoring.log_fraud_labels(project, first, drift_end),
    )
    console.print(f"{labels.written} labels joined to {labels.matched} batch predictions by card and time")
    weeks_before = _step(
        console,
        "monitor fraud_batch: realized and estimated AUC per week",
        lambda: fraud_monitoring.weekly_performance(project, first, drift_end),
    )
    _step(
        console,
        f"fraud: re-score the drifted days with version {after.version}",
        lambda: run_pipeline(project, "score_fraud", start=end, end=drift_end),
    )
    weeks_after = fraud_monitoring.weekly_performance(project, first, drift_end)
    dataset = after.feature_view().training_dataset(after.training_dataset_version)
    test_start = datetime.fromisoformat(str(dataset.split["test_start"]))
    table = Table(
        title="fraud_batch: AUC per week (realized from labels; estimated by CBPE without them)",
        caption=f"* the week is partly in version {after.version}'s training data (its test split starts "
        f"{test_start:%Y-%m-%d})",
    )
    for column in (
        "week",
        "rows",
        "model",
        "realized AUC",
        "estimated AUC",
        f"after retraining (v{after.version})",
    ):
        table.add_column(column)
    for week, later in zip(weeks_before, weeks_after, strict=True):
        drifted = week["week"] + timedelta(days=7) > end  # the week holds drifted days
        table.add_row(
            f"{week['week']:%Y-%m-%d}" + (" (drifted)" if drifted else ""),
            str(week["rows"]),
            ", ".join(f"v{v}" for v in week["versions"]),
            "" if week["auc"] is None else f"{week['auc']:.3f}",
            "" if week["auc_estimated"] is None else f"{week['auc_estimated']:.3f}",
            (f"{later['auc']:.3f}" + ("*" if week["week"] < test_start else ""))
            if drifted and later["auc"] is not None
            else "",
        )
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
