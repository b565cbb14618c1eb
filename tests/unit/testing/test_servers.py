"""The test servers: a stopped server leaves no data behind outside pytest's temporary dirs."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from fti.testing.servers import start_postgres


def test_a_stopped_postgres_removes_the_directory_made_for_it(tmp_path: Path) -> None:
    server = start_postgres(tmp_path / "pg")
    try:
        with psycopg.connect(server.create_database("leftover"), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert server.datadir.is_dir()
    finally:
        server.stop()
    if os.geteuid() == 0:  # as root the server needs a directory of its own outside pytest's
        assert server._private_dir is not None and not server._private_dir.exists()
    else:  # otherwise it lives in the given directory, which pytest cleans up
        assert server._private_dir is None and server.datadir.is_relative_to(tmp_path)
