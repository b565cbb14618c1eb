"""Federated training on Flower: one model across partitions that never see each other's rows.

``fti.training.federated(fv, partition_by="bank_id", model=...)`` trains one model over the
partitions of a feature view's training dataset (one Flower client per value of
``partition_by``). Each client is its own process and reads only its partition (the same
point-in-time-correct rows as ``get_training_data``), transforms them with statistics combined
from every partition's sufficient statistics, trains locally and sends weights; the Flower
server aggregates them (FedAvg or FedProx, optionally with server-side differential privacy).
The same client runs on another machine with ``fti federated client``, against
``fti federated serve``.

Modules: :mod:`.models` (model specs and weights), :mod:`.partitions` (partition reads and
sizes), :mod:`.plan` (the messages), :mod:`.client`, :mod:`.server` (the Flower side),
:mod:`.session` (checks, lineage, result), :mod:`.runner` (processes).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.training.federation.models import LocalModel, ModelSpec, SGDClassifierSpec, TorchModuleSpec

if TYPE_CHECKING:
    from fti.features.feature_view import FeatureView
    from fti.training.federation.session import FederatedResult

__all__ = [
    "LocalModel",
    "ModelSpec",
    "SGDClassifierSpec",
    "TorchModuleSpec",
    "federated",
]


def federated(
    fv: FeatureView,
    partition_by: str,
    model: Any = None,
    rounds: int = 20,
    fraction_fit: float = 1.0,
    strategy: str = "fedavg",
    secure_aggregation: bool = False,
    dp_noise: float | None = None,
    *,
    dp_clipping_norm: float = 1.0,
    proximal_mu: float = 0.1,
    partitions: list[str] | None = None,
    training_dataset_version: int | None = None,
    split: str = "random",
    test_size: float = 0.2,
    test_start: datetime | None = None,
    seed: int = 42,
    run_name: str | None = None,
    connect_timeout: float = 120.0,
    round_timeout: float | None = 600.0,
    verbose: bool = False,
) -> FederatedResult:
    """Train one model across the partitions of ``fv``'s training data with Flower.

    Every partition gets a client process on this machine that reads only its own rows; the
    server (here) exchanges weights and metrics with them over Flower's gRPC transport on
    loopback, exactly as ``fti federated serve`` does with clients on other machines.

    Args:
        fv: The feature view (one 0/1 label).
        partition_by: A column of the view's training data (a spine key or a selected feature,
            e.g. ``"bank_id"``): one client per value.
        model: :class:`SGDClassifierSpec` (default), a ``torch.nn.Module`` (one logit out), or a
            :class:`ModelSpec` subclass whose models have ``get_weights``/``set_weights``.
        rounds: Federated rounds (>= 1).
        fraction_fit: Fraction of clients that train in each round (all evaluate).
        strategy: ``"fedavg"`` or ``"fedprox"`` (Flower's strategies; FedProx uses ``proximal_mu``).
        secure_aggregation: Must be False: Flower's SecAgg+ needs its Message-API runtime.
        dp_noise: Noise multiplier of Flower's server-side fixed-clipping differential privacy
            (updates clipped to ``dp_clipping_norm``); None disables it.
        partitions: The partition values (as text) expected to take part; default all. They must
            cover every training row (the statistics the model is served with are fitted on all).
        training_dataset_version: Train on this version; default: create one with a ``split``
            (``"random"`` with ``test_size``, or ``"time"`` with ``test_start``).
        seed: Seed of the split and of the clients' shuffling.
        run_name: Name of the training run (default ``federated-<view>``).
        connect_timeout: Seconds to wait for all clients to connect and answer the setup.
        round_timeout: Seconds a round may take.
        verbose: Show Flower's logs.

    Returns:
        A :class:`~fti.training.federation.session.FederatedResult`: the model, metrics,
        training dataset version, run, per-round records and partition sizes.

    Raises:
        SchemaError: ``partition_by`` is not a column of the view, or a feature is not numeric.
        ValidationError: bad options, a model without weight access, a partition with training
            rows of one class only, fewer than two partitions.
        NotFoundError: a listed partition has no training rows, an unknown dataset version.
        BackendError: Flower is not installed, or a client failed.
    """
    from fti.training.federation import runner
    from fti.training.federation.session import check_options, prepare

    options = check_options(
        rounds,
        fraction_fit,
        strategy,
        proximal_mu,
        secure_aggregation,
        dp_noise,
        dp_clipping_norm,
        seed,
        connect_timeout,
        round_timeout,
    )
    session = prepare(
        fv,
        partition_by,
        SGDClassifierSpec() if model is None else model,
        options,
        partitions=partitions,
        training_dataset_version=training_dataset_version,
        split=split,
        test_size=test_size,
        test_start=test_start,
    )
    return runner.run(session, run_name=run_name, verbose=verbose)
