"""Request latency of the serving protocols (issue 20): JSON, binary tensors over HTTP, gRPC.

One model server (uvicorn on loopback, in this process's background thread, with its gRPC port)
serves a scikit-learn ``LogisticRegression`` on 20 FP64 features (cheap to predict, so the
protocol's own cost shows), request logging off, no batching delay. Clients, one request at a
time: ``tritonclient.http`` in JSON mode (the reference, measured in the same run),
``tritonclient.http`` with ``binary_data=True`` for inputs and outputs, and
``tritonclient.grpc`` (raw tensor contents), and ``tritonclient.http`` in JSON mode with gzip
request and response compression (``request_compression_algorithm`` /
``response_compression_algorithm``). For 1, 100 and 10,000 rows per request: the median
and p99 latency of each, and its ratio to JSON's median.

Run: .venv/bin/python -m benchmarks.serving.protocols [--calls 200]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import fti
from benchmarks._report import median, percentile, repeat, row

FEATURES = [f"f{i}" for i in range(20)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    import tritonclient.grpc as tgrpc
    import tritonclient.http as thttp
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from fti.serving.app import create_app
    from fti.testing.serving import running_server

    X, y = make_classification(20_000, n_features=len(FEATURES), random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    with tempfile.TemporaryDirectory() as tmp:
        project = fti.connect(home=Path(tmp) / "home")
        project.model_registry.register("clf", LogisticRegression().fit(X, y), input_example=frame.head(5))
        project.serving.deploy("clf", model="clf", log_requests=False, max_batch_delay_ms=0, max_batch_size=1)
        app = create_app(project, grpc_address="127.0.0.1:0", log_requests=False)
        with running_server(app) as url:
            http = thttp.InferenceServerClient(url=url.removeprefix("http://"))
            grpc = tgrpc.InferenceServerClient(url=f"127.0.0.1:{app.state.fti.grpc_port}")
            for rows in (1, 100, 10_000):
                data = X[:rows]

                def http_call(binary: bool, data: np.ndarray = data, gzip: bool = False) -> Any:
                    inputs = []
                    for j, name in enumerate(FEATURES):
                        inp = thttp.InferInput(name, [len(data)], "FP64")
                        inp.set_data_from_numpy(np.ascontiguousarray(data[:, j]), binary_data=binary)
                        inputs.append(inp)
                    out = [thttp.InferRequestedOutput("predict_proba", binary_data=binary)]
                    compression = "gzip" if gzip else None
                    return http.infer(
                        "clf",
                        inputs,
                        outputs=out,
                        request_compression_algorithm=compression,
                        response_compression_algorithm=compression,
                    ).as_numpy("predict_proba")

                def grpc_call(data: np.ndarray = data) -> Any:
                    inputs = []
                    for j, name in enumerate(FEATURES):
                        inp = tgrpc.InferInput(name, [len(data)], "FP64")
                        inp.set_data_from_numpy(np.ascontiguousarray(data[:, j]))
                        inputs.append(inp)
                    out = [tgrpc.InferRequestedOutput("predict_proba")]
                    return grpc.infer("clf", inputs, outputs=out).as_numpy("predict_proba")

                calls = max(20, args.calls // (10 if rows >= 10_000 else 1))
                expected = http_call(False)
                assert np.allclose(http_call(True), expected) and np.allclose(grpc_call(), expected)
                assert np.allclose(http_call(False, gzip=True), expected)
                reference = repeat(lambda: http_call(False), calls)
                ref = median(reference)
                for label, fn in (
                    ("http json (reference)", lambda: http_call(False)),
                    ("http binary tensors", lambda: http_call(True)),
                    ("grpc", grpc_call),
                    ("http json, gzip both ways", lambda: http_call(False, gzip=True)),
                ):
                    times = reference if label.endswith("(reference)") else repeat(fn, calls)
                    row(
                        f"{rows:>6} rows  {label}",
                        median_ms=median(times) * 1000,
                        p99_ms=percentile(times, 99) * 1000,
                        ratio_to_json=median(times) / ref,
                    )
            http.close()
            grpc.close()
        project.close()


if __name__ == "__main__":
    main()
