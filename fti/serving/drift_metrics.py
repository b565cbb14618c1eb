"""Prometheus gauges of monitoring in the model server: the latest drift statistic per monitor,
deployment (or feature group) and column, read from the catalog on the server's poll.

The scrape itself reads nothing: :meth:`DriftGauges.refresh` runs in the repository's poll thread
(every ``refresh_s`` at most) and the collector yields what it last read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.project import Project

log = logging.getLogger("fti.serving")


class DriftGauges:
    """A Prometheus collector of every monitor's latest window (register it with a registry)."""

    def __init__(self, project: Project, refresh_s: float = 15.0) -> None:
        self._project = project
        self._refresh_s = refresh_s
        self._rows: list[dict[str, Any]] = []
        self._read_at = 0.0
        self._lock = threading.Lock()

    def refresh(self, *, force: bool = False) -> None:
        """Read the latest monitor windows (at most every ``refresh_s``); a failure keeps the last values."""
        if not force and time.monotonic() - self._read_at < self._refresh_s:
            return
        self._read_at = time.monotonic()
        try:
            rows = self._project.monitoring.latest_statistics()
        except Exception:  # the catalog may be older than monitoring, or briefly unreachable
            log.exception("reading the monitors' latest windows failed")
            return
        with self._lock:
            self._rows = rows

    def describe(self) -> list[Any]:
        return []  # no fixed series: collected on demand

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        with self._lock:
            rows = list(self._rows)
        statistic = GaugeMetricFamily(
            "fti_monitor_drift_statistic",
            "Drift statistic of a column in its monitor's latest window (p-value tests: the statistic, see fti_monitor_drifted).",
            labels=["monitor", "source", "column", "test"],
        )
        drifted = GaugeMetricFamily(
            "fti_monitor_drifted",
            "1 when the column drifted in its monitor's latest window.",
            labels=["monitor", "source", "column"],
        )
        dataset = GaugeMetricFamily(
            "fti_monitor_dataset_drift",
            "1 when the monitor's latest window drifted as a whole.",
            labels=["monitor", "source"],
        )
        window = GaugeMetricFamily(
            "fti_monitor_window_end_timestamp_seconds",
            "End of the monitor's latest evaluated window.",
            labels=["monitor", "source"],
        )
        seen: set[str] = set()
        for row in rows:
            if row["monitor"] not in seen:
                seen.add(row["monitor"])
                dataset.add_metric([row["monitor"], row["source"]], 1.0 if row["dataset_drift"] else 0.0)
                window.add_metric([row["monitor"], row["source"]], row["window_end"].timestamp())
            if row.get("column") is None or row.get("statistic") is None:
                continue
            statistic.add_metric(
                [row["monitor"], row["source"], row["column"], row["test"]], float(row["statistic"])
            )
            drifted.add_metric([row["monitor"], row["source"], row["column"]], 1.0 if row["drifted"] else 0.0)
        yield from (statistic, drifted, dataset, window)
