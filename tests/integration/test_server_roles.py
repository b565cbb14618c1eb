"""Roles over HTTP: any valid key infers; loading and unloading models needs an admin key (403 else)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import create_app
from fti.serving.auth import create_key
from fti.testing.serving import running_server


@pytest.fixture
def project(tmp_path: Path) -> Iterator[fti.Project]:
    proj = fti.connect(home=tmp_path / "home")
    X, y = make_classification(100, n_features=2, n_informative=2, n_redundant=0, random_state=0)
    proj.model_registry.register(
        "clf", LogisticRegression().fit(X, y), input_example=pd.DataFrame(X[:3], columns=["a", "b"])
    )
    proj.serving.deploy("clf", model="clf", log_requests=False, scorer="native")
    yield proj
    proj.close()


def test_a_reader_predicts_but_only_an_admin_loads_or_unloads(project: fti.Project) -> None:
    keys = {role: create_key(project, role, role) for role in ("reader", "writer", "admin")}
    body = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [0.5]} for n in ("a", "b")]}
    app = create_app(project, poll_interval_s=0.1, log_requests=False)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=20) as c:

        def auth(role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {keys[role]}"}

        for role in keys:
            assert c.post("/v2/models/clf/infer", json=body, headers=auth(role)).status_code == 200
            assert c.post("/v2/repository/index", headers=auth(role)).status_code == 200
        for role in ("reader", "writer"):
            for action in ("unload", "load"):
                refused = c.post(f"/v2/repository/models/clf/{action}", headers=auth(role))
                assert refused.status_code == 403, (role, action)
                message = refused.json()["error"]
                assert f"POST /v2/repository/models/clf/{action} needs the admin role" in message
                assert f"has the role {role!r}" in message
        assert c.get("/v2/models/clf/ready", headers=auth("reader")).status_code == 200  # still loaded
        assert c.post("/v2/repository/models/clf/unload", headers=auth("admin")).status_code == 200
        assert c.get("/v2/models/clf/ready", headers=auth("reader")).status_code == 503
        assert c.post("/v2/repository/models/clf/load", headers=auth("admin")).status_code == 200
        assert c.get("/v2/models/clf/ready", headers=auth("reader")).status_code == 200
        answer = c.post("/v2/models/clf/infer", json=body, headers=auth("reader")).json()
        assert np.asarray(answer["outputs"][0]["data"]).shape == (1,)
