"""submit, status, retry, resubmit and schedule against ArgoServerStub — a STUB of the Argo Server
REST API (tests/argo_stub.py): no Kubernetes or Argo can run here. What the stub checks: the
requests' paths, bodies and bearer token, and the strict schema of every manifest it receives."""

from __future__ import annotations

import pytest
import yaml

from lambench_core.campaign import CampaignSpec, campaign_jobs
from tests.argo_stub import ArgoServerStub
from workflows.cli import main

TOKEN = "sa-token-for-tests"


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

    spec = CampaignSpec.model_validate_json(stub.workflows[name]["spec"]["arguments"]["parameters"][0]["value"])
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
    assert body["restartSuccessful"] is False

    stub.finish(name, failing)
    assert main(["resubmit", "--config", stub.config_path, name, "--reuse"]) == 0
    out = capsys.readouterr().out
    assert "2 run step(s), 2 reused" in out
    new = stub.workflows[submitted_name(out)]
    keys = {
        p["value"]
        for t in new["spec"]["templates"]
        if "steps" in t
        for g in t["steps"]
        for s in g
        for p in s["arguments"]["parameters"]
        if p["name"] == "job_key"
    }
    assert keys == failing


def test_schedule_creates_a_cron_workflow(stub, capsys):
    assert main(["schedule", "--config", stub.config_path, "--models", "dummy", "--tasks", "s22"]) == 0
    assert "scheduled lambench-nightly-nightly" in capsys.readouterr().out
    (cron,) = stub.cron_workflows.values()
    assert cron["spec"]["schedules"] == ["0 2 * * *"] and cron["spec"]["concurrencyPolicy"] == "Forbid"


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
