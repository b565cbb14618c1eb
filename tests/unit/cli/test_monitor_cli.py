"""``fti monitor`` through click's runner on a project with a logged enriched deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from fti.cli.main import cli
from fti.cli.monitor import sparkline
from tests.unit.monitoring.conftest import HOUR, T0, build_system, log_windows


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    built = build_system(tmp_path_factory.mktemp("cli") / "home")
    log_windows(built)
    yield built
    built["project"].close()


def _run(system: dict[str, Any], *args: str) -> tuple[int, str, str]:
    home = str(system["project"].settings.home)
    result = CliRunner().invoke(cli, ["--home", home, "monitor", *args])
    return result.exit_code, result.stdout, result.stderr


def test_create_run_show_labels_alerts(logged: dict[str, Any], tmp_path: Path) -> None:
    system = logged
    code, out, err = _run(
        system, "create", "cli_drift", "--deployment", "fraud", "--window", "1h", "--schedule", "5 * * * *",
        "--alert-event", "drift_detected", "--cooldown", "1h", "--slice", "amount=50,100", "--test", "amount=psi",
    )  # fmt: skip
    assert code == 0, err
    assert "created monitor cli_drift of deployment fraud: 2 feature(s), 2 prediction(s)" in out
    assert "scheduled as pipeline monitor_cli_drift (5 * * * *)" in out
    code, out, _ = _run(system, "list", "--json")
    [listed] = [m for m in json.loads(out) if m["name"] == "cli_drift"]
    assert (listed["source"], listed["status"]) == ("deployment fraud", None)

    code, out, err = _run(
        system, "run", "cli_drift", "--start", T0.isoformat(), "--end", (T0 + HOUR).isoformat(), "--json"
    )
    assert code == 0, err
    normal = json.loads(out)
    assert (normal["status"], normal["rows"], normal["dataset_drift"]) == ("ok", 300, False)
    code, out, err = _run(
        system,
        "backfill",
        "cli_drift",
        "--start",
        (T0 + HOUR).isoformat(),
        "--end",
        (T0 + 3 * HOUR).isoformat(),
        "--json",
    )
    assert code == 0, err
    assert [(w["rows"], w["dataset_drift"], w["alerts"]) for w in json.loads(out)] == [
        (300, True, ["delivered"]),
        (0, False, []),
    ]
    code, out, _ = _run(system, "show", "cli_drift")
    assert code == 0
    amount_line = next(line for line in out.splitlines() if line.startswith("│ amount"))
    assert "psi" in amount_line and sparkline([0.01, 2.0, None])[:2] in amount_line
    code, out, _ = _run(system, "show", "cli_drift", "--json")
    history = json.loads(out)["history"]
    assert len(history["amount"]) == 3 and history["amount"][2] is None  # the empty window

    log = system["project"].feature_store.get_feature_group("fraud_inference_log").read()
    hour = log[(log.timestamp >= T0) & (log.timestamp < T0 + HOUR)]
    path = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": hour.request_id, "is_fraud": 1}).to_csv(path, index=False)
    code, out, err = _run(system, "labels", "fraud", str(path))
    assert code == 0, err
    assert (
        "300 label(s) written to fraud_labels (joined by request_id): 300 match logged predictions, 0 do not"
        in out
    )
    code, out, _ = _run(system, "alerts", "cli_drift", "--json")
    assert [(a["kind"], a["status"]) for a in json.loads(out)] == [("drift", "delivered")]
    code, out, _ = _run(system, "alerts")
    assert "cli_drift" in out and "amount" in out


def test_bad_input_exits_2_with_the_message(logged: dict[str, Any], tmp_path: Path) -> None:
    system = logged
    code, _, err = _run(system, "create", "bad", "--deployment", "fraud", "--window", "soon")
    assert code == 2 and "invalid window 'soon'" in err
    code, _, err = _run(system, "create", "bad", "--deployment", "fraud", "--test", "amount")
    assert code == 2 and "invalid --test 'amount': use name=value" in err
    code, _, err = _run(system, "run", "nobody")
    assert code == 2 and "monitor 'nobody' not found" in err
    code, _, err = _run(system, "labels", "fraud", str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in err
    (tmp_path / "labels.txt").write_text("x")
    code, _, err = _run(system, "labels", "fraud", str(tmp_path / "labels.txt"))
    assert code == 2 and "use .parquet, .csv or .jsonl" in err


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([0.0, 0.5, 1.0, None]) == "▁▄█ "
    assert sparkline([2.0, 2.0]) == "▁▁" and sparkline([None]) == " "
