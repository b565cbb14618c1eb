"""What a monitor reads: the monitored feature group(s) and their windows, as streams.

A monitor watches either a **deployment** (its inference log, ``<deployment>_inference_log``, every
version of it: a deployment whose inputs change logs to a new version) or a **feature group**
(batch predictions, or any group with an event time). Windows are ``start <= event time < end``
and are read through the offline store's pull-based scanner
(:func:`fti.storage.offline.scan.iter_batches`): one batch at a time, only the row groups whose
statistics can hold the window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup
    from fti.project import Project

LOG_TIME = "timestamp"
LOG_META = ("request_id", "row", "timestamp", "model_name", "model_version", "variant")
BATCH_META = ("model_name", "model_version", "scored_at")
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class MonitoredData:
    """The data a monitor watches: a deployment's inference log or a feature group."""

    kind: str
    """``"deployment"`` or ``"feature_group"``."""
    name: str
    version: int | None = None
    """The feature group's version (None: the latest); unused for deployments."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "version": self.version}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitoredData:
        return cls(data["kind"], data["name"], data.get("version"))

    def describe(self) -> str:
        if self.kind == "deployment":
            return f"deployment {self.name!r}"
        return f"feature group {self.name!r}" + (f" v{self.version}" if self.version else "")

    @property
    def log_name(self) -> str:
        from fti.serving.request_log import log_group_name

        return log_group_name(self.name)

    def groups(self, project: Project) -> list[FeatureGroup]:
        """The feature groups holding the data (oldest version first; empty for a deployment
        that has not logged yet)."""
        fs = project.feature_store
        if self.kind == "deployment":
            return sorted(
                (g for g in fs.list_feature_groups() if g.name == self.log_name), key=lambda g: g.version
            )
        return [fs.get_feature_group(self.name, self.version)]

    def time_column(self, project: Project) -> str:
        if self.kind == "deployment":
            return LOG_TIME
        group = self.groups(project)[0]
        if group.event_time is None:
            raise ValidationError(
                f"feature group {group.name!r} has no event time, so it has no windows to monitor; "
                "monitor a group with an event_time column"
            )
        return group.event_time

    def schema(self, project: Project) -> dict[str, str]:
        """Column -> fti dtype over every group (the newest group's dtype wins)."""
        out: dict[str, str] = {}
        for group in self.groups(project):
            out.update({f.name: f.dtype for f in group.features or []})
        return out

    def key_columns(self, project: Project) -> list[str]:
        """Columns that identify rows or describe the model rather than the data."""
        if self.kind == "deployment":
            return list(LOG_META)
        group = self.groups(project)[0]
        return [*group.key_columns, *BATCH_META]

    def batches(
        self,
        project: Project,
        columns: Sequence[str],
        start: datetime | None,
        end: datetime | None,
        *,
        batch_rows: int = BATCH_ROWS,
    ) -> Iterator[pa.Table]:
        """The rows with ``start <= event time < end`` of every group holding all ``columns``,
        ``columns`` only, one batch at a time."""
        import pyarrow as pa

        from fti.storage.offline.scan import iter_batches, table_source

        offline = project.backends.offline
        time_column = self.time_column(project)
        wanted = list(columns)
        for group in self.groups(project):
            names = {f.name for f in group.features or []}
            if not set(wanted) <= names:
                continue  # a log version from before the monitored columns existed
            source = table_source(offline, group.table_name)
            if source is None:
                continue
            for batch in iter_batches(
                source, wanted, time_column=time_column, start=start, end=end, batch_rows=batch_rows
            ):
                yield pa.Table.from_batches([batch])


def resolve(
    project: Project, deployment: str | None, feature_group: Any, version: int | None
) -> MonitoredData:
    """The monitored data named by ``create_monitor``'s arguments (checked)."""
    from fti._names import check_name, check_version

    if (deployment is None) == (feature_group is None):
        raise ValidationError("monitor either deployment='<name>' or feature_group='<name>' (exactly one)")
    if deployment is not None:
        check_name(deployment, "deployment")
        spec = project.serving.get(deployment).spec  # NotFoundError names the deployments
        if not spec.log_requests:
            raise ValidationError(
                f"deployment {deployment!r} logs no requests (log_requests=False), so there is nothing to "
                "monitor; redeploy it with log_requests=True"
            )
        return MonitoredData("deployment", deployment)
    name = getattr(feature_group, "name", feature_group)
    if hasattr(feature_group, "version") and version is None:
        version = feature_group.version
    check_name(name, "feature group")
    check_version(version, "feature group", allow_none=True)
    data = MonitoredData("feature_group", name, version)
    try:
        data.groups(project)
    except NotFoundError:
        raise
    data.time_column(project)
    return data
