"""POST /v1/feature-groups/{name}/push on a real server: writer role, online at once, offline on
the server's committer, bad input answered 4xx with a message (never 500)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

import fti
from fti.serving.app import create_app
from fti.serving.auth import create_key
from fti.testing.serving import running_server

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PATH = "/v1/feature-groups/tx/push"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[fti.Project]:
    proj = fti.connect(home=tmp_path / "home")
    proj.feature_store.get_or_create_feature_group(
        "tx",
        primary_key=["cc_num"],
        event_time="ts",
        online_enabled=True,
        features=[
            fti.Feature("cc_num", "int64"),
            fti.Feature("ts", "timestamp"),
            fti.Feature("amount", "float64"),
            fti.Feature("category", "string"),
        ],
    )
    yield proj
    proj.close()


def test_a_writer_pushes_rows_that_are_online_at_once_and_offline_after_the_commit(
    project: fti.Project,
) -> None:
    keys = {role: create_key(project, role, role) for role in ("reader", "writer")}
    fg = project.feature_store.get_feature_group("tx")
    app = create_app(project, poll_interval_s=0.1, log_requests=False)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=20) as c:
        writer = {"Authorization": f"Bearer {keys['writer']}"}
        body = {
            "rows": [
                {"cc_num": 1, "ts": "2024-01-01T10:00:00Z", "amount": 9.5, "category": "food"},
                {"cc_num": 2, "ts": "2024-01-01T12:00:00+02:00", "amount": 3, "category": "web"},
            ]
        }
        answer = c.post(PATH, json=body, headers=writer)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"feature_group": "tx", "version": 1, "rows": 2, "online_rows": 2}
        online = fg.online_lookup([{"cc_num": 1}, {"cc_num": 2}])  # right after the answer
        assert [r["amount"] for r in online] == [9.5, 3.0]  # type: ignore[index]
        assert online[1]["ts"] == datetime(2024, 1, 1, 10, tzinfo=UTC)  # type: ignore[index]
        columns = {
            "columns": {"cc_num": [1], "ts": ["2024-01-02T00:00:00Z"], "amount": [1.0], "category": [None]}
        }
        assert c.post(PATH + "?version=1", json=columns, headers=writer).status_code == 200

        reader = c.post(PATH, json=body, headers={"Authorization": f"Bearer {keys['reader']}"})
        assert reader.status_code == 403
        assert "needs the writer role" in reader.json()["error"]
        assert c.post(PATH, json=body).status_code == 401
    # the server's committer committed what was buffered when it stopped
    table = fg.read_arrow().sort_by([("cc_num", "ascending"), ("ts", "ascending")])
    assert table.column("amount").to_pylist() == [9.5, 1.0, 3.0]
    assert table.column("category").to_pylist() == ["food", None, "web"]
    assert project.backends.buffer.topics("") == []


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/feature-groups/nope/push", {"rows": []}, 404, "feature group 'nope' not found"),
        (
            PATH,
            {"rows": [{"cc_num": 1, "ts": "2024-01-01T10:00:00", "amount": 1.0, "category": "a"}]},
            400,
            r"column 'ts', row 0: '2024-01-01T10:00:00' is a naive time",
        ),
        (
            PATH,
            {"rows": [{"cc_num": 1, "ts": "2024-01-01T10:00:00Z", "amount": "9", "category": "a"}]},
            400,
            "column 'amount', row 0: expected a number",
        ),
        (
            PATH,
            {"rows": [{"cc_num": 1, "ts": "2024-01-01T10:00:00Z", "category": "a"}]},
            400,
            r"missing column\(s\) \['amount'\]",
        ),
        (
            PATH,
            {"rows": [{"cc_num": 1, "ts": "2024-01-01T10:00:00Z", "amount": 1, "category": "a", "x": 1}]},
            400,
            r"unexpected column\(s\) \['x'\]",
        ),
        (
            PATH,
            {"rows": [{"cc_num": None, "ts": "2024-01-01T10:00:00Z", "amount": 1, "category": "a"}]},
            400,
            "primary key column 'cc_num' has 1 null",
        ),
        (PATH, {"rows": []}, 400, "empty"),
        (PATH, {"columns": {"cc_num": [1, 2], "ts": ["2024-01-01T10:00:00Z"]}}, 400, "different lengths"),
        (PATH, {"rows": [1, 2]}, 400, "'rows' must be a list of objects"),
        (PATH, {"data": []}, 400, "exactly one of 'rows'"),
        (PATH, [1], 400, "JSON object"),
        (PATH + "?version=x", {"rows": []}, 400, "version must be an integer"),
        (PATH + "?version=3", {"rows": []}, 404, "version 3 not found"),
    ],
)
def test_bad_pushes_get_4xx_with_the_problem_and_write_nothing(
    project: fti.Project, path: str, body: object, status: int, message: str
) -> None:
    import re

    app = create_app(project, poll_interval_s=0.1, log_requests=False)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=20) as c:
        answer = c.post(path, json=body)
        assert answer.status_code == status, answer.text
        assert re.search(message, answer.json()["error"]), answer.json()
        not_json = c.post(PATH, content=b"{not json", headers={"Content-Type": "application/json"})
        assert not_json.status_code == 400
    assert project.backends.buffer.topics("") == []
    assert project.feature_store.get_feature_group("tx").latest_commit_version() is None
