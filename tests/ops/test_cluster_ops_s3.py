"""The campaign DAG's OPs, executed here in order against a real S3 server (SeaweedFS): the same
code every engine runs (Argo pods, Slurm jobs, local processes), with results, the published site
and the nightly comparison in S3."""

from __future__ import annotations

import json

import pytest
from dflow.python import OPIO, FatalError

from lambench_core.campaign import CampaignSpec, campaign_jobs
from lambench_core.results.store import ResultStore
from ops import campaign as ops
from tests.support.helpers import plan_step, run_step

pytestmark = pytest.mark.slow


def run_campaign(spec: CampaignSpec, run_id: str) -> list[str]:
    campaign = f"{spec.campaign_id}/{run_id}" if run_id else spec.campaign_id
    plan_step(spec, campaign)
    statuses = []
    for job in campaign_jobs(spec):
        try:
            statuses.append(run_step(spec, job.key, campaign))
        except FatalError as exc:
            statuses.append(f"fatal: {exc}")
    where = {"store": spec.store, "campaign": campaign}
    summary = ops.AggregateCampaign().execute(OPIO(**where))["summary"]
    site = ops.PublishCampaign().execute(OPIO(**where, output_dir="", aggregate=summary))["site"]
    if run_id:
        ops.CompareWithPrevious().execute(OPIO(**where, series=spec.campaign_id, site=site))
    return statuses


def test_campaign_steps_on_s3_and_the_nightly_comparison(s3_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LAMBENCH_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    spec = CampaignSpec(
        campaign_id="nightly",
        models=["dummy", "emt", "mace-mp-0-medium"],
        tasks=["s22", "force_field/molecules_small"],
        store="s3://lambench-it/prod",
        bootstrap_replicates=100,
    )
    first = run_campaign(spec, "night-1")
    assert first[:4] == ["succeeded", "succeeded", "succeeded", "succeeded"]
    assert all(s.startswith("fatal: mace-mp-0-medium on") and "weights not found" in s for s in first[4:])

    store = ResultStore.open(spec.store)
    site = "campaigns/nightly/night-1/site"
    assert store.backend.read_bytes(f"{site}/index.html").startswith(b"<!doctype html>")
    rankings = json.loads(store.backend.read_bytes(f"{site}/rankings.json"))
    # The failed contender first (unranked), then the baselines as reference rows.
    assert [m["model"] for m in rankings["models"]] == ["mace-mp-0-medium", "emt", "dummy"]
    assert store.backend.read_bytes(f"{site}/assets/plotly.min.js")
    assert json.loads(store.get_campaign_file("nightly", "latest.json"))["run"] == "night-1"
    assert store.get_campaign_file("nightly/night-1", "comparison.md") is None  # nothing to compare with yet

    # The next night reuses every stored result, retries the failed job, and compares.
    second = run_campaign(spec, "night-2")
    assert second[:4] == ["reused"] * 4 and second[4].startswith("fatal:")
    report = store.get_campaign_file("nightly/night-2", "comparison.md").decode()
    assert "0 regression(s)" in report and "mace-mp-0-medium × s22: model mace-mp-0-medium" in report
    assert json.loads(store.get_campaign_file("nightly", "latest.json"))["run"] == "night-2"
