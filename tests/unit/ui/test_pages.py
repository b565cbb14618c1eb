"""Every page of the UI against the demo data (iris + fraud), through the in-process ASGI client.

Each test checks what the page must show (numbers, links, charts' data, messages), read back from
the public API, not only that it answers 200.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import fti
from fti.testing.asgi import AsgiClient
from fti.ui.app import create_app
from tests.unit.ui.conftest import csrf_of


def _chart(html: str, prefix: str) -> list[dict[str, object]]:
    """The JSON data of the charts whose id starts with ``prefix``."""
    return [
        json.loads(m)
        for m in re.findall(rf'<script type="application/json" id="{prefix}[^"]*">(.*?)</script>', html)
    ]


def test_home_counts_and_recent_activity(client: AsgiClient, demo: fti.Project) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    fs = demo.feature_store
    for label, n in [
        ("feature groups", fs.search_feature_groups(limit=0).total),
        ("feature views", 2),
        ("models", 2),
        ("deployments", 2),
        ("pipelines", len(demo.pipelines.list())),
    ]:
        assert f"<b>{n}</b> {label}" in html
    latest = fs.recent_commits(1)[0]
    assert f"/feature-groups/{latest.group}/{latest.group_version}?as_of={latest.version}" in html
    assert "/models/iris/1" in html and "/models/fraud/1" in html
    assert "No alerts." in html  # monitoring is installed; the demo data has no monitor yet
    assert "No API keys are configured" in html  # the banner of an open UI
    assert 'name="csrf-token"' in html


def test_search_finds_features_groups_models_and_pipelines(client: AsgiClient) -> None:
    html = client.get("/search?q=sepal").text
    assert '/feature-groups/iris/1#feature-sepal_length">sepal_length</a>' in html
    assert '/feature-groups/iris/1#feature-sepal_width">sepal_width</a>' in html
    html = client.get("/search?q=fraud").text
    for link in ("/feature-views/fraud/1", "/models/fraud", "/deployments/fraud", "/pipelines/train_fraud"):
        assert link in html, link
    assert "/models/iris" not in html
    assert client.get("/search?q=" + "zzz-no-match").text.count('class="muted">none</li>') == 6


def test_feature_group_schema_statistics_commits_rows(client: AsgiClient, demo: fti.Project) -> None:
    fg = demo.feature_store.get_feature_group("iris")
    html = client.get("/feature-groups/iris/1").text
    for feature in fg.features or []:
        assert f'id="feature-{feature.name}"' in html
    [histogram] = [c for c in _chart(html, "hist-") if c["labels"][0].startswith("4.3")]  # sepal_length
    assert sum(histogram["values"]) == 150 and len(histogram["labels"]) == 10  # type: ignore[arg-type]
    assert re.search(r"<th>setosa</th>.*?<td class=\"num\">50</td>", html, re.S)  # top categories
    commits = fg.commits()
    assert all(f"?as_of={c.version}" in html for c in commits)
    assert "1\u201325 of 150 rows" in html
    page2 = client.get("/feature-groups/iris/1?offset=25").text
    assert "26\u201350 of 150 rows" in page2
    first = commits[0].version
    travelled = client.get(f"/feature-groups/iris/1?as_of={first}").text
    assert f"Time travel: showing commit <b>#{first}</b>" in travelled
    assert client.get("/feature-groups/iris/1?as_of=999").status_code == 404
    assert client.get("/feature-groups/iris/x").status_code == 404
    bad = client.get("/feature-groups/iris/1?offset=-3")
    assert bad.status_code == 400 and "must be an integer" in bad.text
    missing = client.get("/feature-groups/nope/1")
    assert missing.status_code == 404 and "feature group &#39;nope&#39; version 1 not found" in missing.text


def test_feature_group_page_says_which_statistics_are_approximate(demo_copy: fti.Project) -> None:
    """Statistics merged from sketches beyond their exact range are marked on the page."""
    fg = demo_copy.feature_store.get_or_create_feature_group("logs", primary_key=["id"])
    rng = np.random.default_rng(3)
    for start in (0, 3000):  # two appends: the second merges into the first's state
        ids = np.arange(start, start + 3000)
        words = [f"w{i % 7}" if i % 2 else f"t{i}" for i in ids]  # > 1,000 distinct values
        fg.insert(pd.DataFrame({"id": ids, "x": rng.normal(size=3000), "word": words}), write_mode="append")
    stats = fg.statistics()
    assert stats["x"]["histogram"]["approximate"] is True and stats["word"]["top_values_approximate"] is True
    with AsgiClient(create_app(demo_copy)) as client:
        html = client.get("/feature-groups/logs/1").text
        assert "histogram approximate" in html and "top values approximate" in html
        exact = client.get("/feature-groups/iris/1").text  # one insert of 150 rows: exact figures
        assert "approximate" not in exact


def test_feature_group_list_filters(client: AsgiClient) -> None:
    html = client.get("/feature-groups?q=predictions").text
    assert "/feature-groups/iris_predictions/1" in html and "/feature-groups/fraud_predictions/1" in html
    assert '/feature-groups/iris/1"' not in html


def test_feature_view_query_datasets_and_models(client: AsgiClient, demo: fti.Project) -> None:
    html = client.get("/feature-views/fraud/1").text
    fv = demo.feature_store.get_feature_view("fraud")
    for part in fv.query.parts:
        assert f"/feature-groups/{part.group.name}/{part.group.version}" in html
    td = fv.training_dataset(fv.training_dataset_versions()[-1])
    assert f"train {td.row_counts['train']:,}" in html and f"test {td.row_counts['test']:,}" in html
    assert "/models/fraud/1" in html
    assert "one_hot_encoder" in html


@pytest.mark.parametrize(
    ("path", "links"),
    [
        ("/lineage/fg/iris/1", ["/feature-views/iris/1", "/models/iris/1", "/deployments/iris"]),
        (
            "/lineage/fv/fraud/1",
            [
                "/feature-groups/transactions/1",
                "/feature-groups/card_profiles/1",
                "/models/fraud/1",
                "/deployments/fraud",
            ],
        ),
        ("/lineage/model/iris/1", ["/feature-groups/iris/1", "/feature-views/iris/1", "/deployments/iris"]),
        (
            "/lineage/deployment/fraud",
            ["/feature-views/fraud/1", "/models/fraud/1", "/feature-groups/card_windows/1"],
        ),
    ],
)
def test_lineage_graph_links_every_stage(client: AsgiClient, path: str, links: list[str]) -> None:
    html = client.get(path).text
    assert '<svg class="lineage"' in html
    for link in links:
        assert f'<a href="{link}' in html, link
    assert html.count('class="node') >= len(links) + 1
    assert 'class="node k-' in html and " focus" in html


def test_models_versions_compare_and_artifacts(client: AsgiClient, demo: fti.Project) -> None:
    html = client.get("/models").text
    assert "@production → v1" in html
    iris = demo.model_registry.get_model("iris@production")
    html = client.get("/models/iris").text
    assert f'<td class="num">{iris.metrics["accuracy"]:.4g}</td>' in html
    assert "metrics.accuracy" in html  # sortable metric columns
    assert client.get("/models/iris?order=metrics.accuracy%20desc").status_code == 200
    assert client.get("/models/iris?order=bogus").status_code == 400
    version = client.get("/models/iris/1").text
    assert '<img src="/models/iris/1/artifacts/confusion_matrix.png"' in version
    assert _chart(version, "metric-")  # the run's metric series
    assert "setosa, versicolor, virginica" in version  # class labels
    image = client.get("/models/iris/1/artifacts/confusion_matrix.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == iris.read_artifact("confusion_matrix.png")
    assert "sandbox" in image.headers["content-security-policy"]
    model_file = client.get("/models/iris/1/artifacts/model.skops")
    assert model_file.headers["content-type"] == "application/octet-stream"
    assert model_file.headers["content-disposition"].startswith("attachment")
    assert client.get("/models/iris/1/artifacts/nope.png").status_code == 404
    compare = client.get("/models/fraud/compare?v=1&v=1").text
    assert "<th>auc</th>" in compare and "max_iter" in compare
    assert client.get("/models/fraud/compare?v=1").status_code == 400


def test_a_version_page_shows_its_evaluations(demo_copy: fti.Project) -> None:
    from fti.ui.app import create_app

    mr = demo_copy.model_registry
    first = mr.get_evaluation("fraud:1")  # the training pipeline's, before any production model
    assert first.slices == ["category", "amount bins [0, 50, 500]"] and "age_group" in first.fairness
    second = mr.evaluate("fraud:1", slices=["category"], sensitive=["provider"], baseline="fraud@production")
    with AsgiClient(create_app(demo_copy)) as client:
        html = client.get("/models/fraud/1").text
        assert f"Evaluation {second.number} <small>on {second.rows:,} rows of the test split" in html
        assert second.compare is not None and second.compare.model == "fraud:1"
        assert 'baseline fraud@production = <a href="/models/fraud/1">fraud:1</a> on the same rows' in html
        auc = second.metrics["auc"]
        assert (
            f'<th>auc</th><td class="num">{auc:.4g}</td><td class="num">{auc:.4g}</td><td class="num">+0.0000</td>'
            in html
        )
        for s in second.by_slice:  # every slice, its row count, its headline metric
            marker = "" if s.gated else " *"
            assert f'<td class="mono">{s.name}{marker}</td><td class="num">{s.rows:,}</td>' in html
        assert "Fairness by provider" in html
        for g in second.fairness["provider"].groups:
            assert f'<td>{g.value}{"" if g.eligible else " *"}</td><td class="num">{g.rows:,}</td>' in html
        assert f'href="/models/fraud/1?evaluation={first.number}#evaluation"' in html  # the earlier one
        older = client.get(f"/models/fraud/1?evaluation={first.number}").text
        assert f"Evaluation {first.number} <small>" in older and "Fairness by age_group" in older
        assert "the alias points to no version, nothing to compare" in older
        assert client.get("/models/fraud/1?evaluation=99").status_code == 404
        assert client.get("/models/fraud/1?evaluation=x").status_code == 400
        mr.register("bare", demo_copy.model_registry.get_model("iris:1").load())
        assert "Not evaluated on data yet" in client.get("/models/bare/1").text


def test_runs_list_and_detail(client: AsgiClient, demo: fti.Project) -> None:
    from fti.training.runs import search_runs

    runs = search_runs(demo)
    html = client.get("/runs").text
    assert all(f'href="/runs/{r.id}"' in html for r in runs)
    fraud = next(r for r in runs if r.name == "fraud-training")
    detail = client.get(f"/runs/{fraud.id}").text
    assert "HistGradientBoostingClassifier" in detail and "/models/fraud/1" in detail
    assert {c["series"].popitem()[0] for c in _chart(detail, "series-")} >= {"auc"}  # type: ignore[union-attr]
    assert client.get("/runs/abc").status_code == 404


def test_deployments_and_the_try_it_form(client: AsgiClient) -> None:
    html = client.get("/deployments").text
    assert '/deployments/iris">iris</a>' in html and "/models/fraud/1" in html
    page = client.get("/deployments/iris").text
    for name in ("sepal_length", "sepal_width", "petal_length", "petal_width"):
        assert f'name="in_{name}" type="number" step="any"' in page
    token = csrf_of(page)
    flower = {
        "in_sepal_length": "6.9",
        "in_sepal_width": "3.2",
        "in_petal_length": "5.7",
        "in_petal_width": "2.3",
    }
    answer = client.post(
        "/deployments/iris/predict", data={"csrf_token": token, **flower}, headers={"HX-Request": "true"}
    )
    assert answer.status_code == 200
    assert '<b id="predicted-label">virginica</b>' in answer.text
    assert re.search(r'<tr class="best"><th>virginica</th>', answer.text)
    bad = client.post(
        "/deployments/iris/predict", data={"csrf_token": token, **flower, "in_petal_width": "wide"}
    )
    assert bad.status_code == 400 and "petal_width must be a finite number, got &#39;wide&#39;" in bad.text
    missing = client.post("/deployments/iris/predict", data={"csrf_token": token, "in_sepal_length": "1"})
    assert missing.status_code == 400 and "sepal_width is required" in missing.text
    fraud = client.get("/deployments/fraud").text
    assert re.search(r'name="in_cc_num" type="number" step="1" value="\d+" required', fraud)  # a real key
    live = client.get("/deployments/iris/live").text
    assert "No model server is running" in live


def test_pipelines_history_and_logs(client: AsgiClient, demo: fti.Project) -> None:
    html = client.get("/pipelines").text
    for p in demo.pipelines.list():
        assert f'/pipelines/{p.name}"' in html
    assert "cron 0 * * * *" in html  # fraud_features' schedule
    run = demo.pipelines.runs("iris_features")[0]
    detail = client.get("/pipelines/iris_features").text
    assert f'/pipelines/runs/{run.id}"' in detail and "succeeded" in detail
    logs = client.get(f"/pipelines/runs/{run.id}").text
    assert "inserted 150 rows into &#39;iris&#39;" in logs
    assert client.get("/pipelines/nope").status_code == 404


def test_monitoring_without_monitors_says_how_to_create_one(client: AsgiClient) -> None:
    html = client.get("/monitoring").text
    assert "No monitor (<code>project.monitoring.create_monitor(...)</code>" in html
    assert "No alerts." in html


def test_unknown_pages_are_404_pages(client: AsgiClient) -> None:
    response = client.get("/does/not/exist")
    assert response.status_code == 404 and "no page at /does/not/exist" in response.text


def test_a_deployment_page_shows_its_split_shadow_and_rollout(demo_copy: fti.Project) -> None:
    from fti.ui.app import create_app

    mr = demo_copy.model_registry
    mr.register("iris", mr.get_model("iris:1").load(), input_example=mr.get_model("iris:1").input_example())
    mr.set_alias("iris", 1, "production")
    demo_copy.serving.deploy("iris", model="iris@production", variants={"challenger": ("iris:2", 10)},
                             sticky="sepal_length", shadow="iris:1")  # fmt: skip
    ro = demo_copy.serving.rollout(
        "iris", to="iris:2", steps=[20, 100], every="1h", gates={"error_rate": "< 0.01"}
    )
    ro.pause(reason="checking the labels")
    with AsgiClient(create_app(demo_copy)) as c:
        page = c.get("/deployments/iris").text
    traffic = re.search(r'<dd id="traffic">(.*?)</dd>', page, re.S)
    assert traffic is not None
    text = re.sub(r"<[^>]+>", "", traffic.group(1))
    assert text.startswith(
        "champion 70 %, canary iris:2 20 %, challenger iris:2 10 %; sticky by sepal_length"
    )
    assert "iris:1</span> sees a copy of every request" in page
    assert f"<h2>Rollout #{ro.id}</h2>" in page and 'class="status s-paused">paused</span>' in page
    assert "step 1 of 2 (20 → 100 %), now 20 % of the traffic" in page
    events = re.findall(r"<tr><td>[^<]*</td><td>(\w+)</td>", page.split('id="rollout-events"')[1])
    assert events == ["started", "paused"] and "checking the labels" in page
