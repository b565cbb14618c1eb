"""Metric values shared by runs and model versions: named, finite real numbers."""

from __future__ import annotations

import math
import numbers

from fti.errors import ValidationError


def check_metric(key: object, value: object) -> tuple[str, float]:
    """Validate a metric name and value: a non-empty name and a finite real number."""
    if not isinstance(key, str) or not key or len(key) > 255:
        raise ValidationError(
            f"metric names must be non-empty strings of at most 255 characters, got {key!r}"
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(
            f"metric {key!r} must be a finite number, got {value!r} ({type(value).__name__})"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(
            f"metric {key!r} must be a finite number, got {number!r}; log finite values only"
        )
    return key, number


def check_metrics(metrics: object) -> dict[str, float]:
    """Validate a mapping of metric name -> finite number (None = no metrics)."""
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise ValidationError(f"metrics must be a dict of name -> number, got {type(metrics).__name__}")
    return dict(check_metric(k, v) for k, v in metrics.items())


def current_user() -> str:
    """The OS user recorded as the author of runs, versions and alias changes."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry and no USER variable (some containers)
        return "unknown"
