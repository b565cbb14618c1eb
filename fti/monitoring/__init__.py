"""Monitoring: feature and prediction drift, delayed labels, estimated and realized performance, alerts.

``project.monitoring`` (:class:`~fti.monitoring.catalog.Monitoring`) creates, gets and lists
monitors and attaches labels that arrive later; a :class:`~fti.monitoring.monitors.Monitor`
evaluates windows of a deployment's inference log or of a feature group against a reference
profile (:mod:`~fti.monitoring.profiles`) with drift tests (:mod:`~fti.monitoring.drift`),
performance (:mod:`~fti.monitoring.performance`, :mod:`~fti.monitoring.labels`) and alerts
(:mod:`~fti.monitoring.alerts`), and stores every window in ``<monitor>_results``. This package
imports nothing heavy at import time; scipy is imported by the statistics that need it.
"""

from __future__ import annotations


def require_scipy() -> None:
    """The statistics need scipy: ``BackendError`` naming the extra that installs it."""
    try:
        import scipy  # noqa: F401
    except ImportError as exc:
        from fti.errors import BackendError

        raise BackendError("monitoring needs the 'scipy' package: pip install 'fti[monitoring]'") from exc
