"""Every environment variable lambench reads, read in this one place and validated once.

  LAMBENCH_DATA_DIR                where fetched datasets and their registry live (default ~/.cache/lambench/data)
  LAMBENCH_WEIGHTS_DIR             where downloaded model weights live (default ~/.cache/lambench/weights)
  LAMBENCH_ALLOW_UNPINNED_WEIGHTS  1: load downloaded weights whose card pins no sha256 (default 0)
  LAMBENCH_S3_ENDPOINT             host[:port] or http(s)://host[:port] of the S3 store (default s3.amazonaws.com)
  LAMBENCH_S3_ACCESS_KEY / LAMBENCH_S3_SECRET_KEY (else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
  LAMBENCH_S3_REGION               optional
  LAMBENCH_S3_TIMEOUT              seconds to connect and between bytes of an S3 answer (default 60)
  SSL_CERT_FILE                    CA bundle for https endpoints (default: certifi's)
The cluster configuration's overrides (LAMBENCH_CLUSTER__SECTION__FIELD) are read with that
configuration (workflows/cluster_config.py); other LAMBENCH_* names are left alone.

`settings()` reads the environment afresh on every call (a test or an `env VAR=...` prefix changes it)
and turns a bad value into one InputError naming the variable. The `lambench` command calls it before
any command runs, so a bad value stops every command at once, with exit code 2 and one line.
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambench_core.errors import InputError

DATA_DIR_ENV = "LAMBENCH_DATA_DIR"
WEIGHTS_DIR_ENV = "LAMBENCH_WEIGHTS_DIR"
ALLOW_UNPINNED_ENV = "LAMBENCH_ALLOW_UNPINNED_WEIGHTS"
S3_ENDPOINT_ENV = "LAMBENCH_S3_ENDPOINT"
S3_ACCESS_KEY_ENV = "LAMBENCH_S3_ACCESS_KEY"
S3_SECRET_KEY_ENV = "LAMBENCH_S3_SECRET_KEY"
S3_REGION_ENV = "LAMBENCH_S3_REGION"
S3_TIMEOUT_ENV = "LAMBENCH_S3_TIMEOUT"
SECRET_VARIABLES = frozenset(
    {S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
)

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+$")


def _folder(value: object) -> object:
    if isinstance(value, str):
        if not value:
            raise ValueError("is empty: give a folder or unset it")
        if any(unicodedata.category(char) == "Cc" for char in value):
            raise ValueError("holds a control character")
    return value


def _empty_is_unset(value: object) -> object:
    return None if value == "" else value


class Settings(BaseSettings):
    """The validated environment; field names are internal, the variables are the aliases."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    data_dir: Path | None = Field(default=None, validation_alias=DATA_DIR_ENV)
    weights_dir: Path | None = Field(default=None, validation_alias=WEIGHTS_DIR_ENV)
    allow_unpinned_weights: bool = Field(default=False, validation_alias=ALLOW_UNPINNED_ENV)
    s3_endpoint: str = Field(default="s3.amazonaws.com", validation_alias=S3_ENDPOINT_ENV)
    s3_access_key: SecretStr | None = Field(default=None, validation_alias=S3_ACCESS_KEY_ENV)
    s3_secret_key: SecretStr | None = Field(default=None, validation_alias=S3_SECRET_KEY_ENV)
    aws_access_key_id: SecretStr | None = Field(default=None, validation_alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: SecretStr | None = Field(default=None, validation_alias="AWS_SECRET_ACCESS_KEY")
    s3_region: str | None = Field(default=None, validation_alias=S3_REGION_ENV)
    s3_timeout: float = Field(default=60.0, gt=0, allow_inf_nan=False, validation_alias=S3_TIMEOUT_ENV)
    ssl_cert_file: Path | None = Field(default=None, validation_alias="SSL_CERT_FILE")

    _check_folders = field_validator("data_dir", "weights_dir", mode="before")(_folder)
    _unset_when_empty = field_validator(
        "s3_access_key", "s3_secret_key", "aws_access_key_id", "aws_secret_access_key", "s3_region", "ssl_cert_file",
        mode="before",
    )(_empty_is_unset)

    @field_validator("allow_unpinned_weights", mode="before")
    @classmethod
    def _one_or_zero(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() not in ("0", "1", "true", "false", "yes", "no"):
            raise ValueError("must be 1 or 0")
        return value

    @field_validator("s3_timeout", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise ValueError("must be a finite number of seconds > 0") from None
            if not math.isfinite(number) or number <= 0:
                raise ValueError("must be a finite number of seconds > 0")
        return value

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        host = value
        if "://" in value:
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or parsed.path.strip("/") or parsed.query:
                raise ValueError("must be host[:port] or http(s)://host[:port]")
            host = parsed.netloc
        if not _HOST_PORT.fullmatch(host):
            raise ValueError("must be host[:port] or http(s)://host[:port]")
        return value

    @property
    def data_folder(self) -> Path:
        return (self.data_dir or Path.home() / ".cache" / "lambench" / "data").expanduser()

    @property
    def weights_folder(self) -> Path:
        return (self.weights_dir or Path.home() / ".cache" / "lambench" / "weights").expanduser()

    @property
    def s3_host(self) -> tuple[str, bool]:
        """(host:port, https?) of the S3 endpoint."""
        if "://" in self.s3_endpoint:
            parsed = urlparse(self.s3_endpoint)
            return parsed.netloc, parsed.scheme == "https"
        return self.s3_endpoint, True

    @property
    def s3_credentials(self) -> tuple[str | None, str | None]:
        access = self.s3_access_key or self.aws_access_key_id
        secret = self.s3_secret_key or self.aws_secret_access_key
        return (
            access.get_secret_value() if access else None,
            secret.get_secret_value() if secret else None,
        )


def settings() -> Settings:
    """The environment, read now; a bad value is one InputError naming the variable (never its
    value when it is a credential)."""
    try:
        return Settings()
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = str(problem["loc"][0]) if problem["loc"] else "environment"
        message = problem["msg"].removeprefix("Value error, ")
        shown = "" if name in SECRET_VARIABLES else f" (got {problem.get('input')!r})"
        raise InputError(f"environment variable {name}", None, message + shown) from None
