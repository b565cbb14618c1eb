"""On-demand features: one function in training, batch and serving (bit for bit), recorded by import
path and source hash, and typed errors for bad declarations, bad requests and failing functions."""

from __future__ import annotations

import importlib
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import AlreadyExistsError, ConflictError, OnDemandError, SchemaError, ValidationError
from fti.features import training_data
from tests.unit.features import _on_demand_functions as fns
from tests.unit.features._data import T0


def bits(value: Any) -> Any:
    """Numbers as float64 bit patterns (the model's input matrix is float64), None as NaN."""
    if value is None:
        value = float("nan")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return np.float64(value).tobytes()
    return value


CARDS = 12
REQUEST = ["amount", "category", "lat", "lon", "ts"]
TRANSFORMS = {
    "amount": "standard_scaler",
    "category": "one_hot_encoder",
    "km_home": "log1p",
    "tag": "label_encoder",
}


def _transactions(rng: np.random.Generator, start_hour: float, per_card: int) -> pd.DataFrame:
    rows = []
    for card in range(CARDS):
        hours = np.sort(rng.uniform(0, 48, per_card)) + start_hour
        for h in hours:
            rows.append(
                {
                    "cc_num": card,
                    "ts": T0 + timedelta(hours=float(h)),
                    "amount": float(np.round(rng.lognormal(3, 1), 2)),
                    "category": str(rng.choice(["food", "travel", "misc"])),
                    "lat": float(rng.uniform(30, 50)),
                    "lon": float(rng.uniform(-120, -70)),
                    "is_fraud": int(rng.random() < 0.2),
                }
            )
    frame = pd.DataFrame(rows)
    frame["ts"] = frame["ts"].dt.floor("us")
    return frame


def _state(tx: pd.DataFrame) -> pd.DataFrame:
    """Each card's state after each transaction, published 1 µs after it (so a point-in-time join at
    a transaction's own time sees the state after the previous one, as the online store does)."""
    ordered = tx.sort_values(["cc_num", "ts"])
    return pd.DataFrame(
        {
            "cc_num": ordered["cc_num"].to_numpy(),
            "ts": ordered["ts"] + timedelta(microseconds=1),
            "last_ts": ordered["ts"],
            "last_lat": ordered["lat"].to_numpy(),
            "last_lon": ordered["lon"].to_numpy(),
            "n": ordered.groupby("cc_num").cumcount().to_numpy(np.int64) + 1,
        }
    )


@pytest.fixture
def od(project: fti.Project) -> dict[str, Any]:
    return _groups(project)


@pytest.fixture
def od_sqlite(sqlite_project: fti.Project) -> dict[str, Any]:
    return _groups(sqlite_project)


def _groups(project: fti.Project) -> dict[str, Any]:
    fs = project.feature_store
    tx = fs.get_or_create_feature_group("tx", primary_key=["cc_num"], event_time="ts", online_enabled=True)
    state = fs.get_or_create_feature_group(
        "state", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    home = fs.get_or_create_feature_group("home", primary_key=["cc_num"], online_enabled=True)
    rng = np.random.default_rng(3)
    history = _transactions(rng, 0, 6)
    history = history[history["cc_num"] != CARDS - 1]  # a card without history: its state is missing
    tx.insert(history)
    state.insert(_state(history))
    home.insert(
        pd.DataFrame(
            {
                "cc_num": range(CARDS),
                "home_lat": rng.uniform(30, 50, CARDS),
                "home_lon": rng.uniform(-120, -70, CARDS),
            }
        )
    )
    query = (
        tx.select(["amount", "category", "lat", "lon", "is_fraud"])
        .join(state.select(["last_ts", "last_lat", "last_lon", "n"]))
        .join(home.select(["home_lat", "home_lon"]))
    )
    return {"tx": tx, "state": state, "home": home, "query": query, "history": history, "rng": rng}


def _view(project: fti.Project, od: dict[str, Any], name: str = "od", **kwargs: Any) -> Any:
    kwargs.setdefault(
        "on_demand", [fns.amount_bin, fns.movement, "tests.unit.features._on_demand_functions:tag"]
    )
    kwargs.setdefault("request_fields", REQUEST)
    kwargs.setdefault("transformations", TRANSFORMS)
    return project.feature_store.get_or_create_feature_view(
        name, query=od["query"], labels=["is_fraud"], **kwargs
    )


def test_a_view_records_its_functions_and_their_outputs_are_features(
    project: fti.Project, od: dict[str, Any]
) -> None:
    fv = _view(project, od)
    assert fv.feature_names(transformed=False) == [
        "amount", "category", "n", "amount_bin", "gap_s", "km_prev", "km_home", "tag", "bin_sq"
    ]  # fmt: skip
    recorded = [(r["function"], r["outputs"]) for r in fv.on_demand]
    assert recorded == [
        ("tests.unit.features._on_demand_functions:amount_bin", [["amount_bin", "int64"]]),
        ("tests.unit.features._on_demand_functions:movement", [["gap_s", "float64"], ["km_prev", "float64"], ["km_home", "float64"]]),
        ("tests.unit.features._on_demand_functions:tag", [["tag", "string"], ["bin_sq", "float64"]]),
    ]  # fmt: skip
    assert fv.on_demand[0]["sha256"] == fns.amount_bin.source_sha256 and len(fv.on_demand[0]["sha256"]) == 64
    again = project.feature_store.get_feature_view("od", 1)  # read back from the catalog
    assert again.on_demand == fv.on_demand and again.request_fields == REQUEST
    assert again.to_dict()["request_fields"] == REQUEST
    # the same definition is the same version; another function list is not
    assert _view(project, od).version == 1
    with pytest.raises(AlreadyExistsError, match="on_demand"):
        _view(project, od, on_demand=[fns.amount_bin, fns.movement], transformations={"amount": "log1p"})


def test_training_rows_hold_the_function_applied_to_the_stored_columns(
    sqlite_project: fti.Project, od_sqlite: dict[str, Any]
) -> None:
    fv = _view(sqlite_project, od_sqlite)
    _, X = fv.create_training_data()
    raw, _ = fv.get_training_data(1, transformed=False)
    history = od_sqlite["history"].sort_values(["ts", "cc_num"]).reset_index(drop=True)
    assert raw["amount_bin"].tolist() == fns.amount_bin(history["amount"].to_numpy()).tolist()
    assert raw["tag"].tolist() == [
        f"{c}:{b}" for c, b in zip(history["category"], raw["amount_bin"], strict=True)
    ]
    assert raw["bin_sq"].tolist() == (raw["amount_bin"] ** 2).astype(float).tolist()
    first = history.groupby("cc_num").cumcount().to_numpy() == 0
    assert (raw["gap_s"][first] == -1.0).all() and (raw["gap_s"][~first] > 0).all()
    previous = history.groupby("cc_num")["ts"].shift()
    expected = ((history["ts"] - previous).dt.total_seconds())[~first]
    np.testing.assert_allclose(raw["gap_s"][~first], expected, rtol=0, atol=1e-6)
    # transformations apply to on-demand outputs like to stored features
    assert X["km_home"].tolist() == np.log1p(raw["km_home"]).tolist()
    assert {"tag", "category_food", "category_travel"} <= set(X.columns)


def test_skew_served_vector_equals_the_training_row_bit_for_bit(
    project: fti.Project, od: dict[str, Any]
) -> None:
    """Every card gets a live transaction; the vector served for it before the feature pipeline has
    seen it equals, bit for bit, the row the training data (and batch data) later give it."""
    fv = _view(project, od)
    fv.create_training_data()
    serving = fv.serving(1)
    live = _transactions(od["rng"], 60, 1)  # after the whole history; card 11 has no history at all
    entries = [{"cc_num": int(c)} for c in live["cc_num"]]
    passed = [{k: row[k] for k in REQUEST} for row in live.to_dict("records")]
    passed = [{**p, "ts": p["ts"].isoformat()} if i % 2 else p for i, p in enumerate(passed)]  # ISO text too
    served = serving.get_feature_vectors(entries, passed, allow_missing=True)
    one = serving.get_feature_vector(entries[3], passed[3], allow_missing=True)
    assert [bits(v) for v in one] == [bits(v) for v in served[3]]

    od["tx"].insert(live)  # ...then the feature pipeline processes the live transactions
    od["state"].insert(_state(pd.concat([od["history"], live]))[lambda s: s["ts"] > live["ts"].min()])
    fv.create_training_data()
    table = training_data.read(fv, fv.training_dataset(2))
    X, _ = training_data.features_and_labels(table, fv.feature_names(False), fv.transformer(1), fv.labels)
    keys = table.select(["cc_num", "ts"]).to_pandas()
    names = fv.feature_names(training_dataset_version=1)
    for i, row in enumerate(live.itertuples()):
        match = np.flatnonzero((keys["cc_num"] == row.cc_num).to_numpy() & (keys["ts"] == row.ts).to_numpy())
        assert len(match) == 1
        assert [bits(v) for v in served[i]] == [bits(X.iloc[match[0]][n]) for n in names], row.cc_num
    assert served[CARDS - 1][names.index("gap_s")] == -1.0  # no earlier transaction: the same in both
    batch = fv.get_batch_data(start_time=live["ts"].min(), training_dataset_version=1, with_keys=True)
    batch = batch.set_index(["cc_num", "ts"]).loc[list(zip(live["cc_num"], live["ts"], strict=True))]
    assert [[bits(v) for v in r] for r in batch[names].itertuples(index=False)] == [
        [bits(v) for v in r] for r in served
    ]
    streamed = pd.concat(
        t.to_pandas()
        for t in fv.iter_batch_data(start_time=live["ts"].min(), batch_rows=5, training_dataset_version=1)
    )
    assert sorted(map(tuple, streamed[["amount_bin", "km_home"]].to_numpy().tolist())) == sorted(
        map(tuple, batch[["amount_bin", "km_home"]].to_numpy().tolist())
    )


def test_requests_must_send_the_request_fields_and_no_derived_feature(
    sqlite_project: fti.Project, od_sqlite: dict[str, Any]
) -> None:
    fv = _view(sqlite_project, od_sqlite)
    fv.create_training_data()
    good = {"amount": 12.0, "category": "food", "lat": 40.0, "lon": -80.0, "ts": "2024-01-05T10:00:00+00:00"}
    assert len(fv.get_feature_vector({"cc_num": 1}, good)) == len(fv.feature_names())
    with pytest.raises(ValidationError, match=r"request field\(s\) \['lat'\] missing.*needs \['amount'"):
        fv.get_feature_vector({"cc_num": 1}, {k: v for k, v in good.items() if k != "lat"})
    with pytest.raises(ValidationError, match=r"request field\(s\) .* missing for entry 1"):
        fv.get_feature_vectors([{"cc_num": 1}, {"cc_num": 2}], [good, {"amount": 1.0}])
    with pytest.raises(ValidationError, match=r"on-demand feature\(s\) \['km_home'\].*pass their inputs"):
        fv.get_feature_vector({"cc_num": 1}, {**good, "km_home": 3.0})
    with pytest.raises(ValidationError, match=r"input 'amount' holds 'a lot', which is not a float64"):
        fv.get_feature_vector({"cc_num": 1}, {**good, "amount": "a lot"})
    with pytest.raises(ValidationError, match=r"naive time '2024-01-05T10:00:00'.*\+00:00"):
        fv.get_feature_vector({"cc_num": 1}, {**good, "ts": "2024-01-05T10:00:00"})
    with pytest.raises(ValidationError, match=r"'yesterday', which is not an ISO 8601 time"):
        fv.get_feature_vector({"cc_num": 1}, {**good, "ts": "yesterday"})


@pytest.mark.parametrize(
    ("function", "error", "message"),
    [
        (
            fns.raises,
            OnDemandError,
            r"_on_demand_functions:raises' raised ZeroDivisionError: no amounts today",
        ),
        (
            fns.wrong_length,
            OnDemandError,
            r"wrong_length' returned shape \[\d+\] for output 'short' from \d+ rows",
        ),
        (
            fns.wrong_dtype,
            OnDemandError,
            r"wrong_dtype' returned dtype <U\d+ for output 'text', declared float64",
        ),
    ],
)
def test_a_failing_function_is_named_and_nothing_is_written(
    sqlite_project: fti.Project, od_sqlite: dict[str, Any], function: Any, error: type, message: str
) -> None:
    fv = _view(
        sqlite_project, od_sqlite, name="bad", on_demand=[function], request_fields=None, transformations={}
    )
    with pytest.raises(error, match=message) as caught:
        fv.create_training_data()
    assert caught.value.http_status == 500 and caught.value.code == "on_demand_failed"
    assert fv.training_dataset_versions() == []
    with pytest.raises(error, match=message):
        fv.get_feature_vector({"cc_num": 1}, {"amount": 3.0})
    with pytest.raises(
        error, match=r"on inputs \{'amount': \[3.0\]\}" if function is fns.raises else message
    ):
        fv.get_feature_vector({"cc_num": 1}, {"amount": 3.0})


def test_bad_declarations_are_rejected(sqlite_project: fti.Project, od_sqlite: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="unknown dtype 'decimal'"):
        fti.on_demand(inputs=["a"], outputs={"b": "decimal"})
    with pytest.raises(ValidationError, match=r"drop lists \['c'\], which are not inputs"):
        fti.on_demand(inputs=["a"], outputs={"b": "int64"}, drop=["c"])
    with pytest.raises(ValidationError, match=r"outputs \['a'\] are also inputs"):
        fti.on_demand(inputs=["a"], outputs={"a": "int64"})
    with pytest.raises(ValidationError, match="inputs must be a list of column names"):
        fti.on_demand(inputs="a", outputs={"b": "int64"})
    with pytest.raises(ValidationError, match=r"cannot take 2 positional arguments \['a', 'b'\]"):
        fti.on_demand(inputs=["a", "b"], outputs={"c": "int64"})(lambda a: a)

    @fti.on_demand(inputs=["amount"], outputs={"x": "float64"})
    def local(amount: Any) -> Any:
        return amount

    cases: list[tuple[Any, type, str]] = [
        ([local], ValidationError, "not importable .*inside a function"),
        (
            ["tests.unit.features._on_demand_functions:not_decorated"],
            ValidationError,
            "not decorated with @fti.on_demand",
        ),
        (["tests.unit.features._on_demand_functions:nothing"], ValidationError, "cannot be imported"),
        (["not a path"], ValidationError, "import paths"),
        ([fns.amount_bin, fns.amount_bin], ValidationError, "lists a function twice"),
        ([fns.reads_label], ValidationError, "reads label 'is_fraud'.*leak"),
        (
            [fns.tag],
            SchemaError,
            r"reads 'amount_bin', which is not a column",
        ),  # before amount_bin is computed
        (fns.amount_bin, ValidationError, "on_demand must be a list"),
    ]
    for on_demand, error, message in cases:
        with pytest.raises(error, match=message):
            _view(
                sqlite_project,
                od_sqlite,
                name="rejected",
                on_demand=on_demand,
                request_fields=None,
                transformations={},
            )
    with pytest.raises(SchemaError, match="request field 'cvv' must be a feature of the view's query"):
        _view(sqlite_project, od_sqlite, name="rejected", request_fields=["cvv"])
    with pytest.raises(SchemaError, match="request field 'is_fraud'"):
        _view(sqlite_project, od_sqlite, name="rejected", request_fields=["is_fraud"])
    with pytest.raises(SchemaError, match="transformation on 'lat'"):  # dropped: not a model feature
        _view(sqlite_project, od_sqlite, name="rejected", transformations={"lat": "log1p"})
    assert [v.name for v in sqlite_project.feature_store.list_feature_views()] == []


def test_a_changed_function_needs_a_new_view_version(
    sqlite_project: fti.Project, od_sqlite: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "od_user_module.py"
    source = """
        import fti

        @fti.on_demand(inputs=["amount"], outputs={"double": "float64"})
        def double(amount):
            return amount * FACTOR
    """
    module.write_text(textwrap.dedent(source).replace("FACTOR", "2"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import od_user_module  # type: ignore[import-not-found]

    fv = _view(
        sqlite_project,
        od_sqlite,
        name="user",
        on_demand=[od_user_module.double],
        request_fields=None,
        transformations={},
    )
    _, X = fv.create_training_data()
    assert X["double"].tolist() == (X["amount"] * 2).tolist()

    module.write_text(textwrap.dedent(source).replace("FACTOR", "30"))  # the code is edited...
    importlib.reload(od_user_module)
    reread = sqlite_project.feature_store.get_feature_view("user", 1)
    assert reread.feature_names(transformed=False)[-1] == "double"  # the record alone gives the shape
    with pytest.raises(
        ConflictError,
        match=r"_user_module:double' changed since feature view 'user' version 1.*new feature view version",
    ):
        reread.create_training_data()
    with pytest.raises(ConflictError, match="changed since"):
        reread.get_feature_vector({"cc_num": 1}, {"amount": 2.0})
    with pytest.raises(AlreadyExistsError, match="different on_demand; create version 2"):
        _view(
            sqlite_project,
            od_sqlite,
            name="user",
            on_demand=[od_user_module.double],
            request_fields=None,
            transformations={},
        )
    v2 = _view(
        sqlite_project,
        od_sqlite,
        name="user",
        version=2,
        on_demand=[od_user_module.double],
        request_fields=None,
        transformations={},
    )
    _, X = v2.create_training_data()
    assert X["double"].tolist() == (X["amount"] * 30).tolist()
    sys.modules.pop("od_user_module", None)
