"""Every bad argument of a monitor is a typed error naming the problem, and nothing is written."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

import fti
from fti.errors import AlreadyExistsError, FtiError, NotFoundError, ValidationError
from tests.unit.monitoring.conftest import HOUR, T0


def _state(project: fti.Project) -> tuple[Any, ...]:
    return (
        [m.name for m in project.monitoring.list_monitors()],
        project.backends.artifacts.list("monitoring/"),
        [p.name for p in project.pipelines.list()],
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"deployment": "quiet"}, ValidationError, "logs no requests"),
        ({"deployment": "nope"}, NotFoundError, "deployment 'nope' not found"),
        ({}, ValidationError, "exactly one"),
        ({"deployment": "fraud", "feature_group": "cards"}, ValidationError, "exactly one"),
        (
            {"deployment": "fraud", "features": ["amount", "zip_code"]},
            ValidationError,
            r"unknown feature\(s\) \['zip_code'\]",
        ),
        ({"deployment": "fraud", "features": "amount"}, ValidationError, "features must be a list"),
        ({"deployment": "fraud", "window": "soon"}, ValidationError, "invalid window 'soon'"),
        ({"deployment": "fraud", "window": -5}, ValidationError, "invalid window"),
        ({"deployment": "fraud", "schedule": "every hour"}, ValidationError, "cron"),
        ({"deployment": "fraud", "timezone": "Mars/Olympus"}, ValidationError, "unknown timezone"),
        ({"deployment": "fraud", "reference": 9}, NotFoundError, "no training dataset version 9"),
        ({"deployment": "fraud", "reference": (T0 + HOUR, T0)}, ValidationError, "must be after start"),
        ({"deployment": "fraud", "reference": (datetime(2026, 1, 1), T0)}, ValidationError, "timezone-aware"),
        (
            {"deployment": "fraud", "reference": (T0 + 50 * HOUR, T0 + 51 * HOUR)},
            ValidationError,
            "has no rows",
        ),
        ({"deployment": "fraud", "reference": "training"}, ValidationError, "reference must be None"),
        ({"deployment": "fraud", "model": "ghost"}, NotFoundError, "model 'ghost' not found"),
        ({"feature_group": "cards"}, ValidationError, "needs model="),
        ({"feature_group": "ghost", "model": "fraud"}, NotFoundError, "feature group 'ghost'"),
        ({"feature_group": "profiles", "model": "fraud"}, ValidationError, "has no event time"),
        (
            {"deployment": "fraud", "tests": {"amount": "kolmogorov"}},
            ValidationError,
            "unknown drift test 'kolmogorov'",
        ),
        (
            {"deployment": "fraud", "tests": {"city": "ks"}},
            ValidationError,
            "does not apply to the categorical column 'city'",
        ),
        ({"deployment": "fraud", "tests": {"zip": "ks"}}, ValidationError, "unknown column 'zip'"),
        ({"deployment": "fraud", "tests": 3}, ValidationError, "tests must be"),
        (
            {"deployment": "fraud", "thresholds": {"speed": 0.1}},
            ValidationError,
            "neither a monitored column",
        ),
        ({"deployment": "fraud", "thresholds": {"ks": 5}}, ValidationError, "significance level"),
        ({"deployment": "fraud", "thresholds": {"psi": -1}}, ValidationError, "must be a number > 0"),
        ({"deployment": "fraud", "slices": ["zip"]}, ValidationError, "slice column 'zip'"),
        ({"deployment": "fraud", "slices": [{"amount": [100, 50]}]}, ValidationError, "increasing numbers"),
        ({"deployment": "fraud", "performance": {"roc_auc": "bad"}}, ValidationError, "invalid condition"),
        ({"deployment": "fraud", "alert": {"event": "x"}}, ValidationError, "alert must be fti.alert"),
        ({"deployment": "fraud", "description": 5}, ValidationError, "description must be a string"),
    ],
)
def test_bad_arguments_write_nothing(system, kwargs, error, message) -> None:  # type: ignore[no-untyped-def]
    project = system["project"]
    if not any(d.name == "quiet" for d in project.serving.list()):
        project.serving.deploy("quiet", model="fraud@production", log_requests=False)
        project.feature_store.get_or_create_feature_group("profiles", primary_key=["cc_num"]).insert(
            __import__("pandas").DataFrame({"cc_num": [1], "x": [1.0]})
        )
        system["served"].send(T0 + timedelta(minutes=1), [1, 2])  # the log exists, with data at T0
    before = _state(project)
    with pytest.raises(error, match=message):
        project.monitoring.create_monitor("bad", **kwargs)
    assert _state(project) == before


def test_bad_names_and_runs(system) -> None:  # type: ignore[no-untyped-def]
    monitoring = system["project"].monitoring
    with pytest.raises(ValidationError, match="invalid monitor name"):
        monitoring.create_monitor("Fraud Drift", deployment="fraud")
    with pytest.raises(ValidationError, match="too long"):
        monitoring.create_monitor("m" * 56, deployment="fraud")
    mon = monitoring.create_monitor("checked", deployment="fraud")
    with pytest.raises(AlreadyExistsError, match="monitor 'checked' already exists"):
        monitoring.create_monitor("checked", deployment="fraud")
    with pytest.raises(NotFoundError, match=r"monitor 'other' not found .*monitors: \[.*'checked'"):
        monitoring.get_monitor("other")
    runs = len(mon.runs())
    for start, end, message in [
        (datetime(2026, 3, 2), datetime(2026, 3, 3), "timezone-aware"),
        (T0 + HOUR, T0, "must be after start"),
        (T0, None, "both start and end"),
    ]:
        with pytest.raises(ValidationError, match=message):
            mon.run(start, end)
    with pytest.raises(ValidationError, match="more than 10,000 windows"):
        mon.backfill(T0, T0 + timedelta(days=500))
    assert len(mon.runs()) == runs
    with pytest.raises(FtiError):
        mon.backfill(T0, T0 - HOUR)


def test_without_scipy_monitoring_names_the_extra() -> None:
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['scipy'] = None\n"
        "import fti\nfrom fti.monitoring import require_scipy\n"
        "try:\n    require_scipy()\nexcept fti.BackendError as exc:\n    print(exc.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "monitoring needs the 'scipy' package: pip install 'fti[monitoring]'"
