"""A small client of the Argo Server REST API: submit, get, retry, and create CronWorkflows.

The bearer token is read from the environment variable the configuration names, at call time; it
is sent in a header and never written anywhere.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from lambench_core.errors import LambenchError
from workflows.cluster_config import ArgoSettings


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

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.settings.server}{path}"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        token = self.environ.get(self.settings.token_env)
        if token:
            headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        context = None if self.settings.verify_tls else ssl._create_unverified_context()  # noqa: S323 (asked for)
        try:
            with urllib.request.urlopen(request, timeout=60, context=context) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise LambenchError(f"Argo server {url}: HTTP {exc.code} {exc.reason}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise LambenchError(f"Argo server {url}: unreachable ({exc})") from None

    @property
    def _namespace(self) -> str:
        return self.settings.namespace

    def ui_link(self, name: str) -> str:
        return f"{(self.settings.ui_url or self.settings.server).rstrip('/')}/workflows/{self._namespace}/{name}"

    def submit(self, manifest: dict[str, Any]) -> str:
        created = self._request("POST", f"/api/v1/workflows/{self._namespace}", {"workflow": manifest})
        return str(created["metadata"]["name"])

    def get(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/workflows/{self._namespace}/{name}")

    def retry(self, name: str) -> dict[str, Any]:
        """Rerun only the failed steps of a finished workflow (succeeded steps keep their outputs)."""
        body = {"name": name, "namespace": self._namespace, "restartSuccessful": False, "nodeFieldSelector": ""}
        return self._request("PUT", f"/api/v1/workflows/{self._namespace}/{name}/retry", body)

    def create_cron(self, manifest: dict[str, Any]) -> str:
        created = self._request("POST", f"/api/v1/cron-workflows/{self._namespace}", {"cronWorkflow": manifest})
        return str(created["metadata"]["name"])


def run_steps(workflow: dict[str, Any]) -> list[StepState]:
    """The run steps of a workflow's status: pod nodes that carry a job key, latest try per step."""
    found: dict[str, StepState] = {}
    for node in (workflow.get("status") or {}).get("nodes", {}).values():
        if node.get("type") not in ("Pod", "Retry"):
            continue
        parameters = {p["name"]: p.get("value") for p in (node.get("inputs") or {}).get("parameters", [])}
        key = parameters.get("job_key")
        if key is None:
            continue
        name = re.sub(r"\(\d+\)$", "", str(node.get("displayName", node.get("name", ""))))  # "run-3(1)": a try
        state = StepState(name=name, phase=str(node.get("phase", "Unknown")), job_key=key, message=node.get("message"))
        # A Retry node summarizes its tries: it wins over the individual pods.
        if node.get("type") == "Retry" or name not in found:
            found[name] = state
    return sorted(found.values(), key=lambda s: s.name)


def workflow_spec_parameter(workflow: dict[str, Any]) -> str:
    for parameter in workflow.get("spec", {}).get("arguments", {}).get("parameters", []):
        if parameter.get("name") == "spec":
            return str(parameter["value"])
    raise LambenchError(
        f"workflow {workflow.get('metadata', {}).get('name')}: no 'spec' parameter (not a lambench run)"
    )
