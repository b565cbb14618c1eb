"""Safe-rollout tables: canary rollouts, their recorded steps, and the servers' per-variant counters."""

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from fti.storage.metadata.tables._base import JsonType, UtcDateTime, metadata

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("deployment", String(63), nullable=False),
    Column("candidate", String(255), nullable=False),  # the pinned model reference, "fraud:4"
    Column("alias", String(63), nullable=False),  # the alias the final step moves
    Column("steps", JsonType, nullable=False),  # canary percentages, ending at 100
    Column("every_s", Float, nullable=False),  # how long each step lasts
    Column("gates", JsonType, nullable=False),  # {figure: condition}
    Column("min_requests", Integer, nullable=False),  # canary requests a step needs to be judged
    Column("state", String(16), nullable=False),  # running | paused | succeeded | rolled_back | aborted
    Column("step", Integer, nullable=False),  # index into steps
    Column("step_started_at", UtcDateTime, nullable=False),
    Column("next_at", UtcDateTime, nullable=False),  # when the step is judged for advancing
    Column("baseline", JsonType, nullable=False),  # the counters when the step started
    Column("reason", Text, nullable=False),
    Column("revision", Integer, nullable=False),  # compare-and-set: one actor per change
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_rollouts_deployment", "project_id", "deployment"),
)

rollout_events = Table(
    "rollout_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", Integer, ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("action", String(16), nullable=False),  # started | advanced | held | promoted | rolled_back | ...
    Column("step", Integer, nullable=False),
    Column("percent", Float, nullable=False),  # the canary's share after the event
    Column("figures", JsonType, nullable=False),  # per variant: requests, errors, error_rate, p99_ms
    Column("reason", Text, nullable=False),
    Index("ix_rollout_events_rollout", "rollout_id", "id"),
)

variant_stats = Table(
    "variant_stats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("server", String(255), nullable=False),  # one server worker process: host, pid, start
    Column("deployment", String(63), nullable=False),
    Column("variant", String(63), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("requests", Integer, nullable=False),  # cumulative since the worker started
    Column("errors", Integer, nullable=False),  # answered 5xx
    Column("latency", JsonType, nullable=False),  # cumulative histogram: [[upper bound s, count], ...]
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "project_id", "server", "deployment", "variant", "model_version", name="uq_variant_stats_key"
    ),
    Index("ix_variant_stats_deployment", "project_id", "deployment"),
)
