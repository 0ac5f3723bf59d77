"""A rerun that computed nothing reuses the earlier aggregate of the same inputs; any changed input
(a result, the bootstrap settings, the models) aggregates anew."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambench_core.campaign import CampaignSpec, execute_job, plan_campaign
from lambench_core.report import publish
from lambench_core.results import ResultStore
from tests.core.test_datasets import make_set


@pytest.fixture
def stored_campaign(tmp_path):
    """dummy and EMT on a copper set, computed and stored: (spec factory, store, jobs)."""
    manifest = make_set(tmp_path)

    def spec(campaign: str, **changes) -> CampaignSpec:
        fields = dict(
            campaign_id=campaign, models=["dummy", "emt"], tasks=["force_field/cu_emt"],
            store=str(tmp_path / "store"), manifest=str(manifest), bootstrap_replicates=50,
        )
        return CampaignSpec(**(fields | changes))

    store = ResultStore.open(spec("first").store)
    plan = plan_campaign(spec("first"), store)
    for job in plan.to_run:
        store.put(execute_job(spec("first"), job))
    return spec, store, plan.all_jobs


@pytest.fixture
def aggregations(monkeypatch):
    """The campaigns whose leaderboard was computed (not reused)."""
    computed: list[str] = []
    original = publish.build_leaderboard

    def counting(campaign, *args, **kwargs):
        computed.append(campaign)
        return original(campaign, *args, **kwargs)

    monkeypatch.setattr(publish, "build_leaderboard", counting)
    return computed


def campaign_files(store: ResultStore, campaign: str) -> dict[str, bytes | None]:
    return {name: store.get_campaign_file(campaign, name) for name in publish.AGGREGATE_FILES}


def test_unchanged_inputs_reuse_the_aggregate_under_the_new_campaign(stored_campaign, aggregations):
    spec, store, jobs = stored_campaign
    first = publish.aggregate_campaign(spec("first"), jobs, store)
    second = publish.aggregate_campaign(spec("second"), jobs, store)

    assert aggregations == ["first"]
    assert second.campaign == "second" and second.created_at >= first.created_at
    assert second.scoreboard == first.scoreboard and second.table == first.table
    files = campaign_files(store, "second")
    assert all(files.values())
    assert files[publish.METRICS_PARQUET] == campaign_files(store, "first")[publish.METRICS_PARQUET]
    # What the publish step reads back is this campaign's board.
    assert '"campaign": "second"' in (files[publish.LEADERBOARD_JSON] or b"").decode()


@pytest.mark.parametrize(
    "change",
    ["result", "replicates", "models"],
)
def test_a_changed_input_aggregates_anew(stored_campaign, aggregations, change):
    spec, store, jobs = stored_campaign
    publish.aggregate_campaign(spec("first"), jobs, store)
    later = spec("later")
    if change == "result":  # the same job recomputed: a new result under the same key
        job = next(j for j in jobs if j.model == "emt")
        store.put(execute_job(spec("first"), job))
    elif change == "replicates":
        later = spec("later", bootstrap_replicates=60)
    else:
        later = spec("later", models=["emt", "dummy"])
    publish.aggregate_campaign(later, jobs, store)
    assert aggregations == ["first", "later"]


def test_an_unreadable_cached_aggregate_is_recomputed_and_replaced(stored_campaign, aggregations):
    spec, store, jobs = stored_campaign
    publish.aggregate_campaign(spec("first"), jobs, store)
    root = Path(store.url.removeprefix("file://")) / "aggregates"
    (cached,) = root.glob(f"*/{publish.LEADERBOARD_JSON}")
    cached.write_text('{"campaign": "first"')
    board = publish.aggregate_campaign(spec("second"), jobs, store)
    assert aggregations == ["first", "second"] and board.campaign == "second"
    publish.aggregate_campaign(spec("third"), jobs, store)
    assert aggregations == ["first", "second"]
