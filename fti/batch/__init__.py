"""Batch inference: score a model's feature view over a time window into a feature group.

``fti.batch.score(project, model="fraud@production", start_time=..., end_time=...,
output="fraud_predictions")``; see :func:`fti.batch.job.score`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.batch.job import BatchScoreResult, score

__all__ = ["BatchScoreResult", "score"]


def __getattr__(name: str) -> Any:
    # keep `import fti.batch` light: pandas, pyarrow and the model libraries load on first use
    if name in __all__:
        from fti.batch import job

        return getattr(job, name)
    raise AttributeError(f"module 'fti.batch' has no attribute {name!r}")
