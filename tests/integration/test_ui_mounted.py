"""The UI under ``/ui`` of the model server on a real uvicorn: predictions and live figures go to
the server in process, with the UI user's role; ``--no-ui`` leaves it out."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import fti
from fti.serving.app import create_app
from fti.serving.auth import create_key
from fti.serving.server import app_factory, mount_ui
from fti.testing.serving import running_server

FLOWER = {
    "in_sepal_length": "6.9",
    "in_sepal_width": "3.2",
    "in_petal_length": "5.7",
    "in_petal_width": "2.3",
}


@pytest.fixture
def project(demo_home: Path, tmp_path: Path) -> Iterator[fti.Project]:
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    with fti.connect(home=home) as proj:
        yield proj


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found is not None
    return found.group(1)


def test_the_ui_is_served_under_ui_and_predicts_in_process(project: fti.Project) -> None:
    reader = create_key(project, "viewer", "reader")
    app = create_app(project, poll_interval_s=0.2)
    mount_ui(app, project)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/ui").status_code in (307, 308)  # to /ui/
        login = client.get("/ui/login")
        assert login.status_code == 200
        done = client.post("/ui/login", data={"csrf_token": _csrf(login.text), "key": reader, "next": "/ui/"})
        assert done.status_code == 303 and done.headers["location"] == "/ui/"
        assert "path=/ui" in done.headers["set-cookie"].lower()
        page = client.get("/ui/deployments/iris")
        assert page.status_code == 200 and 'href="/ui/static/htmx.min.js"' not in page.text
        assert 'src="/ui/static/htmx.min.js"' in page.text
        answer = client.post("/ui/deployments/iris/predict", data={"csrf_token": _csrf(page.text), **FLOWER})
        assert answer.status_code == 200, answer.text
        assert (
            '<b id="predicted-label">virginica</b>' in answer.text
            and "answered by the model server: in process" in answer.text
        )
        live = client.get("/ui/deployments/iris/live").text
        assert "Server: in process" in live and "v1 READY" in live
        assert re.search(r'<b id="live-requests">([1-9]\d*)</b>', live)  # the UI's request was counted
        # the server's own API still wants a key, and its roles: the UI's session is not a key
        assert client.post("/v2/repository/models/iris/unload").status_code == 401
        refused = client.post(
            "/v2/repository/models/iris/unload", headers={"Authorization": f"Bearer {reader}"}
        )
        assert refused.status_code == 403


def test_no_ui_leaves_the_ui_out(project: fti.Project, monkeypatch: pytest.MonkeyPatch) -> None:
    options = {
        "home": str(project.settings.home), "project": project.name, "threads": 1, "lazy": True,
        "poll_interval_s": 2.0, "idle_unload_s": 300.0, "max_body_bytes": 1024, "log_requests": False,
        "access_log": False, "log_level": "warning",
    }  # fmt: skip
    for ui, status in ((False, 404), (True, 200)):
        monkeypatch.setenv("FTI_SERVE_OPTIONS", json.dumps({**options, "ui": ui}))
        app = app_factory()
        with running_server(app) as url:
            assert httpx.get(f"{url}/ui/", timeout=30).status_code == status
            assert httpx.get(f"{url}/v2/health/live", timeout=30).status_code == 200
        app.state.fti.project.close()
