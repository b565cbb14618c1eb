"""Federated training on Flower with real client processes on loopback.

One module-scoped project holds a bank-transactions group whose key has three partition columns:
``bank_id`` and ``channel`` (rows assigned at random: IID) and ``region`` (sizes, feature
distributions and label rates differ: non-IID). Each federated run starts one client process per
partition, so runs are few and shared between tests; the torch and CLI runs use the two channels.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import NotFoundError, SchemaError, ValidationError
from fti.features.transformations import fit, parse
from fti.training.federation.models import LocalModel, ModelSpec, SGDClassifierSpec, TorchModuleSpec
from fti.training.federation.session import FederatedResult
from fti.training.runs import get_run, list_runs

N = 4000
ROUNDS = 8
T0 = datetime(2024, 1, 1, tzinfo=UTC)
REGION_SHARES = {"north": 0.55, "south": 0.3, "east": 0.15}
REGION_SHIFT = {"north": 0.8, "south": -0.6, "east": 0.0}  # feature and label-rate shift

# Wraps every read of the offline store in the client processes (started with this file's
# directory first on PYTHONPATH) and logs, per process, the filter and the partition values of the
# rows each read returned.
SITECUSTOMIZE = textwrap.dedent(
    """
    import json, os, sys

    if os.environ.get("FTI_TEST_READ_LOG"):
        from fti.storage.offline import delta

        _dataset, _local_files = delta.DeltaOfflineStore.dataset, delta.DeltaOfflineStore.local_files

        def _partition():
            argv = sys.argv
            return argv[argv.index("--partition") + 1] if "--partition" in argv else None

        def _log(entry):
            path = os.path.join(os.environ["FTI_TEST_READ_LOG"], f"{os.getpid()}.jsonl")
            with open(path, "a") as fh:
                fh.write(json.dumps({"partition": _partition(), **entry}) + "\\n")

        class _Watched:
            def __init__(self, inner, table):
                self._inner, self._table = inner, table

            def to_table(self, columns=None, filter=None, **kwargs):
                result = self._inner.to_table(columns=columns, filter=filter, **kwargs)
                column = (_partition() or "=").split("=")[0]
                values = (
                    sorted({str(v) for v in result.column(column).to_pylist()})
                    if column in result.column_names else None
                )
                _log({"table": self._table, "method": "to_table", "rows": result.num_rows,
                      "filter": None if filter is None else str(filter), "values": values})
                return result

            def __getattr__(self, name):
                _log({"table": self._table, "method": name})
                return getattr(self._inner, name)

        def dataset(self, table, *, version=None):
            return _Watched(_dataset(self, table, version=version), table)

        def local_files(self, table, version):
            _log({"table": table, "method": "local_files"})
            return _local_files(self, table, version)

        delta.DeltaOfflineStore.dataset = dataset
        delta.DeltaOfflineStore.local_files = local_files
    """
)


def bank_data(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(list(REGION_SHARES), N, p=list(REGION_SHARES.values()))
    shift = np.array([REGION_SHIFT[r] for r in region])
    x1 = rng.normal(shift, 1.0)
    x2 = rng.normal(50.0, 10.0, N)
    cat = rng.choice(["card", "cash", "wire"], N, p=[0.6, 0.3, 0.1])
    logit = 1.6 * x1 - 0.05 * (x2 - 50) + 1.2 * (cat == "wire") - 1.0 + shift
    return pd.DataFrame(
        {
            "bank_id": rng.integers(1, 4, N),  # IID: uniform, independent of everything
            "channel": rng.choice(["app", "branch"], N),  # IID too
            "region": region,
            "tid": np.arange(N),
            "ts": [T0 + timedelta(minutes=i) for i in range(N)],
            "x1": x1,
            "x2": x2,
            "cat": cat,
            "y": (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(np.int64),
        }
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fti.Project]:
    proj = fti.connect(home=tmp_path_factory.mktemp("federated") / "home")
    fs = proj.feature_store
    tx = fs.get_or_create_feature_group(
        "bank_tx", primary_key=["bank_id", "channel", "region", "tid"], event_time="ts"
    )
    tx.insert(bank_data())
    fs.get_or_create_feature_view(
        "fraud_fed",
        version=1,
        query=tx.select(["x1", "x2", "cat", "y"]),
        labels=["y"],
        transformations={"x2": "standard_scaler", "cat": "one_hot_encoder"},
    )
    yield proj
    proj.close()


def view(project: fti.Project) -> Any:
    return project.feature_store.get_feature_view("fraud_fed", 1)


@pytest.fixture(scope="module")
def dataset(project: fti.Project) -> int:
    """The training dataset (random 80/20 split) the runs share."""
    fv = view(project)
    fv.train_test_split(test_size=0.2, seed=7)
    assert fv.last_training_dataset_version is not None
    return fv.last_training_dataset_version


@pytest.fixture(scope="module")
def iid_run(
    project: fti.Project, dataset: int, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FederatedResult, dict[str, list[dict[str, Any]]]]:
    """The IID run, with every offline-store read of each client process logged."""
    hooks = tmp_path_factory.mktemp("hooks")
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    reads = tmp_path_factory.mktemp("reads")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", f"{hooks}:{Path.cwd()}")
        mp.setenv("FTI_TEST_READ_LOG", str(reads))
        result = fti.training.federated(
            view(project),
            partition_by="bank_id",
            model=SGDClassifierSpec(),
            rounds=ROUNDS,
            seed=7,
            training_dataset_version=dataset,
        )
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for path in reads.glob("*.jsonl"):
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        by_partition.setdefault(entries[0]["partition"], []).extend(entries)
    return result, by_partition


def centralized_auc(project: fti.Project, version: int) -> tuple[float, Any, Any]:
    """Logistic regression on the pooled rows of the same training dataset."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    X_train, X_test, y_train, y_test = view(project).get_training_data(version)
    model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    return float(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])), X_test, y_test


def test_iid_federated_logistic_regression_matches_centralized(
    project: fti.Project, iid_run: tuple[FederatedResult, Any]
) -> None:
    from sklearn.metrics import roc_auc_score

    result, _ = iid_run
    central, X_test, y_test = centralized_auc(project, result.training_dataset_version)
    federated = float(roc_auc_score(y_test, result.model.predict_proba(X_test)[:, 1]))
    assert central > 0.8
    assert abs(federated - central) <= 0.01, (federated, central)
    # the reported AUC is pooled over all partitions' test rows (from score histograms, no rows)
    assert result.metrics["auc"] == pytest.approx(federated, abs=2e-3)
    assert [r.round for r in result.rounds] == list(range(1, ROUNDS + 1))
    assert result.rounds[-1].evaluation["loss"] < result.rounds[0].evaluation["loss"]


def test_each_client_reads_only_its_own_partition(
    project: fti.Project, iid_run: tuple[FederatedResult, Any]
) -> None:
    result, reads = iid_run
    table = view(project).training_dataset(result.training_dataset_version).table_name
    assert sorted(reads) == ["bank_id=1", "bank_id=2", "bank_id=3"]  # one process per partition
    for partition, entries in reads.items():
        value = partition.split("=")[1]
        assert entries and all(e["method"] == "to_table" and e["table"] == table for e in entries), entries
        for entry in entries:
            assert entry["values"] == [value], entry  # every row it got is its own
            assert "bank_id" in entry["filter"] and value in entry["filter"]  # filtered in the scan
        sizes = result.partitions[value]["rows"]
        assert sum(e["rows"] for e in entries) == sizes["train"] + sizes["test"]


def test_only_weights_and_metrics_cross_the_boundary(iid_run: tuple[FederatedResult, Any]) -> None:
    result, _ = iid_run
    n_weights = len(result.feature_names) + 1  # coefficients and intercept
    rows = sum(p["rows"]["train"] for p in result.partitions.values())
    for record in result.rounds[:-1]:
        # exact protobuf sizes of every message: per client about the weights plus a few metrics
        per_client = record.bytes_received / 3
        assert 8 * n_weights < per_client < 8 * n_weights + 900, record
        assert set(record.clients["1"]) == {
            "train_loss",
            "train_rows",
            "loss",
            "accuracy",
            "auc",
            "eval_rows",
        }
    # the setup (plan, sufficient statistics, combined statistics) is far smaller than any data
    assert result.setup_bytes < 16_000 < rows * len(result.feature_names) * 8
    final = result.rounds[-1]  # plus the compressed score histograms
    assert final.bytes_received < 3 * 40_000


def test_pooled_statistics_equal_the_centralized_fit(
    project: fti.Project, iid_run: tuple[FederatedResult, Any]
) -> None:
    result, _ = iid_run
    fv = view(project)
    record = fv.training_dataset(result.training_dataset_version)
    X_train, _ = fv.get_training_data(record.version, split="train", transformed=False)
    specs = {f: parse(s, f) for f, s in fv.transformations.items()}
    central = fit(specs, {f: X_train[f].tolist() for f in specs})
    assert result.statistics["cat"] == central["cat"] == {"categories": ["card", "cash", "wire"]}
    assert result.statistics["x2"] == pytest.approx(central["x2"], rel=1e-12)
    assert record.transformation_stats["x2"] == pytest.approx(result.statistics["x2"], rel=1e-12)


def test_the_run_records_rounds_clients_and_partition_sizes(
    project: fti.Project, iid_run: tuple[FederatedResult, Any]
) -> None:
    result, _ = iid_run
    run = get_run(project, result.run.id)
    assert run.status == "finished"
    params = run.params
    assert params["partition_by"] == "bank_id" and params["strategy"] == "fedavg"
    X_train, _, _, _ = view(project).get_training_data(result.training_dataset_version)
    assert params["partitions"] == result.partitions
    assert sum(p["rows"]["train"] for p in params["partitions"].values()) == len(X_train)
    history = run.metric_history()
    for key in (
        "log_loss",
        "mean_partition_auc",
        "train_loss",
        "bytes_sent",
        "partition.1.loss",
        "partition.3.auc",
    ):
        assert [p.step for p in history[key]] == list(range(1, ROUNDS + 1)), key
    assert [p.step for p in history["auc"]] == [ROUNDS]  # pooled over all partitions, last round
    assert run.metrics["auc"] == result.metrics["auc"]
    assert history["partition.2.eval_rows"][-1].value == result.partitions["2"]["rows"]["test"]

    mv = project.model_registry.register(
        "fraud_fed",
        model=result.model,
        run=result.run,
        metrics=result.metrics,
        feature_view=view(project),
        training_dataset_version=result.training_dataset_version,
    )
    assert [s.name for s in mv.signature.inputs] == result.feature_names
    batch = view(project).get_batch_data(training_dataset_version=result.training_dataset_version)
    served = mv.predict(batch.head(50))["predict_proba"]
    np.testing.assert_allclose(served, result.model.predict_proba(batch.head(50)), rtol=1e-12)


def test_a_torch_module_trains_across_partitions(project: fti.Project, dataset: int) -> None:
    import torch

    fv = view(project)
    version = dataset
    n = len(fv.feature_names(training_dataset_version=version))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(n, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    # through Flower's server-side DP wrapper, clipping only (no noise), to run that path too
    result = fti.training.federated(
        fv,
        "channel",
        model=TorchModuleSpec(net, learning_rate=0.1),
        rounds=3,
        training_dataset_version=version,
        dp_noise=0.0,
        dp_clipping_norm=100.0,
    )
    losses = [r.evaluation["loss"] for r in result.rounds]
    assert losses == sorted(losses, reverse=True) and result.metrics["auc"] > 0.8
    assert result.run.params["dp_noise"] == 0.0 and result.run.params["dp_clipping_norm"] == 100.0
    assert isinstance(result.model, torch.jit.ScriptModule)
    mv = project.model_registry.register(
        "fraud_fed_torch", model=result.model, feature_view=fv, training_dataset_version=version
    )
    X, _ = fv.get_training_data(version, split="test")
    with torch.no_grad():
        expected = result.model(torch.tensor(X.head(20).to_numpy(np.float32))).numpy().reshape(-1)
    np.testing.assert_allclose(np.asarray(mv.predict(X.head(20))["predict"]).reshape(-1), expected, rtol=1e-6)


def test_non_iid_partitions_are_reported_by_a_server_with_remote_clients(
    project: fti.Project, tmp_path: Path
) -> None:
    """``fti federated serve`` (here, in-process) and one ``fti federated client`` process per
    region, as on three machines, over TLS; the regions differ in size and fraud rate, and the
    result says how it went."""
    from click.testing import CliRunner
    from sklearn.metrics import roc_auc_score

    from fti.cli.main import cli

    port = _free_port()
    ca, cert, key = _certificates(tmp_path)
    env = {**_env(), "FTI_HOME": str(project.settings.home)}
    client = [sys.executable, "-m", "fti.cli.main", "federated", "client", "--server", f"127.0.0.1:{port}"]
    client += ["--feature-view", "fraud_fed:1", "--root-certificates", str(ca)]
    clients = [
        subprocess.Popen(
            [*client, "--partition", f"region={r}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        for r in REGION_SHARES
    ]  # they wait for the server to listen
    try:
        served = CliRunner().invoke(
            cli,
            ["--home", str(project.settings.home), "--json", "federated", "serve", "fraud_fed:1",
             "--partition-by", "region", "--address", f"127.0.0.1:{port}", "--rounds", str(ROUNDS),
             "--strategy", "fedprox", "--proximal-mu", "0.05", "--register", "fraud_fed_regions",
             "--certificates", str(ca), str(cert), str(key)],
        )  # fmt: skip
        assert served.exit_code == 0, served.output
        for process in clients:
            assert process.wait(timeout=60) == 0, process.stdout.read().decode() if process.stdout else ""
    finally:
        for process in clients:
            if process.poll() is None:
                process.kill()
                process.wait()
    out = served.stdout
    summary = json.loads(out)
    assert [r["round"] for r in summary["rounds"]] == list(range(1, ROUNDS + 1))
    partitions = summary["partitions"]
    sizes = {name: p["rows"]["train"] for name, p in partitions.items()}
    rates = {name: p["positives"]["train"] / p["rows"]["train"] for name, p in partitions.items()}
    assert sizes["north"] > sizes["south"] > sizes["east"]
    assert rates["north"] > rates["east"] > rates["south"]

    run = get_run(project, summary["run_id"])
    assert run.params["strategy"] == "fedprox" and run.params["proximal_mu"] == 0.05
    history = run.metric_history()
    for region in REGION_SHARES:  # every region's own metrics, every round
        for metric in ("auc", "loss", "accuracy", "train_loss"):
            assert len(history[f"partition.{region}.{metric}"]) == ROUNDS
    model = project.model_registry.get_model("fraud_fed_regions")
    version = summary["training_dataset_version"]
    assert model.version == summary["model"]["version"] and model.training_dataset_version == version
    central, X_test, y_test = centralized_auc(project, version)
    federated = float(roc_auc_score(y_test, model.predict(X_test)["predict_proba"][:, 1]))
    assert summary["metrics"]["auc"] == pytest.approx(federated, abs=2e-3)  # the truth, whatever it is
    print(f"non-IID: federated AUC {federated:.4f}, centralized {central:.4f}; per region", partitions)


@pytest.mark.parametrize(
    ("server", "partition", "message"),
    [("127.0.0.1:9", "bank_id", "COLUMN=VALUE"), ("localhost", "bank_id=1", "HOST:PORT")],
)
def test_a_client_checks_its_arguments_before_connecting(
    project: fti.Project, server: str, partition: str, message: str
) -> None:
    from fti.training.federation.client import run_client

    with pytest.raises(ValidationError, match=message):
        run_client(project, server, partition, max_wait_seconds=1)


def test_a_client_refuses_plans_outside_its_boundary(project: fti.Project, dataset: int) -> None:
    """The server names what to train; the client alone decides its rows and what it joins."""
    from fti.training.federation.client import PartitionClient
    from fti.training.federation.models import spec_config
    from fti.training.federation.plan import PLAN, Plan

    plan = Plan("fraud_fed", 1, dataset, "bank_id", "test", spec_config(SGDClassifierSpec()), seed=0)
    ask = {"fti.phase": "plan", PLAN: plan.to_json()}

    reply = PartitionClient(project, "bank_id", "2", feature_view="fraud_fed:1").get_properties(ask)
    assert reply["fti.partition"] == "2" and "fti.error" not in reply
    other_view = PartitionClient(project, "bank_id", "2", feature_view="payments").get_properties(ask)
    assert "only takes part in training on 'payments'" in other_view["fti.error"]
    other_column = PartitionClient(project, "region", "east").get_properties(ask)
    assert "start it with --partition bank_id=<value>" in other_column["fti.error"]
    no_rows = PartitionClient(project, "bank_id", "7").get_properties(ask)
    assert "no training rows" in no_rows["fti.error"] and no_rows["fti.error_code"] == "invalid_argument"


class FailingSpec(SGDClassifierSpec):
    """Trains like SGDClassifierSpec, except that the client of partition ``branch`` fails."""

    def build(self, n_features: int) -> LocalModel:
        model = super().build(n_features)
        if "channel=branch" in sys.argv:
            model.fit = _boom  # type: ignore[method-assign]
        return model


def _boom(*args: Any, **kwargs: Any) -> dict[str, float]:
    raise RuntimeError("disk on fire in branch")


def test_a_failing_client_fails_the_run_with_its_log(project: fti.Project, dataset: int) -> None:
    fv = view(project)
    with pytest.raises(fti.BackendError, match=r"(?s)channel.*branch.*disk on fire in branch"):
        fti.training.federated(fv, "channel", model=FailingSpec(), rounds=2, training_dataset_version=dataset)
    run = list_runs(project)[0]
    assert run.status == "failed" and run.params["partition_by"] == "channel"


# --- bad input: typed errors, nothing written ----------------------------------------------------
class NoWeights(ModelSpec):
    def build(self, n_features: int) -> LocalModel:
        return object()  # type: ignore[return-value]

    def to_config(self) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"partition_by": "branch"}, SchemaError, "not a column of feature view"),
        ({"partition_by": "x2"}, SchemaError, "discrete values"),
        ({"partition_by": "y"}, SchemaError, "is a label"),
        ({"rounds": 0}, ValidationError, "rounds must be an integer >= 1"),
        ({"rounds": 2.5}, ValidationError, "rounds must be an integer >= 1"),
        ({"fraction_fit": 0.0}, ValidationError, "fraction_fit"),
        ({"strategy": "fedsgd"}, ValidationError, "strategy must be one of"),
        ({"secure_aggregation": True}, ValidationError, "SecAgg"),
        ({"dp_noise": -1.0}, ValidationError, "noise multiplier"),
        ({"model": "sgd"}, ValidationError, "no access to its weights"),
        ({"model": NoWeights()}, ValidationError, "lacks"),
        ({"partitions": ["1", "2", "3", "9"]}, NotFoundError, "have no training rows"),
        ({"partitions": ["1", "2"]}, ValidationError, "have training rows but no client"),
    ],
)
def test_bad_input_is_a_typed_error_and_writes_no_run(
    project: fti.Project, dataset: int, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    fv = view(project)
    versions = fv.training_dataset_versions()
    options: dict[str, Any] = {"partition_by": "bank_id", "training_dataset_version": dataset, **kwargs}
    if kwargs.get("model") == "sgd":
        options["model"] = RandomForestClassifier()
    runs = len(list_runs(project))
    with pytest.raises(error, match=message):
        fti.training.federated(fv, **options)
    assert len(list_runs(project)) == runs
    assert fv.training_dataset_versions() == versions


def test_a_partition_of_one_class_or_without_rows_is_refused(project: fti.Project) -> None:
    fs = project.feature_store
    data = bank_data(seed=3).head(300).assign(y=lambda d: np.where(d["region"] == "east", 0, d["y"]))
    group = fs.get_or_create_feature_group("one_class", primary_key=["region", "tid"], event_time="ts")
    group.insert(data)
    fv = fs.get_or_create_feature_view("one_class", 1, query=group.select(["x1", "y"]), labels=["y"])
    with pytest.raises(ValidationError, match=r"'east' has .* all of class 0"):
        fti.training.federated(fv, partition_by="region", rounds=1)
    version = fv.training_dataset_versions()[-1]  # the split was made, training refused
    with pytest.raises(NotFoundError, match=r"\['west'\] .* have no training rows"):
        fti.training.federated(
            fv, "region", partitions=["north", "south", "east", "west"], training_dataset_version=version
        )


def test_the_strategy_wraps_flower_fedprox_in_server_side_dp() -> None:
    from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, FedProx

    from fti.training.federation.server import build_strategy

    dp = build_strategy(
        "fedprox", clients=10, fraction_fit=0.5, proximal_mu=0.2, dp_noise=0.3, dp_clipping_norm=2.0
    )
    assert isinstance(dp, DifferentialPrivacyServerSideFixedClipping) and isinstance(dp.strategy, FedProx)
    assert (dp.noise_multiplier, dp.clipping_norm, dp.num_sampled_clients) == (0.3, 2.0, 5)
    assert dp.strategy.proximal_mu == 0.2 and dp.strategy.min_available_clients == 10
    plain = build_strategy(
        "fedavg", clients=4, fraction_fit=1.0, proximal_mu=0.0, dp_noise=None, dp_clipping_norm=1.0
    )
    assert type(plain) is FedAvg and plain.accept_failures is False


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": f"{Path.cwd()}:{os.environ.get('PYTHONPATH', '')}"}


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def certificate(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate("fti test CA", ca_key, "fti test CA", ca_key, ca=True)
    server_cert = certificate("127.0.0.1", server_key, "fti test CA", ca_key, ca=False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
