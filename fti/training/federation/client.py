"""A federated-training client: one process, one partition, a Flower ``NumPyClient``.

A client is started with its partition (``column=value``) and the server's address, and that
partition is all it ever reads: the server's plan says which feature view, training dataset and
model to train, never which rows. The client answers the server in four steps, all Flower
messages:

1. ``get_properties`` (plan): read the partition (filter pushed down), reply with its sizes and
   the sufficient statistics of its training rows for the view's fitted transformations;
2. ``get_properties`` (statistics): receive the statistics combined over all partitions,
   transform the rows with the view's one :class:`~fti.features.transformations.Transformer`;
3. ``fit``: train the model locally from the global weights, reply with the new weights;
4. ``evaluate``: score the partition's test rows, reply with loss, AUC and accuracy (and in the
   last round a histogram of scores per class, from which the server computes the pooled AUC).

Run one with ``fti federated client --server HOST:PORT --partition COLUMN=VALUE`` or
``python -m fti.training.federation.client`` (what :func:`fti.training.federated` starts locally).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from fti.errors import BackendError, FtiError, ValidationError
from fti.training.federation import _flower
from fti.training.federation import plan as msg
from fti.training.federation.models import LocalModel, load_spec
from fti.training.federation.partitions import check_column, parse_value, partition_name, read_partition

with _flower.importing():
    from flwr.client import NumPyClient, start_client

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.transformations import Spec
    from fti.project import Project

NDArrays = list[np.ndarray]


class PartitionClient(NumPyClient):  # type: ignore[misc]
    """The Flower client of one partition of a training dataset."""

    def __init__(self, project: Project, column: str, value: str, feature_view: str | None = None) -> None:
        self.project = project
        self.column = column
        self.value_text = value
        self.feature_view = feature_view
        self._plan: msg.Plan | None = None
        self._train: pa.Table | None = None
        self._eval: pa.Table | None = None
        self._inputs: list[tuple[str, str]] = []
        self._specs: dict[str, Spec] = {}
        self._label = ""
        self._data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._model: LocalModel | None = None

    # --- setup: plan and statistics ------------------------------------------------------------
    def get_properties(self, config: dict[str, Any]) -> dict[str, Any]:
        try:
            if config.get(msg.PHASE) == "plan":
                return self._load(msg.Plan.from_json(str(config[msg.PLAN])))
            if config.get(msg.PHASE) == "statistics":
                return self._prepare(json.loads(str(config[msg.STATISTICS])))
            raise ValidationError(f"unknown request {config.get(msg.PHASE)!r} from the server")
        except FtiError as exc:  # reported to the server, which raises it for the whole run
            return {msg.ERROR: exc.message, msg.ERROR_CODE: exc.code}
        except Exception as exc:
            return {msg.ERROR: f"{type(exc).__name__}: {exc}", msg.ERROR_CODE: "client_error"}

    def _load(self, plan: msg.Plan) -> dict[str, Any]:
        import pyarrow.compute as pc

        from fti.features.training_data import SPLIT_COLUMN
        from fti.features.transformations import parse, sufficient_statistics

        if self.feature_view is not None and self.feature_view not in (
            plan.feature_view,
            f"{plan.feature_view}:{plan.feature_view_version}",
        ):
            raise ValidationError(
                f"the server asks to train on feature view {plan.feature_view}:{plan.feature_view_version}, "
                f"but this client only takes part in training on {self.feature_view!r}"
            )
        if plan.partition_by != self.column:
            raise ValidationError(
                f"the server partitions by {plan.partition_by!r}, but this client holds the partition "
                f"{self.column}={self.value_text!r}; start it with --partition {plan.partition_by}=<value>"
            )
        fv = self.project.feature_store.get_feature_view(plan.feature_view, version=plan.feature_view_version)
        record = fv.training_dataset(plan.training_dataset_version)
        value = parse_value(fv, check_column(fv, self.column), self.value_text)
        self._inputs = list(fv.feature_dtypes(transformed=False).items())
        self._label = fv.labels[0]
        self._specs = {f: parse(s, f) for f, s in fv.transformations.items()}
        table = read_partition(
            fv, record, self.column, value, [self.column, *(n for n, _ in self._inputs), self._label]
        )
        if table.num_rows and not pc.all(pc.equal(table.column(self.column), value)).as_py():
            raise ValidationError(f"the read of partition {self.column}={value!r} returned other rows")
        splits = table.column(SPLIT_COLUMN)
        self._train = table.filter(pc.equal(splits, "train"))
        self._eval = table.filter(pc.equal(splits, plan.eval_split))
        if self._train.num_rows == 0:
            raise ValidationError(
                f"partition {self.column}={value!r} has no training rows in training dataset "
                f"v{record.version}"
            )
        self._plan = plan
        partial = sufficient_statistics(self._specs, {f: self._train.column(f) for f in self._specs})
        sizes = {"train": self._train.num_rows, "eval": self._eval.num_rows}
        return {
            msg.PARTITION: partition_name(value),
            msg.STATISTICS: json.dumps(partial),
            msg.SIZES: json.dumps(sizes),
        }

    def _prepare(self, stats: dict[str, Any]) -> dict[str, Any]:
        from fti.features.transformations import Transformer

        if self._plan is None or self._train is None or self._eval is None:
            raise ValidationError("statistics arrived before the plan")
        transformer = Transformer(self._inputs, self._specs, stats)
        x_train, y_train = self._matrix(transformer, self._train)
        x_eval, y_eval = self._matrix(transformer, self._eval)
        self._data = (x_train, y_train, x_eval, y_eval)
        self._train = self._eval = None  # only the transformed matrices are kept
        self._model = load_spec(self._plan.model).build(x_train.shape[1])
        return {msg.FEATURES: int(x_train.shape[1])}

    def _matrix(self, transformer: Any, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        import pyarrow as pa
        import pyarrow.compute as pc

        columns = transformer.apply([table.column(name) for name, _ in self._inputs])
        x = np.empty((table.num_rows, len(columns)), dtype=np.float64)
        for i, column in enumerate(columns):
            if isinstance(column, np.ndarray):
                x[:, i] = column
            else:
                x[:, i] = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        y = pc.cast(table.column(self._label), pa.int64(), safe=False).to_numpy(zero_copy_only=False)
        return x, y

    # --- rounds -----------------------------------------------------------------------------------
    def _ready(self) -> tuple[LocalModel, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        if self._model is None or self._data is None:
            raise ValidationError("the server asked for training before sending the plan and statistics")
        return self._model, self._data

    def get_parameters(self, config: dict[str, Any]) -> NDArrays:
        return self._ready()[0].get_weights()

    def fit(self, parameters: NDArrays, config: dict[str, Any]) -> tuple[NDArrays, int, dict[str, Any]]:
        model, (x, y, _, _) = self._ready()
        assert self._plan is not None
        model.set_weights(parameters)
        round_number = int(config.get(msg.ROUND, 0))
        seed = zlib.crc32(f"{self._plan.seed}/{round_number}/{self.value_text}".encode())
        metrics = model.fit(x, y, proximal_mu=float(config.get("proximal_mu", 0.0)), seed=seed)
        return model.get_weights(), len(y), {k: float(v) for k, v in metrics.items()}

    def evaluate(self, parameters: NDArrays, config: dict[str, Any]) -> tuple[float, int, dict[str, Any]]:
        from fti.training.federation.models import log_loss

        model, (_, _, x, y) = self._ready()
        model.set_weights(parameters)
        if not len(y):
            return 0.0, 0, {}
        p = model.predict_proba(x)
        metrics: dict[str, Any] = {"accuracy": float(np.mean((p >= 0.5) == (y == 1)))}
        if 0 < y.sum() < len(y):
            metrics["auc"] = roc_auc(y, p)
        if config.get(msg.HISTOGRAM):
            metrics[msg.HISTOGRAM] = zlib.compress(score_histogram(y, p).tobytes())
        return log_loss(y, p), len(y), metrics


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties at their average rank (numpy only: a
    torch client need not import scikit-learn)."""
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    positives = y == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def score_histogram(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Counts of rows per (class, score bin), bins equally wide on the logit scale: shape (2, bins)."""
    clipped = np.clip(p, 1e-12, 1 - 1e-12)
    logit = np.clip(np.log(clipped / (1 - clipped)), -msg.HISTOGRAM_LOGIT, msg.HISTOGRAM_LOGIT)
    bins = ((logit + msg.HISTOGRAM_LOGIT) / (2 * msg.HISTOGRAM_LOGIT) * (msg.HISTOGRAM_BINS - 1)).astype(
        np.int64
    )
    counts = np.zeros((2, msg.HISTOGRAM_BINS), dtype=np.int64)
    np.add.at(counts, (np.asarray(y, dtype=np.int64), bins), 1)
    return counts


def run_client(
    project: Project,
    server: str,
    partition: str,
    *,
    root_certificates: bytes | None = None,
    max_wait_seconds: float | None = 300.0,
    feature_view: str | None = None,
) -> None:
    """Connect to a federated-training server and serve one partition until the server ends.

    Args:
        project: The project whose training datasets the partition is read from.
        server: ``host:port`` of the server (``fti federated serve`` or :func:`fti.training.federated`).
        partition: ``column=value``, e.g. ``provider=visa``.
        root_certificates: PEM root certificates for TLS; None connects without TLS (loopback).
        max_wait_seconds: Give up connecting after this long.
        feature_view: Only take part in training on this feature view (``name`` or
            ``name:version``); by default the client trains on whatever view the server names,
            always reading only its own partition.
    """
    column, sep, value = partition.partition("=")
    if not sep or not column or not value:
        raise ValidationError(f"partition must be COLUMN=VALUE, e.g. provider=visa; got {partition!r}")
    client = PartitionClient(project, column, value, feature_view)
    _wait_for_server(server, max_wait_seconds)
    with _flower.importing():
        start_client(
            server_address=server,
            client=client.to_client(),
            insecure=root_certificates is None,
            root_certificates=root_certificates,
            max_wait_time=max_wait_seconds,
        )


def _wait_for_server(server: str, max_wait_seconds: float | None) -> None:
    """Flower's gRPC client gives up at once when nobody listens yet: wait for the port first."""
    import socket
    import time

    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit():
        raise ValidationError(f"server must be HOST:PORT, got {server!r}")
    deadline = None if max_wait_seconds is None else time.monotonic() + max_wait_seconds
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
                return
        except OSError as exc:
            if deadline is not None and time.monotonic() > deadline:
                raise BackendError(
                    f"no federated-training server answers at {server} after {max_wait_seconds:.0f} s ({exc}); "
                    "start it with `fti federated serve` or check the address"
                ) from None
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    """``python -m fti.training.federation.client --server HOST:PORT --partition COLUMN=VALUE``."""
    import fti

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server", required=True, help="host:port of the federated-training server")
    parser.add_argument("--partition", required=True, help="this client's partition, COLUMN=VALUE")
    parser.add_argument("--project", default="default", help="fti project (settings from FTI_* variables)")
    parser.add_argument("--verbose", action="store_true", help="Flower's INFO logs")
    args = parser.parse_args(argv)
    _flower.set_verbose(args.verbose)
    try:
        with fti.connect(project=args.project, create=False) as project:
            run_client(project, args.server, args.partition)
    except FtiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
