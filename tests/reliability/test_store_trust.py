"""The store is not trusted. A stored object that is not a trustworthy result of its key (another
job's content under the right name and key, a field edited, impossible values, a torn or foreign
file, a directory) is moved to quarantine/ beside a file saying why, one line names the object and
the field, and the job is computed again; every other result is still used. A failed write (disk
full) leaves no temporary file, and the next write works."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lambench_core.campaign import CampaignSpec, execute_job, plan_campaign
from lambench_core.errors import LambenchError
from lambench_core.results import ResultStore, TaskResult
from tests.core.test_datasets import copper_frames, make_set

STORE_LOG = "lambench_core.results.store"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def campaign(tmp_path):
    """Two models × two copper sets, computed and stored: (spec, store, {(model, set): key})."""
    manifest = make_set(tmp_path)
    other = tmp_path / "more"
    other.mkdir()
    make_set(other, frames=copper_frames(5), name="cu_more")
    raw = yaml.safe_load(manifest.read_text())
    more = yaml.safe_load((other / "datasets.yaml").read_text())["datasets"][0]
    more["files"][0]["path"] = "more/cu.extxyz"
    raw["datasets"].append(more)
    manifest.write_text(yaml.safe_dump(raw))
    spec = CampaignSpec(
        campaign_id="t", models=["dummy", "emt"], tasks=["force_field/cu_emt", "force_field/cu_more"],
        store=str(tmp_path / "store"), manifest=str(manifest),
    )
    store = ResultStore.open(spec.store)
    keys = {}
    for job in plan_campaign(spec, store).to_run:
        store.put(execute_job(spec, job))
        keys[job.model, job.instance.name.split("/")[1]] = job.key
    return spec, store, keys


def stored(store: ResultStore, key: str) -> Path:
    return Path(store.url.removeprefix("file://")) / "results" / f"{key}.json"


def edit_json(path: Path, edit) -> None:
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


def quarantine_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == STORE_LOG and r.levelno >= logging.WARNING]


def _swap(store, keys, path):
    """Another model's result on the same set, its key edited to this file's name."""
    raw = json.loads(stored(store, keys["dummy", "cu_emt"]).read_text())
    raw["key"] = keys["emt", "cu_emt"]
    path.write_text(json.dumps(raw))


def _swap_task(store, keys, path):
    """The same model's result on another set, its key edited to this file's name."""
    raw = json.loads(stored(store, keys["emt", "cu_more"]).read_text())
    raw["key"] = keys["emt", "cu_emt"]
    raw["task"] = raw["provenance"]["task"] = "force_field/cu_emt"  # even its names made to fit
    path.write_text(json.dumps(raw))


def _foreign_key(store, keys, path):
    path.write_text(stored(store, keys["emt", "cu_more"]).read_text())


def _model_everywhere(raw):
    raw["model"] = raw["provenance"]["model_card"]["name"] = "dummy"


def _params(raw):
    raw["provenance"]["params"]["vacuum_padding"] = 1.0


def _dataset_digest(raw):
    raw["provenance"]["dataset_sha256"] = "0" * 64


def _text(text):
    return lambda store, keys, path: path.write_text(text)


def _directory(store, keys, path):
    path.unlink()
    (path / "inner").mkdir(parents=True)


def _json(edit):
    return lambda store, keys, path: edit_json(path, edit)


def _nan_metric(store, keys, path):
    """NaN as another JSON writer (Python's json) writes it; pydantic writes null, never NaN."""
    edit_json(path, lambda r: r["metrics"]["force_rmse"].update(value=float("nan")))
    assert "NaN" in path.read_text()


@pytest.mark.parametrize(
    ("tamper", "field", "reason"),
    [
        (_swap, "model", "'dummy', but the job planned under this key is for model 'emt'"),
        (_swap_task, "provenance", "hash to key"),
        (_foreign_key, "key", "another job's result"),
        (_json(lambda r: r.update(model="dummy")), "model", "'dummy', but its provenance names model card 'emt'"),
        (_json(_model_everywhere), "model", "but the job planned under this key is for model 'emt'"),
        (_json(_params), "provenance", "another job's content"),
        (_json(_dataset_digest), "provenance", "another job's content"),
        (_json(lambda r: r.update(n_scored=r["n_items"] + 3)), "n_scored", "7 items scored of 4"),
        (_json(lambda r: r.update(n_items=-1)), "n_items", "-1 is negative"),
        (_json(lambda r: r.update(success_rate=1.5)), "success_rate", "1.5 is not a fraction"),
        (_json(lambda r: r["metrics"]["force_rmse"].update(value=-0.1)), "metrics.force_rmse.value", "-0.1 is negative"),
        (_nan_metric, "metrics.force_rmse.value", "nan is not a finite number"),
        (_json(lambda r: r["records"][1].update(force_sse=-2.0)), "records.1.force_sse", "-2.0 is negative"),
        (_json(lambda r: r["provenance"].update(wall_seconds=-5)), "provenance.wall_seconds", "-5.0 is negative"),
        (_text('{"key": "k1", "model": "m"'), "(top level)", "Invalid JSON"),
        (_text("not json at all"), "(top level)", "Invalid JSON"),
        (_json(lambda r: r.update(status="excellent")), "status", "Input should be"),
        (_directory, "(file)", "a directory or special file, not a file"),
    ],
    ids=[
        "swapped-content", "swapped-task", "foreign-key", "wrong-model", "wrong-model-everywhere", "wrong-params",
        "wrong-dataset-digest", "scored-more-than-items", "negative-count", "rate-above-one", "negative-rmse",
        "nan-metric", "negative-record", "negative-time", "truncated-json", "not-json", "unknown-status", "directory",
    ],
)
def test_a_bad_object_is_quarantined_with_one_line_and_its_job_recomputed(campaign, caplog, tamper, field, reason):
    spec, store, keys = campaign
    key = keys["emt", "cu_emt"]
    path = stored(store, key)
    tamper(store, keys, path)
    caplog.set_level(logging.WARNING, logger=STORE_LOG)

    plan = plan_campaign(spec, store)

    # Only this job is computed again; the other three results are still used.
    assert [job.key for job in plan.to_run] == [key]
    assert sorted(job.key for job in plan.already_done) == sorted(k for k in keys.values() if k != key)
    (line,) = quarantine_lines(caplog)
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"lambench: quarantined {store.url}/results/{key}.json: {field}: "), line
    assert reason in line, line
    # Moved aside, with the reason beside it; nothing left under results/ for this key.
    assert not path.exists() and not path.is_symlink()
    root = Path(store.url.removeprefix("file://"))
    (moved,) = [p for p in (root / "quarantine" / "results").iterdir() if not p.name.endswith(".reason.txt")]
    assert moved.name.startswith(f"{key}.") and moved.name.endswith(".json")
    assert f"results/{key}.json: {field}: " in Path(f"{moved}.reason.txt").read_text()
    # Said once: the next reader finds no object, and says nothing.
    caplog.clear()
    assert store.get(key) is None and quarantine_lines(caplog) == []
    # Recomputed and stored, it is trusted again.
    (job,) = plan.to_run
    store.put(execute_job(spec, job))
    assert not plan_campaign(spec, store).to_run and quarantine_lines(caplog) == []


READ_UNDER_PLAN = """
import sys
from lambench_core.campaign import load_plan
from lambench_core.results import ResultStore
plan_file, store_url, key, with_plan = sys.argv[1:]
if with_plan == "1":
    load_plan(open(plan_file, encoding="utf-8").read())
print("trusted" if ResultStore.open(store_url).get(key) is not None else "refused")
"""


@pytest.mark.parametrize(
    "tamper",
    [_swap, _swap_task, _json(_params), _json(_dataset_digest)],
    ids=["swapped-content", "swapped-task", "wrong-params", "wrong-dataset-digest"],
)
def test_a_step_that_reads_the_plan_checks_content_against_the_planned_job(campaign, tmp_path, tamper):
    """Run, aggregate and publish steps read the stored plan instead of planning: in a fresh process
    the plan alone lets them refuse another job's content under this key (without it, such content
    is self-consistent and passes: the plan is what the check needs)."""
    spec, store, keys = campaign
    key = keys["emt", "cu_emt"]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan_campaign(spec, store).model_dump_json())
    tamper(store, keys, stored(store, key))

    def read(with_plan: bool) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", READ_UNDER_PLAN, str(plan_file), spec.store, key, "1" if with_plan else "0"],
            capture_output=True, text=True, cwd=REPO, timeout=120, check=True,
        )

    assert read(with_plan=False).stdout.strip() == "trusted"
    refused = read(with_plan=True)
    assert refused.stdout.strip() == "refused"
    assert f"quarantined {store.url}/results/{key}.json" in refused.stderr
    assert "another job" in refused.stderr or "planned under this key" in refused.stderr


def test_a_bad_failure_record_is_quarantined_too(campaign, caplog):
    spec, store, keys = campaign
    root = Path(store.url.removeprefix("file://"))
    failure = root / "failures" / "somekey.json"
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text('{"key": "somekey", "model": "m", "task": "t", "status": "failed", "n_items": -4}')
    caplog.set_level(logging.WARNING, logger=STORE_LOG)
    assert store.get_failure("somekey") is None
    (line,) = quarantine_lines(caplog)
    assert line.startswith(f"lambench: quarantined {store.url}/failures/somekey.json: n_items: -4 is negative")
    assert not failure.exists()


def test_results_stored_without_a_plan_are_still_checked_against_themselves_and_bounds(tmp_path, caplog):
    """A process that planned nothing (a later `publish`, a cluster step) still refuses impossible
    values and results whose fields disagree with their provenance."""
    from lambench_core.results import Metric, Status

    store = ResultStore.open(tmp_path)
    good = TaskResult(key="k1", model="m", task="t", status=Status.SUCCEEDED, metrics={"x_mae": Metric(value=1.0, unit="eV")})
    store.put(good)
    store.put(good.model_copy(update={"key": "k2", "n_items": 2, "n_scored": 5}))
    caplog.set_level(logging.WARNING, logger=STORE_LOG)
    assert store.get("k1") == good and store.get("k2") is None
    (line,) = quarantine_lines(caplog)
    assert line.startswith(f"lambench: quarantined {store.url}/results/k2.json: n_scored: 5 items scored of 2")
    assert store.keys() == ["k1"]


# --- Failed writes -----------------------------------------------------------------------------


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["os.replace", "os.fsync"])
def test_a_failed_write_leaves_no_temporary_file_and_the_next_write_works(campaign, monkeypatch, where):
    spec, store, keys = campaign
    key = keys["emt", "cu_emt"]
    before = stored(store, key).read_bytes()
    result = store.get(key)
    monkeypatch.setattr(where, _no_space)
    with pytest.raises(LambenchError) as caught:
        store.put(result.model_copy(update={"campaign_id": "another"}))
    assert str(caught.value) == (
        f"{store.url}/results/{key}.json: write failed (OSError: [Errno 28] No space left on device)"
    )
    root = Path(store.url.removeprefix("file://"))
    assert [p for p in root.rglob("*") if p.name.endswith(".tmp")] == []
    assert stored(store, key).read_bytes() == before  # the old object is whole
    monkeypatch.undo()
    store.put(result.model_copy(update={"campaign_id": "another"}))
    assert store.get(key).campaign_id == "another"
    assert not plan_campaign(spec, store).to_run


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from lambench_core.results import Status

    store = ResultStore.open(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.put(TaskResult(key="k1", model="m", task="t", status=Status.SUCCEEDED))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_failed_write_in_a_run_step_is_transient_and_the_rerun_stores_the_result(campaign, monkeypatch):
    from dflow.python import TransientError

    from tests.support.helpers import plan_step, run_step

    spec, store, keys = campaign
    key = keys["emt", "cu_emt"]
    stored(store, key).unlink()
    plan_step(spec)
    monkeypatch.setattr("os.replace", _no_space)
    with pytest.raises(TransientError) as caught:
        run_step(spec, key)
    assert str(caught.value) == (
        f"storing {key}: {store.url}/results/{key}.json: write failed (OSError: [Errno 28] No space left on device)"
    )
    root = Path(store.url.removeprefix("file://"))
    assert [p for p in root.rglob("*") if p.name.endswith(".tmp")] == []
    monkeypatch.undo()
    assert run_step(spec, key) == "succeeded"
    assert store.get(key) is not None


def test_a_directory_where_a_result_goes_is_moved_aside_by_the_write(tmp_path, caplog):
    from lambench_core.results import Status

    store = ResultStore.open(tmp_path)
    (tmp_path / "results" / "k1.json").mkdir(parents=True)
    caplog.set_level(logging.WARNING, logger=STORE_LOG)
    result = TaskResult(key="k1", model="m", task="t", status=Status.SUCCEEDED)
    store.put(result)
    assert store.get("k1") == result
    (line,) = quarantine_lines(caplog)
    assert line.startswith(f"lambench: quarantined {store.url}/results/k1.json: (file): a directory")


# --- S3 -----------------------------------------------------------------------------------------


def test_s3_bad_objects_are_quarantined_on_the_server(s3_env, caplog):
    from lambench_core.results import Metric, Status

    store = ResultStore.open("s3://lambench-trust/team")
    good = TaskResult(key="k1", model="m", task="t", status=Status.SUCCEEDED, metrics={"x_rmse": Metric(value=1.0, unit="eV")})
    store.put(good)
    bad = good.model_copy(update={"key": "k2"}).model_dump_json().replace("1.0", "-1.0")
    store.backend.write_bytes("results/k2.json", bad.encode())
    store.backend.write_bytes("results/k3.json", b'{"key": "k3", "mo')
    caplog.set_level(logging.WARNING, logger=STORE_LOG)
    assert store.get("k1") == good and store.get("k2") is None and store.get("k3") is None
    lines = quarantine_lines(caplog)
    assert len(lines) == 2
    assert lines[0].startswith(f"lambench: quarantined {store.url}/results/k2.json: metrics.x_rmse.value: -1.0 is negative")
    assert lines[1].startswith(f"lambench: quarantined {store.url}/results/k3.json: (top level): Invalid JSON")
    assert store.keys() == ["k1"]
    moved = store.backend.list("quarantine")
    assert len(moved) == 4 and sum(name.endswith(".reason.txt") for name in moved) == 2
    reason = next(name for name in moved if name.startswith("quarantine/results/k2.") and name.endswith(".reason.txt"))
    assert b"metrics.x_rmse.value: -1.0 is negative" in store.backend.read_bytes(reason)
    store.put(good.model_copy(update={"key": "k2"}))
    assert store.get("k2") is not None


# --- A real campaign ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_tampered_campaign_store_is_repaired_by_the_next_run(tmp_path):
    """dummy and emt on molecules_small; then the dummy's force RMSE made negative (it would rank the
    dummy first) and emt's result replaced by the dummy's under emt's name and key. The rerun says one
    line per object, quarantines both, recomputes exactly those two jobs and publishes a leaderboard
    equal to the first run's."""
    work = tmp_path / "work"
    argv = [sys.executable, "-m", "workflows.cli", "run", "--models", "dummy,emt",
            "--tasks", "force_field/molecules_small", "--bootstrap", "0", "--workdir", str(work)]
    # The DAG's steps import this checkout, whatever else the environment has installed.
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
    first = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
    assert first.returncode == 0, first.stdout + first.stderr
    results = work / "store" / "results"
    by_model = {json.loads(p.read_text())["model"]: p for p in results.glob("*.json")}
    dummy, emt = by_model["dummy"], by_model["emt"]
    clean = {p.name: json.loads(p.read_text())["metrics"] for p in (dummy, emt)}
    raw = json.loads(dummy.read_text())
    raw["key"] = emt.stem
    emt.write_text(json.dumps(raw))
    edit_json(dummy, lambda r: r["metrics"]["force_rmse"].update(value=-abs(r["metrics"]["force_rmse"]["value"])))

    second = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    lines = sorted(line for line in second.stderr.splitlines() if "quarantined" in line)
    assert len(lines) == 2, second.stderr
    said = {dummy.name: "metrics.force_rmse.value: -", emt.name: "model: 'dummy', but the job planned under this key is for model 'emt'"}
    for name, what in said.items():
        (line,) = [line for line in lines if f"/store/results/{name}: " in line]
        assert line.startswith("lambench: quarantined ") and f"/store/results/{name}: {what}" in line, line
    assert len(list((work / "store" / "quarantine" / "results").glob("*.reason.txt"))) == 2
    # Both recomputed: the same metrics as the first run's, under their own keys.
    assert {p.name: json.loads(p.read_text())["metrics"] for p in (dummy, emt)} == clean
    assert {json.loads(p.read_text())["model"] for p in (dummy, emt)} == {"dummy", "emt"}
    runs = sorted((work / "runs").iterdir())
    rankings = [json.loads((run / "site" / "rankings.json").read_text()) for run in runs]
    assert rankings[0]["models"] == rankings[1]["models"]
