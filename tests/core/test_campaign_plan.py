"""Planning: identity keys, what is already done, and what a changed dataset invalidates."""

from __future__ import annotations

import pytest
import yaml
from ase.io import read, write

from lambench_core.campaign import CampaignSpec, execute_job, plan_campaign
from lambench_core.data.checksums import path_sha256
from lambench_core.errors import ChecksumError
from lambench_core.results import ResultStore
from tests.core.test_datasets import make_set


def spec_for(manifest, store, models=("dummy", "emt")) -> CampaignSpec:
    return CampaignSpec(campaign_id="t", models=list(models), tasks=["force_field/cu_emt"], store=str(store), manifest=str(manifest))


def test_done_jobs_are_dropped_and_force_keeps_them(tmp_path):
    manifest = make_set(tmp_path)
    store = ResultStore.open(tmp_path / "store")
    spec = spec_for(manifest, tmp_path / "store")
    plan = plan_campaign(spec, store)
    assert [j.model for j in plan.to_run] == ["dummy", "emt"] and not plan.already_done
    store.put(execute_job(spec, plan.to_run[1]))
    again = plan_campaign(spec, store)
    assert [j.model for j in again.to_run] == ["dummy"] and [j.model for j in again.already_done] == ["emt"]
    forced = plan_campaign(spec.model_copy(update={"force": True}), store)
    assert len(forced.to_run) == 2


def test_a_dataset_changed_by_one_frame_is_a_new_computation(tmp_path):
    manifest = make_set(tmp_path)
    store = ResultStore.open(tmp_path / "store")
    spec = spec_for(manifest, tmp_path / "store", models=("emt",))
    (job,) = plan_campaign(spec, store).to_run
    store.put(execute_job(spec, job))
    assert not plan_campaign(spec, store).to_run

    data = tmp_path / "cu.extxyz"
    frames = read(data, index=":")
    frames[2].positions[0, 0] += 1e-3
    write(data, frames, format="extxyz")
    with pytest.raises(ChecksumError):  # the manifest still pins the old checksum
        plan_campaign(spec, store)
    raw = yaml.safe_load(manifest.read_text())
    raw["datasets"][0]["files"][0]["sha256"] = path_sha256(data)
    manifest.write_text(yaml.safe_dump(raw))
    (new_job,) = plan_campaign(spec, store).to_run
    assert new_job.key != job.key


def test_executed_job_records_dataset_and_level(tmp_path):
    manifest = make_set(tmp_path)
    spec = spec_for(manifest, tmp_path / "store", models=("emt",))
    (job,) = plan_campaign(spec, ResultStore.open(tmp_path / "store")).to_run
    result = execute_job(spec, job)
    assert result.status == "succeeded" and result.provenance.dataset == "cu_emt"
    assert result.metric("virial_rmse_per_atom") == pytest.approx(0, abs=1e-7)


def test_model_lacking_every_element_is_unsupported_not_failed(tmp_path):
    manifest = make_set(tmp_path)
    store = ResultStore.open(tmp_path / "store")
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "hydrogen-only.yaml").write_text(
        "name: hydrogen-only\nfamily: emt\nversion: '1'\ndescription: t\nlicence: MIT\nlevel_of_theory: PBE\nelements: [H]\nimage: i\n"
    )
    spec = spec_for(manifest, tmp_path / "store", models=("hydrogen-only",)).model_copy(update={"cards_dirs": [str(cards)]})
    (job,) = plan_campaign(spec, store).to_run
    result = execute_job(spec, job)
    assert result.status == "unsupported" and result.n_scored == 0 and "Cu" in result.error
    store.put(result)
    assert not plan_campaign(spec, store).to_run  # stored as a result: a rerun does not retry it


def test_a_relabelled_set_that_a_task_reads_by_name_is_a_new_computation(tmp_path):
    """md_stability reads its structures from shipped sets named in its params: their digests are part
    of its results' identity even though the job scores no dataset of its own."""
    from lambench_core.data.manifest import BUILTIN_MANIFEST, DatasetManifest

    store = ResultStore.open(tmp_path / "store")
    spec = CampaignSpec(campaign_id="t", models=["emt"], tasks=["md_stability"], store=str(tmp_path / "store"),
                        manifest=str(BUILTIN_MANIFEST))
    (job,) = plan_campaign(spec, store).to_run
    assert job.dataset is None

    # The same campaign, with one referenced set's pinned digest changed (as a relabel would).
    from lambench_core.campaign import CampaignContext

    context = CampaignContext(spec)
    instance, card = context.suite.get("md_stability"), context.catalog.get("emt")
    assert context.job_for(card, instance).key == job.key
    entry = context.manifest.get("cu_bulk_pbe")
    relabelled = entry.model_copy(update={"files": [entry.files[0].model_copy(update={"sha256": "0" * 64})]})
    context.manifest.add(DatasetManifest(datasets=[relabelled]), context.manifest.source(entry))
    assert context.job_for(card, instance).key != job.key
