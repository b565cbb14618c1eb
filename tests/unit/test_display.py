"""How fti's objects show in a notebook: short ``repr`` and escaped ``_repr_html_`` cards."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import fti
from fti._display import REPR_LIMIT, TABLE_ROWS, Card, short_repr
from fti.training.runs import list_runs


@pytest.fixture
def demo(demo_home: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    return home


def test_every_object_has_a_short_repr_and_an_html_card(demo: Path) -> None:
    with fti.connect(home=demo) as project:
        fs = project.feature_store
        group = fs.get_feature_group("iris")
        view = fs.get_feature_view("iris")
        dataset = view.training_dataset(view.training_dataset_versions()[0])
        model = project.model_registry.get_model("iris")
        run = list_runs(project)[0]
        deployment = project.serving.get("iris")
        objects = [group, view, dataset, model, run, deployment]
        for obj in objects:
            assert len(repr(obj)) <= REPR_LIMIT, repr(obj)
        assert repr(model).startswith("ModelVersion('iris:1', flavor=")  # was a 1,400-character dump
        assert repr(dataset).startswith("TrainingDataset(version=1, split=")
        cards = {type(obj).__name__: obj._repr_html_() for obj in objects}
        assert "sepal_length" in cards["FeatureGroup"] and "variety" in cards["FeatureGroup"]
        assert "iris:1" in cards["FeatureView"] and "sepal_width" in cards["FeatureView"]
        for split, rows in dataset.row_counts.items():
            assert f"{split}={rows}" in cards["TrainingDataset"]
        assert "iris:1" in cards["ModelVersion"] and "signature" in cards["ModelVersion"]
        for name in model.metrics:
            assert html.escape(name) in cards["ModelVersion"]
        for name in run.record().params:
            assert html.escape(name) in cards["Run"]
        assert "iris:1" in cards["Deployment"] and "max_batch_size" in cards["Deployment"]
        # a deployment whose model was deleted still shows, saying what is wrong
        project.serving.deploy("orphan", "iris:1")
        project.model_registry.get_model("iris", 1).delete(force=True)
        card = project.serving.get("orphan")._repr_html_()
        assert "iris:1" in card and "model &#x27;iris&#x27; has no version 1" in card


def test_cards_escape_what_users_wrote(sqlite_project: fti.Project) -> None:
    group = sqlite_project.feature_store.create_feature_group(
        "notes", primary_key=["id"], description="<script>alert(1)</script>"
    )
    group.insert(pa.table({"id": [1], "text": ["x"]}))
    card = group._repr_html_()
    assert "<script>" not in card and "&lt;script&gt;alert(1)&lt;/script&gt;" in card
    assert "latest commit" in card and "none yet" not in card


def test_a_card_counts_the_rows_it_does_not_show_and_a_repr_is_cut() -> None:
    card = Card("Thing", "big", tables=[("rows", ["n"], [[i] for i in range(TABLE_ROWS + 5)])])
    page = card.html()
    assert f"<td>{TABLE_ROWS - 1}</td>" in page and f"<td>{TABLE_ROWS}</td>" not in page
    assert "5 more" in page and f"rows ({TABLE_ROWS + 5})" in page
    line = short_repr("Thing", "x" * 500, note=None)
    assert len(line) == REPR_LIMIT and line.endswith("…)") and "note" not in line


def test_a_monitor_shows_what_it_watches_and_its_windows(sqlite_project: fti.Project) -> None:
    from datetime import UTC, datetime, timedelta

    group = sqlite_project.feature_store.create_feature_group("ticks", primary_key=["id"], event_time="ts")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    group.insert(
        pa.table(
            {
                "id": list(range(48)),
                "ts": [start + timedelta(hours=i) for i in range(48)],
                "x": [float(i % 7) for i in range(48)],
            }
        )
    )
    mon = sqlite_project.monitoring.create_monitor(
        "ticks_daily", feature_group="ticks", window="1d", reference=(start, start + timedelta(days=1))
    )
    assert len(repr(mon)) <= REPR_LIMIT
    mon.run(start + timedelta(days=1), start + timedelta(days=2))
    card = mon._repr_html_()
    assert "ticks_daily" in card and "ticks_daily_results" in card
    assert "last windows (1)" in card and "2026-01-02T00:00:00+00:00" in card and "<td>24</td>" in card
