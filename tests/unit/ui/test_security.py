"""The UI's security: login with a key, signed session cookies and their flags, CSRF on every
state-changing request, roles (a reader is refused writes with 403), no page without a session
when keys exist, loopback only without keys, and HTML escaping of every user-provided string."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.auth import create_key, revoke_key
from fti.testing.asgi import AsgiClient
from fti.ui.app import CONTENT_SECURITY_POLICY, create_app
from fti.ui.session import COOKIE
from tests.unit.ui.conftest import csrf_of

PAGES = [
    "/",
    "/search?q=iris",
    "/feature-groups",
    "/feature-groups/iris/1",
    "/feature-views",
    "/feature-views/iris/1",
    "/lineage/fg/iris/1",
    "/lineage/deployment/iris",
    "/models",
    "/models/iris",
    "/models/iris/1",
    "/models/iris/compare?v=1&v=1",
    "/models/iris/1/artifacts/confusion_matrix.png",
    "/runs",
    "/runs/1",
    "/deployments",
    "/deployments/iris",
    "/deployments/iris/live",
    "/pipelines",
    "/pipelines/iris_features",
    "/pipelines/runs/1",
    "/monitoring",
    "/keys",
]
ACTIONS = [
    "/pipelines/iris_features/run",
    "/pipelines/iris_features/pause",
    "/pipelines/iris_features/resume",
    "/models/iris/alias",
    "/deployments/iris/predict",
    "/deployments/iris/stop",
    "/deployments/iris/start",
    "/keys/create",
    "/keys/revoke",
    "/logout",
    "/project",
]


@pytest.fixture
def keyed(demo_copy: fti.Project) -> Iterator[tuple[fti.Project, dict[str, str]]]:
    keys = {role: create_key(demo_copy, role, role) for role in ("reader", "writer", "admin")}
    yield demo_copy, keys


def login(client: AsgiClient, key: str, next_url: str = "/") -> Any:
    page = client.get("/login")
    return client.post("/login", data={"csrf_token": csrf_of(page.text), "key": key, "next": next_url})


def test_no_page_is_reachable_without_a_session(keyed: tuple[fti.Project, dict[str, str]]) -> None:
    project, _ = keyed
    with AsgiClient(create_app(project)) as client:
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next="), path
            assert "iris" not in response.text, path
        htmx = client.get("/deployments/iris/live", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login")
        for path in ACTIONS:  # no token: refused before anything else
            assert client.post(path, data={}).status_code == 403, path
        assert client.get("/static/htmx.min.js").status_code == 200  # vendored assets are public


def test_login_sets_a_signed_strict_httponly_cookie_without_the_key(
    keyed: tuple[fti.Project, dict[str, str]],
) -> None:
    project, keys = keyed
    with AsgiClient(create_app(project)) as client:
        before = client.cookies.get(COOKIE)
        wrong = login(client, "fti_not-a-key")
        assert wrong.status_code == 401 and "invalid or revoked API key" in wrong.text
        ok = login(client, keys["reader"], "/models/iris")
        assert ok.status_code == 303 and ok.headers["location"] == "/models/iris"
        cookie = ok.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= flags and "secure" not in flags
        assert keys["reader"] not in cookie and keys["reader"][4:20] not in client.cookies.get(COOKIE, "")
        assert client.cookies.get(COOKIE) != before  # a fresh session after login (no fixation)
        home = client.get("/")
        assert home.status_code == 200 and "reader · reader" in home.text
        tampered = client.cookies.get(COOKIE)[:-3] + "abc"
        client.cookies.set(COOKIE, tampered)
        assert client.get("/").status_code == 303  # a bad signature is no session
    with AsgiClient(create_app(project, secure_cookies=True)) as client:
        assert "secure" in login(client, keys["reader"]).headers["set-cookie"].lower()


def test_logout_and_revocation_end_the_session(keyed: tuple[fti.Project, dict[str, str]]) -> None:
    project, keys = keyed
    with AsgiClient(create_app(project)) as client:
        login(client, keys["writer"])
        page = client.get("/")
        assert page.status_code == 200
        out = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.get("/").status_code == 303
        login(client, keys["writer"])
        assert client.get("/").status_code == 200
        revoke_key(project, "writer")
        deadline = time.monotonic() + 10  # the key checker refreshes every few seconds
        while client.get("/models").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert client.get("/models").status_code == 303


def test_csrf_token_and_origin_are_required(keyed: tuple[fti.Project, dict[str, str]]) -> None:
    project, keys = keyed
    with AsgiClient(create_app(project)) as client:
        assert client.post("/login", data={"key": keys["admin"]}).status_code == 403  # login needs it too
        login(client, keys["admin"])
        token = csrf_of(client.get("/").text)
        for data, headers in [
            ({}, {}),
            ({"csrf_token": "forged"}, {}),
            ({"csrf_token": token}, {"Origin": "http://evil.example"}),
        ]:
            refused = client.post("/pipelines/iris_features/pause", data=data, headers=headers)
            assert refused.status_code == 403
            assert "missing or invalid CSRF token" in refused.text or "from another origin" in refused.text
        assert not project.pipelines.get("iris_features").paused  # nothing happened
        ok = client.post(
            "/pipelines/iris_features/pause",
            data={"csrf_token": token},
            headers={"Origin": "http://testserver"},
        )
        assert ok.status_code == 303 and project.pipelines.get("iris_features").paused
        by_header = client.post(
            "/pipelines/iris_features/resume", headers={"X-CSRF-Token": token}
        )  # htmx's way
        assert by_header.status_code == 303 and not project.pipelines.get("iris_features").paused


def test_a_reader_browses_and_predicts_but_writes_are_refused(
    keyed: tuple[fti.Project, dict[str, str]],
) -> None:
    project, keys = keyed
    with AsgiClient(create_app(project)) as client:
        login(client, keys["reader"])
        token = csrf_of(client.get("/").text)
        runs_before = len(project.pipelines.runs("iris_features"))
        for path, data, action in [
            ("/pipelines/iris_features/run", {}, "running a pipeline"),
            ("/pipelines/iris_features/pause", {}, "pausing a pipeline"),
            ("/models/iris/alias", {"alias": "staging", "version": "1"}, "moving a model alias"),
            ("/deployments/iris/stop", {}, "stopping a deployment"),
            ("/keys/create", {"name": "x", "role": "admin"}, "creating an API key"),
        ]:
            refused = client.post(path, data={"csrf_token": token, **data})
            assert refused.status_code == 403, path
            assert f"{action} needs the" in refused.text and "has the role &#39;reader&#39;" in refused.text
        assert client.get("/keys").status_code == 403
        assert len(project.pipelines.runs("iris_features")) == runs_before
        assert project.model_registry.aliases("iris") == {"production": 1}
        assert project.serving.get("iris").status == "running"
        flower = {
            "in_sepal_length": "5.1",
            "in_sepal_width": "3.5",
            "in_petal_length": "1.4",
            "in_petal_width": "0.2",
        }
        answer = client.post("/deployments/iris/predict", data={"csrf_token": token, **flower})
        assert answer.status_code == 200 and '<b id="predicted-label">setosa</b>' in answer.text


def test_a_writer_moves_aliases_and_starts_runs(keyed: tuple[fti.Project, dict[str, str]]) -> None:
    project, keys = keyed
    with AsgiClient(create_app(project)) as client:
        login(client, keys["writer"])
        token = csrf_of(client.get("/").text)
        moved = client.post(
            "/models/iris/alias", data={"csrf_token": token, "alias": "staging", "version": "1"}
        )
        assert moved.status_code == 303
        assert project.model_registry.aliases("iris") == {"production": 1, "staging": 1}
        assert (
            project.model_registry.alias_history("iris", "staging")[-1].reason
            == "set in the web UI by writer"
        )
        bad = client.post(
            "/models/iris/alias", data={"csrf_token": token, "alias": "Bad Alias", "version": "1"}
        )
        assert bad.status_code == 400
        stopped = client.post("/deployments/iris/stop", data={"csrf_token": token})
        assert stopped.status_code == 303 and project.serving.get("iris").status == "stopped"
        assert client.get("/keys").status_code == 403  # keys are for admins


def test_an_admin_manages_keys(keyed: tuple[fti.Project, dict[str, str]]) -> None:
    project, keys = keyed
    with AsgiClient(create_app(project)) as client:
        login(client, keys["admin"])
        token = csrf_of(client.get("/keys").text)
        made = client.post("/keys/create", data={"csrf_token": token, "name": "viewer", "role": "reader"})
        assert made.status_code == 200
        new_key = re.search(r'<code class="secret">([^<]+)</code>', made.text)
        assert new_key is not None
        with AsgiClient(create_app(project)) as other:
            assert login(other, new_key.group(1)).status_code == 303
        revoked = client.post("/keys/revoke", data={"csrf_token": token, "name": "viewer"})
        assert revoked.status_code == 303
        assert (
            next(k for k in fti.serving.auth.list_keys(project) if k.name == "viewer").revoked_at is not None
        )


def test_without_keys_the_ui_is_open_on_loopback_only(demo: fti.Project) -> None:
    with AsgiClient(create_app(demo), client=("10.1.2.3", 5555)) as remote:
        refused = remote.get("/")
        assert refused.status_code == 403 and "only answers on the loopback interface" in refused.text
        assert "iris" not in refused.text
    with AsgiClient(create_app(demo), client=("::1", 5555)) as local:
        page = local.get("/")
        assert page.status_code == 200 and "No API keys are configured" in page.text
        assert local.get("/login").status_code == 303  # nothing to log in to


def test_login_never_redirects_to_another_site(keyed: tuple[fti.Project, dict[str, str]]) -> None:
    project, keys = keyed
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"):
        with AsgiClient(create_app(project)) as client:
            assert login(client, keys["reader"], target).headers["location"] == "/", target


def test_every_page_sends_a_strict_content_security_policy(client: AsgiClient) -> None:
    response = client.get("/")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert re.match(r"app;dur=\d+\.\d+", response.headers["server-timing"])
    assert "<script>" not in response.text  # no inline script anywhere


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_user_strings_are_escaped_everywhere(sqlite_project: fti.Project) -> None:
    fs = sqlite_project.feature_store
    fg = fs.get_or_create_feature_group("hostile", primary_key=["id"], description=HOSTILE)
    fg.insert(pd.DataFrame({"id": [1, 2], "note": [HOSTILE, "ok"], "y": [0, 1]}))
    fv = fs.get_or_create_feature_view("hostile_view", query=fg.select(["y"]), description=HOSTILE)
    with sqlite_project.run(HOSTILE, params={"p": HOSTILE}, description=HOSTILE) as run:
        mv = sqlite_project.model_registry.register(
            "hostile_model",
            LogisticRegression().fit(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), [0, 0, 1, 1]),
            run=run,
            description=HOSTILE,
            metrics={"acc": 1.0},
        )
    assert fv.description == HOSTILE and mv.description == HOSTILE
    with AsgiClient(create_app(sqlite_project)) as client:
        for path in [
            "/",
            "/feature-groups",
            "/feature-groups/hostile/1",
            "/feature-views",
            "/feature-views/hostile_view/1",
            "/search?q=script",
            f"/search?q={HOSTILE}",
            "/models",
            "/models/hostile_model",
            "/models/hostile_model/1",
            "/runs",
            f"/runs/{run.id}",
            f"/feature-groups/hostile/1?as_of={HOSTILE}",
        ]:
            response = client.get(path, params=None)
            assert "<script>alert(1)</script>" not in response.text, path
            assert "<img src=x" not in response.text, path
            assert response.status_code in (200, 400), path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/feature-groups/hostile/1").text
