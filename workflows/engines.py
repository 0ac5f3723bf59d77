"""Engines: where the one campaign DAG's steps run. An engine is configuration, not a DAG: it says in
which mode dflow drives the DAG, which template (image, resources) each step gets, and which executor
runs each run step.

- `local`: dflow debug mode on this host; every step a local process.
- `slurm`: dflow debug mode on this host (a login node, or anywhere with SSH to one); every run step a
  Slurm batch job through dpdispatcher, with its task category's resources; plan, aggregate and
  publish run here. The store must be one both sides reach (a shared directory, or S3).
- `argo`: dflow default mode; every step a pod in its family's image with its category's resources,
  node selectors, tolerations and retry policy; optionally run steps dispatched to Slurm from pods.

Nothing a user types becomes code. dflow renders each step as a Python script into which it pastes,
inside quotes, its global configuration (the debug work directory, credentials), the step's
temporary directory (under the user's work directory in debug mode) and every parameter value (Argo
substitutes `{{inputs.parameters.NAME}}` into a pod's script the same way). Every engine therefore
encodes every parameter (`Engine.parameter`, see `ops.campaign.encode_parameter`; Argo's workflow
parameter `spec` too), and the engines driven from this host render steps with
`InertPythonOPTemplate`, whose scripts carry the temporary directory and the configuration only as
base64 literals, with dflow's credentials left out (a step process reads them from its own
environment, as dflow itself does). An exported Argo manifest holds no configuration or host path.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dflow.python import PythonOPTemplate

from lambench_core.campaign import Job
from lambench_core.errors import LambenchError
from lambench_core.models.card import ModelCard
from lambench_core.models.family import BASE_IMAGE
from lambench_core.models.registry import families_in_image
from ops.campaign import encode_parameter
from workflows.cluster_config import ClusterConfig, Resources, SlurmSettings
from workflows.engine_file import LOCAL_ENGINE, read_engine_file
from workflows.slurm import SlurmExecutor, slurm_executor

if TYPE_CHECKING:
    from dflow.python import OP

DEFAULT_IMAGE = "ghcr.io/lambench/base:0.1.0"

# dflow's configuration entries that hold credentials (from DFLOW_TOKEN, DFLOW_HTTP_HEADERS,
# DFLOW_S3_ACCESS_KEY, DFLOW_S3_SECRET_KEY, DFLOW_S3_REPO, DFLOW_S3_STORAGE_CLIENT): never written
# into a step script. (The cluster export, workflows.argo._no_credentials, blanks token and S3 keys.)
SECRET_CONFIG_KEYS = frozenset({"token", "http_headers"})
SECRET_S3_CONFIG_KEYS = frozenset({"access_key", "secret_key", "repo", "storage_client"})
_PWD = "$(pwd)"  # DispatcherExecutor (map_tmp_dir) renders "$(pwd)/tmp" for the batch job's directory
_TRIPLE = "'" * 3
# Appended to a step script: once its outputs are written the step is done, so it ends without
# the interpreter's teardown (about a second with torch and a model package loaded). Output is
# flushed first. Failures still leave through dflow's sys.exit.
STEP_END = (
    "\nif __name__ == '__main__':\n    import sys as _lambench_sys\n"
    "    _lambench_sys.stdout.flush()\n    _lambench_sys.stderr.flush()\n    os._exit(0)\n"
)


def _b64_literal(data: bytes) -> str:
    """A Python expression for `data` whose literal text is only [A-Za-z0-9+/=]."""
    return f"_lambench_b64decode('{base64.b64encode(data).decode('ascii')}')"


def _config_line(target: str, values: dict[str, Any], secret: frozenset[str]) -> str:
    from dflow import jsonpickle

    kept = {key: value for key, value in values.items() if key not in secret}
    text = jsonpickle.dumps(kept).encode("utf-8", "surrogatepass")
    return f"{target}.update(jsonpickle.loads({_b64_literal(text)}.decode('utf-8', 'surrogatepass')))"


def inert_step_script(script: str, token: str, tmp_root: str) -> str:
    """dflow's step script, rendered with `token` as its temporary directory, made inert: each quoted
    literal that starts with `token` becomes `(_lambench_tmp_root + '<dflow's suffix>')`, with
    `_lambench_tmp_root` decoded from base64, and the two lines that load dflow's global
    configuration load it from base64, credentials left out. Raises when dflow's script does not
    have the shape this relies on (a dflow upgrade), rather than write user text into it."""
    from dflow import config, s3_config

    lines = script.split("\n")
    replaced = {"config": 0, "s3_config": 0}
    for index, line in enumerate(lines):
        for target, values, secret in (
            ("config", config, SECRET_CONFIG_KEYS),
            ("s3_config", s3_config, SECRET_S3_CONFIG_KEYS),
        ):
            # dflow writes each as one line: JSON holds no raw newline.
            if line.startswith(f"{target}.update(jsonpickle.loads(r{_TRIPLE}"):
                lines[index] = _config_line(target, values, secret)
                replaced[target] += 1
    if replaced != {"config": 1, "s3_config": 1}:
        raise RuntimeError(f"dflow's step script changed shape (configuration lines found: {replaced})")
    script = "\n".join(lines)
    # dflow's own suffix after the directory: "/inputs/parameters/...", "/outputs/success_tag", "".
    quoted = re.compile("r?'" + re.escape(token) + r"([^'\\\n{}]*)'")
    script = quoted.sub(lambda match: f"(_lambench_tmp_root + '{match.group(1)}')", script)
    if token in script:
        raise RuntimeError("dflow's step script changed shape: its temporary directory is where it cannot be encoded")
    if tmp_root.startswith(_PWD):
        root = f"os.getcwd() + os.fsdecode({_b64_literal(os.fsencode(tmp_root[len(_PWD) :]))})"
    else:
        root = f"os.fsdecode({_b64_literal(os.fsencode(tmp_root))})"
    header = f"import os\nfrom base64 import b64decode as _lambench_b64decode\n_lambench_tmp_root = {root}\n"
    script = header + script + STEP_END
    compile(script, "<dflow step script>", "exec")  # what was pasted is data: the text still parses
    return script


class InertPythonOPTemplate(PythonOPTemplate):
    """A PythonOPTemplate whose rendered scripts hold no user text and no credential."""

    def render_script(self) -> None:
        real = self.tmp_root
        token = f"/LAMBENCH{secrets.token_hex(8).upper()}TMPROOT"
        self.tmp_root = token
        try:
            super().render_script()
        finally:
            self.tmp_root = real
        if self.script is None:
            raise RuntimeError("dflow rendered no step script")
        self.script = inert_step_script(self.script, token, real)


class InertSlurmExecutor(SlurmExecutor):
    """The Slurm executor of the driven engine: its step script also loads the machine, resources
    and task (the work directory, prelude and flags: user text) from base64."""

    def render(self, template):  # noqa: ANN001, ANN201 (dflow's types)
        rendered = super().render(template)
        if getattr(rendered, "script", None):
            rendered.script = inert_json_literals(rendered.script)
        return rendered


_JSON_LITERAL = re.compile(r"^(?P<head>[A-Za-z_][\w.]* = [\w.]+\(json\.loads\()r'(?P<json>.*)'(?P<tail>\)+)$")


def inert_json_literals(script: str) -> str:
    """dflow's DispatcherExecutor script loads the machine, resources and task (the Slurm work
    directory, prelude, flags: user text) with `x = X.load_from_dict(json.loads(r'<JSON>'))`, one
    line each: the JSON moves into base64 (JSON holds no raw newline, so the line's end is the
    literal's end)."""
    lines = script.split("\n")
    for index, line in enumerate(lines):
        match = _JSON_LITERAL.match(line)
        if match is not None:
            data = base64.b64encode(match.group("json").encode("utf-8", "surrogatepass")).decode("ascii")
            lines[index] = (
                f"{match.group('head')}__import__('base64').b64decode('{data}')"
                f".decode('utf-8', 'surrogatepass'){match.group('tail')}"
            )
    return "\n".join(lines)


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
        return self.parameter(spec_json)

    def parameter(self, value: str) -> str:
        """A step parameter's value as this engine hands it to dflow: encoded, inert in the step's
        script."""
        return encode_parameter(value)

    def workflow_parameters(self, spec_json: str) -> dict[str, str] | None:
        return None


class LocalEngine(Engine):
    name = LOCAL_ENGINE

    def template(self, op: type[OP], image: str, group: str) -> PythonOPTemplate:
        # The image matters on a cluster only; in debug mode steps run with this interpreter.
        return InertPythonOPTemplate(op, image=image, command=[sys.executable], upload_dflow=False)


class SlurmEngine(LocalEngine):
    name = "slurm"

    def __init__(self, settings: SlurmSettings) -> None:
        self.settings = settings
        self.execution = secrets.token_hex(6)

    def run_executor(self, job: Job) -> Any:
        executor = slurm_executor(self.settings, job.instance.category, job.key, self.execution)
        executor.__class__ = InertSlurmExecutor  # a subclass without state of its own
        return executor


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
        # Argo substitutes `{{workflow.parameters.spec}}` into the plan pod's script as text, like
        # every other parameter: encoded too (`status` and `resubmit` decode it).
        return {"spec": encode_parameter(spec_json)}


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


def engine_from_file(path: Path) -> Engine:
    name, config = read_engine_file(path)
    return DRIVEN_ENGINES[name](config)


# Engines that drive the DAG from this host (`lambench run --engine NAME`); Argo is reached through
# `lambench submit`, which needs the campaign's cards for the images.
DRIVEN_ENGINES: dict[str, Callable[[ClusterConfig | None], Engine]] = {"local": _local, "slurm": _slurm}
