"""SQLAlchemy Core tables of the catalog, one module per FTI role.

The Alembic migrations in ``fti/storage/metadata/migrations`` create exactly these tables; a test
compares the migrated schema with this metadata so the two cannot drift apart.
"""

from fti.storage.metadata.tables._base import metadata
from fti.storage.metadata.tables.core import projects
from fti.storage.metadata.tables.feature_views import feature_views, training_datasets
from fti.storage.metadata.tables.features import feature_groups, fg_commits, fg_statistics_state, fg_writes
from fti.storage.metadata.tables.monitoring import monitor_alerts, monitor_runs, monitors
from fti.storage.metadata.tables.pipelines import (
    pipeline_cursors,
    pipeline_events,
    pipeline_runs,
    pipelines,
    scheduler_leases,
)
from fti.storage.metadata.tables.registry import (
    alias_history,
    model_aliases,
    model_evaluations,
    model_version_metrics,
    model_versions,
    models,
)
from fti.storage.metadata.tables.rollouts import rollout_events, rollouts, variant_stats
from fti.storage.metadata.tables.secrets import secrets
from fti.storage.metadata.tables.serving import api_keys, deployments
from fti.storage.metadata.tables.sources import source_cursors
from fti.storage.metadata.tables.streaming import stream_status
from fti.storage.metadata.tables.tags import tags
from fti.storage.metadata.tables.training import run_artifacts, run_metrics, run_params, runs

__all__ = [
    "alias_history",
    "api_keys",
    "deployments",
    "feature_groups",
    "feature_views",
    "fg_commits",
    "fg_statistics_state",
    "fg_writes",
    "metadata",
    "model_aliases",
    "model_evaluations",
    "model_version_metrics",
    "model_versions",
    "models",
    "monitor_alerts",
    "monitor_runs",
    "monitors",
    "pipeline_cursors",
    "pipeline_events",
    "pipeline_runs",
    "pipelines",
    "projects",
    "rollout_events",
    "rollouts",
    "run_artifacts",
    "run_metrics",
    "run_params",
    "runs",
    "scheduler_leases",
    "secrets",
    "source_cursors",
    "stream_status",
    "tags",
    "training_datasets",
    "variant_stats",
]
