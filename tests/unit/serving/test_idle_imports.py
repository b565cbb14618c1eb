"""An idle model server (one cached ONNX model loaded, request logging on) stays light, and imports
only what its first prediction needs before making it."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

import fti
from fti.inference.cache import ScorerCache

FEATURES = ["a", "b", "c", "d"]

# Modules a server must not hold, idle or after serving and logging requests: the catalog is at
# head (no Alembic), the model is served from its cached verified ONNX conversion (no
# sklearn/skops/torch), and the inference-log writer builds and appends its rows without pandas
# or DuckDB.
AVOIDED = ("alembic", "mako", "sklearn", "skops", "torch", "pandas", "duckdb")
# ... and before its first prediction (issue 21, cold start): no offline table is opened on
# connect, the inference-log writer imports Arrow and delta-rs at its first flush, and checking
# the scorer cache's signatures derives a key without cryptography.
NOT_BEFORE_SERVING = ("deltalake", "pyarrow", "cryptography")

SERVER_SCRIPT = """
import asyncio, json, sys
import httpx
import fti
from fti.serving.app import create_app

async def main():
    project = fti.connect(home=sys.argv[1])
    app = create_app(project, log_requests=True)
    async with app.router.lifespan_context(app):
        while app.state.fti.repository.loading:  # the deployments load in the background
            await asyncio.sleep(0.01)
        idle = sorted({m.split(".")[0] for m in sys.modules})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fti") as client:
            body = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [0.5]}
                               for n in json.loads(sys.argv[2])]}
            status = (await client.post("/v2/models/hgb/infer", json=body)).status_code
        logger = app.state.fti.request_logger
        for _ in range(200):  # the writer flushes every second
            if logger.written:
                break
            await asyncio.sleep(0.05)
        served = sorted({m.split(".")[0] for m in sys.modules})
    print(json.dumps({"idle": idle, "served": served, "status": status, "logged": logger.written}))
    project.close()

asyncio.run(main())
"""


def test_a_server_imports_no_avoidable_heavy_module(sqlite_project: fti.Project) -> None:
    X, y = make_classification(400, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    model = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X, y)
    mv = sqlite_project.model_registry.register(
        "hgb", model, input_example=pd.DataFrame(X[:50], columns=FEATURES)
    )
    sqlite_project.model_registry.set_alias("hgb", mv.version, "production")
    entry = ScorerCache.at_home(sqlite_project.settings.home).entry(mv)
    entry.remember_choice("_build_onnx_hgb", "serving")  # ONNX wins (re-verified at deploy)
    sqlite_project.serving.deploy("hgb", model="hgb@production", scorer="fastest", log_requests=True)

    done = subprocess.run(
        [sys.executable, "-c", SERVER_SCRIPT, str(sqlite_project.settings.home), json.dumps(FEATURES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 200  # the model really was loaded and serves
    assert "onnxruntime" in result["idle"]  # sanity: the listing is the server's modules
    assert sorted(set(AVOIDED + NOT_BEFORE_SERVING) & set(result["idle"])) == []
    assert result["logged"] == 1  # the request was written to the inference log ...
    assert sorted(set(AVOIDED) & set(result["served"])) == []  # ... without pandas or DuckDB
    log = sqlite_project.feature_store.get_feature_group("hgb_inference_log").read()
    assert log[FEATURES].to_numpy().tolist() == [[0.5] * len(FEATURES)]
