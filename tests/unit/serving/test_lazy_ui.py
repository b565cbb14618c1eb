"""The web UI mounted in a model server is built on its first request, not at server start
(issue 21: a cold start is the time to the first prediction; the UI's modules took ~0.2 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, json, sys
import httpx
import fti
from fti.serving.app import create_app
from fti.serving.server import mount_ui

async def main():
    project = fti.connect(home=sys.argv[1])
    app = create_app(project)
    mounted = mount_ui(app, project)
    at_start = "fti.ui.app" in sys.modules
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fti") as client:
        first = (await client.get("/ui/")).status_code
        second = (await client.get("/ui/static/fti.css")).status_code
    print(json.dumps({"mounted": mounted, "at_start": at_start, "first": first, "second": second,
                      "after": "fti.ui.app" in sys.modules}))
    project.close()

asyncio.run(main())
"""


def test_the_ui_is_imported_on_its_first_request(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "home")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mounted"] and not result["at_start"]
    assert result["first"] == 200 and result["after"]
    assert result["second"] == 200  # the same built app serves its assets
