"""MLServer, the incumbent model server, on the serving benchmark's model (issue 21: its figure is
printed in the same run when it is available).

MLServer is not a dependency, so it usually lives in a virtualenv of its own (with
``mlserver-sklearn`` and the same scikit-learn version as this one):
``python -m venv MLS_VENV && MLS_VENV/bin/pip install mlserver mlserver-sklearn 'uvloop<0.21'``
(MLServer 1.7's workers fail to start with newer uvloop), then pass
``--mlserver-python MLS_VENV/bin/python`` to ``serve_bench``. The model is served with its
scikit-learn runtime and adaptive batching (up to 64 requests or 2 ms, as fti's deployment), and
asked for both outputs fti answers (``predict`` and ``predict_proba``).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import first_prediction

NAME = "hgb"


def body(rows: np.ndarray) -> dict[str, Any]:
    """An infer request in MLServer's scikit-learn form: one FP64 tensor of shape rows x features."""
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.round(6).ravel().tolist(),
            }
        ],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }


def prepare(model: Any, folder: Path, port: int, grpc_port: int, metrics_port: int) -> Path:
    """A model repository for ``mlserver start``: the model as joblib, its settings, the server's."""
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    settings = {"http_port": port, "grpc_port": grpc_port, "metrics_port": metrics_port, "debug": False}
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
        "max_batch_size": 64,
        "max_batch_time": 0.002,
    }
    (folder / "model-settings.json").write_text(json.dumps(model_settings))
    return folder


def start(python: str, folder: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``mlserver start folder`` from ``python``'s virtualenv; returns the process and the
    seconds until its first successful prediction."""
    executable = Path(python).parent / "mlserver"
    payload = body(np.zeros((1, 20)))
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(executable), "start", str(folder)], stdout=subprocess.DEVNULL, stderr=log.open("w"), cwd=folder
    )
    url = f"http://127.0.0.1:{port}/v2/models/{NAME}/infer"
    return process, first_prediction(process, url, payload, log, started)
