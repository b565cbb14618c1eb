"""Ownership of the catalog: each domain's ``records.py`` is the only module touching its tables.

Read from the source (every ``import`` statement, also under ``TYPE_CHECKING`` and inside
functions), not from what happens to be imported at runtime:

1. A module under ``fti/`` that imports SQLAlchemy (or Alembic) is under ``fti/storage/`` or is a
   domain's ``records.py``.
2. A module that imports a domain's tables (``fti.storage.metadata.tables.<domain>``, or a table
   by name from ``fti.storage.metadata.tables``) is that domain's records module. The table
   definitions and the migrations themselves are exempt.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import fti

PACKAGE = Path(fti.__file__).parent
TABLES = "fti.storage.metadata.tables"
SQL_LIBRARIES = ("sqlalchemy", "alembic")

# tables module (fti/storage/metadata/tables/<stem>.py) -> the module, or the directory of modules
# (ending in "/"), allowed to import it
TABLE_OWNERS = {
    # the feature domain's records are a package: records/__init__.py and records/listing.py
    "features": "fti/features/records/",
    "feature_views": "fti/features/records/",
    # the registry's records are a package: records/__init__.py and records/evaluations.py
    "registry": "fti/registry/records/",
    "training": "fti/training/records.py",
    "serving": "fti/serving/records.py",
    "rollouts": "fti/serving/rollouts/records.py",
    "pipelines": "fti/pipelines/records.py",
    "tags": "fti/tags/records.py",
    "core": "fti/storage/metadata/",
    "secrets": "fti/secrets/records.py",
    "sources": "fti/sources/records.py",
    "monitoring": "fti/monitoring/records.py",
    "streaming": "fti/streaming/records.py",
}
# the catalog's own code: table definitions and migrations may import any table
EXEMPT = ("fti/storage/metadata/tables/", "fti/storage/metadata/migrations/")
# SQL data sources read the user's own databases (not the catalog) through SQLAlchemy
SQL_CLIENTS = ("fti/sources/sql.py", "fti/sources/_adbc.py")


def _imports(tree: ast.AST, package: str) -> list[tuple[str, list[str]]]:
    """``(imported module, names imported from it)`` for every import statement in the tree.

    ``package`` is the package the module belongs to (relative imports resolve against it).
    """
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: level 1 is the module's own package
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.append((base, [alias.name for alias in node.names]))
    return found


def _table_domains(package: Path) -> tuple[dict[str, str], set[str]]:
    """``{table variable: tables module}`` and the modules' names, read from the table definitions."""
    tables: dict[str, str] = {}
    modules: set[str] = set()
    for path in sorted((package / "storage" / "metadata" / "tables").glob("*.py")):
        if path.stem.startswith("_"):
            continue
        modules.add(path.stem)
        for node in ast.parse(path.read_text("utf-8")).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "Table"
            ):
                tables.update(
                    (target.id, path.stem) for target in node.targets if isinstance(target, ast.Name)
                )
    return tables, modules


def _domains_touched(imported: str, names: list[str], tables: dict[str, str], modules: set[str]) -> set[str]:
    """The tables modules an import reaches (``shared`` for ``_base``/``metadata``)."""
    if imported == "fti.storage.metadata" and "tables" in names:
        return set(modules)
    if imported == TABLES:
        if not names:  # import fti.storage.metadata.tables
            return set(modules)
        touched = set()
        for name in names:
            if name == "*":
                return set(modules)
            touched.add(tables.get(name) or (name if name in modules else "shared"))
        return touched
    if imported.startswith(TABLES + "."):
        stem = imported.removeprefix(TABLES + ".").split(".")[0]
        return {stem if stem in modules else "shared"}
    return set()


def _is_records(rel: str) -> bool:
    """A domain's records module: ``fti/<domain>/records.py``, a module of ``fti/<domain>/records/``,
    or a sub-domain's ``fti/<domain>/<subdomain>/records.py`` (``fti/serving/rollouts/records.py``)."""
    parts = rel.split("/")
    return (len(parts) in (3, 4) and parts[-1] == "records.py") or (len(parts) == 4 and parts[2] == "records")


def _may_touch(rel: str, domain: str) -> bool:
    if domain == "shared":
        return _is_records(rel) or rel.startswith("fti/storage/metadata/")
    owner = TABLE_OWNERS.get(domain)
    if owner is None:
        return False  # a new tables module needs an owner in TABLE_OWNERS
    if owner.endswith("/"):
        return rel.startswith(owner) and "/" not in rel.removeprefix(owner)
    return rel == owner


def ownership_violations(package: Path, allowed: frozenset[str] = frozenset()) -> list[str]:
    """Every breach of the two rules in the package directory ``package`` (named ``fti``)."""
    tables, modules = _table_domains(package)
    problems: list[str] = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).as_posix()
        if rel in allowed or rel.startswith(EXEMPT):
            continue
        package_name = path.parent.relative_to(package.parent).as_posix().replace("/", ".")
        for imported, names in _imports(ast.parse(path.read_text("utf-8")), package_name):
            root = imported.split(".")[0]
            if root in SQL_LIBRARIES and not (
                rel.startswith("fti/storage/") or _is_records(rel) or rel in SQL_CLIENTS
            ):
                problems.append(f"{rel} imports {imported}: only fti/storage/ and a domain's records.py may")
            for domain in sorted(_domains_touched(imported, names, tables, modules)):
                if not _may_touch(rel, domain):
                    owner = TABLE_OWNERS.get(domain, "a domain's records.py or fti/storage/metadata/")
                    problems.append(
                        f"{rel} imports the {domain} tables ({imported} {', '.join(names)}): only {owner} may"
                    )
    return problems


# --- the package -------------------------------------------------------------------------------
def test_each_domains_records_module_alone_touches_its_tables() -> None:
    assert ownership_violations(PACKAGE) == []


def test_every_tables_module_has_an_owner() -> None:
    _, modules = _table_domains(PACKAGE)
    assert modules == set(TABLE_OWNERS)


# --- the checker itself --------------------------------------------------------------------------
def test_a_table_import_added_to_the_real_package_is_caught(tmp_path: Path) -> None:
    copy = tmp_path / "fti"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert ownership_violations(copy) == []
    app = copy / "serving" / "app.py"
    app.write_text(app.read_text("utf-8") + "\nfrom fti.storage.metadata.tables import runs\n")
    assert ownership_violations(copy) == [
        "fti/serving/app.py imports the training tables (fti.storage.metadata.tables runs): "
        "only fti/training/records.py may"
    ]


def _tree(root: Path, files: dict[str, str]) -> Path:
    base = {
        "fti/__init__.py": "",
        "fti/storage/metadata/tables/__init__.py": "from fti.storage.metadata.tables.training import runs\n",
        "fti/storage/metadata/tables/_base.py": "from sqlalchemy import MetaData\nmetadata = MetaData()\n",
        "fti/storage/metadata/tables/core.py": "from sqlalchemy import Table\nprojects = Table('projects')\n",
        "fti/storage/metadata/tables/training.py": "from sqlalchemy import Table\nruns = Table('runs')\n",
        "fti/storage/metadata/tables/serving.py": "from sqlalchemy import Table\ndeployments = Table('d')\n",
        "fti/storage/metadata/migrations/versions/0001.py": "from fti.storage.metadata.tables import runs\n",
        "fti/storage/metadata/projects.py": "from fti.storage.metadata.tables import projects\n",
        "fti/training/records.py": "import sqlalchemy\nfrom fti.storage.metadata.tables import runs\n",
        "fti/serving/records.py": "from sqlalchemy import select\nfrom fti.storage.metadata.tables.serving import deployments\n",
    }
    for rel, text in {**base, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "fti"


def test_a_clean_synthetic_tree_passes(tmp_path: Path) -> None:
    assert ownership_violations(_tree(tmp_path, {})) == []


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        (
            "fti/serving/app.py",
            "from fti.storage.metadata.tables import runs\n",
            ("fti/serving/app.py imports the training tables",),
        ),
        (
            "fti/serving/app.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sqlalchemy.engine import Connection\n",
            ("fti/serving/app.py imports sqlalchemy.engine",),
        ),
        (
            "fti/pipelines/scheduler.py",
            "def tick():\n    import sqlalchemy\n",
            ("fti/pipelines/scheduler.py imports sqlalchemy",),
        ),
        (
            "fti/serving/app.py",
            "from ..storage.metadata.tables.training import runs\n",
            ("fti/serving/app.py imports the training tables",),
        ),
        (
            "fti/serving/__init__.py",
            "from ..storage.metadata.tables import runs\n",
            ("fti/serving/__init__.py imports the training tables",),
        ),
        (
            "fti/serving/records.py",  # a records module, but of another domain's table
            "from fti.storage.metadata.tables import runs\n",
            ("fti/serving/records.py imports the training tables",),
        ),
        (
            "fti/training/records.py",  # the whole tables package reaches every domain
            "from fti.storage.metadata import tables\n",
            (
                "fti/training/records.py imports the core tables",
                "fti/training/records.py imports the serving tables",
            ),
        ),
        (
            "fti/project.py",
            "from fti.storage.metadata.tables import projects\n",
            ("fti/project.py imports the core tables",),
        ),
        (
            "fti/cli/runs.py",
            "from fti.storage.metadata.tables._base import utcnow\n",
            ("fti/cli/runs.py imports the shared tables",),
        ),
        (
            "fti/batch/job.py",
            "from alembic import command\n",
            ("fti/batch/job.py imports alembic",),
        ),
    ],
)
def test_the_checker_flags_each_kind_of_breach(
    tmp_path: Path, rel: str, source: str, expected: tuple[str, ...]
) -> None:
    problems = ownership_violations(_tree(tmp_path, {rel: source}))
    assert len(problems) == len(expected), problems
    assert all(p.startswith(e) for p, e in zip(problems, expected, strict=True)), problems


def test_an_allowlisted_module_is_skipped(tmp_path: Path) -> None:
    package = _tree(tmp_path, {"fti/features/feature_store.py": "import sqlalchemy\n"})
    assert ownership_violations(package) != []
    assert ownership_violations(package, frozenset({"fti/features/feature_store.py"})) == []


def test_a_records_package_owns_its_tables_and_nothing_deeper(tmp_path: Path) -> None:
    features = "from sqlalchemy import Table\nfeature_groups = Table('fg')\n"
    source = "import sqlalchemy\nfrom fti.storage.metadata.tables import feature_groups\n"
    clean = _tree(
        tmp_path / "a",
        {
            "fti/storage/metadata/tables/features.py": features,
            "fti/features/records/__init__.py": source,
            "fti/features/records/listing.py": source,
        },
    )
    assert ownership_violations(clean) == []
    nested = _tree(
        tmp_path / "b",
        {"fti/storage/metadata/tables/features.py": features, "fti/features/records/deep/x.py": source},
    )
    assert len(ownership_violations(nested)) == 2  # sqlalchemy and the table, one level too deep
