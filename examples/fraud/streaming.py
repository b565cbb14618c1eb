"""The fraud example's window features as a stream pipeline: the same rows, seconds after a swipe.

The batch pipeline (:mod:`examples.fraud.feature_pipeline`) computes per-card counts, sums and
means of amounts over 1 hour, 1 day and 7 days with DuckDB window functions, hourly. Here the
same windows are declared once and computed incrementally from a Redis stream of transactions
(``fti scheduler`` runs the pipeline as a service): every transaction updates its card's row in
the online store within milliseconds, and the rows reach the offline table in micro-batches. The
rows equal :func:`examples.fraud.features.window_features` (tested), including the 1 microsecond
publish delay that keeps a transaction out of its own point-in-time features.

::

    fti pipelines deploy examples/fraud/streaming.py
    fti scheduler                                             # runs card_windows_stream
    python -m examples.fraud.streaming --start 2026-01-01 --days 7 --cards 300   # replay transactions

The stream lives on the Redis server of ``FRAUD_STREAM_URL`` (default: the project's online
store, when it is on Redis).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

_ROOT = str(Path(__file__).resolve().parents[2])  # `fti pipelines` imports this file by path
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import fti  # noqa: E402

if TYPE_CHECKING:
    import pyarrow as pa

STREAM = "fraud_transactions"
OUTPUT = "card_windows_stream"
SCHEMA = {"cc_num": "int64", "datetime": "timestamp", "amount": "float64"}
WINDOWS = [fti.window.sliding("1h"), fti.window.sliding("1d"), fti.window.sliding("7d")]
AGGREGATIONS = [fti.window.count(name="tx_count"), fti.window.sum("amount"), fti.window.mean("amount")]


def source(url: str | None = None, project: fti.Project | None = None) -> fti.sources.RedisStream:
    """The transaction stream, read by the pipeline's consumer group."""
    return fti.sources.RedisStream(
        STREAM, group=OUTPUT, url=url or os.environ.get("FRAUD_STREAM_URL") or None, project=project
    )


@fti.stream_pipeline(
    source=source(),
    schema=SCHEMA,
    key="cc_num",
    event_time="datetime",
    windows=WINDOWS,
    aggregations=AGGREGATIONS,
    output=OUTPUT,
    publish_delay="1us",  # as the batch rows: the state just after the transaction
    allowed_lateness="10m",
)
def card_windows_stream(events: pa.Table) -> pa.Table:
    """Per-card count, sum and mean of amounts over 1 hour, 1 day and 7 days, per transaction."""
    return events


def replay(
    stream: fti.sources.RedisStream, start: datetime, end: datetime, cards: int = 1000, seed: int = 7
) -> int:
    """Publish the generator's transactions of ``[start, end)`` to ``stream`` in time order (a
    card network's feed); returns how many."""
    from examples.fraud.generator import generate_profiles, generate_transactions

    transactions = generate_transactions(generate_profiles(cards, seed), start, end, seed)
    rows = transactions.loc[:, ["tid", "cc_num", "datetime", "amount", "category"]].to_dict("records")
    for first in range(0, len(rows), 10_000):
        stream.publish(rows[first : first + 10_000])
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Replay the fraud generator's transactions into the stream.")
    parser.add_argument("--start", default="2026-01-01")
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--url", default=None, help="redis://host:port/db (default: FRAUD_STREAM_URL, or the project's)"
    )
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    with fti.connect() as project:
        count = replay(
            source(args.url, project), start, start + timedelta(days=args.days), args.cards, args.seed
        )
    print(f"published {count} transactions to {STREAM}")


if __name__ == "__main__":
    main()
