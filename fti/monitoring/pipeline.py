"""The built-in pipeline that runs a scheduled monitor (``monitor_<name>``).

The pipeline scheduler calls :func:`run_monitor` in a run process, as for any pipeline, with the
window between two fire times and the pipeline's name; the monitor evaluates the last complete
window of its own length that ended by then (a monitor with ``window="1h"`` scheduled at
``"5 * * * *"`` evaluates the hour that ended five minutes earlier). Failures are retried by the
scheduler; the run's output lands in ``fti pipelines logs``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fti.errors import NotFoundError

if TYPE_CHECKING:
    from fti.project import Project


def run_monitor(project: Project, start: datetime, end: datetime, pipeline: str) -> None:
    """Run the monitor scheduled by ``pipeline`` on its window that ended by ``end``."""
    from fti.monitoring import records
    from fti.monitoring.monitors import Monitor

    record = records.find_by_pipeline(project.backends.catalog, project.id, pipeline)
    if record is None:
        raise NotFoundError(
            f"no monitor is scheduled by pipeline {pipeline!r}; it was deleted: pause the pipeline"
        )
    monitor = Monitor(project, record)
    window_start, window_end = monitor.last_window(end)
    result = monitor.run(window_start, window_end, trigger="schedule")
    drifted = ", ".join(result.drifted_columns) or "none"
    print(
        f"monitor {monitor.name}: window [{window_start.isoformat()}, {window_end.isoformat()}) {result.status}, "
        f"{result.rows} rows, drifted: {drifted}, dataset drift: {result.dataset_drift}, "
        f"alerts: {[a.status for a in result.alerts]}"
    )
