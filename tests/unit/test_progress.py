"""Progress bars of long work in the Python API: shown to whoever watches, silent otherwise."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

import fti
from fti import _progress


def _rows(n: int) -> pa.Table:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return pa.table(
        {"id": list(range(n)), "ts": [start + timedelta(minutes=i) for i in range(n)], "x": [1.0] * n}
    )


def test_bars_follow_the_setting_then_whether_someone_watches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_progress.ENV, "0")
    assert not _progress.enabled()
    monkeypatch.setenv(_progress.ENV, "always")
    assert _progress.enabled()
    monkeypatch.delenv(_progress.ENV)
    assert not _progress.enabled()  # pytest captures stderr: not a terminal
    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # a notebook kernel: stderr is a pipe
    assert _progress.enabled()


def test_an_insert_and_training_data_show_bars_when_watched(
    sqlite_project: fti.Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fs = sqlite_project.feature_store
    group = fs.create_feature_group("events", primary_key=["id"], event_time="ts")
    group.insert(_rows(10))
    assert capsys.readouterr().err == ""  # nobody watches: nothing written
    monkeypatch.setenv(_progress.ENV, "1")
    group.insert(_rows(20))
    err = capsys.readouterr().err
    assert "events: committing 20 rows" in err
    view = fs.create_feature_view("events_view", query=group.select_all(), labels=["x"])
    view.create_training_data()
    assert "events_view: training data" in capsys.readouterr().err
    assert _progress._live is None  # the bar is gone when the work is done


def test_nested_bars_share_one_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_progress.ENV, "1")
    with _progress.task("outer", total=2) as outer:
        live = _progress._live
        assert outer.active and live is not None
        with _progress.task("inner") as inner:
            assert _progress._live is live and inner.active
            assert [t.description for t in live.tasks] == ["outer", "inner"]
        outer.advance()
        assert [t.description for t in live.tasks] == ["outer"] and live.tasks[0].completed == 1
    assert _progress._live is None
    monkeypatch.setenv(_progress.ENV, "0")
    with _progress.task("off") as off:
        assert not off.active and _progress._live is None
        off.advance()  # does nothing
