"""Fixtures of the UI's route tests: the demo data (iris + fraud), the UI app over it, and clients."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import fti
from fti.testing.asgi import AsgiClient
from fti.ui.app import create_app


@pytest.fixture(scope="module")
def demo(demo_home: Path) -> Iterator[fti.Project]:
    """The demo project, read only (tests that change it use ``demo_copy``)."""
    with fti.connect(home=demo_home) as project:
        yield project


@pytest.fixture(scope="module")
def client(demo: fti.Project) -> Iterator[AsgiClient]:
    """A loopback client of the UI over the demo project (no keys: the UI is open)."""
    with AsgiClient(create_app(demo)) as c:
        yield c


@pytest.fixture
def demo_copy(demo_home: Path, tmp_path: Path) -> Iterator[fti.Project]:
    """A private copy of the demo home, to change freely."""
    home = tmp_path / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("ui"))
    with fti.connect(home=home) as project:
        yield project


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)
