"""Submit, query, retry and schedule campaigns on Argo through dflow's own Workflow (and the
argo-workflows client underneath it), never a hand-written HTTP client.

- submit: dflow's `Workflow.submit()`, posting the manifest `workflows.argo.build_workflow` built and
  `validate_manifest` checked, unchanged (dflow would otherwise render its own steps);
- get: dflow's `Workflow(id=name).query()`, as the dict Argo returned;
- retry: dflow's `Workflow(id=name).retry()` (Argo's default: only failed steps rerun);
- create_cron: dflow has no CronWorkflow helper, so the argo-workflows client's
  `CronWorkflowServiceApi.create_cron_workflow` on the ApiClient dflow's Workflow made.

dflow reads the server, namespace and token from its global `config`: each call sets them for its
own duration only (`_dflow_session`) and restores the config afterwards, so the bearer token is sent
in the Authorization header and never reaches a manifest built later. It is read from the environment
variable the configuration names, at call time.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lambench_core.errors import LambenchError
from ops.campaign import decode_parameter
from workflows.cluster_config import ArgoSettings

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15
READ_TIMEOUT_S = 60


@dataclass(frozen=True)
class StepState:
    name: str
    phase: str
    job_key: str | None
    message: str | None


class ArgoClient:
    def __init__(self, settings: ArgoSettings, environ: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.environ = dict(os.environ if environ is None else environ)

    @property
    def _namespace(self) -> str:
        return self.settings.namespace

    def _token(self) -> str | None:
        token = self.environ.get(self.settings.token_env) or None
        return token.removeprefix("Bearer ").strip() if token else None  # dflow adds "Bearer "

    @contextlib.contextmanager
    def _dflow_session(self, what: str) -> Iterator[None]:
        """dflow's config points at this server for the duration of one call; errors become one line."""
        import urllib3
        from argo.workflows.client.exceptions import ApiException
        from dflow import config, s3_config

        saved = dict(config), dict(s3_config)
        config.update(
            {
                "host": self.settings.server,
                "namespace": self._namespace,
                "token": self._token(),
                "mode": "default",  # the local engine switches dflow to debug mode: not here
            }
        )
        # Without this, a DFLOW_S3_REPO_KEY in the environment makes Workflow() read a ConfigMap from
        # Kubernetes; talking to the Argo Server needs no artifact repository.
        s3_config["repo_key"] = None
        try:
            yield
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise LambenchError(f"Argo server {self.settings.server}: {what}: {_one_line(exc)}") from None
        finally:
            config.clear()
            config.update(saved[0])
            s3_config.clear()
            s3_config.update(saved[1])

    def _workflow(self, workflow_id: str | None = None, manifest: dict[str, Any] | None = None):  # noqa: ANN202 (dflow type)
        """A dflow Workflow on the session's server, its argo client verifying TLS as `settings` asks."""
        from argo.workflows.client import rest
        from dflow import Workflow

        workflow = (_built_workflow(manifest) if manifest is not None else Workflow)(id=workflow_id)
        api_client = workflow.api_instance.api_client
        # dflow's get_argo_api_client never verifies TLS and sets no timeout (a silent server hangs).
        api_client.configuration.verify_ssl = self.settings.verify_tls
        api_client.rest_client = _timed_rest_client(rest.RESTClientObject)(api_client.configuration)
        return workflow

    def ui_link(self, name: str) -> str:
        return f"{(self.settings.ui_url or self.settings.server).rstrip('/')}/workflows/{self._namespace}/{name}"

    def submit(self, manifest: dict[str, Any]) -> str:
        what = f"submitting workflow {_manifest_name(manifest)} to namespace {self._namespace}"
        with self._dflow_session(what):
            workflow = self._workflow(manifest=manifest)
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):  # dflow prints the id and its own link; we print ours
                created = workflow.submit()
            logger.debug("dflow: %s", printed.getvalue().strip())
            return str(created.metadata.name)

    def get(self, name: str) -> dict[str, Any]:
        # dflow's query() looks in the workflow archive when the cluster no longer has the workflow.
        with self._dflow_session(f"workflow {name} in namespace {self._namespace} (live, then archived)"):
            found = self._workflow(workflow_id=name).query().recover()
        for added in ("id", "uid"):  # dflow's ArgoWorkflow adds these beside Argo's own fields
            found.pop(added, None)
        return found

    def retry(self, name: str) -> None:
        """Rerun only the failed steps of a finished workflow (succeeded steps keep their outputs)."""
        with self._dflow_session(f"retrying workflow {name} in namespace {self._namespace}"):
            self._workflow(workflow_id=name).retry()

    def create_cron(self, manifest: dict[str, Any]) -> str:
        what = f"creating cron workflow {_manifest_name(manifest)} in namespace {self._namespace}"
        with self._dflow_session(what):
            from argo.workflows.client import CronWorkflowServiceApi, V1alpha1CreateCronWorkflowRequest
            from dflow import config

            api_client = self._workflow().api_instance.api_client
            for header, value in (config["http_headers"] or {}).items():  # as dflow sends on its own calls
                api_client.set_default_header(header, value)
            response = CronWorkflowServiceApi(api_client).create_cron_workflow(
                self._namespace,
                V1alpha1CreateCronWorkflowRequest(cron_workflow=manifest),
                _preload_content=False,  # the dict as Argo returns it, not the generated model
            )
            return str(json.loads(response.data)["metadata"]["name"])


def _built_workflow(manifest: dict[str, Any]) -> type:
    """dflow's Workflow around a manifest that is already built: its own submit() posts it unchanged."""
    from dflow import Workflow

    class BuiltWorkflow(Workflow):
        def convert_to_argo(self, reuse_step: Any = None) -> dict[str, Any]:
            return manifest

    return BuiltWorkflow


def _timed_rest_client(base: type) -> type:
    """The argo client's REST client, with a default (connect, read) timeout on every request."""

    class TimedRESTClient(base):
        def request(self, method: str, url: str, *args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
            timeout = _request_timeout or (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
            return super().request(method, url, *args, _request_timeout=timeout, **kwargs)

    return TimedRESTClient


def _manifest_name(manifest: dict[str, Any]) -> str:
    metadata = manifest.get("metadata") or {}
    return str(metadata.get("name") or f"{metadata.get('generateName', '')}*")


def _one_line(exc: Exception) -> str:
    """An HTTP error as `HTTP 404 Not Found: <Argo's message>`; a network error as `unreachable (...)`."""
    import urllib3
    from argo.workflows.client.exceptions import ApiException

    if isinstance(exc, ApiException) and exc.status:
        body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
        try:
            detail = json.loads(body).get("message", body)
        except (ValueError, AttributeError):
            detail = body
        text = f"HTTP {exc.status} {exc.reason}: {detail}"
    elif isinstance(exc, ApiException):  # status 0: a TLS failure
        text = f"unreachable ({exc.reason})"
    elif isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        text = f"unreachable ({exc.reason})"
    else:
        text = f"unreachable ({exc})"
    return " ".join(text.split())[:400]


def run_steps(workflow: dict[str, Any]) -> list[StepState]:
    """The run steps of a workflow's status: pod nodes that carry a job key, latest try per step."""
    found: dict[str, StepState] = {}
    for node in (workflow.get("status") or {}).get("nodes", {}).values():
        if node.get("type") not in ("Pod", "Retry"):
            continue
        parameters = {p["name"]: p.get("value") for p in (node.get("inputs") or {}).get("parameters", [])}
        encoded_key = parameters.get("job_key")
        if encoded_key is None:
            continue
        key = decode_parameter(str(encoded_key))
        name = re.sub(r"\(\d+\)$", "", str(node.get("displayName", node.get("name", ""))))  # "run-3(1)": a try
        state = StepState(name=name, phase=str(node.get("phase", "Unknown")), job_key=key, message=node.get("message"))
        # A Retry node summarizes its tries: it wins over the individual pods.
        if node.get("type") == "Retry" or name not in found:
            found[name] = state
    return sorted(found.values(), key=lambda s: s.name)


def workflow_spec_parameter(workflow: dict[str, Any]) -> str:
    for parameter in workflow.get("spec", {}).get("arguments", {}).get("parameters", []):
        if parameter.get("name") == "spec":
            return decode_parameter(str(parameter["value"]))
    raise LambenchError(
        f"workflow {workflow.get('metadata', {}).get('name')}: no 'spec' parameter (not a lambench run)"
    )
