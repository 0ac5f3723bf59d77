"""Cluster configuration: a YAML file plus environment overrides, validated before anything is built.

Overrides use `LAMBENCH_CLUSTER__SECTION__FIELD=value` (values parsed as YAML, so numbers, lists and
mappings work), e.g. `LAMBENCH_CLUSTER__ARGO__NAMESPACE=bench` or
`LAMBENCH_CLUSTER__RESOURCES__FORCE_FIELD__GPUS=2`. Secrets never live here: the Argo token is read
from the environment variable named by `argo.token_env`, and pods read S3 keys from the Kubernetes
Secret named by `s3.secret_name`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lambench_core.categories import Category
from lambench_core.errors import LambenchError

ENV_PREFIX = "LAMBENCH_CLUSTER__"
# Pods of plan, aggregate and publish: not a task category, but resourced like one.
SERVICE = "service"
RESOURCE_GROUPS = (*(category.value for category in Category), SERVICE)


class ArgoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: str = Field(default="https://argo-server.argo:2746", description="Argo Server base URL")
    namespace: str = "argo"
    ui_url: str | None = Field(default=None, description="Base URL of the Argo UI, if not the server's")
    token_env: str = Field(default="ARGO_TOKEN", description="Environment variable holding the bearer token")
    verify_tls: bool = True
    service_account: str = "argo"
    parallelism: int = Field(default=20, ge=1, description="Pods of one workflow running at once")

    @field_validator("server")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class S3Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(description="S3 endpoint as pods see it: host:port or http(s)://host:port")
    bucket: str = Field(min_length=3)
    prefix: str = "lambench"
    secret_name: str = Field(default="lambench-s3", description="Kubernetes Secret with the S3 keys")
    access_key_field: str = "accesskey"
    secret_key_field: str = "secretkey"

    @property
    def store_url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}" if self.prefix.strip("/") else f"s3://{self.bucket}"


class Toleration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Resources(BaseModel):
    """What one step of a task category asks of the cluster, and how it is retried."""

    model_config = ConfigDict(extra="forbid")

    gpus: int = Field(default=0, ge=0)
    gpu_resource: str = "nvidia.com/gpu"
    cpu: str = "2"
    memory: str = "8Gi"
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    timeout_seconds: int = Field(default=4 * 3600, ge=60)
    transient_retries: int = Field(default=2, ge=0, description="Retries after a TransientError (exit code 1)")
    infrastructure_retries: int = Field(default=2, ge=0, description="Retries after a pod error: preemption, node loss")
    oom_retry_memory: str | None = Field(
        default=None, description="Retry an OOM-killed step (exit 137) once with this much memory"
    )
    oom_retry_node_selector: dict[str, str] | None = Field(
        default=None, description="Node selector of that retry (e.g. a bigger node pool)"
    )


def _default_resources() -> dict[str, Resources]:
    gpu = Resources(gpus=1, cpu="4", memory="32Gi")
    return {category.value: gpu for category in Category} | {
        SERVICE: Resources(cpu="2", memory="8Gi", timeout_seconds=3600)
    }


SLURM_TIME = r"^(\d+-)?\d+:\d\d:\d\d$"


class SlurmResources(BaseModel):
    """What one run step of a task category asks of Slurm. Unset fields take the section's defaults."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = Field(default=None, description="Partition (default: the cluster's default one)")
    time_limit: str | None = Field(default=None, pattern=SLURM_TIME, description="[D-]HH:MM:SS")
    cpus: int | None = Field(default=None, ge=1, description="CPUs of the job")
    memory: str | None = Field(default=None, pattern=r"^\d+[KMGT]?$", description="--mem, e.g. 16G")
    gpus: int | None = Field(default=None, ge=0, description="GPUs (--gres=gpu:N)")
    gres: str | None = Field(default=None, description="--gres as written, e.g. gpu:a100:1 (overrides gpus)")
    account: str | None = None
    qos: str | None = None
    prelude: list[str] | None = Field(default=None, description="Shell lines before the step (module load ...)")
    custom_flags: list[str] | None = Field(default=None, description="Extra '#SBATCH ...' lines")
    retries: int | None = Field(default=None, ge=0, description="Resubmissions after a transient failure")

    def over(self, base: SlurmResources) -> SlurmResources:
        return base.model_copy(update=self.model_dump(exclude_none=True))


def _default_slurm_resources() -> SlurmResources:
    return SlurmResources(time_limit="04:00:00", cpus=2, memory="8G", gpus=0, prelude=[], custom_flags=[], retries=2)


class SlurmSettings(BaseModel):
    """Run steps as Slurm batch jobs through dflow's DispatcherExecutor (dpdispatcher): with
    `context: local` when lambench runs on a login node (or any host that can call sbatch), with
    `context: ssh` from elsewhere. The work directory must be on a filesystem the nodes share."""

    model_config = ConfigDict(extra="forbid")

    context: Literal["local", "ssh"] = "local"
    host: str | None = Field(default=None, description="Login node (ssh context)")
    username: str | None = None
    port: int = 22
    key_filename: str | None = None
    work_root: str = Field(
        default="lambench-work/slurm", description="Where batch jobs run: a directory on the shared filesystem"
    )
    python: str | None = Field(default=None, description="Python on the nodes (default: this interpreter)")
    check_interval: int = Field(default=3, ge=1, description="Seconds between two looks at the queue")
    defaults: SlurmResources = Field(default_factory=_default_slurm_resources)
    resources: dict[Category, SlurmResources] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ssh_needs_a_host(self) -> SlurmSettings:
        if self.context == "ssh" and not (self.host and self.username):
            raise ValueError("context 'ssh' needs 'host' and 'username'")
        return self

    def resources_for(self, category: Category) -> SlurmResources:
        base = self.defaults.over(_default_slurm_resources())
        extra = self.resources.get(category)
        return extra.over(base) if extra else base


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store: str | None = Field(
        default=None, description="Result store every step reaches: a shared directory or s3:// URL (default: s3)"
    )
    argo: ArgoSettings = Field(default_factory=ArgoSettings)
    s3: S3Settings | None = None
    images: dict[str, str] = Field(default_factory=dict, description="Model family → image (default: the card's)")
    service_image: str | None = Field(default=None, description="Image of plan/aggregate/publish (default: base)")
    resources: dict[str, Resources] = Field(default_factory=_default_resources)
    slurm: SlurmSettings | None = None

    @field_validator("resources")
    @classmethod
    def _categories(cls, value: dict[str, Resources]) -> dict[str, Resources]:
        unknown = sorted(set(value) - set(RESOURCE_GROUPS))
        if unknown:
            raise ValueError(f"unknown categories {unknown} (known: {', '.join(RESOURCE_GROUPS)})")
        return _default_resources() | value

    def resources_for(self, category: str) -> Resources:
        return self.resources.get(category) or self.resources[SERVICE]

    @property
    def store_url(self) -> str:
        if self.store:
            return self.store
        if self.s3 is None:
            raise LambenchError("the cluster configuration names no result store: set 'store' or 's3'")
        return self.s3.store_url

    def require_s3(self) -> S3Settings:
        if self.s3 is None:
            raise LambenchError("Argo needs an S3 store: the cluster configuration has no 's3' section")
        return self.s3


def _apply_override(document: dict[str, Any], path: list[str], value: Any) -> None:
    node = document
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def environment_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise LambenchError(f"environment {name}: not a YAML value ({exc})") from None
        _apply_override(overrides, path, value)
    return overrides


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_cluster_config(path: Path | None, environ: Mapping[str, str] | None = None) -> ClusterConfig:
    """The file (if any) with the environment's overrides on top; one clear line on bad input."""
    environ = os.environ if environ is None else environ
    document: dict[str, Any] = {}
    source = "environment"
    if path is not None:
        source = str(path)
        if not path.is_file():
            raise LambenchError(f"{path}: no such cluster configuration file")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise LambenchError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise LambenchError(f"{path}: expected a mapping at the top level")
        document = loaded
    overrides = environment_overrides(environ)
    try:
        return ClusterConfig.model_validate(_merge(document, overrides))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        env_name = ENV_PREFIX + "__".join(str(part).upper() for part in error["loc"])
        origin = f"{source} (or {env_name})" if overrides else source
        raise LambenchError(f"{origin}: field {field!r}: {error['msg']}") from None
