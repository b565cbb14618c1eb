"""Projects: the namespace every fti object belongs to, and the entry point ``fti.connect``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti._names import check_name
from fti.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from fti.config import Settings
    from fti.features.feature_store import FeatureStore
    from fti.monitoring.catalog import Monitoring
    from fti.pipelines.catalog import PipelineCatalog
    from fti.registry.model_registry import ModelRegistry
    from fti.secrets.store import Secrets
    from fti.serving.deployments import Serving
    from fti.storage.artifacts.base import ArtifactStore
    from fti.storage.buffer.base import PushBuffer
    from fti.storage.metadata.base import Catalog
    from fti.storage.offline.base import OfflineStore
    from fti.storage.online.base import OnlineStore
    from fti.storage.vector.base import VectorStore
    from fti.training.runs import Run


class Backends:
    """The storage backends of one settings object, each opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.project: Project | None = None
        """The project these backends serve (set by it): its secrets may hold the S3 credentials."""

    @cached_property
    def s3_credentials(self) -> dict[str, str] | None:
        """The credentials of ``FTI_S3_SECRET`` (None when unset), read once, when a store on
        ``s3://`` is first opened (see :mod:`fti.secrets.s3`)."""
        if self.settings.s3_secret is None or self.project is None:
            return None
        from fti.secrets.s3 import credentials

        return credentials(self.project)

    def s3_object_store_options(self) -> dict[str, str]:
        """delta-rs ``storage_options`` for ``s3://``: the S3 settings and the secret's credentials."""
        from fti.secrets.s3 import object_store_options

        return self.settings.s3_object_store_options() | object_store_options(self.s3_credentials)

    def s3_options(self) -> dict[str, Any]:
        """fsspec (s3fs) storage options for ``s3://``: the S3 settings and the secret's credentials."""
        from fti.secrets.s3 import fsspec_options

        return self.settings.s3_options() | fsspec_options(self.s3_credentials)

    @cached_property
    def catalog(self) -> Catalog:
        from fti.plugins import catalog_from_url

        return catalog_from_url(self.settings.resolved_catalog_url)

    @cached_property
    def offline(self) -> OfflineStore:
        from fti.plugins import offline_store_from_url

        # the S3 settings reach delta-rs as object_store options and fsspec as s3fs options
        url = self.settings.resolved_offline_url
        return offline_store_from_url(url, self.s3_object_store_options() if url.startswith("s3") else {})

    @cached_property
    def online(self) -> OnlineStore:
        from fti.plugins import online_store_from_url

        return online_store_from_url(self.settings.resolved_online_url)

    @cached_property
    def vectors(self) -> VectorStore:
        from fti.plugins import vector_store_from_url

        return vector_store_from_url(self.settings.resolved_vector_url)

    @cached_property
    def buffer(self) -> PushBuffer:
        """Pushed rows waiting for their offline commit (see :mod:`fti.streaming.push`)."""
        from fti.plugins import push_buffer_from_url

        return push_buffer_from_url(self.settings.resolved_buffer_url)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from fti.plugins import artifact_store_from_url

        url = self.settings.resolved_artifacts_url
        return artifact_store_from_url(url, self.s3_options() if url.startswith("s3") else None)

    def close(self) -> None:
        for name in ("online", "vectors", "buffer", "catalog"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()


class Project:
    """A namespace of feature groups, feature views, models, deployments and pipelines.

    Obtain one with :func:`fti.connect`. Use it as a context manager (or call :meth:`close`) to
    release database connections.
    """

    def __init__(self, name: str, project_id: int, backends: Backends) -> None:
        self.name = name
        self.id = project_id
        self.backends = backends
        backends.project = self

    @property
    def settings(self) -> Settings:
        return self.backends.settings

    @cached_property
    def feature_store(self) -> FeatureStore:
        """The feature store of this project (feature groups, feature views)."""
        from fti.features.feature_store import FeatureStore

        return FeatureStore(self)

    @cached_property
    def pipelines(self) -> PipelineCatalog:
        """The deployed pipelines of this project (deploy, run, runs, logs, pause, backfill)."""
        from fti.pipelines.catalog import PipelineCatalog

        return PipelineCatalog(self)

    @cached_property
    def model_registry(self) -> ModelRegistry:
        """The model registry of this project (model versions, aliases, runs)."""
        from fti.registry.model_registry import ModelRegistry

        return ModelRegistry(self)

    def run(self, name: str, params: dict[str, Any] | None = None, *, description: str = "") -> Run:
        """Start a training run; use it as a context manager (``with project.run("train") as run:``).

        Args:
            name: A free-form run name (several runs may share it).
            params: Hyperparameters (JSON values); immutable once set.
            description: Free text.
        """
        from fti.training.runs import Run

        return Run.start(self, name, params, description)

    @cached_property
    def secrets(self) -> Secrets:
        """The secrets of this project (set, get, list, delete), encrypted in the catalog."""
        from fti.secrets.store import Secrets

        return Secrets(self)

    @cached_property
    def monitoring(self) -> Monitoring:
        """The monitors of this project (create, get, list) and labels that arrive later."""
        from fti.monitoring.catalog import Monitoring

        return Monitoring(self)

    @cached_property
    def serving(self) -> Serving:
        """The model deployments of this project (deploy, list, get; served by ``fti serve``)."""
        from fti.serving.deployments import Serving

        return Serving(self)

    # Hopsworks' names, so ``fs = project.get_feature_store()`` ports unchanged
    def get_feature_store(self, name: str | None = None) -> FeatureStore:
        """The project's feature store (Hopsworks' name of :attr:`feature_store`); ``name``, if
        given, must be this project's name (one feature store per project)."""
        if name is not None and name not in (self.name, f"{self.name}_featurestore"):
            raise ValidationError(
                f"project {self.name!r} has one feature store; get another project's with "
                f"fti.connect(project={name!r}).get_feature_store()"
            )
        return self.feature_store

    def get_model_registry(self) -> ModelRegistry:
        """The project's model registry (Hopsworks' name of :attr:`model_registry`)."""
        return self.model_registry

    def get_model_serving(self) -> Serving:
        """The project's deployments (Hopsworks' name of :attr:`serving`)."""
        return self.serving

    def spark(self) -> Any:
        """The ``pyspark.sql.SparkSession`` of the Spark engine, built from ``FTI_SPARK_MASTER`` and
        ``FTI_SPARK_CONF`` on first use and reused (see :func:`fti.spark.session.get_session`)."""
        from fti.spark.session import get_session

        return get_session(self.settings, app_name=f"fti-{self.name}")

    def list_projects(self) -> list[str]:
        """The names of every project in this project's catalog (this one included), sorted."""
        from fti.storage.metadata import projects

        return [p.name for p in projects.list_projects(self.backends.catalog)]

    def close(self) -> None:
        """Commit the rows this process pushed (if it runs the project's committer), then close the
        backends' connections."""
        import sys

        committer = sys.modules.get("fti.streaming.committer")  # only if something pushed
        if committer is not None:
            committer.stop(self)
        self.backends.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project(name={self.name!r}, home={str(self.settings.home)!r})"


def connect(
    home: str | Path | None = None,
    project: str = "default",
    *,
    create: bool = True,
    settings: Settings | None = None,
    **overrides: Any,
) -> Project:
    """Open a project.

    Args:
        home: The fti home directory (overrides ``FTI_HOME``; default ``./.fti``).
        project: Project name: 1-63 lowercase letters, digits or ``_``.
        create: Create the project when it does not exist; with False an unknown project raises
            ``NotFoundError``.
        settings: A ready settings object (then ``home`` and ``overrides`` must be omitted).
        **overrides: Settings fields to override, e.g. ``online_url="redis://localhost:6379/0"``.

    Returns:
        The project, with its catalog migrated to the latest schema and the feature groups a
        writer left behind caught up (see :mod:`fti.features.recovery`: decided from the
        catalog, so no offline table of a group that is up to date is opened).
    """
    check_name(project, "project")
    if settings is None:
        from fti.config import load_settings

        settings = load_settings(home, **overrides)
    _prepare_home(settings.home)
    backends = Backends(settings)
    try:
        project_id = _get_or_create_project(backends.catalog, project, create)
        proj = Project(project, project_id, backends)
        from fti.features import recovery

        recovery.catch_up(proj)
    except BaseException:
        backends.close()  # a failed connect keeps no database connection open
        raise
    return proj


def _prepare_home(home: Path) -> None:
    """Create the home directory (the default place of every store), or say why it cannot be."""
    import os

    if home.exists() and not home.is_dir():
        raise ValidationError(
            f"the fti home {str(home)!r} is a file, not a directory: pass --home (or set FTI_HOME) "
            "to a directory"
        )
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError(
            f"cannot create the fti home {str(home)!r} ({exc.strerror or exc}): pass --home (or "
            "set FTI_HOME) to a directory you can write to"
        ) from exc
    if not os.access(home, os.W_OK | os.X_OK):
        raise ValidationError(
            f"the fti home {str(home)!r} is not writable: pass --home (or set FTI_HOME) to a "
            "directory you can write to"
        )


def _get_or_create_project(catalog: Catalog, name: str, create: bool) -> int:
    from fti.storage.metadata import projects

    found = projects.find(catalog, name)
    if found is not None:
        return found.id
    if not create:
        existing = ", ".join(p.name for p in projects.list_projects(catalog)) or "none yet"
        raise NotFoundError(
            f"project {name!r} does not exist (existing: {existing}); create it with "
            f"fti.connect(project={name!r}) or `fti --project {name} info --create`"
        )
    return projects.get_or_create(catalog, name).id
