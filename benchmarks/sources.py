"""Source reads: 1M PostgreSQL rows into Arrow, fti against pandas.read_sql and ConnectorX.

One table of 1M rows (bigint id, timestamptz, float8, int, text, numeric(12, 2)) on a PostgreSQL
server the script starts on loopback. Each reader runs ``--repeat`` times; medians and the ratio
to ``pandas.read_sql`` (SQLAlchemy + psycopg, then ``pyarrow.Table.from_pandas``) and to ConnectorX
are printed, all measured in the same run:

- fti ``SQL.read`` (ADBC, the default for PostgreSQL) and ``SQL.batches`` (streamed, 64k rows);
- raw ADBC (``fetch_arrow_table``), to show what fti adds;
- fti ``SQL.read(driver="sqlalchemy")``, the fallback path for other databases;
- ConnectorX ``read_sql(return_type="arrow")``;
- ``pandas.read_sql``.

Run: .venv/bin/python -m benchmarks.sources [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._report import median, row, timed

QUERY = "SELECT * FROM tx"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import connectorx as cx
    import pandas as pd
    import psycopg
    import pyarrow as pa
    from sqlalchemy import create_engine, text

    import fti
    from fti.testing.servers import start_postgres

    server = start_postgres(Path(tempfile.mkdtemp(prefix="fti-bench-sources-")))
    try:
        url = server.create_database("bench")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE tx AS SELECT g::bigint AS id, "
                "timestamptz '2024-01-01' + g * interval '1 second' AS ts, random() * 100 AS amount, "
                "(g % 50)::int AS category, 'merchant_' || (g % 1000) AS merchant, "
                f"round((random() * 1000)::numeric, 2)::numeric(12, 2) AS fee FROM generate_series(1, {args.rows}) g"
            )
            conn.execute("VACUUM ANALYZE tx")
        home = Path(tempfile.mkdtemp(prefix="fti-bench-sources-home-"))
        project = fti.connect(home=home)
        source = fti.sources.SQL(url, project=project)
        fallback = fti.sources.SQL(url, project=project, driver="sqlalchemy")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))

        def raw_adbc() -> pa.Table:
            import adbc_driver_postgresql.dbapi as adbc

            with adbc.connect(url) as conn, conn.cursor() as cur:
                cur.execute(QUERY)
                return cur.fetch_arrow_table()

        def streamed() -> int:
            return sum(b.num_rows for b in source.batches(QUERY, chunk_rows=65_536))

        def pandas_read_sql() -> pa.Table:
            with engine.connect() as conn:
                return pa.Table.from_pandas(pd.read_sql(text(QUERY), conn), preserve_index=False)

        readers: list[tuple[str, Callable[[], Any]]] = [
            ("fti SQL.read (ADBC)", lambda: source.read(QUERY)),
            ("fti SQL.batches (ADBC, 64k-row chunks)", streamed),
            ("raw ADBC fetch_arrow_table", raw_adbc),
            ("ConnectorX read_sql -> arrow", lambda: cx.read_sql(url, QUERY, return_type="arrow")),
            ("fti SQL.read (driver=sqlalchemy)", lambda: fallback.read(QUERY)),
            ("pandas.read_sql -> Arrow", pandas_read_sql),
        ]
        print(f"PostgreSQL -> Arrow, {args.rows:,} rows x 6 columns, median of {args.repeat} (s)")
        results: dict[str, float] = {}
        for label, fn in readers:
            fn()  # warm the server's cache and the imports
            results[label] = median([timed(fn) for _ in range(args.repeat)])
        reference, connectorx = results["pandas.read_sql -> Arrow"], results["ConnectorX read_sql -> arrow"]
        for label, seconds in results.items():
            row(
                label,
                seconds=seconds,
                rows_per_s=f"{args.rows / seconds:,.0f}",
                speedup_vs_pandas=reference / seconds,
                vs_connectorx=connectorx / seconds,
            )
        engine.dispose()
        project.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
