"""The pipeline decorators validate declarations up front and keep the function callable."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import pytest

import fti
from fti.errors import ValidationError
from fti.pipelines.definitions import OnEvent, OnNewData, spec_of


def test_decorated_function_stays_callable_and_carries_its_spec() -> None:
    @fti.feature_pipeline(
        schedule="0 * * * *",
        timezone="Europe/Berlin",
        retries=3,
        retry_backoff="30s",
        timeout="15m",
        concurrency="replace",
    )
    def transactions_features(project: object, start: datetime, end: datetime) -> str:
        """Hourly transactions."""
        return "ran"

    assert transactions_features(None, datetime.now(), datetime.now()) == "ran"
    spec = spec_of(transactions_features)
    assert spec is not None
    assert (spec.name, spec.kind, spec.retries, spec.retry_backoff, spec.timeout) == (
        "transactions_features",
        "feature",
        3,
        30.0,
        900.0,
    )
    assert spec.schedule is not None and spec.schedule.cron == "0 * * * *"
    assert spec.schedule.timezone == "Europe/Berlin" and spec.concurrency == "replace"
    assert spec.signature.takes_window and spec.description == "Hourly transactions."


def test_training_and_inference_pipelines_with_triggers_and_intervals() -> None:
    @fti.training_pipeline(trigger=fti.on_new_data("transactions", min_rows=10_000))
    def train_fraud(project: object) -> None: ...

    @fti.inference_pipeline(schedule=fti.every(days=1), name="score")
    def score_daily(project: object, start: datetime, end: datetime) -> None: ...

    @fti.training_pipeline
    def bare(project: object, event: dict | None = None) -> None: ...

    t = spec_of(train_fraud)
    assert (
        t is not None
        and t.trigger == OnNewData("transactions", None, 10_000)
        and not t.signature.takes_window
    )
    s = spec_of(score_daily)
    assert s is not None and s.name == "score" and s.schedule is not None
    assert s.schedule.interval == timedelta(days=1)
    b = spec_of(bare)
    assert b is not None and b.kind == "training" and b.signature.takes_event
    assert fti.on_event("drift_detected") == OnEvent("drift_detected")


def ok(project: object, start: datetime, end: datetime) -> None: ...


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": "61 * * * *"}, "invalid cron expression '61 \\* \\* \\* \\*'"),
        ({"schedule": "not cron"}, "invalid cron expression"),
        ({"schedule": "0 * * * *", "timezone": "Mars/Base"}, "unknown timezone 'Mars/Base'"),
        ({"retries": -1}, "retries must be an integer >= 0, got -1"),
        ({"retries": 1.5}, "retries must be an integer"),
        ({"timeout": "15x"}, "invalid timeout '15x'"),
        ({"timeout": "-5m"}, "invalid timeout"),
        ({"timeout": 0}, "invalid timeout 0"),
        ({"retry_backoff": "soon"}, "invalid retry_backoff"),
        ({"concurrency": "queue"}, "invalid concurrency 'queue'"),
        ({"missed": "all"}, "invalid missed 'all'"),
        ({"schedule": 5}, "invalid schedule 5"),
        ({"trigger": "transactions"}, "invalid trigger"),
        ({"name": "Bad-Name"}, "invalid pipeline name"),
    ],
)
def test_bad_options_are_rejected(options: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        fti.feature_pipeline(**options)(ok)


def test_signature_that_cannot_accept_the_window_is_rejected() -> None:
    def no_window(project: object) -> None: ...

    def only_start(project: object, start: datetime) -> None: ...

    with pytest.raises(ValidationError, match="cannot accept start, end"):
        fti.feature_pipeline(schedule="0 * * * *")(no_window)
    with pytest.raises(ValidationError, match="cannot accept end"):
        fti.inference_pipeline(schedule=fti.every(hours=1))(only_start)

    def no_project() -> None: ...

    with pytest.raises(ValidationError, match="first positional parameter"):
        fti.feature_pipeline(no_project)

    def kwargs_ok(project: object, **kwargs: object) -> None: ...

    assert spec_of(fti.feature_pipeline(schedule="0 * * * *")(kwargs_ok)) is not None


def test_scheduled_pipeline_parameters_need_defaults() -> None:
    def needs_param(project: object, start: datetime, end: datetime, region: str) -> None: ...

    with pytest.raises(ValidationError, match="region need default values"):
        fti.feature_pipeline(schedule="0 * * * *")(needs_param)
    # manual-only pipelines may require parameters
    spec = spec_of(fti.feature_pipeline(needs_param))
    assert spec is not None and spec.signature.required == ("region",)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fti.every(), "too short"),
        (lambda: fti.every(hours=-1), "hours=-1"),
        (lambda: fti.on_new_data("transactions", min_rows=0), "min_rows 0"),
        (lambda: fti.on_new_data("Bad Name"), "invalid feature group name"),
        (lambda: fti.on_new_data("tx", version=0), "version 0"),
        (lambda: fti.on_event(""), "invalid event name"),
    ],
)
def test_bad_schedule_and_trigger_helpers(call: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        call()  # type: ignore[operator]


def test_decorators_do_not_import_heavy_modules() -> None:
    code = (
        "import sys, fti\n"
        "@fti.feature_pipeline(schedule=fti.every(hours=1))\n"
        "def f(project, start, end): pass\n"
        "heavy = [m for m in ('pandas', 'numpy', 'duckdb', 'sqlalchemy', 'pyarrow') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_secrets_are_validated_at_import() -> None:
    @fti.feature_pipeline(secrets=["analytics-db", "s3.raw", "analytics-db"])
    def uses(project):  # type: ignore[no-untyped-def]
        pass

    assert spec_of(uses).secrets == ("analytics-db", "s3.raw")  # type: ignore[union-attr]
    for bad in ("analytics-db", ["Bad Name"], [1], {"a": 1}):
        with pytest.raises(ValidationError, match="secret"):
            fti.feature_pipeline(secrets=bad, name="uses")(lambda project: None)
