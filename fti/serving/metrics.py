"""Prometheus metrics of the model server, labelled by model (deployment) and version; requests,
failures and latency also by variant (``champion`` unless the deployment splits its traffic).

Each server app owns its own ``CollectorRegistry`` so several apps (tests) never clash. With
several worker processes (``fti serve --workers N``) the server runs prometheus_client's
multiprocess mode: each worker writes its counters and histograms to a file in
``$PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``, whichever worker answers it, sums them. The load
figures (in-flight requests, buffered bytes, shed requests) stay those of the worker that answered.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fti.serving.batching import BatchStats

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Set (by ``fti serve --workers N``) before a worker imports prometheus_client: its metrics then
live in files in that directory, summed over the workers at each scrape."""


@dataclass(frozen=True)
class ModelCounters:
    """Per-request metrics of one model version, already labelled."""

    requests: Any
    latency: Any
    queue_time: Any
    batch_size: Any
    batch_requests: Any
    failures: Any
    """The failures counter of this model version, to label with the HTTP status."""

    def observe_batch(self, stats: BatchStats) -> None:
        self.batch_size.observe(stats.size)
        self.batch_requests.observe(stats.requests)
        for seconds in stats.queue_seconds:
            self.queue_time.observe(seconds)


class ServerMetrics:
    """The server's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._collectors: list[Any] = []
        labels = ("model", "version")
        variant = (*labels, "variant")
        self.requests = Counter(
            "fti_inference_requests", "Inference requests received.", variant, registry=self.registry
        )
        self.failures = Counter(
            "fti_inference_failures",
            "Inference requests answered with an error, by HTTP status.",
            (*variant, "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "fti_inference_latency_seconds",
            "Time from request arrival to response, for successful inferences.",
            variant,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_time = Histogram(
            "fti_inference_queue_seconds",
            "Time a request waited in the batching queue before its predict call started.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "fti_batch_size",
            "Rows per predict call (dynamic batching merges concurrent requests).",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "fti_batch_requests",
            "Requests merged into one predict call.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.loaded = Gauge(
            "fti_model_loaded",
            "1 when the model version is loaded (in any worker).",
            labels,
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.log_dropped = Counter(
            "fti_inference_log_dropped",
            "Inference-log rows dropped (the buffer was full, or the log group refused them).",
            ("model",),
            registry=self.registry,
        )
        self.log_written = Counter(
            "fti_inference_log_written",
            "Inference-log rows written to the inference-log feature group.",
            ("model",),
            registry=self.registry,
        )
        self.log_flush_cpu = Counter(
            "fti_inference_log_flush_cpu_seconds",
            "CPU seconds the server spent handing inference-log rows to the writer (building the "
            "Arrow tables and spooling them; committing, when it did that itself).",
            registry=self.registry,
        )
        self.log_writer_cpu = Counter(
            "fti_inference_log_writer_cpu_seconds",
            "CPU seconds the inference-log writer process spent committing spooled rows.",
            registry=self.registry,
        )
        self.log_commit_errors = Counter(
            "fti_inference_log_commit_errors",
            "Inference-log commits that failed and are retried (the rows stay spooled).",
            ("model",),
            registry=self.registry,
        )
        self.log_writer_restarts = Counter(
            "fti_inference_log_writer_restarts",
            "Times the inference-log writer process died and was restarted.",
            registry=self.registry,
        )
        self.log_spooled_bytes = Gauge(
            "fti_inference_log_spooled_bytes",
            "Inference-log bytes spooled and not yet committed.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.http_requests = Counter(
            "fti_http_requests",
            "HTTP requests by route and status.",
            ("route", "status"),
            registry=self.registry,
        )

    def bind(self, model: str, version: str, variant: str = "champion") -> ModelCounters:
        """The metric children of one model version (label lookups done once, not per request)."""
        return ModelCounters(
            self.requests.labels(model, version, variant),
            self.latency.labels(model, version, variant),
            self.queue_time.labels(model, version),
            self.batch_size.labels(model, version),
            self.batch_requests.labels(model, version),
            _FailureCounter(self.failures, model, version, variant),
        )

    def watch(self, admission: Any) -> None:
        """Report ``admission``'s in-flight requests, held body bytes and shed requests (a
        :class:`~fti.serving.limits.Admission`), read at each scrape."""
        self.collect_with(_AdmissionCollector(admission))

    def collect_with(self, collector: Any) -> None:
        """Add a collector read at each scrape (figures of this worker or of the catalog)."""
        self.registry.register(collector)
        self._collectors.append(collector)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (summed over the workers in
        multiprocess mode)."""
        directory = os.environ.get(MULTIPROCESS_ENV)
        if not directory:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        scrape = CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape, path=directory)  # type: ignore[no-untyped-call]
        for collector in self._collectors:
            scrape.register(collector)
        return generate_latest(scrape)


@dataclass(frozen=True)
class _FailureCounter:
    counter: Any
    model: str
    version: str
    variant: str

    def labels(self, status: str) -> Any:
        return self.counter.labels(self.model, self.version, self.variant, status)


class _AdmissionCollector:
    """The load-shedding figures of one worker, read from its Admission at scrape time."""

    def __init__(self, admission: Any) -> None:
        self._admission = admission

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        a = self._admission
        yield GaugeMetricFamily(
            "fti_inflight_requests", "Inference requests being handled.", value=a.inflight
        )
        yield GaugeMetricFamily(
            "fti_buffered_body_bytes", "Request body bytes held by requests being handled.", value=a.buffered
        )
        yield CounterMetricFamily(
            "fti_requests_shed", "Inference requests refused with 503 by the in-flight cap.", value=a.shed
        )
