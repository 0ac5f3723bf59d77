"""submit, status, retry, resubmit and schedule against ArgoServerStub — a STUB of the Argo Server
REST API (tests/support/argo_stub.py): no Kubernetes or Argo can run here. The client talks to it through
dflow's Workflow and the argo-workflows client under it. What the stub checks: the requests' paths,
bodies and bearer token, and the strict schema of every manifest it receives."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import pytest
import yaml

from lambench_core.campaign import CampaignSpec, campaign_jobs
from ops.campaign import decode_parameter
from tests.support.argo_stub import ArgoServerStub
from workflows.argo_client import ArgoClient, workflow_spec_parameter
from workflows.cli import main
from workflows.cluster_config import ArgoSettings

TOKEN = "sa-token-for-tests"
ARGO_CLIENT_USER_AGENT = "OpenAPI-Generator/1.0.0/python"  # what argo-workflows' ApiClient (dflow's) sends


@pytest.fixture
def stub(tmp_path, monkeypatch):
    with ArgoServerStub() as server:
        config = {
            "argo": {"server": server.url, "namespace": "bench", "ui_url": "https://argo.example.org"},
            "s3": {"endpoint": "minio:9000", "bucket": "lambench"},
        }
        path = tmp_path / "cluster.yaml"
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("ARGO_TOKEN", TOKEN)
        server.config_path = str(path)
        yield server


def submitted_name(output: str) -> str:
    return output.split()[1].rstrip(":")


def test_submit_status_retry_and_resubmit_with_reuse(stub, capsys):
    code = main(
        [
            "submit",
            "--config",
            stub.config_path,
            "--models",
            "dummy,emt",
            "--tasks",
            "s22,dbh24",
            "--campaign",
            "c-test",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    name = submitted_name(out)
    assert f"https://argo.example.org/workflows/bench/{name}" in out
    method, path, headers, body = stub.requests[-1]
    assert (method, path) == ("POST", "/api/v1/workflows/bench")
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in yaml.safe_dump(body)  # the token travels in the header only
    assert len(stub.workflows[name]["spec"]["templates"]) >= 4

    spec = CampaignSpec.model_validate_json(workflow_spec_parameter(stub.workflows[name]))
    jobs = campaign_jobs(spec)
    failing = {job.key for job in jobs if job.model == "emt"}
    stub.finish(name, failing)
    assert main(["status", "--config", stub.config_path, name]) == 0
    status = capsys.readouterr().out
    assert f"{name}: Failed — run steps: 2 failed, 2 succeeded" in status
    assert "failed emt × dbh24: FatalError" in status and "failed emt × s22" in status

    assert main(["retry", "--config", stub.config_path, name]) == 0
    assert "retrying 2 failed step(s)" in capsys.readouterr().out
    method, path, _, body = stub.requests[-1]
    assert (method, path) == ("PUT", f"/api/v1/workflows/bench/{name}/retry")
    assert body is None  # dflow's retry(): Argo's default, restartSuccessful false — succeeded steps are kept
    phases = [node["phase"] for node in stub.workflows[name]["status"]["nodes"].values()]
    assert phases.count("Pending") == 2 and "Failed" not in phases and "Succeeded" in phases

    stub.finish(name, failing)
    assert main(["resubmit", "--config", stub.config_path, name, "--reuse"]) == 0
    out = capsys.readouterr().out
    assert "2 run step(s), 2 reused" in out
    new = stub.workflows[submitted_name(out)]
    keys = {
        decode_parameter(p["value"])
        for t in new["spec"]["templates"]
        if "steps" in t
        for g in t["steps"]
        for s in g
        for p in s["arguments"]["parameters"]
        if p["name"] == "job_key"
    }
    assert keys == failing

    # Every request came from the argo-workflows client dflow's Workflow sets up, token in the header.
    assert {headers.get("User-Agent") for _, _, headers, _ in stub.requests} == {ARGO_CLIENT_USER_AGENT}
    assert {headers.get("Authorization") for _, _, headers, _ in stub.requests} == {f"Bearer {TOKEN}"}


def test_schedule_creates_a_cron_workflow(stub, capsys):
    assert main(["schedule", "--config", stub.config_path, "--models", "dummy", "--tasks", "s22"]) == 0
    assert "scheduled lambench-nightly-nightly" in capsys.readouterr().out
    (cron,) = stub.cron_workflows.values()
    assert cron["spec"]["schedules"] == ["0 2 * * *"] and cron["spec"]["concurrencyPolicy"] == "Forbid"
    method, path, headers, body = stub.requests[-1]
    assert (method, path) == ("POST", "/api/v1/cron-workflows/bench") and set(body) == {"cronWorkflow"}
    assert headers["User-Agent"] == ARGO_CLIENT_USER_AGENT and headers["Authorization"] == f"Bearer {TOKEN}"


def test_server_errors_are_one_line(stub, capsys, tmp_path):
    assert main(["status", "--config", stub.config_path, "no-such-workflow"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lambench: error: Argo server ") and "HTTP 404" in err and err.count("\n") == 1
    unreachable = tmp_path / "down.yaml"
    unreachable.write_text(
        yaml.safe_dump({"argo": {"server": "http://127.0.0.1:9"}, "s3": {"endpoint": "x", "bucket": "abc"}})
    )
    assert main(["status", "--config", str(unreachable), "x"]) == 2
    assert "unreachable" in capsys.readouterr().err


def test_server_refusing_the_token_is_one_line(tmp_path, capsys, monkeypatch):
    with ArgoServerStub(token="the-right-one") as server:
        config = tmp_path / "cluster.yaml"
        config.write_text(yaml.safe_dump({"argo": {"server": server.url}, "s3": {"endpoint": "x", "bucket": "abc"}}))
        monkeypatch.setenv("ARGO_TOKEN", "a-wrong-one")
        assert main(["status", "--config", str(config), "wf-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lambench: error: Argo server {server.url}: workflow wf-1 ")
    assert "HTTP 401" in err and "token not valid" in err and err.count("\n") == 1
    assert "a-wrong-one" not in err


def test_calls_go_through_dflow_and_leave_its_config_as_it_was():
    from dflow import config, s3_config

    before = dict(config), dict(s3_config)
    with ArgoServerStub(token=TOKEN) as server:
        settings = ArgoSettings(server=server.url, namespace="bench", verify_tls=False)
        client = ArgoClient(settings, environ={"ARGO_TOKEN": f"Bearer {TOKEN}"})  # a "Bearer " prefix is not doubled
        server.workflows["wf-1"] = {"metadata": {"name": "wf-1", "namespace": "bench"}, "status": {"phase": "Running"}}
        assert client.get("wf-1") == server.workflows["wf-1"]  # the dict as Argo returns it, nothing added
    assert (dict(config), dict(s3_config)) == before  # no token, host or mode leaks into later manifests
    ((method, path, headers, _),) = server.requests
    assert (method, path) == ("GET", "/api/v1/workflows/bench/wf-1")
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["User-Agent"] == ARGO_CLIENT_USER_AGENT

    # No hand-written HTTP client is left: argo_client.py imports no urllib, http.client or requests.
    source = Path(__file__).parents[3] / "workflows" / "argo_client.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {m for m in imported if m.split(".")[0] in ("urllib", "http", "requests", "ssl")}


def test_tls_is_verified_unless_the_configuration_says_otherwise():
    """dflow's own argo client never verifies TLS; the client restores `verify_tls`."""
    for verify, expected in ((True, ssl.CERT_REQUIRED), (False, ssl.CERT_NONE)):
        client = ArgoClient(ArgoSettings(server="https://argo.example.org:2746", verify_tls=verify), environ={})
        with client._dflow_session("test"):
            rest = client._workflow(workflow_id="x").api_instance.api_client.rest_client
        assert rest.pool_manager.connection_pool_kw["cert_reqs"] == expected
