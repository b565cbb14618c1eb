"""The similar-items example on a real project: embeddings written by the pipeline, "more like this"
lookups equal to exact search over the same embeddings, and neighbours that share the item's digit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fti
from examples.similar_items import pipelines as si
from fti.errors import NotFoundError
from fti.pipelines.definitions import spec_of


def _exact(frame: object, item_id: int, k: int, mask: np.ndarray | None = None) -> list[int]:
    vectors = np.stack(frame["embedding"].to_list()).astype(np.float64)  # type: ignore[index]
    normalized = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = normalized @ normalized[item_id]
    scores[item_id] = -np.inf
    if mask is not None:
        scores[~mask] = -np.inf
    return np.argsort(-scores, kind="stable")[:k].tolist()


def test_the_bundled_items() -> None:
    frame = si.items_frame()
    assert len(frame) == 1797 and frame["item_id"].is_unique
    assert sorted(frame["digit"].unique()) == list(range(10))
    assert {len(v) for v in frame["embedding"]} == {si.DIM}
    assert frame["embedding"].iloc[0].dtype == np.float32
    assert spec_of(si.item_embeddings).kind == "feature"  # type: ignore[union-attr]


def test_similar_items_are_the_nearest_embeddings(sqlite_project: fti.Project) -> None:
    project = sqlite_project
    si.item_embeddings(project)
    si.item_embeddings(project)  # re-running upserts the same items
    assert project.backends.vectors.count(si.items_group(project).table_name) == 1797
    frame = si.items_frame()
    digits = frame["digit"].to_numpy()

    shared = []
    for item_id in range(0, 1797, 60):
        found = si.similar(project, item_id, k=5)
        assert found["item_id"].tolist() == _exact(frame, item_id, 5)
        assert found["distance"].is_monotonic_increasing
        shared.extend(digits[found["item_id"]] == digits[item_id])
    # the embedding captures the image: the nearest items almost always show the same digit
    assert np.mean(shared) >= 0.9

    heavy = si.similar(project, 0, k=5, filter="ink > 0.35")
    assert heavy["item_id"].tolist() == _exact(frame, 0, 5, mask=frame["ink"].to_numpy() > 0.35)
    assert (heavy["ink"] > 0.35).all()
    others = si.similar(project, 0, k=3, filter="digit <> 0")
    assert set(others["digit"]) <= set(range(1, 10)) and len(others) == 3


def test_an_unknown_item_is_a_typed_error(sqlite_project: fti.Project) -> None:
    si.item_embeddings(sqlite_project)
    with pytest.raises(NotFoundError, match="no item 5000"):
        si.similar(sqlite_project, 5000)


def test_the_readme_commands(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")}
    env["FTI_HOME"] = str(tmp_path / "home")
    for args in (
        ["pipelines", "deploy", "examples/similar_items/pipelines.py"],
        ["pipelines", "run", "item_embeddings"],
        ["fg", "show", "items"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "fti.cli.main", *args],
            cwd=Path(__file__).resolve().parents[3],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    assert "vector[32]" in done.stdout and "embedding index: embedding (cosine)" in done.stdout
    project = fti.connect(home=tmp_path / "home")
    try:
        found = si.similar(project, 0)
        assert found["item_id"].tolist() == _exact(si.items_frame(), 0, 5)
    finally:
        project.close()
