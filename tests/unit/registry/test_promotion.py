"""The promotion gate: thresholds, comparison with the current alias holder, typed refusals."""

from __future__ import annotations

import pytest

import fti
from fti.errors import ConflictError, ValidationError
from fti.registry.promotion import PromotionRejectedError, parse_conditions


@pytest.fixture
def registry(project: fti.Project, classifier):  # type: ignore[no-untyped-def]
    mr = project.model_registry
    mr.register("fraud", classifier, metrics={"auc": 0.91, "latency_ms": 12.0})
    mr.register("fraud", classifier, metrics={"auc": 0.95, "latency_ms": 15.0})
    mr.register("fraud", classifier, metrics={"auc": 0.85})
    return mr


def test_promotion_passes_and_records_the_gate(registry) -> None:
    mv = registry.promote("fraud", 1, "production", require={"auc": ">= 0.9"}, compare_to="production")
    assert mv.version == 1 and registry.get_model("fraud@production").version == 1
    mv = registry.promote("fraud", 2, "production", require={"auc": ">= 0.9"}, compare_to="production")
    assert registry.get_model("fraud@production").version == 2
    last = registry.alias_history("fraud", "production")[-1]
    assert (last.from_version, last.to_version) == (1, 2)
    assert last.reason == "promote (auc >= 0.9) compared to 'production'"


def test_threshold_failure_and_missing_metric_are_each_listed(registry) -> None:
    registry.set_alias("fraud", 1, "production")
    with pytest.raises(PromotionRejectedError) as info:
        registry.promote("fraud", 3, "production", require={"auc": ">= 0.9", "latency_ms": "< 20"})
    err = info.value
    assert isinstance(err, ConflictError) and err.code == "promotion_rejected"
    assert err.failures == [
        "auc >= 0.9: fraud:3 has auc = 0.85, short by 0.05",
        "latency_ms < 20: fraud:3 has no metric 'latency_ms' (its metrics: ['auc'])",
    ]
    assert err.details == {"failed_conditions": err.failures}
    assert registry.get_model("fraud@production").version == 1  # the alias did not move
    assert len(registry.alias_history("fraud")) == 1


def test_candidate_worse_than_current_holder_is_refused(registry) -> None:
    registry.set_alias("fraud", 2, "production")
    with pytest.raises(PromotionRejectedError, match=r"worse than 0.95 of fraud:2 \(production\)") as info:
        registry.promote("fraud", 1, "production", require={"auc": ">= 0.9"}, compare_to="production")
    assert len(info.value.failures) == 1
    # lower is better for "<" conditions: v1 (12 ms) beats v2 (15 ms) on latency
    registry.promote("fraud", 1, "staging", require={"latency_ms": "<= 20"}, compare_to="production")
    with pytest.raises(PromotionRejectedError, match="lower is better"):
        registry.promote("fraud", 2, "canary", require={"latency_ms": "<= 20"}, compare_to="staging")
    # without compare_to only the thresholds count
    registry.promote("fraud", 1, "production", require={"auc": ">= 0.9"})
    assert registry.get_model("fraud@production").version == 1


@pytest.mark.parametrize(
    "require",
    [{"auc": "0.9"}, {"auc": "=> 0.9"}, {"auc": ">= high"}, {"auc": 0.9}, {"": ">= 1"}, ["auc >= 0.9"]],
)
def test_malformed_conditions(require: object) -> None:
    with pytest.raises(ValidationError, match=r"promotion condition|require must be"):
        parse_conditions(require)


def test_conditions_parse() -> None:
    conditions = parse_conditions({"auc": ">=0.9", "loss": " < 1e-2", "n": "== 3", "x": "!= -1.5"})
    assert [str(c) for c in conditions] == ["auc >= 0.9", "loss < 0.01", "n == 3", "x != -1.5"]
