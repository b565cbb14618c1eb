"""``s3://`` URLs need s3fs: without it they fail with a BackendError naming the ``fti[s3]`` extra."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

_REPO = Path(__file__).resolve().parents[3]

# Runs with s3fs unimportable (a None entry in sys.modules makes `import s3fs` raise ImportError),
# as on a machine where `pip install fti` was run without the extra.
_WITHOUT_S3FS = """
import json, sys
sys.modules["s3fs"] = None
import fti
from fti.errors import BackendError
from fti.plugins import artifact_store_from_url
from fti.storage.offline.delta import DeltaOfflineStore

home = sys.argv[1]
outcomes = {}
def attempt(name, action):
    try:
        action()
    except BackendError as exc:
        outcomes[name] = ["BackendError", exc.code, str(exc)]
    except Exception as exc:
        outcomes[name] = [type(exc).__name__, None, str(exc)]
    else:
        outcomes[name] = ["ok", None, ""]

attempt("plugin", lambda: artifact_store_from_url("s3://bucket/artifacts"))
with fti.connect(home=home, artifacts_url="s3://bucket/artifacts") as project:
    attempt("project", lambda: project.backends.artifacts)
attempt("offline_delete", lambda: DeltaOfflineStore("s3://bucket/offline").delete("t"))
print(json.dumps(outcomes))
"""


def test_s3_urls_without_s3fs_raise_backend_error_naming_the_extra(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_S3FS, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(outcomes) == {"plugin", "project", "offline_delete"}
    for name, (kind, code, message) in outcomes.items():
        assert kind == "BackendError", (name, kind, message)
        assert code == "backend_error"
        assert "s3://bucket/" in message and "pip install 'fti[s3]'" in message, message


def test_the_s3_extra_exists_and_dev_installs_it() -> None:
    project = tomllib.loads((_REPO / "pyproject.toml").read_text("utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert any(req.startswith("s3fs") for req in extras["s3"])
    dev_self = next(req for req in extras["dev"] if req.startswith("fti["))
    assert "s3" in dev_self.removeprefix("fti[").removesuffix("]").split(",")
