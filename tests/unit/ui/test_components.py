"""The UI's building blocks: lineage layout, live figures from real server metrics, the try-it form's
request building and answer reading, and the vendored assets' recorded digests."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from fti.errors import ValidationError
from fti.serving.metrics import ServerMetrics
from fti.ui.lineage import COLUMNS, NODE_H, NODE_W, Graph, Node
from fti.ui.serverlink import live_figures
from fti.ui.tryit import Field, TryForm, first_row, prediction, request_inputs

STATIC = Path(__file__).resolve().parents[3] / "fti" / "ui" / "static"


def _node(key: str, kind: str) -> Node:
    return Node(key, kind, key, "", f"/{key}")


def test_lineage_layout_puts_each_stage_in_its_column_and_orders_by_parents() -> None:
    graph = Graph()
    for key, kind in [
        ("b", "feature_group"),
        ("a", "feature_group"),
        ("v", "feature_view"),
        ("m2", "model_version"),
        ("m1", "model_version"),
    ]:
        graph.add(_node(key, kind))
    graph.link("a", "v")
    graph.link("b", "v")
    graph.link("v", "m1")
    graph.link("v", "m2")
    graph.layout()
    columns = {kind: i for i, (kind, _) in enumerate(COLUMNS)}
    for node in graph.nodes.values():
        assert node.x == columns[node.kind] * (NODE_W + 64)
    assert graph.nodes["a"].y < graph.nodes["b"].y  # ties broken by key
    assert graph.width == len(COLUMNS) * (NODE_W + 64) - 64 and graph.height >= graph.nodes["b"].y + NODE_H
    paths = dict(graph.paths())
    assert len(paths) == 4
    a, v = graph.nodes["a"], graph.nodes["v"]
    assert f"M{a.x + NODE_W},{a.y + NODE_H // 2} C" in next(iter(paths))
    assert any(p.endswith(f"{v.x},{v.y + NODE_H // 2}") for p in paths)


def test_live_figures_from_a_real_metrics_exposition() -> None:
    metrics = ServerMetrics()
    counters = metrics.bind("iris", "1")
    for seconds in (0.0004, 0.003, 0.003, 0.04):
        counters.requests.inc()
        counters.latency.observe(seconds)
    counters.requests.inc()
    counters.failures.labels("400").inc()
    metrics.bind("other", "1").requests.inc()  # another model's figures stay out
    figures = live_figures(metrics.render().decode(), "iris")
    assert figures.requests == 5
    assert figures.failures == {"400": 1}
    assert figures.mean_ms == pytest.approx((0.0004 + 0.003 + 0.003 + 0.04) / 4 * 1000)
    assert figures.p50_ms == pytest.approx(5.0)  # the bucket holding the 2nd of 4 latencies: <= 5 ms
    assert figures.p95_ms == pytest.approx(50.0)
    assert sum(n for _, n in figures.latency_buckets) == 4


def test_try_it_builds_typed_inputs_and_refuses_bad_values() -> None:
    form = TryForm(
        [
            Field("cc_num", "INT64", "42", True, key=True),
            Field("amount", "FP64", "", False),
            Field("category", "BYTES", "", False),
            Field("online", "BOOL", "", False),
        ],
        enriched=True,
    )
    inputs = request_inputs(
        form, {"in_cc_num": "7", "in_amount": "12.5", "in_category": "food", "in_online": "on"}
    )
    assert inputs == [
        {"name": "cc_num", "shape": [1], "datatype": "INT64", "data": [7]},
        {"name": "amount", "shape": [1], "datatype": "FP64", "data": [12.5]},
        {"name": "category", "shape": [1], "datatype": "BYTES", "data": ["food"]},
        {"name": "online", "shape": [1], "datatype": "BOOL", "data": [True]},
    ]
    assert [i["name"] for i in request_inputs(form, {"in_cc_num": "7"})] == ["cc_num"]  # optional: skipped
    for values, message in [
        ({}, "cc_num is required"),
        ({"in_cc_num": "7.5"}, "cc_num must be an integer"),
        ({"in_cc_num": "7", "in_amount": "nan"}, "amount must be a finite number"),
        ({"in_cc_num": "7", "in_amount": "1e999"}, "amount must be a finite number"),
    ]:
        with pytest.raises(ValidationError, match=message):
            request_inputs(form, values)


def test_try_it_reads_the_label_and_names_the_probabilities() -> None:
    outputs = [
        {"name": "predict", "shape": [1], "datatype": "BYTES", "data": ["virginica"]},
        {"name": "predict_proba", "shape": [1, 3], "datatype": "FP64", "data": [0.0, 0.2, 0.8]},
    ]
    row = first_row(outputs)
    assert row == {"predict": "virginica", "predict_proba": [0.0, 0.2, 0.8]}
    named = prediction(row, ["setosa", "versicolor", "virginica"])
    assert named.label == "virginica" and named.probabilities[-1] == ("virginica", 0.8)
    unnamed = prediction(row, None)
    assert [n for n, _ in unnamed.probabilities] == ["class 0", "class 1", "class 2"]
    assert prediction({"predict": 3.5}, None) == prediction({"predict": 3.5}, ["a"])  # regression: a value


def test_vendored_assets_match_their_recorded_versions() -> None:
    table = (STATIC / "VENDORED.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| .*? \| ([0-9.]+) \| .*? \| `([0-9a-f]{64})` \|$", table, re.M)
    assert {name for name, _, _ in rows} == {"htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css"}
    for name, version, digest in rows:
        data = (STATIC / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
        if name.endswith(".js"):  # both scripts state their version
            assert version.encode() in data, name
    assert (STATIC / "licenses" / "htmx-LICENSE.txt").read_text().startswith("Zero-Clause BSD")
    assert "MIT License" in (STATIC / "licenses" / "uPlot-LICENSE.txt").read_text()
    templates = Path(STATIC.parent / "templates")
    for page in templates.glob("*.html"):  # every asset is served from the package, never a CDN
        assert not re.search(r'(src|href)="(https?:)?//', page.read_text()), page.name
