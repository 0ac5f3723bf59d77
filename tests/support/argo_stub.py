"""ArgoServerStub: a STUB of the Argo Server REST API, for tests only (no Kubernetes can run here).

It answers, on 127.0.0.1, the requests dflow's Workflow and the argo-workflows client under it make
for lambench (see workflows/argo_client.py):

- `POST /api/v1/workflows/{ns}` body `{"workflow": ...}`         dflow Workflow.submit()
- `GET  /api/v1/workflows/{ns}/{name}[?fields=...]`              dflow Workflow.query()
- `GET  /api/v1/archived-workflows/{uid}`                        dflow's query() after a 404 (always 404)
- `PUT  /api/v1/workflows/{ns}/{name}/retry` (no body)           dflow Workflow.retry()
- `POST /api/v1/cron-workflows/{ns}` body `{"cronWorkflow": ...}` CronWorkflowServiceApi

It validates every posted manifest with the same strict schema as `lambench export`, records each
request (method, path with query, headers, body), checks the bearer token when `token` is set (401
otherwise, as Argo does), and lets a test set the phases of a workflow's nodes. It schedules nothing
and runs nothing.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ops.campaign import decode_parameter
from workflows.argo import validate_manifest


class ArgoServerStub:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.workflows: dict[str, dict[str, Any]] = {}
        self.cron_workflows: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def _reply(self, code: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                body = self._body() if method in ("POST", "PUT") else None
                stub.requests.append((method, self.path, dict(self.headers), body))
                if stub.token is not None and self.headers.get("Authorization") != f"Bearer {stub.token}":
                    code, payload = 401, {"code": 16, "message": "token not valid"}
                else:
                    code, payload = stub.route(method, self.path.split("?")[0], body)
                self._reply(code, payload)

            def do_GET(self) -> None:  # noqa: N802 (http.server's names)
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ArgoServerStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")  # api v1 workflows NAMESPACE [NAME [retry]]
        if parts[:3] == ["api", "v1", "workflows"] and method == "POST" and len(parts) == 4:
            return self._create(body["workflow"], "Workflow")
        if parts[:3] == ["api", "v1", "cron-workflows"] and method == "POST" and len(parts) == 4:
            return self._create(body["cronWorkflow"], "CronWorkflow")
        if parts[:3] == ["api", "v1", "archived-workflows"] and method == "GET" and len(parts) == 4:
            return 404, {"code": 5, "message": "not found"}  # the stub archives nothing
        if parts[:3] == ["api", "v1", "workflows"] and len(parts) >= 5:
            workflow = self.workflows.get(parts[4])
            if workflow is None:
                return 404, {"code": 5, "message": f'workflows.argoproj.io "{parts[4]}" not found'}
            if method == "GET" and len(parts) == 5:
                return 200, workflow
            if method == "PUT" and parts[5:] == ["retry"]:
                if workflow["status"]["phase"] not in ("Failed", "Error"):
                    return 409, {"code": 9, "message": "workflow must be Failed/Error to retry"}
                # Argo's default (restartSuccessful false): only failed nodes rerun.
                for node in workflow["status"]["nodes"].values():
                    if node["phase"] in ("Failed", "Error"):
                        node["phase"] = "Pending"
                workflow["status"]["phase"] = "Running"
                return 200, workflow
        return 404, {"message": f"the stub does not serve {method} {path}"}

    def _create(self, manifest: dict[str, Any], kind: str) -> tuple[int, Any]:
        try:
            validate_manifest(manifest)
        except Exception as exc:
            return 400, {"message": str(exc)}
        stored = json.loads(json.dumps(manifest))
        metadata = stored["metadata"]
        metadata["name"] = metadata.get("name") or f"{metadata['generateName']}{secrets.token_hex(3)}"
        metadata["uid"] = str(uuid.uuid4())
        if kind == "CronWorkflow":
            self.cron_workflows[metadata["name"]] = stored
        else:
            stored["status"] = {"phase": "Pending", "nodes": {}}
            self.workflows[metadata["name"]] = stored
        return 200, stored

    def finish(self, name: str, failed_keys: set[str]) -> None:
        """Pretend every run step ran: those whose job key is in `failed_keys` failed, the rest succeeded."""
        workflow = self.workflows[name]
        steps = next(t for t in workflow["spec"]["templates"] if "steps" in t)["steps"]
        nodes = {}
        for group in steps:
            for step in group:
                parameters = step.get("arguments", {}).get("parameters", [])
                key = next((decode_parameter(p["value"]) for p in parameters if p["name"] == "job_key"), None)
                phase = "Failed" if key in failed_keys else "Succeeded"
                node_id = f"{name}-{len(nodes)}"
                nodes[node_id] = {
                    "id": node_id,
                    "displayName": step["name"],
                    "type": "Retry" if key else "Pod",
                    "phase": phase,
                    "message": "FatalError: model x on y: weights not found" if phase == "Failed" else None,
                    "inputs": {"parameters": parameters},
                }
        workflow["status"] = {"phase": "Failed" if failed_keys else "Succeeded", "nodes": nodes}
