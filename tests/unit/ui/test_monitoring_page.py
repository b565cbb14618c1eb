"""The monitoring pages: monitors, drift per column over windows, performance, alerts — shown
from the monitors' run records, against the demo's fraud data."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

import fti
from examples.fraud.feature_pipeline import TRANSACTIONS
from examples.fraud.generator import DATA_START
from examples.fraud.monitoring import BATCH_MONITOR, declare_monitors
from fti.testing.asgi import AsgiClient
from fti.ui.app import create_app
from tests.demo_data import DAYS

DAY = timedelta(days=1)


def charts(html: str) -> dict[str, Any]:
    """The JSON blocks the page hands to its charts, by id."""
    return {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, re.S)
    }


@pytest.fixture(scope="module")
def monitored(demo_home: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import shutil

    home = tmp_path_factory.mktemp("ui-monitoring") / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("ui"))
    project = fti.connect(home=home)
    daily = project.monitoring.create_monitor(
        "tx_daily",
        feature_group=TRANSACTIONS,
        window="1d",
        reference=(DATA_START, DATA_START + 7 * DAY),
        features=["amount"],
        tests={"amount": "psi"},
        thresholds={"psi": 1e-9},  # any difference from the first week is drift: an alert each day
        alert=fti.alert(event="drift_detected", cooldown="1h"),
        description="amount <b>per day</b>",
    )
    results = daily.backfill(DATA_START + 7 * DAY, DATA_START + 10 * DAY)
    _live, batch = declare_monitors(project)
    end = DATA_START + timedelta(days=DAYS)
    scored = batch.run(end - 7 * DAY, end)
    yield project, daily, results, scored
    project.close()


@pytest.fixture(scope="module")
def client(monitored: Any) -> Any:
    with AsgiClient(create_app(monitored[0])) as c:
        yield c


def test_the_list_shows_each_monitor_its_last_window_and_the_alerts(
    client: AsgiClient, monitored: Any
) -> None:
    _project, daily, results, _scored = monitored
    html = client.get("/monitoring").text
    assert '<a href="/monitoring/tx_daily">tx_daily</a>' in html
    assert f'<a href="/monitoring/{BATCH_MONITOR}">{BATCH_MONITOR}</a>' in html
    assert "feature group transactions" in html and "<td>1d</td>" in html
    assert results[-1].window_start.strftime("%Y-%m-%d") in html
    # one delivered alert (then the cooldown suppresses the next days'), each naming the column
    alerts = daily.alerts()
    assert [a.status for a in alerts] == ["suppressed", "suppressed", "delivered"]
    assert html.count("amount (psi ") == 3
    home = client.get("/").text
    assert "tx_daily: drift in" in home


def test_a_monitor_shows_its_statistic_per_window_and_the_latest_values(
    client: AsgiClient, monitored: Any
) -> None:
    _project, _daily, results, _scored = monitored
    html = client.get("/monitoring/tx_daily").text
    assert "amount &lt;b&gt;per day&lt;/b&gt;" in html  # the description, escaped
    drift = charts(html)["drift-1"]
    assert drift["x"] == [int(r.window_start.timestamp()) for r in results]
    psi = [next(o.statistic for o in r.outcomes if o.column == "amount" and o.test == "psi") for r in results]
    assert drift["series"]["psi"] == pytest.approx(psi)
    assert drift["series"]["threshold"] == [1e-9] * 3
    assert f"{psi[-1]:.4g}" in html  # the latest window's statistic in the table
    assert html.count('<span class="status s-ok">ok</span>') == 3
    assert "No performance figures: the monitor has no model" in html


def test_a_model_monitor_charts_its_estimated_performance(client: AsgiClient, monitored: Any) -> None:
    _project, _daily, _results, scored = monitored
    estimated = scored.metric("roc_auc", "estimated")
    assert estimated is not None
    html = client.get(f"/monitoring/{BATCH_MONITOR}").text
    performance = charts(html)["performance"]
    assert performance["x"] == [int(scored.window_start.timestamp())]
    assert performance["series"]["estimated roc_auc"] == [pytest.approx(estimated)]


def test_unknown_monitors_and_bad_parameters(client: AsgiClient) -> None:
    missing = client.get("/monitoring/nope")
    assert missing.status_code == 404 and "nope" in missing.text
    assert client.get("/monitoring/tx_daily?last=0").status_code == 400
    assert client.get("/monitoring/tx_daily?last=x").status_code == 400
    assert client.get("/monitoring/tx_daily?last=1").text.count('<span class="status s-ok">ok</span>') == 1
