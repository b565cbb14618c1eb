"""FTI_PYFUNC: a model server that runs no pyfunc code, or only code from allowed modules
(issue 19 item 25). A real server on loopback; the refused module must never be imported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner

import fti
from fti.cli.main import cli
from fti.config import load_settings
from fti.registry.flavors.pyfunc import PythonModel
from fti.serving.app import create_app
from fti.testing.serving import running_server

PROBE = "tests.integration._pyfunc_probe"
BODY = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]}


def _register(home: Path) -> None:
    with fti.connect(home=home) as project:
        model = PythonModel(f"{PROBE}:predict")
        project.model_registry.register("custom", model, input_example=pd.DataFrame({"x": [1.0, 2.0]}))
        project.serving.deploy("custom", model="custom", scorer="native", log_requests=False)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("off", "pyfunc models are disabled on this server (FTI_PYFUNC=off)"),
        ("allow:acme,tests.unit", "module 'tests.integration._pyfunc_probe' is not under an allowed prefix"),
        ("allow:tests.integ", "is not under an allowed prefix (FTI_PYFUNC=allow:tests.integ)"),
    ],
)
def test_a_refused_pyfunc_is_never_imported_and_is_reported(
    tmp_path: Path, policy: str, message: str
) -> None:
    home = tmp_path / "home"
    _register(home)
    sys.modules.pop(PROBE, None)  # registering imported it in this process
    with fti.connect(home=home, pyfunc=policy) as project:
        with (
            running_server(create_app(project, poll_interval_s=0.05)) as url,
            httpx.Client(base_url=url) as c,
        ):
            [entry] = c.post("/v2/repository/index").json()
            refused = c.post("/v2/models/custom/infer", json=BODY)
            ready = c.get("/v2/health/ready")
        assert PROBE not in sys.modules  # the server refused before importing anything
        assert entry["state"] == "UNAVAILABLE" and message in entry["reason"], entry
        assert refused.status_code == 503 and message in refused.json()["error"]
        assert ready.status_code == 503
        with pytest.raises(fti.PermissionDeniedError, match="FTI_PYFUNC"):  # nor in-process
            project.serving.get("custom").predict({"x": 1.5})
    assert PROBE not in sys.modules


@pytest.mark.parametrize("policy", ["on", "allow:tests.integration", "allow:acme, tests"])
def test_an_allowed_pyfunc_is_served(tmp_path: Path, policy: str) -> None:
    home = tmp_path / "home"
    _register(home)
    with fti.connect(home=home, pyfunc=policy) as project, running_server(create_app(project)) as url:
        answer = httpx.post(f"{url}/v2/models/custom/infer", json=BODY)
    assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == [2.5]


@pytest.mark.parametrize("bad", ["maybe", "allow:", "allow:acme,,x", "allow:1abc", "allow:a b", "ON"])
def test_the_setting_is_validated(tmp_path: Path, bad: str) -> None:
    with pytest.raises(fti.ValidationError, match="FTI_PYFUNC must be 'on', 'off' or 'allow:"):
        load_settings(tmp_path, pyfunc=bad)


def test_fti_info_shows_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTI_PYFUNC", "allow:acme.models")
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), "info", "--create", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["settings"]["pyfunc"] == "allow:acme.models"
