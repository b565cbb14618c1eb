"""An isolated Python environment per pipeline, built with ``uv`` and cached by what defines it.

``@fti.training_pipeline(requirements=["xgboost==2.1.*"], python="3.11")`` (or
``requirements_file="requirements.txt"``) makes every run of the pipeline execute in a virtual
environment under ``$FTI_HOME/envs/<hash>``, where the hash covers the requirements (the file's
content included), the Python version and fti's version. The first run builds it (``uv venv``,
``uv pip install``); later runs, of any pipeline with the same definition, reuse it.

**fti inside the environment.** When the environment's Python has the scheduler's minor version
(the default), fti and its dependencies are not installed again: a ``.pth`` file puts the
scheduler's own import paths *after* the environment's site-packages, so the pipeline's pinned
packages win and everything else (fti, pandas, pyarrow, ...) comes from the scheduler's install.
No index is needed beyond the pipeline's own requirements. With another Python version fti is
installed into the environment like any requirement (from its source directory for a development
install, else ``fti==<version>``), which needs an index or a wheelhouse (``UV_FIND_LINKS``).

Offline: ``uv`` honours ``UV_OFFLINE=1``, ``UV_FIND_LINKS`` and ``UV_INDEX_URL`` from the
scheduler's environment; interpreters are never downloaded (``--no-python-downloads``). Build
environments ahead with ``fti pipelines deploy FILE --check-env`` on a machine with the same
layout, or point ``UV_FIND_LINKS`` at a directory of wheels.

This module imports only the standard library: the runner uses it before fti's heavier modules.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fti.errors import FtiError, ValidationError

MARKER = "fti-environment.json"
_PYTHON = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]+\])?\s*([<>=!~;@ ].*)?$")


class EnvironmentBuildError(FtiError):
    """A pipeline's environment could not be built: the requirements do not resolve or install
    (the message carries the resolver's own), or no interpreter of the requested version exists."""

    code = "environment_build_failed"
    http_status = 422


@dataclass(frozen=True)
class EnvSpec:
    """What defines a pipeline's environment (stored with the pipeline at deploy)."""

    requirements: tuple[str, ...] = ()
    python: str | None = None
    requirements_file: str | None = None
    """As declared (relative to the module's directory); its content is read at deploy."""
    file_requirements: tuple[str, ...] = ()
    """The requirement lines of ``requirements_file``, read at deploy."""

    @property
    def all_requirements(self) -> list[str]:
        return [*self.requirements, *self.file_requirements]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requirements": list(self.requirements),
            "python": self.python,
            "requirements_file": self.requirements_file,
            "file_requirements": list(self.file_requirements),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EnvSpec | None:
        if not data:
            return None
        return cls(
            tuple(data.get("requirements") or ()),
            data.get("python"),
            data.get("requirements_file"),
            tuple(data.get("file_requirements") or ()),
        )

    def digest(self, fti_version: str) -> str:
        """The environment's identity: requirements (sorted), Python version, fti version."""
        text = json.dumps(
            {
                "requirements": sorted(self.all_requirements),
                "python": self.python or _host_python(),
                "fti": fti_version,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def check(requirements: Any, python: Any, requirements_file: Any, pipeline: str) -> EnvSpec | None:
    """Validate the decorator's environment options (no file is read yet)."""
    if requirements is None and python is None and requirements_file is None:
        return None
    if requirements is None:
        requirements = []
    if isinstance(requirements, str) or not isinstance(requirements, list | tuple):
        raise ValidationError(
            f"pipeline {pipeline!r}: requirements must be a list of requirement strings, e.g. "
            f"requirements=['xgboost==2.1.*'], got {requirements!r}"
        )
    for requirement in requirements:
        check_requirement(requirement, pipeline)
    if python is not None and (not isinstance(python, str) or not _PYTHON.match(python)):
        raise ValidationError(
            f"pipeline {pipeline!r}: python must be a version such as '3.11', got {python!r}"
        )
    if requirements_file is not None and (
        not isinstance(requirements_file, str | os.PathLike) or not str(requirements_file)
    ):
        raise ValidationError(
            f"pipeline {pipeline!r}: requirements_file must be a path, got {requirements_file!r}"
        )
    return EnvSpec(tuple(requirements), python, None if requirements_file is None else str(requirements_file))


def check_requirement(requirement: Any, pipeline: str) -> str:
    if not isinstance(requirement, str) or not _REQUIREMENT.match(requirement.strip()):
        raise ValidationError(
            f"pipeline {pipeline!r}: {requirement!r} is not a requirement; use the pip form, "
            "e.g. 'xgboost==2.1.*' or 'scikit-learn>=1.4,<2'"
        )
    return requirement.strip()


def read_file(spec: EnvSpec, module_dir: Path, pipeline: str) -> EnvSpec:
    """``spec`` with the requirement lines of its ``requirements_file`` (at deploy)."""
    if spec.requirements_file is None:
        return spec
    path = Path(spec.requirements_file)
    path = path if path.is_absolute() else module_dir / path
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(
            f"pipeline {pipeline!r}: cannot read requirements_file {str(path)!r} ({exc.strerror}); give a "
            "path relative to the pipeline's module"
        ) from None
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    options = [line for line in lines if line.startswith("-")]
    if options:
        raise ValidationError(
            f"pipeline {pipeline!r}: {path.name} uses pip options {options[:3]}; list requirements only "
            "(set indexes with UV_INDEX_URL / UV_FIND_LINKS)"
        )
    found = tuple(check_requirement(line, pipeline) for line in lines if line)
    return EnvSpec(spec.requirements, spec.python, spec.requirements_file, found)


@dataclass(frozen=True)
class Environment:
    """A built environment."""

    path: Path
    python: Path
    digest: str
    packages: list[str]
    """``name==version`` of every package installed into the environment (``uv pip freeze``)."""
    python_version: str
    host_overlay: bool
    """fti and its dependencies come from the scheduler's install (same Python minor version)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "path": str(self.path),
            "python": self.python_version,
            "packages": self.packages,
            "host_overlay": self.host_overlay,
        }


def fti_version() -> str:
    import fti

    return fti.__version__


def uv_binary() -> str:
    try:
        import uv  # type: ignore[import-not-found]

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise EnvironmentBuildError(
        "pipelines with requirements need uv: pip install 'fti[pipelines]' (or put uv on PATH)"
    )


def ensure(envs_dir: Path, spec: EnvSpec, fti_version: str) -> Environment:
    """The environment of ``spec`` under ``envs_dir``, built now unless it is cached.

    Concurrent builders of one environment wait for each other (a file lock); a half-built one
    (a crash) is rebuilt.

    Raises:
        EnvironmentBuildError: uv failed; the message ends with its own output.
    """
    digest = spec.digest(fti_version)
    path = envs_dir / digest
    cached = _read_marker(path)
    if cached is not None:
        return cached
    envs_dir.mkdir(parents=True, exist_ok=True)
    with (envs_dir / f"{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = _read_marker(path)  # built by another process while we waited
        if cached is not None:
            return cached
        shutil.rmtree(path, ignore_errors=True)
        try:
            return _build(path, spec, digest, fti_version)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise


def _build(path: Path, spec: EnvSpec, digest: str, fti_version: str) -> Environment:
    uv = uv_binary()
    wanted = spec.python or _host_python()
    # the scheduler's interpreter when the version matches: no search, and the overlay below fits it
    interpreter = sys.executable if wanted == _host_python() else wanted
    _uv([uv, "venv", "--no-python-downloads", "--python", interpreter, str(path)], "create the environment")
    python = path / "bin" / "python"
    version = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    overlay = version.rsplit(".", 1)[0] == _host_python()
    packages = list(spec.all_requirements)
    if overlay:
        site_packages = Path(
            subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
        )  # fmt: skip
        # after the environment's own site-packages: its pins win, the rest is the scheduler's
        # (addsitedir also processes the .pth files there, e.g. of editable installs)
        lines = [f"import site; site.addsitedir({path!r})" for path in _host_paths()]
        (site_packages / "zz_fti_host.pth").write_text("\n".join(lines) + "\n")
    else:
        packages.insert(0, _fti_requirement(fti_version))
    if packages:
        _uv([uv, "pip", "install", "--python", str(python), *packages], "install the requirements")
    frozen = subprocess.run(
        [uv, "pip", "freeze", "--python", str(python)], capture_output=True, text=True, check=False
    ).stdout.split()
    if overlay:
        frozen.append(f"fti=={fti_version}")
    env = Environment(path, python, digest, sorted(frozen, key=str.lower), version, overlay)
    marker = path / MARKER
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({**env.to_dict(), "spec": spec.to_dict(), "fti": fti_version}))
    tmp.replace(marker)  # written last: its presence means the environment is complete
    return env


def _uv(command: list[str], what: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise EnvironmentBuildError(f"uv could not {what}:\n{output[-4000:]}")


def _read_marker(path: Path) -> Environment | None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        data = json.loads((path / MARKER).read_text())
        python = path / "bin" / "python"
        if python.exists():
            return Environment(
                path,
                python,
                data["digest"],
                list(data["packages"]),
                data["python"],
                bool(data["host_overlay"]),
            )
    return None


def _host_python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def _host_paths() -> list[str]:
    """The scheduler's import paths that hold fti and its dependencies."""
    import fti

    paths = [str(Path(fti.__file__).resolve().parent.parent), *site.getsitepackages()]
    user = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user:
        paths.append(user)
    return list(dict.fromkeys(p for p in paths if Path(p).is_dir()))


def _fti_requirement(fti_version: str) -> str:
    """How to install this fti into another interpreter: its source directory when it runs from
    one (a development install), else the released version."""
    import fti

    root = Path(fti.__file__).resolve().parent.parent
    if (root / "pyproject.toml").exists():
        return str(root)
    return f"fti=={fti_version}"
