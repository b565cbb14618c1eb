"""Pipelines: feature, training and inference pipelines on schedules and events, and the scheduler.

Declare pipelines with the decorators in :mod:`fti.pipelines.definitions` (also available as
``fti.feature_pipeline`` etc.), deploy them with ``project.pipelines.deploy(path)`` or
``fti pipelines deploy``, and run ``fti scheduler``. This package imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.project import Project


def fire_event(project: Project, event: str, payload: dict[str, Any] | None = None) -> int:
    """Fire event ``event`` (e.g. ``"drift_detected"``) for pipelines declared with ``fti.on_event(event)``.

    The scheduler starts one run per triggered pipeline on its next tick (events fired between
    two ticks coalesce into one run that receives the latest payload as ``event``).

    Returns:
        The event's id.
    """
    from fti.pipelines.catalog import PipelineCatalog

    return PipelineCatalog(project).fire_event(event, payload)


__all__ = ["fire_event"]
