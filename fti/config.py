"""Settings: one typed object, loaded once at the edge and passed down explicitly.

Precedence: arguments (``fti.connect(..., catalog_url=...)``) > ``FTI_*`` environment variables >
the optional TOML config file ``config.toml`` in the home directory > defaults under the home
directory. The home directory is the ``home`` argument (``fti.connect(home=...)``,
``fti --home``), else ``FTI_HOME``, else ``./.fti``. Every setting is documented with
a ``description``; a test checks that none is left undocumented.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

_MODULE_PREFIX = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class Settings(BaseSettings):
    """Where fti keeps its state and which backend serves each storage role."""

    model_config = SettingsConfigDict(env_prefix="FTI_", extra="ignore", frozen=True)

    home: Path = Field(
        default=Path(".fti"),
        description="Home directory for embedded state (catalog, Delta tables, online store, artifacts).",
    )
    catalog_url: str | None = Field(
        default=None,
        description="Metadata catalog URL: sqlite:///path (default $FTI_HOME/catalog.db) or postgresql://...",
    )
    offline_url: str | None = Field(
        default=None,
        description="Offline store URL: a directory of Delta tables (default $FTI_HOME/offline) or file:///...",
    )
    online_url: str | None = Field(
        default=None,
        description="Online store URL: sqlite:///path (default $FTI_HOME/online.db) or redis://host:port/db.",
    )
    vector_url: str | None = Field(
        default=None,
        description="Vector index URL (embedding indexes): a directory of HNSW indexes (default "
        "$FTI_HOME/vectors), lancedb:///path or lancedb+s3://bucket/prefix.",
    )
    buffer_url: str | None = Field(
        default=None,
        description="Push buffer URL (pushed rows waiting for their offline commit): sqlite:///path (default "
        "$FTI_HOME/push_buffer.db beside the embedded online store) or redis://host:port/db (default: the "
        "online store's Redis when it is one).",
    )
    artifacts_url: str | None = Field(
        default=None,
        description="Artifact store URL: a directory (default $FTI_HOME/artifacts) or an fsspec URL (s3://...).",
    )
    api_keys: str | None = Field(
        default=None,
        description="Comma-separated API keys the servers accept (in addition to keys stored in the catalog).",
    )
    ui_secret_key: str | None = Field(
        default=None,
        description="Key that signs web UI session cookies (default: a random key kept in $FTI_HOME/ui/secret_key).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts the secrets in the catalog (a Fernet key: `fti secrets generate-key`); "
        "comma-separated keys rotate, the first encrypts. Default: $FTI_HOME/secret.key, made 0600 on first use.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible object store (MinIO, Ceph, a local test server), e.g. "
        "http://127.0.0.1:9000; unset means AWS S3. Credentials: FTI_S3_SECRET, else AWS_* variables.",
    )
    s3_region: str | None = Field(
        default=None,
        description="Region of the S3 buckets (e.g. eu-central-1); unset lets the AWS SDK decide (AWS_REGION).",
    )
    s3_secret: str | None = Field(
        default=None,
        description="Name of the project secret holding the S3 credentials, a JSON object "
        '{"aws_access_key_id", "aws_secret_access_key", optional "aws_session_token"} (`fti secrets set`); '
        "read when a store on s3:// is opened. Unset: the AWS_* variables, profiles or instance role.",
    )
    s3_allow_http: bool = Field(
        default=False,
        description="Allow a plain http:// S3 endpoint (test servers, MinIO without TLS); https is required otherwise.",
    )

    pyfunc: str = Field(
        default="on",
        description="Which pyfunc models the model server loads (a pyfunc imports and runs the Python "
        "module it names): 'on' (any), 'off' (none) or 'allow:<prefix>,<prefix>' (only functions in "
        "modules under those packages, e.g. allow:acme.models). Refused models are UNAVAILABLE.",
    )

    @field_validator("pyfunc")
    @classmethod
    def _pyfunc_policy(cls, value: str) -> str:
        value = value.strip()
        if value in ("on", "off"):
            return value
        prefixes = value.removeprefix("allow:").split(",") if value.startswith("allow:") else []
        prefixes = [p.strip().rstrip(".") for p in prefixes]
        if not prefixes or not all(_MODULE_PREFIX.fullmatch(p) for p in prefixes):
            raise ValueError(
                f"FTI_PYFUNC must be 'on', 'off' or 'allow:<prefix>,<prefix>' with dotted module "
                f"prefixes (e.g. allow:acme.models), got {value!r}"
            )
        return "allow:" + ",".join(prefixes)

    def pyfunc_refusal(self, function: str) -> str | None:
        """Why the ``pyfunc`` setting refuses the model function ``"module:function"``, or None
        when it may be imported and run."""
        if self.pyfunc == "on":
            return None
        if self.pyfunc == "off":
            return (
                f"pyfunc models are disabled on this server (FTI_PYFUNC=off): {function!r} is not "
                "imported; serve it where FTI_PYFUNC allows it"
            )
        module = function.partition(":")[0]
        prefixes = self.pyfunc.removeprefix("allow:").split(",")
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return None
        return (
            f"pyfunc model function {function!r}: module {module!r} is not under an allowed prefix "
            f"(FTI_PYFUNC={self.pyfunc}); it is not imported"
        )

    spark_master: str | None = Field(
        default=None,
        description="Spark master of the Spark engine (project.spark(), engine='spark'): local[*], local[N], "
        "spark://host:7077, yarn or k8s://https://host:port. Unset: a SparkSession already running in the "
        "process, else local[*].",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Extra spark.* settings of the Spark engine's session, as a JSON object (env) or a TOML "
        'table, e.g. {"spark.executor.memory": "4g", "spark.executor.cores": "2"}.',
    )

    @field_validator("s3_secret")
    @classmethod
    def _s3_secret_name(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # empty: unset (a pipeline run gets the credentials as AWS_* instead)
        from fti._names import check_secret_name

        return check_secret_name(value.strip())

    @field_validator("spark_conf")
    @classmethod
    def _spark_keys(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = [key for key in value if not key.startswith("spark.")]
        if wrong:
            raise ValueError(
                f"FTI_SPARK_CONF keys must be Spark settings starting with 'spark.', got {wrong}"
            )
        return {key: str(item) for key, item in value.items()}

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file lives in the home directory, and a home given as an argument wins over
        # FTI_HOME: the file source must look where the settings will point, not only at FTI_HOME.
        home = None
        if isinstance(init_settings, InitSettingsSource):
            home = init_settings.init_kwargs.get("home")
        return (init_settings, env_settings, _TomlFileSource(settings_cls, home))

    # Resolved URLs: defaults live under ``home``.
    @property
    def resolved_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def resolved_offline_url(self) -> str:
        return self.offline_url or str(self.home / "offline")

    @property
    def resolved_online_url(self) -> str:
        return self.online_url or f"sqlite:///{self.home / 'online.db'}"

    @property
    def resolved_vector_url(self) -> str:
        return self.vector_url or str(self.home / "vectors")

    @property
    def resolved_buffer_url(self) -> str:
        if self.buffer_url:
            return self.buffer_url
        online = self.resolved_online_url
        if online.startswith(("redis://", "rediss://")):
            return online
        return f"sqlite:///{self.home / 'push_buffer.db'}"

    @property
    def resolved_artifacts_url(self) -> str:
        return self.artifacts_url or str(self.home / "artifacts")

    @property
    def secret_key_file(self) -> Path:
        """The key file used when ``secret_key`` is not set."""
        return self.home / "secret.key"

    def describe(self) -> dict[str, str]:
        """The effective settings as strings, for ``fti info``. Passwords in URLs are masked; keys
        are never shown, only where they come from."""
        if self.secret_key is not None:
            secret_key = "from FTI_SECRET_KEY"
        elif self.secret_key_file.exists():
            secret_key = f"key file {self.secret_key_file}"
        else:
            secret_key = f"none yet (made at {self.secret_key_file} by the first `fti secrets set`)"
        described = {
            "home": str(self.home),
            "catalog_url": _mask(self.resolved_catalog_url),
            "offline_url": _mask(self.resolved_offline_url),
            "online_url": _mask(self.resolved_online_url),
            "vector_url": _mask(self.resolved_vector_url),
            "buffer_url": _mask(self.resolved_buffer_url),
            "artifacts_url": _mask(self.resolved_artifacts_url),
            "secret_key": secret_key,
            "pyfunc": self.pyfunc,
        }
        if self.s3_endpoint_url is not None:
            described["s3_endpoint_url"] = _mask(self.s3_endpoint_url)
        if self.s3_secret is not None:
            described["s3_secret"] = f"secret {self.s3_secret!r}"  # the name; the value stays in the catalog
        described["spark_master"] = (
            _mask(self.spark_master)
            if self.spark_master
            else "local[*] (or the process's running SparkSession)"
        )
        described["spark_conf"] = (
            ", ".join(f"{key}={_mask_conf(key, value)}" for key, value in sorted(self.spark_conf.items()))
            or "(none)"
        )
        return described

    def s3_options(self) -> dict[str, Any]:
        """fsspec (s3fs) storage options for ``s3://`` URLs from the S3 settings.

        Credentials are not part of the settings: s3fs finds them in the AWS_* variables, or the
        project adds those of ``FTI_S3_SECRET`` (:mod:`fti.secrets.s3`). See :meth:`s3_object_store_options` for delta-rs.
        """
        options: dict[str, Any] = {}
        client_kwargs: dict[str, Any] = {}
        if self.s3_endpoint_url is not None:
            if self.s3_endpoint_url.startswith("http://") and not self.s3_allow_http:
                from fti.errors import ValidationError

                raise ValidationError(
                    f"the S3 endpoint {_mask(self.s3_endpoint_url)!r} is plain http: set "
                    "FTI_S3_ALLOW_HTTP=true to allow it (test servers, MinIO without TLS) or use https"
                )
            options["endpoint_url"] = self.s3_endpoint_url
        if self.s3_region is not None:
            client_kwargs["region_name"] = self.s3_region
        if client_kwargs:
            options["client_kwargs"] = client_kwargs
        return options

    def s3_object_store_options(self) -> dict[str, str]:
        """The same settings as Rust ``object_store`` options (delta-rs ``storage_options``)."""
        options: dict[str, str] = {}
        if self.s3_endpoint_url is not None:
            options["AWS_ENDPOINT_URL"] = self.s3_endpoint_url
        if self.s3_region is not None:
            options["AWS_REGION"] = self.s3_region
        if self.s3_allow_http:
            options["AWS_ALLOW_HTTP"] = "true"
        return options


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads ``config.toml`` from the home directory: ``home`` if given, else ``FTI_HOME`` or ``./.fti``."""

    def __init__(self, settings_cls: type[BaseSettings], home: str | Path | None = None) -> None:
        super().__init__(settings_cls)
        self._home = home

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data().get(field_name), field_name, False

    def _data(self) -> dict[str, Any]:
        import os

        home = Path(self._home if self._home is not None else os.environ.get("FTI_HOME", ".fti"))
        path = home.expanduser() / "config.toml"
        if not path.is_file():
            return {}
        with path.open("rb") as fh:
            return dict(tomllib.load(fh))

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data().items() if k in self.settings_cls.model_fields}


def _mask(url: str) -> str:
    """Hide the password part of ``scheme://user:password@host``."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


_SECRET_CONF = ("secret", "password", "token", "credential", "access.key", "accesskey")


def _mask_conf(key: str, value: str) -> str:
    """A Spark setting's value for display: credentials (``spark.hadoop.fs.s3a.secret.key``) hidden."""
    return "***" if any(word in key.lower() for word in _SECRET_CONF) else _mask(value)


def load_settings(home: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from the environment and config file; ``home`` and keyword overrides win."""
    from pydantic_settings import SettingsError

    from fti.errors import ValidationError

    if home is not None:
        overrides["home"] = Path(home)
    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: "
            + str(error.get("ctx", {}).get("error", error["msg"]))
            for error in exc.errors()
        )
        raise ValidationError(
            f"invalid fti settings (FTI_* variables, config.toml or arguments): {problems}"
        ) from None
    except SettingsError as exc:  # e.g. an FTI_SPARK_CONF that is not a JSON object
        raise ValidationError(
            f"invalid fti settings: {exc}; dict settings such as FTI_SPARK_CONF take JSON"
        ) from None
