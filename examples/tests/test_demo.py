"""The demo's plan and its printed curl lines (the demo itself runs in `make demo`)."""

from __future__ import annotations

import json
import shlex

import fti
from examples import demo


def test_the_steps_cover_both_systems_and_the_whole_period(sqlite_project: fti.Project) -> None:
    steps = demo.build_steps(sqlite_project, cards=1000, days=90)
    labels = [label for label, _ in steps]
    assert labels[0] == "register the iris pipelines" and labels[-1].startswith("fraud: batch inference")
    windows = [label for label in labels if label.startswith("fraud: transaction features")]
    assert windows == [
        "fraud: transaction features 2026-01-01 .. 2026-01-31",
        "fraud: transaction features 2026-01-31 .. 2026-03-02",
        "fraud: transaction features 2026-03-02 .. 2026-04-01",
    ]
    short = [label for label, _ in demo.build_steps(sqlite_project, cards=50, days=10)]
    assert "fraud: transaction features 2026-01-01 .. 2026-01-11" in short
    assert all(callable(step) for _, step in steps)


def test_curl_lines_are_valid_shell_with_an_inference_body() -> None:
    row = {"cc_num": 4000000000000000, "amount": 12.5, "note": "it's"}
    words = shlex.split(demo.curl_line("http://127.0.0.1:8080", "fraud", row))
    assert words[:3] == ["curl", "-s", "http://127.0.0.1:8080/v2/models/fraud/infer"]
    body = json.loads(words[words.index("-d") + 1])
    assert body == {
        "inputs": [
            {"name": "cc_num", "shape": [1], "datatype": "INT64", "data": [4000000000000000]},
            {"name": "amount", "shape": [1], "datatype": "FP64", "data": [12.5]},
            {"name": "note", "shape": [1], "datatype": "BYTES", "data": ["it's"]},
        ]
    }


def test_free_port_is_bindable() -> None:
    import socket

    port = demo.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
