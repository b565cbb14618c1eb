"""``search_runs``: a page of run records (params, latest metrics) by text, name, status and tag."""

from __future__ import annotations

import pytest

import fti
from fti.errors import ValidationError
from fti.training.runs import get_run, search_runs


def test_runs_are_searched_and_paged_newest_first(project: fti.Project) -> None:
    ids = []
    for i in range(5):
        with project.run("train-fraud" if i % 2 == 0 else "train-churn", params={"i": i}) as run:
            run.log_metric("loss", 1.0 / (i + 1))
            run.log_metric("loss", 0.5 / (i + 1))
            ids.append(run.id)
    with pytest.raises(RuntimeError), project.run("broken", description="Out of memory") as run:
        raise RuntimeError("boom")
    failed_id = run.id
    get_run(project, ids[1]).add_tag("baseline")

    everything = search_runs(project)
    assert [r.id for r in everything] == [failed_id, *reversed(ids)]
    first = everything.items[-1]
    assert first == get_run(project, ids[0]).record()  # the same record as one run's
    assert (first.params, first.metrics) == ({"i": 0}, {"loss": 0.5})
    assert [r.id for r in search_runs(project, name="train-fraud")] == [ids[4], ids[2], ids[0]]
    assert [r.id for r in search_runs(project, status="failed")] == [failed_id]
    assert [r.id for r in search_runs(project, "memory")] == [failed_id]  # description, any case
    assert [r.id for r in search_runs(project, "base")] == [ids[1]]  # tag
    assert [r.id for r in search_runs(project, tag="baseline")] == [ids[1]]
    page = search_runs(project, offset=2, limit=2)
    assert ([r.id for r in page], page.total, page.has_next) == ([ids[3], ids[2]], 6, True)
    with pytest.raises(ValidationError, match="status must be one of running, finished, failed"):
        search_runs(project, status="done")
