"""The UI's pages, one module per section; each module exports ``routes`` (Starlette routes).

Adding a section is adding a module here and its entry in :data:`SECTIONS`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

SECTIONS = (
    "login",
    "home",
    "search",
    "feature_groups",
    "feature_views",
    "lineage",
    "models",
    "runs",
    "deployments",
    "pipelines",
    "monitoring",
    "keys",
)

NAVIGATION = (
    ("home", "Home", "/"),
    ("search", "Search", "/search"),
    ("feature_groups", "Feature groups", "/feature-groups"),
    ("feature_views", "Feature views", "/feature-views"),
    ("models", "Models", "/models"),
    ("runs", "Runs", "/runs"),
    ("deployments", "Deployments", "/deployments"),
    ("pipelines", "Pipelines", "/pipelines"),
    ("monitoring", "Monitoring", "/monitoring"),
)
"""``(section, label, path)`` of the navigation bar (lineage is reached from objects; keys from the
user menu)."""


def routes() -> list[BaseRoute]:
    """Every page's routes."""
    found: list[BaseRoute] = []
    for section in SECTIONS:
        found.extend(importlib.import_module(f"fti.ui.pages.{section}").routes)
    return found
