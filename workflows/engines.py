"""Engines: where the one campaign DAG's steps run. An engine is configuration, not a DAG: it says in
which mode dflow drives the DAG, which template (image, resources) each step gets, and which executor
runs each run step.

- `local`: dflow debug mode on this host; every step a local process.
- `slurm`: dflow debug mode on this host (a login node, or anywhere with SSH to one); every run step a
  Slurm batch job through dpdispatcher, with its task category's resources; plan, aggregate and
  publish run here. The store must be one both sides reach (a shared directory, or S3).
- `argo`: dflow default mode; every step a pod in its family's image with its category's resources,
  node selectors, tolerations and retry policy; optionally run steps dispatched to Slurm from pods.
"""

from __future__ import annotations

import json
import secrets
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lambench_core.campaign import Job
from lambench_core.errors import LambenchError
from lambench_core.models.card import ModelCard
from lambench_core.models.family import BASE_IMAGE
from lambench_core.models.registry import families_in_image
from workflows.cluster_config import ClusterConfig, Resources, SlurmSettings

if TYPE_CHECKING:
    from dflow.python import OP, PythonOPTemplate

DEFAULT_IMAGE = "ghcr.io/lambench/base:0.1.0"


class Engine(ABC):
    name: ClassVar[str]
    parallelism: int | None = None  # steps of one workflow running at once (None: the engine's own limit)

    @abstractmethod
    def template(self, op: type[OP], image: str, group: str) -> PythonOPTemplate:
        """The template of `op` in `image` for a resource group (a task category, or 'service')."""

    def image(self, card: ModelCard | None) -> str:
        """The image of a model's run steps (card None: plan, aggregate and publish)."""
        return card.image if card is not None and card.image else DEFAULT_IMAGE

    def run_executor(self, job: Job) -> Any:
        """The executor of a job's run step (None: the engine's own)."""
        return None

    def spec_argument(self, spec_json: str) -> str:
        """How the plan step receives the campaign spec."""
        return spec_json

    def workflow_parameters(self, spec_json: str) -> dict[str, str] | None:
        return None


class LocalEngine(Engine):
    name = "local"

    def template(self, op: type[OP], image: str, group: str) -> PythonOPTemplate:
        from dflow.python import PythonOPTemplate

        # The image matters on a cluster only; in debug mode steps run with this interpreter.
        return PythonOPTemplate(op, image=image, command=[sys.executable], upload_dflow=False)


class SlurmEngine(LocalEngine):
    name = "slurm"

    def __init__(self, settings: SlurmSettings) -> None:
        self.settings = settings
        self.execution = secrets.token_hex(6)

    def run_executor(self, job: Job) -> Any:
        from workflows.slurm import slurm_executor

        return slurm_executor(self.settings, job.instance.category, job.key, self.execution)


class ArgoEngine(Engine):
    name = "argo"

    def __init__(self, config: ClusterConfig, service_image: str, run_steps_on_slurm: bool = False) -> None:
        if run_steps_on_slurm and config.slurm is None:
            raise LambenchError("--executor slurm: the cluster configuration has no 'slurm' section")
        self.config = config
        self.service_image = service_image
        self.slurm = config.slurm if run_steps_on_slurm else None
        self.parallelism = config.argo.parallelism

    def image(self, card: ModelCard | None) -> str:
        if card is None:
            return self.service_image
        return self.config.images.get(card.family, card.image or DEFAULT_IMAGE)

    def template(self, op: type[OP], image: str, group: str) -> PythonOPTemplate:
        from dflow.python import PythonOPTemplate
        from kubernetes.client import V1Toleration

        resources: Resources = self.config.resources_for(group)
        requests = {"cpu": resources.cpu, "memory": resources.memory}
        limits = {"memory": resources.memory}
        if resources.gpus:
            requests[resources.gpu_resource] = str(resources.gpus)
            limits[resources.gpu_resource] = str(resources.gpus)
        tolerations = [V1Toleration(**t.model_dump(exclude_none=True)) for t in resources.tolerations]
        return PythonOPTemplate(
            op,
            image=image,
            command=["python3"],
            upload_dflow=False,
            requests=requests,
            limits=limits,
            # dflow annotates these `Dict[str, str] = None` and `List[V1Toleration] = None`: None is its default.
            node_selector=dict(resources.node_selector) or None,  # type: ignore[arg-type]
            tolerations=tolerations or None,  # type: ignore[arg-type]
            timeout=resources.timeout_seconds,
            envs=self._environment(),
        )

    def _environment(self) -> dict[str, Any]:
        from dflow.op_template import Secret

        s3 = self.config.require_s3()
        return {
            "LAMBENCH_S3_ENDPOINT": s3.endpoint,
            "LAMBENCH_S3_ACCESS_KEY": Secret(name=s3.secret_name, key=s3.access_key_field),
            "LAMBENCH_S3_SECRET_KEY": Secret(name=s3.secret_name, key=s3.secret_key_field),
        }

    def run_executor(self, job: Job) -> Any:
        if self.slurm is None:
            return None
        from workflows.slurm import slurm_executor

        return slurm_executor(self.slurm, job.instance.category, job.key)

    def spec_argument(self, spec_json: str) -> str:
        # Once per manifest, where `lambench status` and `resubmit` read it back.
        return "{{workflow.parameters.spec}}"

    def workflow_parameters(self, spec_json: str) -> dict[str, str] | None:
        return {"spec": spec_json}


def service_image(config: ClusterConfig, cards: list[ModelCard]) -> str:
    if config.service_image:
        return config.service_image
    # The base image (the one of the families registered with image 'base', e.g. dummy and emt)
    # runs the service steps; a campaign's cards name its tag.
    base_families = families_in_image(BASE_IMAGE)
    base = next((card.image for card in cards if card.family in base_families and card.image), None)
    return config.images.get(BASE_IMAGE, base or DEFAULT_IMAGE)


def _local(config: ClusterConfig | None) -> Engine:
    return LocalEngine()


def _slurm(config: ClusterConfig | None) -> Engine:
    if config is None or config.slurm is None:
        raise LambenchError("--engine slurm: the cluster configuration has no 'slurm' section")
    return SlurmEngine(config.slurm)


def read_engine_file(path: Path) -> tuple[str, ClusterConfig | None]:
    """The engine's name and configuration a runner wrote beside its plan (none written: local)."""
    if not path.exists():
        return LocalEngine.name, None
    document = json.loads(path.read_text())
    config = ClusterConfig.model_validate(document["config"]) if document.get("config") else None
    return document["engine"], config


def engine_from_file(path: Path) -> Engine:
    name, config = read_engine_file(path)
    return DRIVEN_ENGINES[name](config)


def write_engine_file(path: Path, name: str, config: ClusterConfig | None) -> None:
    path.write_text(json.dumps({"engine": name, "config": config.model_dump(mode="json") if config else None}))


# Engines that drive the DAG from this host (`lambench run --engine NAME`); Argo is reached through
# `lambench submit`, which needs the campaign's cards for the images.
DRIVEN_ENGINES: dict[str, Callable[[ClusterConfig | None], Engine]] = {"local": _local, "slurm": _slurm}
