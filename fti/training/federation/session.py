"""One federated-training run from the server's side: checked inputs, the training dataset, the
partitions, the Flower strategy, the training run's lineage and the final model.

:func:`prepare` validates everything it can before anything is written (so bad input leaves no
training dataset or run behind), then picks or creates the training dataset and checks its
partitions from their sizes alone. :func:`start_run` records the run's params, the strategy's
round callback logs each round's metrics, and :func:`finish` exports the model and the result.
Both :func:`fti.training.federated` (clients as local processes) and ``fti federated serve``
(clients anywhere) go through here.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import SchemaError, ValidationError
from fti.training.federation.models import ModelSpec, as_spec, check_local_model, spec_config
from fti.training.federation.partitions import PartitionSize, check_column, check_partitions, summarize

if TYPE_CHECKING:
    from fti.features.feature_view import FeatureView
    from fti.features.training_data import TrainingDataset
    from fti.project import Project
    from fti.training.federation.server import FederatedStrategy, RoundRecord
    from fti.training.runs import Run

STRATEGIES = ("fedavg", "fedprox")
_NUMERIC = {"int8", "int16", "int32", "int64", "float32", "float64", "bool"}


@dataclass(frozen=True)
class Options:
    """The training options of a run (checked by :func:`check_options`)."""

    rounds: int
    fraction_fit: float
    strategy: str
    proximal_mu: float
    dp_noise: float | None
    dp_clipping_norm: float
    seed: int
    connect_timeout: float
    round_timeout: float | None


@dataclass
class Session:
    """A prepared run: everything the server needs, and the run record once started."""

    fv: FeatureView
    record: TrainingDataset
    partition_by: str
    partitions: dict[str, PartitionSize]
    spec: ModelSpec
    options: Options
    feature_names: list[str]
    strategy: FederatedStrategy | None = None
    run: Run | None = None
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class FederatedResult:
    """The outcome of :func:`fti.training.federated`.

    Attributes:
        model: The trained model, ready for ``model_registry.register`` (a scikit-learn
            ``Pipeline`` for :class:`SGDClassifierSpec`, a TorchScript module for torch).
        metrics: The last round's evaluation on every partition's test rows: ``auc`` (pooled over
            all partitions, from score histograms), ``log_loss`` and ``accuracy``
            (example-weighted means), ``mean_partition_auc``.
        training_dataset_version: The training dataset the partitions were read from.
        run: The training run with params (partition sizes, strategy, model) and per-round metrics.
        rounds: Per round: metrics per partition and aggregated, seconds, bytes sent and received.
        partitions: Rows and positive labels per partition and split.
        statistics: The transformation statistics combined from the partitions.
        feature_names: The model's input columns (transformed).
        seconds: Wall time of the run: client start-up, setup and rounds (not the creation of
            the training dataset).
        setup_bytes: Bytes of the setup messages (plan, sufficient statistics, combined statistics).
    """

    model: Any
    metrics: dict[str, float]
    training_dataset_version: int
    run: Run
    rounds: list[RoundRecord]
    partitions: dict[str, dict[str, Any]]
    statistics: dict[str, dict[str, Any]]
    feature_names: list[str]
    seconds: float
    setup_bytes: int

    @property
    def bytes_per_round(self) -> float:
        """Median bytes sent plus received per round (weights, configs, metrics)."""
        return float(statistics.median(r.bytes_sent + r.bytes_received for r in self.rounds))


def check_options(
    rounds: object,
    fraction_fit: object,
    strategy: object,
    proximal_mu: object,
    secure_aggregation: object,
    dp_noise: object,
    dp_clipping_norm: object,
    seed: object,
    connect_timeout: object,
    round_timeout: object,
) -> Options:
    """Check the run options; each bad value raises ``ValidationError`` naming it."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValidationError(f"rounds must be an integer >= 1, got {rounds!r}")
    fraction = _number("fraction_fit", fraction_fit)
    if not 0 < fraction <= 1:
        raise ValidationError(f"fraction_fit must be in (0, 1], got {fraction_fit!r}")
    if strategy not in STRATEGIES:
        raise ValidationError(
            f"strategy must be one of {STRATEGIES} (Flower's FedAvg, FedProx), got {strategy!r}"
        )
    mu = _number("proximal_mu", proximal_mu)
    if mu < 0:
        raise ValidationError(f"proximal_mu must be >= 0, got {proximal_mu!r}")
    if not isinstance(secure_aggregation, bool):
        raise ValidationError(f"secure_aggregation must be True or False, got {secure_aggregation!r}")
    if secure_aggregation:
        raise ValidationError(
            "secure_aggregation=True is not available: Flower's SecAgg+ runs only on its Message-API "
            "runtime (SuperLink/SuperNode), and fti runs clients on Flower's gRPC client/server "
            "transport; use dp_noise=... for differential privacy of the aggregate instead"
        )
    noise = None if dp_noise is None else _number("dp_noise", dp_noise)
    if noise is not None and noise < 0:
        raise ValidationError(f"dp_noise (the noise multiplier) must be >= 0, got {dp_noise!r}")
    clip = _number("dp_clipping_norm", dp_clipping_norm)
    if clip <= 0:
        raise ValidationError(f"dp_clipping_norm must be > 0, got {dp_clipping_norm!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError(f"seed must be an integer, got {seed!r}")
    connect = _number("connect_timeout", connect_timeout)
    timeout = None if round_timeout is None else _number("round_timeout", round_timeout)
    if connect <= 0 or (timeout is not None and timeout <= 0):
        raise ValidationError("connect_timeout and round_timeout must be > 0 seconds")
    return Options(rounds, fraction, str(strategy), mu, noise, clip, seed, connect, timeout)


def prepare(
    fv: FeatureView,
    partition_by: object,
    model: object,
    options: Options,
    *,
    partitions: list[str] | None = None,
    training_dataset_version: int | None = None,
    split: str = "random",
    test_size: float = 0.2,
    test_start: datetime | None = None,
) -> Session:
    """Check the view, column and model, pick or create the training dataset, check its partitions.

    Raises:
        ValidationError, SchemaError: bad input (before any training dataset is created).
        NotFoundError: an unknown training dataset version, or a listed partition without rows.
    """
    from fti.features.transformations import parse

    if not callable(getattr(fv, "training_dataset", None)) or not hasattr(fv, "query"):
        raise ValidationError(f"fv must be a FeatureView, got {type(fv).__name__}")
    if len(fv.labels) != 1:
        raise ValidationError(
            f"federated training needs a feature view with one 0/1 label, {fv.name!r} has {fv.labels}"
        )
    column = check_column(fv, partition_by)
    spec = as_spec(model)
    spec_config(spec)  # the spec must be rebuildable in client processes
    if partitions is not None and (
        isinstance(partitions, str) or not all(isinstance(p, str) for p in partitions) or not partitions
    ):
        raise ValidationError(
            f"partitions must be a non-empty list of partition values as text, got {partitions!r}"
        )
    transformations = {f: parse(s, f) for f, s in fv.transformations.items()}
    robust = [f for f, s in transformations.items() if s.kind == "robust_scaler"]
    if robust:
        raise ValidationError(
            f"robust_scaler on {robust} needs quantiles of all rows, which cannot be fitted without "
            "pooling them; use standard_scaler, min_max_scaler or bucketize(...) in a new feature view version"
        )
    raw = [
        f"{n} ({t})"
        for n, t in fv.feature_dtypes(transformed=False).items()
        if n not in transformations and t not in _NUMERIC
    ]
    if raw:
        raise SchemaError(
            f"feature(s) {raw} are not numeric and have no transformation; the model needs numbers: "
            "give them a label_encoder or one_hot_encoder, or leave them out of the feature view"
        )
    if training_dataset_version is None:
        fv.train_test_split(
            test_size=test_size,
            split=split,
            seed=options.seed,
            test_start=test_start,
            description=f"federated training, partitioned by {column}",
        )
        version = fv.last_training_dataset_version
        assert version is not None
    else:
        version = training_dataset_version
    record = fv.training_dataset(version)
    sizes = summarize(fv, record, column)
    chosen = check_partitions(sizes, partitions, column, record.version)
    feature_names = fv.feature_names(training_dataset_version=record.version)
    check_local_model(spec, len(feature_names))
    return Session(fv, record, column, chosen, spec, options, feature_names)


def evaluation_split(record: TrainingDataset) -> str:
    """Clients evaluate on the test split, else validation, else (no split) the training rows."""
    return next((s for s in ("test", "validation") if s in record.splits), "train")


def start_run(session: Session, name: str | None) -> Run:
    """Start the training run with the run's lineage as params (sizes, never rows)."""
    from fti.training.federation import _flower

    fv, record, options = session.fv, session.record, session.options
    config = spec_config(session.spec)
    params: dict[str, Any] = {
        "federated": True,
        "feature_view": fv.name,
        "feature_view_version": fv.version,
        "training_dataset_version": record.version,
        "partition_by": session.partition_by,
        "partitions": {n: p.to_dict() for n, p in session.partitions.items()},
        "evaluation_split": evaluation_split(record),
        "strategy": options.strategy,
        "rounds": options.rounds,
        "fraction_fit": options.fraction_fit,
        "secure_aggregation": False,
        "dp_noise": options.dp_noise,
        "model": config["class"],
        "model_params": {k: v for k, v in config["params"].items() if k != "module"},
        "seed": options.seed,
        "flower_version": _flower.version(),
    }
    if options.strategy == "fedprox":
        params["proximal_mu"] = options.proximal_mu
    if options.dp_noise is not None:
        params["dp_clipping_norm"] = options.dp_clipping_norm
    run = project_of(fv).run(name or f"federated-{fv.name}", params=params)
    session.run = run
    return run


def project_of(fv: FeatureView) -> Project:
    """The project a feature view belongs to, as the full Project (runs, registry, backends)."""
    from fti.project import Project

    project = fv.project
    if not isinstance(project, Project):
        raise ValidationError(
            f"feature view {fv.name!r} does not belong to a connected project; get it from "
            "fti.connect(...).feature_store"
        )
    return project


def log_round(run: Run, record: RoundRecord) -> None:
    """Append one round's aggregated and per-partition metrics to the run, at step = round:
    ``log_loss``, ``accuracy``, ``mean_partition_auc`` (example-weighted over the partitions'
    test rows), ``train_loss``, ``round_seconds``, ``bytes_sent``/``bytes_received``, every
    ``partition.<name>.<metric>``, and in the last round ``auc`` (pooled over all partitions)."""
    metrics: dict[str, float] = {
        "train_loss": record.train.get("loss", math.nan),
        "round_seconds": record.seconds,
        "bytes_sent": float(record.bytes_sent),
        "bytes_received": float(record.bytes_received),
    }
    names = {"loss": "log_loss", "accuracy": "accuracy", "auc": "mean_partition_auc", "pooled_auc": "auc"}
    for key, name in names.items():
        if key in record.evaluation:
            metrics[name] = record.evaluation[key]
    for name, values in record.clients.items():
        for key, value in values.items():
            metrics[f"partition.{name}.{key}"] = value
    run.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)}, step=record.round)


def finish(session: Session) -> FederatedResult:
    """The trained model and the result; logs the final metrics and ends the run."""
    strategy, run = session.strategy, session.run
    assert strategy is not None and run is not None
    if strategy.final_weights is None:
        raise ValidationError("no round produced weights")
    local = session.spec.build(strategy.n_features)
    local.set_weights(strategy.final_weights)
    last = strategy.rounds[-1].evaluation
    metrics = {
        "log_loss": last.get("loss", math.nan),
        "accuracy": last.get("accuracy", math.nan),
        "auc": last.get("pooled_auc", math.nan),
        "mean_partition_auc": last.get("auc", math.nan),
    }
    metrics = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
    seconds = time.perf_counter() - session.started
    run.log_metrics({"seconds": seconds, "setup_bytes": float(strategy.setup_bytes)})
    run.end("finished")
    return FederatedResult(
        model=local.export(session.feature_names),
        metrics=metrics,
        training_dataset_version=session.record.version,
        run=run,
        rounds=list(strategy.rounds),
        partitions={n: p.to_dict() for n, p in session.partitions.items()},
        statistics=strategy.statistics,
        feature_names=list(session.feature_names),
        seconds=seconds,
        setup_bytes=strategy.setup_bytes,
    )


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number, got {value!r}")
    return float(value)
