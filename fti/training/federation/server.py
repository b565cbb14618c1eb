"""The federated-training server: a Flower strategy wrapped with fti's setup phase and records.

:class:`FederatedStrategy` delegates aggregation to a Flower strategy (``FedAvg``, ``FedProx``,
optionally inside Flower's server-side differential-privacy wrapper) and adds what fti needs:

- **setup** (``initialize_parameters``): wait for the expected partitions' clients, send them the
  plan, combine their sufficient statistics into the transformation statistics (checked against
  the training dataset's own, so the registered model serves with what it was trained on), send
  those back, and start from the model's initial weights;
- **records**: per round, each partition's training and evaluation metrics and row counts, the
  example-weighted aggregates, the pooled AUC of the last round (from per-class score
  histograms), the wall time and the exact size of every message sent and received.

:func:`serve` runs it on Flower's gRPC transport (the one ``flwr.server.start_server`` uses,
without the process-wide signal handlers that function installs).
"""

from __future__ import annotations

import json
import math
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fti import errors
from fti.errors import BackendError, FtiError, IntegrityError, ValidationError
from fti.features.transformations import Spec, Transformer, combine_statistics
from fti.training.federation import _flower
from fti.training.federation import plan as msg
from fti.training.federation.models import ModelSpec
from fti.training.federation.partitions import PartitionSize

with _flower.importing():
    from flwr.common import (
        Code,
        EvaluateIns,
        EvaluateRes,
        FitIns,
        FitRes,
        GetPropertiesIns,
        Parameters,
        ndarrays_to_parameters,
        parameters_to_ndarrays,
        serde,
    )
    from flwr.server import ServerConfig
    from flwr.server.client_manager import ClientManager, SimpleClientManager
    from flwr.server.client_proxy import ClientProxy
    from flwr.server.server import Server, run_fl
    from flwr.server.strategy import (
        DifferentialPrivacyServerSideFixedClipping,
        FedAvg,
        FedProx,
        Strategy,
    )
    from flwr.server.superlink.fleet.grpc_bidi.grpc_server import start_grpc_server

STRATEGIES = ("fedavg", "fedprox")
AVERAGED = ("loss", "accuracy", "auc")


@dataclass
class RoundRecord:
    """What one round did: metrics per partition and aggregated, time and bytes."""

    round: int
    seconds: float = 0.0
    train: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, float] = field(default_factory=dict)
    clients: dict[str, dict[str, float]] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass(frozen=True)
class Setup:
    """What the server needs to set a run up: the plan and the partitions it expects."""

    plan: msg.Plan
    partitions: dict[str, PartitionSize]
    specs: dict[str, Spec]
    inputs: list[tuple[str, str]]
    stored_statistics: dict[str, dict[str, Any]]
    spec: ModelSpec
    rounds: int
    connect_timeout: float


class FederatedStrategy(Strategy):  # type: ignore[misc]
    """A Flower strategy that runs fti's setup phase and records every round (see module doc)."""

    def __init__(
        self, inner: Strategy, setup: Setup, on_round: Callable[[RoundRecord], None] | None = None
    ) -> None:
        super().__init__()
        self.inner = inner
        self.setup = setup
        self.on_round = on_round
        self.rounds: list[RoundRecord] = []
        self.names: dict[str, str] = {}
        """Flower client id -> partition name."""
        self.sizes: dict[str, dict[str, int]] = {}
        self.statistics: dict[str, dict[str, Any]] = {}
        self.n_features = 0
        self.setup_bytes = 0
        self.final_weights: list[np.ndarray] | None = None
        self.aborted: str | None = None
        """Set (from another thread) to a reason when the run must stop, e.g. a client died."""
        self._started = 0.0

    def __repr__(self) -> str:
        return f"FederatedStrategy({self.inner!r})"

    # --- setup ------------------------------------------------------------------------------------
    def initialize_parameters(self, client_manager: ClientManager) -> Parameters:
        proxies = self._wait_for_clients(client_manager)
        plan_json = self.setup.plan.to_json()
        replies = self._ask(proxies, {msg.PHASE: "plan", msg.PLAN: plan_json})
        expected = self.setup.partitions
        partials = []
        for proxy, props in replies:
            name = str(props[msg.PARTITION])
            if name not in expected:
                raise ValidationError(
                    f"a client holds partition {name!r}, which is not one of this run's {sorted(expected)}"
                )
            if name in self.names.values():
                raise ValidationError(f"two clients hold partition {name!r}; start one client per partition")
            self.names[proxy.cid] = name
            self.sizes[name] = json.loads(str(props[msg.SIZES]))
            if self.sizes[name]["train"] != expected[name].rows.get("train"):
                raise IntegrityError(
                    f"the client of {name!r} read {self.sizes[name]['train']} training rows, the training "
                    f"dataset has {expected[name].rows.get('train')} in that partition"
                )
            partials.append(json.loads(str(props[msg.STATISTICS])))
        self.statistics = combine_statistics(self.setup.specs, partials)
        check_statistics(self.statistics, self.setup.stored_statistics)
        # the clients transform with these; the width is known once the categories are
        self.n_features = len(Transformer(self.setup.inputs, self.setup.specs, self.statistics).output_names)
        replies = self._ask(proxies, {msg.PHASE: "statistics", msg.STATISTICS: json.dumps(self.statistics)})
        widths = {int(props[msg.FEATURES]) for _, props in replies}
        if widths != {self.n_features}:
            raise IntegrityError(f"clients built {sorted(widths)} features, the server {self.n_features}")
        weights = self.setup.spec.build(self.n_features).get_weights()
        self._started = time.perf_counter()
        return ndarrays_to_parameters(weights)

    def _wait_for_clients(self, client_manager: ClientManager) -> list[ClientProxy]:
        wanted = len(self.setup.partitions)
        deadline = time.monotonic() + self.setup.connect_timeout
        while client_manager.num_available() < wanted:
            if self.aborted:
                raise BackendError(self.aborted)
            if time.monotonic() > deadline:
                raise BackendError(
                    f"{client_manager.num_available()} of {wanted} clients connected within "
                    f"{self.setup.connect_timeout:.0f} s; start one client per partition "
                    f"({', '.join(self.setup.partitions)}) with `fti federated client`"
                )
            time.sleep(0.05)
        proxies: list[ClientProxy] = list(client_manager.all().values())
        if len(proxies) > wanted:
            raise ValidationError(f"{len(proxies)} clients connected, this run expects {wanted}")
        return proxies

    def _ask(
        self, proxies: list[ClientProxy], config: dict[str, Any]
    ) -> list[tuple[ClientProxy, dict[str, Any]]]:
        ins = GetPropertiesIns(config=config)
        size = serde.get_properties_ins_to_proto(ins).ByteSize()

        def one(proxy: ClientProxy) -> tuple[ClientProxy, Any]:
            return proxy, proxy.get_properties(ins, timeout=self.setup.connect_timeout, group_id=None)

        with ThreadPoolExecutor(max_workers=min(32, len(proxies))) as pool:
            answers = list(pool.map(one, proxies))
        replies = []
        for proxy, res in answers:
            self.setup_bytes += size + serde.get_properties_res_to_proto(res).ByteSize()
            if res.status.code != Code.OK:
                raise BackendError(f"a client failed to answer the server: {res.status.message}")
            props = dict(res.properties)
            if msg.ERROR in props:
                raise _error(str(props.get(msg.ERROR_CODE, "")), str(props[msg.ERROR]))
            replies.append((proxy, props))
        return replies

    # --- rounds: delegate to the Flower strategy, record ---------------------------------------------
    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        self._check_aborted()
        self.rounds.append(RoundRecord(server_round))
        self._started = time.perf_counter()
        instructions = self.inner.configure_fit(server_round, parameters, client_manager)
        out = []
        for proxy, ins in instructions:
            ins = FitIns(ins.parameters, {**ins.config, msg.ROUND: server_round})
            self.rounds[-1].bytes_sent += serde.fit_ins_to_proto(ins).ByteSize()
            out.append((proxy, ins))
        return out

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Any]]:
        self._check_failures("training", failures)
        record = self.rounds[-1]
        rows = []
        for proxy, res in results:
            record.bytes_received += serde.fit_res_to_proto(res).ByteSize()
            client = record.clients.setdefault(self.names[proxy.cid], {})
            client.update({f"train_{k}": float(v) for k, v in res.metrics.items()})
            client["train_rows"] = float(res.num_examples)
            rows.append((res.num_examples, res.metrics))
        record.train = weighted_means(rows)
        parameters, _ = self.inner.aggregate_fit(server_round, results, failures)
        if parameters is not None:
            self.final_weights = parameters_to_ndarrays(parameters)
        return parameters, dict(record.train)

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        self._check_aborted()
        instructions = self.inner.configure_evaluate(server_round, parameters, client_manager)
        out = []
        for proxy, ins in instructions:
            config = {**ins.config, msg.ROUND: server_round}
            if server_round == self.setup.rounds:
                config[msg.HISTOGRAM] = True
            ins = EvaluateIns(ins.parameters, config)
            self.rounds[-1].bytes_sent += serde.evaluate_ins_to_proto(ins).ByteSize()
            out.append((proxy, ins))
        return out

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Any]]:
        self._check_failures("evaluation", failures)
        record = self.rounds[-1]
        rows = []
        histogram = np.zeros((2, msg.HISTOGRAM_BINS), dtype=np.int64)
        for proxy, res in results:
            record.bytes_received += serde.evaluate_res_to_proto(res).ByteSize()
            metrics = dict(res.metrics)
            raw = metrics.pop(msg.HISTOGRAM, None)
            if isinstance(raw, bytes):
                histogram += np.frombuffer(zlib.decompress(raw), dtype=np.int64).reshape(
                    2, msg.HISTOGRAM_BINS
                )
            client = record.clients.setdefault(self.names[proxy.cid], {})
            client.update({k: float(v) for k, v in metrics.items()})
            client["loss"] = float(res.loss)
            client["eval_rows"] = float(res.num_examples)
            rows.append((res.num_examples, {"loss": res.loss, **metrics}))
        record.evaluation = weighted_means(rows)
        if histogram.any():
            record.evaluation["pooled_auc"] = histogram_auc(histogram)
        record.seconds = time.perf_counter() - self._started
        if self.on_round is not None:
            self.on_round(record)
        return record.evaluation.get("loss"), dict(record.evaluation)

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Any]] | None:
        return None  # no central evaluation: the server holds no rows

    def _check_aborted(self) -> None:
        if self.aborted:
            raise BackendError(self.aborted)

    def _check_failures(self, what: str, failures: list[Any]) -> None:
        self._check_aborted()
        if failures:
            first = failures[0]
            detail = repr(first) if isinstance(first, BaseException) else f"status {first[1].status}"
            raise BackendError(
                f"{len(failures)} client(s) failed in {what} round {len(self.rounds)}: {detail}"
            )


def build_strategy(
    name: str,
    clients: int,
    fraction_fit: float,
    proximal_mu: float,
    dp_noise: float | None,
    dp_clipping_norm: float,
) -> Strategy:
    """The Flower strategy for ``name`` (optionally with server-side DP), expecting ``clients``."""
    per_round = max(1, math.ceil(fraction_fit * clients))
    options: dict[str, Any] = dict(
        fraction_fit=fraction_fit,
        fraction_evaluate=1.0,
        min_fit_clients=per_round,
        min_evaluate_clients=clients,
        min_available_clients=clients,
        accept_failures=False,
        fit_metrics_aggregation_fn=weighted_means,
        evaluate_metrics_aggregation_fn=weighted_means,
    )
    strategy: Strategy = (
        FedProx(proximal_mu=proximal_mu, **options) if name == "fedprox" else FedAvg(**options)
    )
    if dp_noise is not None:
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy, noise_multiplier=dp_noise, clipping_norm=dp_clipping_norm, num_sampled_clients=per_round
        )
    return strategy


def serve(
    strategy: FederatedStrategy,
    address: str,
    round_timeout: float | None,
    *,
    certificates: tuple[bytes, bytes, bytes] | None = None,
    ready: threading.Event | None = None,
    started: Callable[[Any], None] | None = None,
) -> None:
    """Run the server at ``address`` for ``strategy.setup.rounds`` rounds; returns when the clients
    have been told to disconnect. ``ready`` is set once the port is bound, and ``started`` gets the
    gRPC server (stopping it fails the calls in flight, which ends the run).

    Raises:
        BackendError: the address cannot be bound, a client failed, or the run was aborted.
    """
    client_manager = SimpleClientManager()
    server = Server(client_manager=client_manager, strategy=strategy)
    try:
        grpc_server = start_grpc_server(
            client_manager=client_manager, server_address=address, certificates=certificates
        )
    except (RuntimeError, SystemExit) as exc:  # Flower exits the process when the port is taken
        raise BackendError(f"cannot listen on {address} ({exc}); choose another address") from None
    if started is not None:
        started(grpc_server)
    if ready is not None:
        ready.set()
    try:
        run_fl(server, ServerConfig(num_rounds=strategy.setup.rounds, round_timeout=round_timeout))
    finally:
        grpc_server.stop(grace=1)


# --- aggregation helpers --------------------------------------------------------------------------
def weighted_means(rows: Sequence[tuple[int, Mapping[str, Any]]]) -> dict[str, float]:
    """Example-weighted means of the numeric metrics the clients report."""
    sums: dict[str, float] = {}
    weights: dict[str, int] = {}
    for n, metrics in rows:
        for key, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                sums[key] = sums.get(key, 0.0) + n * float(value)
                weights[key] = weights.get(key, 0) + n
    return {k: sums[k] / weights[k] for k in sums if weights[k]}


def histogram_auc(histogram: np.ndarray) -> float:
    """ROC AUC from per-class counts over ascending score bins (ties within a bin count half)."""
    negatives, positives = histogram[0].astype(np.float64), histogram[1].astype(np.float64)
    n_neg, n_pos = negatives.sum(), positives.sum()
    if not n_neg or not n_pos:
        return float("nan")
    below = np.cumsum(negatives) - negatives
    return float(np.sum(positives * (below + 0.5 * negatives)) / (n_pos * n_neg))


def check_statistics(combined: Mapping[str, Any], stored: Mapping[str, Any], rtol: float = 1e-9) -> None:
    """Statistics combined from the partitions must equal the training dataset's (which serving
    uses), categories exactly and numbers up to rounding.

    Raises:
        IntegrityError: they differ.
    """
    for feature, stats in combined.items():
        theirs = stored.get(feature)
        same = theirs is not None and set(theirs) == set(stats)
        if same and theirs is not None:
            for key, value in stats.items():
                other = theirs[key]
                if isinstance(value, float) and isinstance(other, float):
                    same = same and math.isclose(value, other, rel_tol=rtol, abs_tol=1e-12)
                else:
                    same = same and value == other
        if not same:
            raise IntegrityError(
                f"the statistics of {feature!r} combined from the partitions ({stats}) differ from the "
                f"training dataset's ({theirs}); the partitions must cover exactly its training rows"
            )


def _error(code: str, message: str) -> FtiError:
    classes: list[type[FtiError]] = [
        getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)
    ]
    for cls in classes:
        if cls.code == code:
            return cls(message)
    return ValidationError(message)
