"""`import fti` wall time against a bare interpreter start, median of repeated fresh processes.

Run: .venv/bin/python benchmarks/import_time.py
Target (issue 2): import fti < 0.3 s, with no pandas/duckdb/sklearn imported.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks._report import median, row, timed

RUNS = 15


def main() -> None:
    bare = [timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)) for _ in range(RUNS)]
    with_fti = [
        timed(lambda: subprocess.run([sys.executable, "-c", "import fti"], check=True)) for _ in range(RUNS)
    ]
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fti; print(','.join(m for m in ('pandas','duckdb','sklearn','numpy','pyarrow',"
            "'sqlalchemy','pydantic') if m in sys.modules))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    row("interpreter start (reference)", median_s=median(bare))
    row("interpreter start + import fti", median_s=median(with_fti))
    row("import fti alone", median_s=median(with_fti) - median(bare), ratio=median(with_fti) / median(bare))
    print(f"heavy modules imported by `import fti`: {heavy or 'none'}")


if __name__ == "__main__":
    main()
