"""The training plan the server sends its clients, and the keys of fti's messages over Flower.

Everything travels in Flower's own messages: the plan and the combined transformation
statistics in ``GetPropertiesIns`` configs, each client's partition sizes and sufficient
statistics in its ``GetPropertiesRes``, weights in ``FitIns``/``FitRes``, metrics in ``FitRes`` and
``EvaluateRes``. The plan names *what* to train (feature view, training dataset, model); a client
decides *which rows* itself: its own partition, fixed when it starts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

PHASE = "fti.phase"
PLAN = "fti.plan"
STATISTICS = "fti.statistics"
PARTITION = "fti.partition"
SIZES = "fti.sizes"
FEATURES = "fti.features"
ERROR = "fti.error"
ERROR_CODE = "fti.error_code"
HISTOGRAM = "fti.score_histogram"
ROUND = "fti.round"

HISTOGRAM_BINS = 4096
"""Bins of the final round's score histograms (on the logit scale, [-HISTOGRAM_LOGIT, +], sent
zlib-compressed); the pooled AUC computed from them differs from the exact one only through ties
within a bin."""
HISTOGRAM_LOGIT = 20.0


@dataclass(frozen=True)
class Plan:
    """What every client trains: the same feature view, training dataset and model."""

    feature_view: str
    feature_view_version: int
    training_dataset_version: int
    partition_by: str
    eval_split: str
    model: dict[str, Any]
    seed: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls(**json.loads(text))
