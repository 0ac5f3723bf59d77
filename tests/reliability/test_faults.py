"""Fault injection: a benchmark that loses a night of work or publishes a corrupted leaderboard loses
its users' trust.

- the local runner SIGKILLed mid-campaign: the next run computes only what is missing, and its
  leaderboard equals an uninterrupted run's; no process outlives the runner;
- a model that raises, returns NaN/inf, runs out of memory (simulated: MemoryError raised inside the
  model call; a kernel OOM kill cannot be provoked safely here) or hangs past the campaign timeout;
- the S3 server crashed during a run step's write and frozen during publish: a bounded wait, one
  error naming the object, no partial object read back, and a rerun after the restart completes;
- two campaigns writing one store at once.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from dflow.python import OPIO, FatalError, TransientError

from lambench_core.campaign import CampaignSpec, campaign_jobs, execute_job
from lambench_core.errors import LambenchError
from lambench_core.models import registry
from lambench_core.report.leaderboard import Leaderboard
from lambench_core.report.publish import LEADERBOARD_JSON, METRICS_PARQUET, RECORDS_PARQUET, site_files
from lambench_core.results.record import Status, TaskResult
from lambench_core.results.store import ResultStore
from ops import campaign as ops
from tests.support.fault_helpers import RestartableSeaweedFS, processes_mentioning, stand_in_family
from tests.support.helpers import plan_step, run_step

REPO = Path(__file__).resolve().parents[2]
EMT_CARD = (REPO / "lambench_core/models/cards/emt.yaml").read_text()
MOLECULES = "force_field/molecules_small"


# --- helpers ------------------------------------------------------------------------------------
def lambench_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, LAMBENCH_WEIGHTS_DIR=str(tmp_path / "no-weights"), OMP_NUM_THREADS="1", **extra)


def start_run(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`lambench run ...` in its own session, so that its whole process group can be killed."""
    return subprocess.Popen(
        [sys.executable, "-m", "workflows.cli", "run", *args],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(run: subprocess.Popen, log: Path, timeout: float = 400) -> str:
    run.wait(timeout=timeout)
    return log.read_text()


def only_run_dir(workdir: Path) -> Path:
    (run_dir,) = (workdir / "runs").iterdir()
    return run_dir


def result_files(store: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (store / "results").glob("*.json")}


def no_process_left(directory: Path, wait: float = 15) -> bool:
    deadline = time.monotonic() + wait
    while (left := processes_mentioning(str(directory))) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        print(pid, Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:300])
    return not left


def flat(value: object, path: str = "") -> dict[str, object]:
    """A nested JSON value as {path: leaf}, to compare two leaderboards number by number."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(item, f"{path}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flat(item, f"{path}/{i}").items()}
    return {path: value}


def assert_same_numbers(first: object, second: object, rel: float = 1e-9) -> None:
    a, b = flat(first), flat(second)
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, float) and isinstance(b[key], float):
            assert b[key] == pytest.approx(value, rel=rel, abs=1e-12), key
        else:
            assert b[key] == value, key


def metric_rows(site: Path) -> dict[tuple[str, str, str], dict]:
    rows = json.loads((site / "results.json").read_text())["metrics"]
    return {(r["model"], r["benchmark"], r["metric"]): r for r in rows}


def assert_store_is_sound(store: Path) -> list[TaskResult]:
    """Every stored result parses, validates and sits under its own key; no temporary file is left."""
    results = []
    for path in sorted((store / "results").glob("*.json")):
        result = TaskResult.model_validate_json(path.read_bytes())
        assert result.key == path.stem and result.status != Status.FAILED
        results.append(result)
    assert not [p.name for p in store.rglob("*.tmp")]
    return results


# --- 1. the local runner killed mid-campaign ----------------------------------------------------
# dummy and EMT only: with CHGNet the three runs of this test take ~3 min on 2 cores.
CAMPAIGN = (
    "--models",
    "dummy,emt",
    "--tasks",
    f"{MOLECULES},force_field/cu_bulk,s22",
    "--workers",
    "1",
    "--bootstrap",
    "50",
)
N_JOBS = 6


@pytest.mark.slow
def test_sigkilled_runner_resumes_only_unfinished_jobs_and_matches_an_uninterrupted_run(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    env = lambench_env(tmp_path)
    # The uninterrupted run of the same campaign, in a fresh workdir, runs meanwhile (2 cores).
    ref_run = start_run(*CAMPAIGN, "--workdir", str(reference), env=env, log=tmp_path / "reference.log")
    run = start_run(*CAMPAIGN, "--workdir", str(killed), env=env, log=tmp_path / "killed.log")
    results = killed / "store" / "results"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        if len(list(results.glob("*.json"))) >= 2:
            break
        time.sleep(0.05)
    assert run.poll() is None, "the campaign ended before it could be killed:\n" + (tmp_path / "killed.log").read_text()
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    # The DAG child runs in a session of its own (so the runner's timeout can stop it); the parent's
    # SIGKILL does not reach it, so it must notice by itself and stop its whole group.
    assert no_process_left(killed), "the campaign DAG outlived its SIGKILLed runner"
    finished = result_files(killed / "store")
    assert 2 <= len(finished) < N_JOBS, "killed too late to test a resume"
    assert_store_is_sound(killed / "store")

    again = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", *CAMPAIGN, "--workdir", str(killed)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{N_JOBS - len(finished)} to compute, {len(finished)} already in the store" in again.stdout
    assert {p: result_files(killed / "store")[p] for p in finished} == finished  # never rewritten
    assert len(assert_store_is_sound(killed / "store")) == N_JOBS

    assert finish(ref_run, tmp_path / "reference.log") and ref_run.returncode == 0
    resumed_site = max((killed / "runs").iterdir(), key=lambda p: p.name) / "site"
    reference_site = only_run_dir(reference) / "site"
    resumed = json.loads((resumed_site / "rankings.json").read_text())
    expected = json.loads((reference_site / "rankings.json").read_text())
    assert [m["model"] for m in resumed["models"]] == ["emt", "dummy"]
    assert resumed["models"][0]["m_ff"]["low"] is not None  # intervals exist (50 replicates) ...
    assert_same_numbers(expected, resumed)  # ... and, being seeded, equal the uninterrupted run's
    assert_same_numbers(
        {"|".join(k): [r["value"], r["status"]] for k, r in metric_rows(reference_site).items()},
        {"|".join(k): [r["value"], r["status"]] for k, r in metric_rows(resumed_site).items()},
    )
    assert no_process_left(tmp_path)


# --- 2. a faulty model --------------------------------------------------------------------------
class FaultyCalculator:
    """Wraps EMT: frame number → fault. Faults: 'raise', 'nan' energy, 'inf' forces, 'memory'
    (MemoryError raised inside the model call: a simulation of running out of host memory)."""

    def __new__(cls, faults: dict[int, str], default: str | None = None):
        from ase.calculators.calculator import Calculator, all_changes
        from ase.calculators.emt import EMT

        class Faulty(Calculator):
            implemented_properties = ["energy", "free_energy", "forces", "stress"]

            def __init__(self) -> None:
                super().__init__()
                self.emt, self.calls, self.seen = EMT(), 0, {}

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                super().calculate(atoms, properties, system_changes)
                frame = self.seen.setdefault(self.atoms.get_positions().tobytes(), len(self.seen))
                fault = faults.get(frame, default)
                if fault == "raise":
                    raise RuntimeError("simulated model crash")
                if fault == "memory":
                    raise MemoryError("simulated: cannot allocate 64.0 GiB")
                if fault == "cuda-oom":
                    raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")
                self.emt.calculate(self.atoms, properties, system_changes)
                self.results = dict(self.emt.results)
                if fault == "nan":
                    self.results["energy"] = math.nan
                if fault == "inf":
                    self.results["forces"] = self.results["forces"] * math.inf

        return Faulty()


def faulty_spec(tmp_path: Path, monkeypatch, calculator_factory) -> CampaignSpec:
    """A campaign of one card, 'faulty', of the emt family whose calculator the factory builds."""
    cards = tmp_path / "cards"
    cards.mkdir(exist_ok=True)
    (cards / "faulty.yaml").write_text(EMT_CARD.replace("name: emt", "name: faulty"))
    registry.known_families()  # the built-in families first, then this test's stand-in for emt
    monkeypatch.setitem(registry._FACTORIES, "emt", lambda card, context: calculator_factory())
    return CampaignSpec(
        campaign_id="faults",
        models=["faulty"],
        tasks=[MOLECULES],
        store=str(tmp_path / "store"),
        cards_dirs=[str(cards)],
        device="cpu",
        bootstrap_replicates=0,
    )


def test_structures_that_raise_or_return_nan_inf_or_run_out_of_memory_are_recorded_others_kept(tmp_path, monkeypatch):
    faults = {1: "raise", 2: "nan", 3: "inf", 4: "memory"}
    spec = faulty_spec(tmp_path, monkeypatch, lambda: FaultyCalculator(faults))
    (job,) = campaign_jobs(spec)
    result = execute_job(spec, job)
    assert result.status == Status.PARTIAL and result.n_items == 55 and result.n_scored == 51
    assert result.success_rate == pytest.approx(51 / 55)
    assert sorted(issue.reason for issue in result.issues) == [
        "FrameFailure: non-finite energy predicted",
        "FrameFailure: non-finite forces predicted",
        "MemoryError: simulated: cannot allocate 64.0 GiB",
        "RuntimeError: simulated model crash",
    ]
    assert {issue.kind for issue in result.issues} == {"failed"}
    # Molecules have no virials: those metrics are None; every other one is a finite number.
    assert all(math.isfinite(m.value) for m in result.metrics.values() if m.value is not None)
    assert result.metric("force_rmse") > 0 and result.metric("energy_rmse_per_atom") > 0
    assert len(result.records) == 51
    # Stored as a (partial) result, so the leaderboard shows it, marked, instead of dropping it.
    store = ResultStore.open(spec.store)
    store.put(result)
    assert store.get(job.key) == result


def test_a_model_out_of_memory_on_every_structure_fails_its_job_with_the_reason(tmp_path, monkeypatch):
    spec = faulty_spec(tmp_path, monkeypatch, lambda: FaultyCalculator({}, default="memory"))
    (job,) = campaign_jobs(spec)
    result = execute_job(spec, job)
    assert result.status == Status.FAILED and result.n_scored == 0
    assert "no item could be scored" in result.error and "MemoryError: simulated" in result.error
    store = ResultStore.open(spec.store)
    store.put(result)
    assert not store.has(job.key) and store.get_failure(job.key) == result  # retried by the next run
    # On a cluster: a host MemoryError is judged fatal (not retried); a CUDA OOM is transient.
    plan_step(spec)
    with pytest.raises(FatalError, match="MemoryError: simulated"):
        run_step(spec, job.key)


def test_a_model_that_runs_out_of_memory_while_loading_or_on_the_gpu(tmp_path, monkeypatch):
    def no_memory():
        raise MemoryError("simulated: cannot allocate the weights")

    spec = faulty_spec(tmp_path, monkeypatch, no_memory)
    (job,) = campaign_jobs(spec)
    result = execute_job(spec, job)
    assert result.status == Status.FAILED and result.error == "MemoryError: simulated: cannot allocate the weights"
    assert result.provenance is not None and result.provenance.compute_seconds == 0.0

    monkeypatch.setitem(registry._FACTORIES, "emt", lambda card, context: FaultyCalculator({}, default="cuda-oom"))
    plan_step(spec)
    with pytest.raises(TransientError, match="CUDA out of memory"):
        run_step(spec, job.key)


HANGING_FAMILY = """
# Injected by tests/reliability/test_faults.py into every Python process of one campaign: a model family whose
# calculator never returns.
import time

from ase.calculators.emt import EMT

from lambench_core.models.registry import register_family


class Hanging(EMT):
    def calculate(self, *args, **kwargs):
        time.sleep(3600)


register_family("test-hang")(lambda card, context: Hanging())
"""


def hanging_campaign(tmp_path: Path, workdir: Path) -> tuple[dict[str, str], tuple[str, ...]]:
    """The environment and `lambench run` arguments of dummy beside a model that never returns."""
    inject, cards = stand_in_family(tmp_path, "hang", "test-hang", HANGING_FAMILY)
    env = lambench_env(tmp_path, PYTHONPATH=str(inject))
    args = (
        "--models",
        "dummy,hang",
        "--tasks",
        MOLECULES,
        "--cards",
        str(cards),
        "--workers",
        "2",
        "--bootstrap",
        "0",
        "--workdir",
        str(workdir),
    )
    return env, args


@pytest.mark.slow
def test_a_hanging_job_is_stopped_by_the_campaign_timeout_and_finished_results_are_kept(tmp_path):
    """Without --job-timeout, only the campaign's --timeout stops a hanging model: the whole DAG stops."""
    workdir = tmp_path / "work"
    env, args = hanging_campaign(tmp_path, workdir)
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", *args, "--timeout", "45"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.monotonic() - start
    assert "stopped after its timeout; finished results are kept" in run.stdout, run.stdout + run.stderr
    assert elapsed < 45 + 2 * 10 + 30  # the timeout, the kill grace periods, planning
    assert no_process_left(workdir)
    (kept,) = assert_store_is_sound(workdir / "store")
    assert kept.model == "dummy" and kept.status == Status.SUCCEEDED
    # The timeout stops aggregate and publish too: this run has no leaderboard (a gap, reported).
    assert run.returncode == 1 and "did not produce a leaderboard" in run.stdout
    # Without the hanging model, the next run reuses the kept result and publishes the leaderboard.
    again = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", *args[2:], "--models", "dummy"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and "nothing to compute" in again.stdout, again.stdout + again.stderr
    site = max((workdir / "runs").iterdir(), key=lambda p: p.name) / "site"
    assert metric_rows(site)[("dummy", "molecules_small", "force_rmse")]["value"] > 0


@pytest.mark.slow
def test_a_job_over_its_time_limit_is_recorded_failed_and_the_campaign_publishes(tmp_path):
    """--job-timeout: the hanging job's step stores its failure with the reason and ends; the other jobs,
    aggregate and publish run, and the leaderboard shows the failure."""
    workdir = tmp_path / "work"
    env, args = hanging_campaign(tmp_path, workdir)
    run = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", *args, "--job-timeout", "20"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "failed hang × force_field/molecules_small: timed out after 20 s" in " ".join(run.stdout.split())
    assert no_process_left(workdir)
    site = next((workdir / "runs").iterdir()) / "site"
    board = json.loads((site / "leaderboard.json").read_text())
    (hang_job,) = [j for j in board["jobs"] if j["model"] == "hang"]
    assert hang_job["status"] == "failed" and hang_job["error"].startswith("timed out after 20 s")
    assert metric_rows(site)[("dummy", "molecules_small", "force_rmse")]["value"] > 0


# --- 3. the S3 server stopped -------------------------------------------------------------------
@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    server = RestartableSeaweedFS(tmp_path_factory.mktemp("seaweedfs-faults"))
    server.start()
    yield server
    if server.process is not None:
        server.crash()  # a throwaway server: a graceful stop takes weed ~20 s


@pytest.fixture
def s3(seaweed, monkeypatch):
    if seaweed.process is None:
        seaweed.start()
    for name, value in seaweed.server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LAMBENCH_WEIGHTS_DIR", "/nonexistent")
    return seaweed


def s3_spec(prefix: str, models: list[str]) -> CampaignSpec:
    spec = CampaignSpec(
        campaign_id="faults", models=models, tasks=[MOLECULES], store=f"s3://faults/{prefix}", bootstrap_replicates=20
    )
    plan_step(spec)  # the plan the run, aggregate and publish steps read
    return spec


@pytest.mark.slow
def test_s3_server_crashing_during_a_run_steps_write(s3, monkeypatch):
    spec = s3_spec("run", ["dummy"])
    (job,) = campaign_jobs(spec)
    store = ResultStore.open(spec.store)
    real_execute_job = ops.execute_job_with_deadline
    crashed: list[float] = []

    def execute_then_crash(spec, job, store, *rest):  # the server dies while the step computes
        result = real_execute_job(spec, job, store, *rest)
        s3.crash()
        crashed.append(time.monotonic())
        return result

    monkeypatch.setattr(ops, "execute_job_with_deadline", execute_then_crash)
    with pytest.raises(TransientError) as failure:
        run_step(spec, job.key)
    waited = time.monotonic() - crashed[0]
    assert str(failure.value).startswith(f"storing {job.key}: s3://faults/run/results/{job.key}.json: write failed (")
    assert "Connection refused" in str(failure.value)
    assert waited < 60, f"{waited:.1f} s"
    print(f"write to a crashed S3 server failed after {waited:.1f} s")

    # While it is down, reads fail just as fast with the object's name; a step started now cannot
    # even check the store (this is raised as a plain LambenchError, not a TransientError).
    start = time.monotonic()
    with pytest.raises(LambenchError, match=rf"s3://faults/run/results/{job.key}.json: read failed \("):
        store.get(job.key)
    assert time.monotonic() - start < 60

    s3.start()  # same ports, same data
    assert store.get(job.key) is None and store.get_failure(job.key) is None  # nothing half-written
    monkeypatch.setattr(ops, "execute_job_with_deadline", real_execute_job)
    assert run_step(spec, job.key) == "succeeded"
    stored = store.get(job.key)
    assert stored is not None and stored.n_scored == 55


@pytest.mark.slow
def test_s3_server_freezing_during_publish(s3, monkeypatch):
    monkeypatch.setenv("LAMBENCH_S3_TIMEOUT", "2")
    spec = s3_spec("publish", ["dummy", "emt"])
    assert [run_step(spec, job.key) for job in campaign_jobs(spec)] == ["succeeded", "succeeded"]
    summary = ops.AggregateCampaign().execute(OPIO(store=spec.store, campaign="faults"))["summary"]

    from lambench_core.results.s3 import S3Backend

    real_write = S3Backend.write_bytes
    written: list[str] = []

    def write_then_freeze(self, path, data):  # the server stops answering after 3 site files
        real_write(self, path, data)
        written.append(path)
        if len(written) == 3:
            s3.freeze()

    monkeypatch.setattr(S3Backend, "write_bytes", write_then_freeze)
    start = time.monotonic()
    try:
        with pytest.raises(LambenchError, match=r"^s3://faults/publish/campaigns/faults/site/\S+: write failed \("):
            ops.PublishCampaign().execute(OPIO(store=spec.store, campaign="faults", output_dir="", aggregate=summary))
        waited = time.monotonic() - start
    finally:
        s3.thaw()
    assert waited < 60, f"{waited:.1f} s"
    print(f"publish to a frozen S3 server failed after {waited:.1f} s")
    monkeypatch.setattr(S3Backend, "write_bytes", real_write)

    store = ResultStore.open(spec.store)
    board = Leaderboard.model_validate_json(store.get_campaign_file("faults", LEADERBOARD_JSON))
    expected = site_files(
        board, store.get_campaign_file("faults", METRICS_PARQUET), store.get_campaign_file("faults", RECORDS_PARQUET)
    )
    # What the interrupted publish left is whole objects only (a site mixing runs is possible: the
    # site is not published atomically as a folder, each object is).
    for name, content in expected.items():
        found = store.get_campaign_file("faults", f"site/{name}")
        assert found is None or found == content, name
    ops.PublishCampaign().execute(OPIO(store=spec.store, campaign="faults", output_dir="", aggregate=summary))
    for name, content in expected.items():
        assert store.get_campaign_file("faults", f"site/{name}") == content, name
    rankings = json.loads(store.get_campaign_file("faults", "site/rankings.json"))
    assert [m["model"] for m in rankings["models"]] == ["emt", "dummy"]


def raw_put(url: str, body: bytes, declared: int) -> None:
    """A PUT that announces `declared` bytes, sends `body`, and hangs up: a client dying mid-upload."""
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as connection:
        head = (
            f"PUT {parsed.path}?{parsed.query} HTTP/1.1\r\nHost: {parsed.netloc}\r\nContent-Length: {declared}\r\n\r\n"
        )
        connection.sendall(head.encode() + body)
    time.sleep(0.5)


@pytest.mark.slow
def test_s3_upload_cut_midway_is_never_read_back_as_a_result(s3, tmp_path, monkeypatch):
    spec = faulty_spec(tmp_path, monkeypatch, lambda: FaultyCalculator({}))
    (job,) = campaign_jobs(spec)
    result = execute_job(spec, job)
    data = result.model_dump_json(indent=1).encode()
    store = ResultStore.open("s3://faults/torn")
    backend = store.backend
    url = backend.client.presigned_put_object(backend.bucket, backend._key(f"results/{job.key}.json"))
    store.put_campaign_file("probe", "bucket", b"")  # the bucket exists

    raw_put(url, data[: len(data) // 2], len(data))  # a new object cut midway: absent
    assert store.get(job.key) is None and store.keys() == []
    store.put(result)
    raw_put(url, data[: len(data) // 2], len(data))  # an overwrite cut midway: the old object stays
    assert store.get(job.key) == result
    # A whole object holding half a result (a writer that uploaded a truncated buffer) is ignored.
    backend.write_bytes(f"results/{job.key}.json", data[: len(data) // 2])
    assert store.get(job.key) is None


# --- 4. two campaigns writing one store at once -------------------------------------------------
@pytest.mark.slow
def test_two_campaigns_writing_one_store_at_once(tmp_path):
    store = tmp_path / "store"
    env = lambench_env(tmp_path)
    common = ("--models", "dummy,emt", "--workers", "1", "--bootstrap", "20", "--store", str(store))
    a = start_run(
        *common,
        "--tasks",
        f"{MOLECULES},force_field/cu_bulk",
        "--workdir",
        str(tmp_path / "a"),
        env=env,
        log=tmp_path / "a.log",
    )
    b = start_run(
        *common, "--tasks", "force_field/cu_bulk,s22", "--workdir", str(tmp_path / "b"), env=env, log=tmp_path / "b.log"
    )
    out_a, out_b = finish(a, tmp_path / "a.log"), finish(b, tmp_path / "b.log")
    assert a.returncode == 0, out_a
    assert b.returncode == 0, out_b
    results = assert_store_is_sound(store)
    assert sorted((r.model, r.task) for r in results) == sorted(
        (model, task) for model in ("dummy", "emt") for task in (MOLECULES, "force_field/cu_bulk", "s22")
    )
    assert not (store / "failures").exists() or not list((store / "failures").iterdir())
    rows_a, rows_b = (
        metric_rows(only_run_dir(tmp_path / "a") / "site"),
        metric_rows(only_run_dir(tmp_path / "b") / "site"),
    )
    shared = {k for k in rows_a if k[1] == "cu_bulk"}
    assert shared and shared == {k for k in rows_b if k[1] == "cu_bulk"}
    for key in shared:
        assert rows_a[key]["value"] == rows_b[key]["value"], key
    assert {k[1] for k in rows_a} == {"molecules_small", "cu_bulk"} and {k[1] for k in rows_b} >= {"cu_bulk", "s22"}
