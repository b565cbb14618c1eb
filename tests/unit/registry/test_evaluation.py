"""Model evaluation on data: figures equal scikit-learn's and Fairlearn's, evaluations are stored
with the version, and the promotion gate judges slices, fairness and a baseline on the same rows.

The data and models (tests/unit/registry/_loans.py) have known flaws: version 2 is good overall
but wrong on one region, version 3 favours a group, version 1 is neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import fti
from fti.errors import FtiError, NotFoundError, SchemaError, ValidationError
from fti.registry.promotion import PromotionRejectedError
from tests.unit.registry._loans import BIASED, GOOD, SLICE_BAD, Loans, build, frame, split_rows

ALL_GOOD = {"auc": ">= 0.85", "auc@slice": ">= 0.85", "demographic_parity_difference": "<= 0.1"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def loans(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loans]:
    home = tmp_path_factory.mktemp("evaluation")
    url = f"sqlite:///{home / 'catalog.db'}"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_server").create_database(f"fti_eval_{home.name}")
    with fti.connect(home=home, catalog_url=url) as project:
        yield build(project)


def _binary_expected(y: pd.Series, proba: np.ndarray) -> dict[str, float]:
    """What scikit-learn says, called as a user would with the model's own outputs."""
    predicted = (proba[:, 1] > 0.5).astype(np.int64)
    return {
        "auc": skm.roc_auc_score(y, proba[:, 1]),
        "average_precision": skm.average_precision_score(y, proba[:, 1]),
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted),
        "recall": skm.recall_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
        "log_loss": skm.log_loss(y, proba),
        "brier": skm.brier_score_loss(y, proba[:, 1]),
    }


def test_metrics_equal_scikit_learns_overall_and_per_slice(loans: Loans) -> None:
    mr = loans.project.model_registry
    ev = mr.evaluate(f"loan:{GOOD}", slices=["region", fti.bins("x2", [-1, 0, 1])], min_rows=20)
    X, y, source = split_rows(loans)
    proba = loans.models[GOOD].predict_proba(X)
    assert ev.rows == len(y) == 1000 and ev.task == "binary" and ev.label == "y"
    assert ev.source == {
        "feature_view": "loans",
        "feature_view_version": 1,
        "training_dataset_version": loans.td,
        "split": "test",
        "unlabelled_rows": 0,
    }
    expected = _binary_expected(y, proba)
    assert set(ev.metrics) == set(expected)
    for name, value in expected.items():  # the scorer may be a verified conversion: tiny differences
        assert ev.metrics[name] == pytest.approx(value, abs=1e-6), name
    west = (source["region"] == "west").to_numpy()
    by_name = {s.name: s for s in ev.by_slice}
    assert by_name["region=west"].rows == int(west.sum())
    assert by_name["region=west"].metrics["auc"] == pytest.approx(
        skm.roc_auc_score(y[west], proba[west, 1]), abs=1e-6
    )
    x2 = source["x2"].to_numpy()
    middle = (x2 >= 0) & (x2 < 1)
    assert by_name["x2=[0, 1)"].rows == int(middle.sum())
    assert by_name["x2=[0, 1)"].metrics["f1"] == pytest.approx(
        skm.f1_score(y[middle], proba[middle, 1] > 0.5), abs=1e-6
    )
    # every row is in exactly one slice of each slicing, and the bins come in order
    assert sum(s.rows for s in ev.by_slice if s.feature == "region") == 1000
    assert [s.value for s in ev.by_slice if s.feature == "x2"] == [
        "[-inf, -1)",
        "[-1, 0)",
        "[0, 1)",
        "[1, inf)",
    ]
    assert [s.value for s in ev.by_slice if s.feature == "region"] == ["east", "north", "south", "west"]


def test_metrics_of_a_regressor_and_a_multiclass_classifier(loans: Loans) -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    fs, mr = loans.project.feature_store, loans.project.model_registry
    fg = fs.get_feature_group("loans", 1)
    regression = fs.get_or_create_feature_view(
        "loans_x2", 1, query=fg.select(["x1", "segment", "x2"]), labels=["x2"]
    )
    X_train, X_test, y_train, y_test = regression.train_test_split(test_size=0.3, seed=2)
    model = LinearRegression().fit(X_train, y_train)
    mr.register(
        "x2_model",
        model,
        feature_view=regression,
        training_dataset_version=regression.last_training_dataset_version,
    )
    ev = mr.evaluate("x2_model", prefer="native")
    predicted = model.predict(X_test)
    assert ev.task == "regression"
    assert ev.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(y_test, predicted), rel=1e-9)
    assert ev.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y_test, predicted), rel=1e-9)
    assert ev.metrics["r2"] == pytest.approx(skm.r2_score(y_test, predicted), rel=1e-9)
    assert ev.metrics["max_error"] == pytest.approx(skm.max_error(y_test, predicted), rel=1e-9)

    multi = fs.get_or_create_feature_view(
        "loans_segment", 1, query=fg.select(["x1", "x2", "segment"]), labels=["segment"]
    )
    X_train, X_test, y_train, y_test = multi.train_test_split(test_size=0.3, seed=2)
    classifier = LogisticRegression(max_iter=500).fit(X_train, y_train)
    mr.register(
        "segment_model",
        classifier,
        feature_view=multi,
        training_dataset_version=multi.last_training_dataset_version,
    )
    ev = mr.evaluate("segment_model", prefer="native", slices=["segment"])
    proba, labels = classifier.predict_proba(X_test), classifier.predict(X_test)
    assert ev.task == "multiclass"
    assert ev.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y_test, labels), rel=1e-9)
    assert ev.metrics["f1_macro"] == pytest.approx(skm.f1_score(y_test, labels, average="macro"), rel=1e-9)
    assert ev.metrics["log_loss"] == pytest.approx(skm.log_loss(y_test, proba), rel=1e-9)
    assert ev.metrics["auc"] == pytest.approx(skm.roc_auc_score(y_test, proba, multi_class="ovr"), rel=1e-9)
    # a slice holding one class: AUC is undefined there and left out (never reported as 0)
    assert all("auc" not in s.metrics and "accuracy" in s.metrics for s in ev.by_slice)
    with pytest.raises(ValidationError, match="need a binary classifier"):
        mr.evaluate("segment_model", sensitive=["region"])


def test_fairness_equals_fairlearns(loans: Loans) -> None:
    from fairlearn import metrics as flm

    ev = loans.project.model_registry.evaluate(f"loan:{BIASED}", sensitive=["group"])
    X, y, source = split_rows(loans)
    predicted = loans.models[BIASED].predict(X)
    group = source["group"].to_numpy()
    result = ev.fairness["group"]
    for name, function in [
        ("demographic_parity_difference", flm.demographic_parity_difference),
        ("demographic_parity_ratio", flm.demographic_parity_ratio),
        ("equalized_odds_difference", flm.equalized_odds_difference),
        ("equalized_odds_ratio", flm.equalized_odds_ratio),
        ("equal_opportunity_difference", flm.equal_opportunity_difference),
    ]:
        assert result.metrics[name] == pytest.approx(
            function(y, predicted, sensitive_features=group), abs=1e-9
        )
    b = next(g for g in result.groups if g.value == "b")
    in_b = group == "b"
    assert (b.rows, b.positives) == (int(in_b.sum()), int(y[in_b].sum()))
    assert b.metrics["selection_rate"] == pytest.approx(flm.selection_rate(y[in_b], predicted[in_b]))
    assert b.metrics["false_positive_rate"] == pytest.approx(
        flm.false_positive_rate(y[in_b], predicted[in_b])
    )
    assert result.metrics["demographic_parity_difference"] > 0.2  # the flaw the data was built with


def test_a_model_bad_on_one_slice_is_refused_by_the_slice_condition(loans: Loans) -> None:
    mr = loans.project.model_registry
    mr.evaluate(f"loan:{SLICE_BAD}", slices=["region"], sensitive=["group"])
    with pytest.raises(PromotionRejectedError) as info:
        mr.promote("loan", SLICE_BAD, "slices", require={"auc": ">= 0.8", "auc@slice": ">= 0.85"})
    [failure] = info.value.failures  # good overall: only the one slice fails
    assert failure.startswith("auc@slice >= 0.85: loan:2 has auc = 0.04")
    assert "on region=west (101 rows)" in failure and "short by 0.8" in failure
    assert "slices" not in mr.aliases("loan")
    # the other conditions it passes, the slice on its own it fails
    mr.promote(
        "loan", SLICE_BAD, "slices", require={"auc": ">= 0.8", "demographic_parity_difference": "<= 0.1"}
    )
    with pytest.raises(PromotionRejectedError, match="region=west"):
        mr.promote("loan", SLICE_BAD, "slices", require={"auc@region=west": ">= 0.5"})
    mr.promote("loan", SLICE_BAD, "slices", require={"auc@region=north": ">= 0.85"})


def test_a_model_biased_against_a_group_is_refused_by_the_fairness_condition(loans: Loans) -> None:
    mr = loans.project.model_registry
    mr.evaluate(f"loan:{BIASED}", slices=["region"], sensitive=["group"])
    with pytest.raises(PromotionRejectedError) as info:
        mr.promote(
            "loan", BIASED, "fair", require={"auc": ">= 0.7", "demographic_parity_difference": "<= 0.1"}
        )
    [failure] = info.value.failures
    assert failure.startswith(
        "demographic_parity_difference <= 0.1: loan:3 has demographic_parity_difference = 0.25"
    )
    assert "by group" in failure and "selection rates: a " in failure and "over by 0.15" in failure
    assert "fair" not in mr.aliases("loan")
    # groups smaller than min_rows are reported, not gated: with neither group that large, no disparity
    small = mr.evaluate(f"loan:{BIASED}", sensitive=["group"], min_rows=600)
    assert small.fairness["group"].metrics == {} and not any(
        g.eligible for g in small.fairness["group"].groups
    )
    mr.promote("loan", BIASED, "fair", require={"demographic_parity_difference": "<= 0.1"})


def test_a_fair_model_passes_every_condition(loans: Loans) -> None:
    mr = loans.project.model_registry
    ev = mr.evaluate(f"loan:{GOOD}", slices=["region"], sensitive=["group"])
    mr.promote("loan", GOOD, "production", require=ALL_GOOD)
    assert mr.get_model("loan@production").version == GOOD
    note = mr.alias_history("loan", "production")[-1].reason
    assert note == (
        "promote (auc >= 0.85, auc@slice >= 0.85, demographic_parity_difference <= 0.1) "
        f"on evaluation {ev.number}"
    )
    # the same conditions refuse the two flawed models
    for flawed in (SLICE_BAD, BIASED):
        mr.evaluate(f"loan:{flawed}", slices=["region"], sensitive=["group"])
        with pytest.raises(PromotionRejectedError):
            mr.promote("loan", flawed, "production", require=ALL_GOOD)
    assert mr.get_model("loan@production").version == GOOD


def test_the_baseline_is_scored_on_the_candidates_rows(loans: Loans) -> None:
    mr = loans.project.model_registry
    mr.set_alias("loan", GOOD, "champion")
    ev = mr.evaluate(f"loan:{SLICE_BAD}", slices=["region"], sensitive=["group"], baseline="loan@champion")
    X, y, source = split_rows(loans)
    champion = loans.models[GOOD].predict_proba(X)[:, 1]
    assert ev.compare is not None and (ev.compare.ref, ev.compare.model) == ("loan@champion", "loan:1")
    assert ev.compare.metrics["auc"] == pytest.approx(skm.roc_auc_score(y, champion), abs=1e-6)
    assert ev.delta["auc"] == pytest.approx(ev.metrics["auc"] - ev.compare.metrics["auc"])
    west = (source["region"] == "west").to_numpy()
    by_name = {s.name: s for s in ev.by_slice}
    assert by_name["region=west"].baseline is not None
    assert by_name["region=west"].baseline["auc"] == pytest.approx(
        skm.roc_auc_score(y[west], champion[west]), abs=1e-6
    )
    assert ev.fairness["group"].baseline is not None
    with pytest.raises(PromotionRejectedError) as info:
        mr.promote(
            "loan",
            SLICE_BAD,
            "champion",
            require={"auc": ">= baseline - 0.01", "auc@region": ">= baseline - 0.1"},
        )
    first, second = info.value.failures
    assert first.startswith("auc >= baseline - 0.01: loan:2 has auc = 0.84") and "of baseline loan:1" in first
    assert (
        second.startswith("auc@region >= baseline - 0.1: loan:2 has auc = 0.04") and "region=west" in second
    )
    mr.promote("loan", SLICE_BAD, "champion", require={"demographic_parity_difference": "<= baseline + 0.05"})

    # an alias that points nowhere yet: recorded, nothing to beat
    ev = mr.evaluate(f"loan:{GOOD}", baseline="loan@nobody")
    assert ev.compare is not None and ev.compare.model is None and ev.compare.metrics == {}
    mr.promote("loan", GOOD, "nobody", require={"auc": ">= baseline + 0.5"})
    # no baseline asked for: a baseline condition cannot be judged
    mr.evaluate(f"loan:{BIASED}")
    with pytest.raises(PromotionRejectedError, match="has no baseline"):
        mr.promote("loan", BIASED, "nobody", require={"auc": ">= baseline"})


def test_a_baseline_of_another_feature_view(loans: Loans) -> None:
    from sklearn.linear_model import LogisticRegression

    fs, mr = loans.project.feature_store, loans.project.model_registry
    fg = fs.get_feature_group("loans", 1)
    narrow = fs.get_or_create_feature_view("loans_narrow", 1, query=fg.select(["x1", "y"]), labels=["y"])
    X_train, _, y_train, _ = narrow.train_test_split(test_size=0.5, seed=1)
    model = LogisticRegression().fit(X_train, y_train)
    mr.register(
        "narrow", model, feature_view=narrow, training_dataset_version=narrow.last_training_dataset_version
    )
    ev = mr.evaluate(f"loan:{GOOD}", baseline="narrow:1")
    raw, y = loans.fv.get_training_data(loans.td, split="test", transformed=False)
    expected = skm.roc_auc_score(y, model.predict_proba(raw[["x1"]])[:, 1])  # its own (no) transformations
    assert ev.compare is not None and ev.compare.metrics["auc"] == pytest.approx(expected, abs=1e-6)

    # a view with a feature the candidate's rows lack: its inputs cannot be built from them
    other = fs.get_or_create_feature_group("bureau", 1, primary_key=["id"])
    other.insert(
        pd.DataFrame(
            {"id": np.arange(50, dtype=np.int64), "score": np.linspace(0, 1, 50), "y": np.arange(50) % 2}
        )
    )
    bureau = fs.get_or_create_feature_view("bureau", 1, query=other.select(["score", "y"]), labels=["y"])
    X_b, y_b = bureau.create_training_data()[1][["score"]], np.arange(50) % 2
    mr.register("bureau", LogisticRegression().fit(X_b, y_b), feature_view=bureau,
                training_dataset_version=bureau.last_training_dataset_version)  # fmt: skip
    with pytest.raises(
        SchemaError, match=r"cannot be built from the rows of feature view 'loans' v1: it lacks \['score'\]"
    ):
        mr.evaluate(f"loan:{GOOD}", baseline="bureau:1")


def test_evaluations_are_numbered_stored_and_go_with_their_version(loans: Loans) -> None:
    mr = loans.project.model_registry
    copy = mr.register(
        "throwaway", loans.models[SLICE_BAD], feature_view=loans.fv, training_dataset_version=loans.td
    )
    first = mr.evaluate("throwaway:1", slices=["region"], min_rows=200)
    second = mr.evaluate("throwaway", sensitive=["group"])
    assert (first.number, second.number) == (1, 2)
    assert [e.to_dict() for e in mr.evaluations("throwaway:1")] == [first.to_dict(), second.to_dict()]
    assert mr.get_evaluation("throwaway:1").to_dict() == second.to_dict()
    assert mr.get_evaluation("throwaway:1", 1).to_dict() == first.to_dict()
    assert [e.number for e in copy.evaluations()] == [1, 2]
    assert {s.name: s.gated for s in first.by_slice} == {
        "region=east": True, "region=north": True, "region=south": True, "region=west": False,
    }  # fmt: skip
    # a slice below min_rows is reported but never gated, even when it fails
    mr.promote("throwaway", 1, "production", require={"auc@slice": ">= 0.85"}, evaluation=1)
    with pytest.raises(NotFoundError, match=r"throwaway:1 has no evaluation 3 \(evaluations: \[1, 2\]\)"):
        mr.get_evaluation("throwaway:1", 3)
    with pytest.raises(ValidationError, match="invalid evaluation version 0"):
        mr.get_evaluation("throwaway:1", 0)
    with pytest.raises(NotFoundError, match="no evaluation 3"):
        mr.promote("throwaway", 1, "production", require={"auc": ">= 0.5"}, evaluation=3)
    report = first.report()
    assert "evaluation 1 of throwaway:1 (binary, label 'y'): 1,000 rows of feature view loans v1" in report
    assert "region=west *" in report and "fewer than 200 rows, not gated" in report
    mr.delete_version("throwaway", 1, force=True)  # its evaluations go with it
    assert mr.list_models("throwaway") == []


def test_a_time_range_of_the_latest_data_leaves_unlabelled_rows_out(loans: Loans) -> None:
    fg = loans.project.feature_store.get_feature_group("loans", 1)
    later = frame(n=300, seed=9, start="2026-03-01", first_id=10_000)
    later["y"] = later["y"].astype("Int64")
    later.loc[later.index[:40], "y"] = pd.NA  # labels that have not arrived yet
    fg.insert(later)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    ev = loans.project.model_registry.evaluate(
        f"loan:{GOOD}", start_time=start, slices=["region"], prefer="native"
    )
    assert ev.rows == 260
    assert ev.source == {
        "feature_view": "loans",
        "feature_view_version": 1,
        "start_time": start.isoformat(),
        "end_time": None,
        "unlabelled_rows": 40,
    }
    labelled = later.iloc[40:]
    X = (
        loans.fv.transformer(loans.td)
        .apply_table(
            __import__("pyarrow").Table.from_pandas(labelled[["x1", "x2", "segment"]], preserve_index=False)
        )
        .to_pandas()
    )
    proba = loans.models[GOOD].predict_proba(X)[:, 1]
    assert ev.metrics["auc"] == pytest.approx(skm.roc_auc_score(labelled["y"].astype(int), proba), rel=1e-9)
    assert sum(s.rows for s in ev.by_slice) == 260
    with pytest.raises(ValidationError, match="no labelled rows"):
        loans.project.model_registry.evaluate(
            f"loan:{GOOD}", start_time=start, end_time=datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
        )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"slices": ["nope"]},
            SchemaError,
            r"column\(s\) \['nope'\] are neither in the rows of feature view 'loans'",
        ),
        ({"sensitive": ["nope"]}, SchemaError, "nor in its spine feature group 'loans'"),
        ({"split": "validation"}, ValidationError, r"has no split 'validation'; it has \['train', 'test'\]"),
        ({"split": "holdout"}, ValidationError, "split must be one of"),
        ({"slices": "region"}, ValidationError, "slices must be a list"),
        ({"slices": [3]}, ValidationError, "entries must be column names or fti.bins"),
        ({"slices": ["region", fti.bins("region", [0, 1])]}, ValidationError, "more than once"),
        ({"slices": [fti.bins("region", [0, 1])]}, SchemaError, "bins need a numeric column"),
        ({"slices": ["id"]}, ValidationError, "1000 distinct values, more than 100 slices"),
        ({"min_rows": 0}, ValidationError, "min_rows must be an integer >= 1"),
        ({"split": "test", "start_time": datetime(2026, 1, 1, tzinfo=UTC)}, ValidationError, "not both"),
        ({"start_time": datetime(2026, 1, 1)}, ValidationError, "tz-aware"),
        ({"baseline": "nobody:1"}, NotFoundError, "model 'nobody' not found"),
        ({"baseline": "loan:99"}, NotFoundError, "has no version 99"),
        ({"baseline": "loan@"}, ValidationError, "empty alias"),
        ({"label": "x1"}, ValidationError, "not a label of feature view"),
        ({"prefer": "quickest"}, ValidationError, "prefer must be one of"),
    ],
)
def test_bad_input_is_a_typed_error(
    loans: Loans, options: dict[str, object], error: type[FtiError], message: str
) -> None:
    mr = loans.project.model_registry
    before = len(mr.evaluations(f"loan:{GOOD}"))
    with pytest.raises(error, match=message):
        mr.evaluate(f"loan:{GOOD}", **options)  # type: ignore[arg-type]
    assert len(mr.evaluations(f"loan:{GOOD}")) == before  # nothing stored


def test_a_model_without_a_feature_view_cannot_be_evaluated(loans: Loans) -> None:
    mr = loans.project.model_registry
    mr.register("loose", loans.models[SLICE_BAD])
    with pytest.raises(ValidationError, match="registered without a feature view"):
        mr.evaluate("loose")
    with pytest.raises(PromotionRejectedError) as info:
        mr.promote("loose", 1, "production", require={"auc@slice": ">= 0.5", "auc": ">= baseline"})
    assert [f.split(":")[0] for f in info.value.failures] == ["auc@slice >= 0.5", "auc >= baseline"]
    assert all("loose:1 has no stored evaluation; evaluate it first" in f for f in info.value.failures)


@pytest.mark.parametrize(
    ("require", "message"),
    [
        ({"aucc@slice": ">= 0.5"}, "unknown metric 'aucc'"),
        ({"aucc": ">= baseline"}, "unknown metric 'aucc'"),
        ({"demographic_parity_difference@slice": "<= 0.1"}, "measured per sensitive feature"),
        ({"auc@": ">= 0.5"}, "invalid promotion condition"),
        ({"auc": ">= baseline * 2"}, "invalid promotion condition"),
        ({"auc": []}, "invalid promotion condition"),
    ],
)
def test_bad_conditions_are_validation_errors(loans: Loans, require: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        loans.project.model_registry.promote("loan", GOOD, "checked", require=require)  # type: ignore[arg-type]


def test_conditions_the_evaluation_cannot_answer_are_listed(loans: Loans) -> None:
    mr = loans.project.model_registry
    ev = mr.evaluate(f"loan:{GOOD}")  # no slices, no sensitive features
    with pytest.raises(PromotionRejectedError) as info:
        mr.promote("loan", GOOD, "checked", require={
            "auc@slice": ">= 0.5", "demographic_parity_difference": "<= 0.1", "rmse@slice": "<= 1", "latency": "< 5",
        })  # fmt: skip
    assert info.value.failures == [
        f"auc@slice >= 0.5: evaluation {ev.number} of loan:1 has no slices (sliced by: nothing); evaluate with "
        "slices=[...]",
        f"demographic_parity_difference <= 0.1: evaluation {ev.number} of loan:1 has no sensitive features "
        "(fairness by: nothing); evaluate with sensitive=[...]",
        f"rmse@slice <= 1: a binary model has no metric 'rmse' (evaluation {ev.number} computes "
        "['auc', 'average_precision', 'accuracy', 'balanced_accuracy', 'precision', 'recall', 'f1', 'log_loss', "
        "'brier'])",
        f"latency < 5: loan:1 has no metric 'latency' (evaluation {ev.number}: ['accuracy', 'auc', "
        "'average_precision', 'balanced_accuracy', 'brier', 'f1', 'log_loss', 'precision', 'recall']; "
        "registered: [])",
    ]


def test_the_cli_evaluates_and_gates(loans: Loans, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from fti.cli.main import cli

    home = str(loans.project.settings.home)
    url = loans.project.settings.resolved_catalog_url

    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner(env={"FTI_CATALOG_URL": url}).invoke(cli, ["--home", home, *args])
        return result.exit_code, result.stdout, result.stderr

    code, out, err = run(
        "models", "evaluate", f"loan:{SLICE_BAD}", "--slice", "region", "--slice", "x2:-1,0,1",
        "--sensitive", "group", "--baseline", f"loan:{GOOD}", "--min-rows", "30",
    )  # fmt: skip
    assert code == 0, err
    assert "metrics (baseline loan:1 on the same rows)" in out
    assert "region=west" in out and "x2=[0, 1)" in out and "fairness by group" in out
    assert "demographic_parity_difference" in out
    code, out, _ = run("models", "evaluation", f"loan:{SLICE_BAD}", "--json")
    stored = json.loads(out)
    assert code == 0 and stored["slices"] == ["region", "x2 bins [-1, 0, 1]"] and stored["min_rows"] == 30
    code, _, err = run(
        "models", "promote", "loan", str(SLICE_BAD), "cli", "-r", "auc@region>=0.85", "-r", "auc>=0.8",
        "-r", "auc>=baseline-0.01", "--json",
    )  # fmt: skip
    body = json.loads(err)
    assert code == 2 and body["code"] == "promotion_rejected"
    failed = body["details"]["failed_conditions"]
    assert len(failed) == 2 and "region=west" in failed[0] and "baseline loan:1" in failed[1]
    code, out, _ = run("models", "promote", "loan", str(SLICE_BAD), "cli", "-r", "auc@region=north>=0.85")
    assert code == 0 and "promoted loan version 2 to 'cli'" in out
    code, out, _ = run("models", "evaluation", f"loan:{SLICE_BAD}", "--all", "--json")
    listed = json.loads(out)
    assert code == 0 and listed[-1]["number"] == stored["number"] and listed[-1]["slices"] == stored["slices"]
    code, out, _ = run("models", "evaluation", f"loan:{SLICE_BAD}", "--all")
    assert code == 0 and "source" in out and "1,000" in out
    code, _, err = run("models", "evaluate", f"loan:{GOOD}", "--slice", "x2:a,b")
    assert code == 2 and "bins are COLUMN:EDGE,EDGE" in err
    code, _, err = run("models", "evaluate", f"loan:{GOOD}", "--slice", "nope")
    assert code == 2 and "'nope'" in err
