"""The campaign as Argo manifests, validated strictly against Argo's schema (hera's models with
extra fields forbidden), and the cluster configuration's validation."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from lambench_core.campaign import CampaignContext, CampaignSpec, campaign_jobs
from lambench_core.errors import LambenchError
from lambench_core.tasks.suite import TaskSuite
from ops.campaign import decode_parameter
from workflows.argo import build_workflow, cron_workflow, validate_manifest
from workflows.argo_client import workflow_spec_parameter
from workflows.cli import main
from workflows.cluster_config import load_cluster_config

MODELS = ["chgnet-0.3.0", "sevennet-0", "mace-mp-0-medium"]
CONFIG = {
    "argo": {"server": "https://argo.example.org:2746", "namespace": "bench", "parallelism": 12},
    "s3": {"endpoint": "http://minio.minio:9000", "bucket": "lambench", "prefix": "prod", "secret_name": "s3-keys"},
    "images": {"mace": "registry.example.org/lambench/mace:custom"},
    "resources": {
        "force_field": {
            "gpus": 1,
            "cpu": "4",
            "memory": "16Gi",
            "node_selector": {"nvidia.com/gpu.product": "A100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "oom_retry_memory": "64Gi",
            "oom_retry_node_selector": {"pool": "highmem"},
        },
        "efficiency": {"gpus": 2, "memory": "32Gi", "timeout_seconds": 7200, "transient_retries": 0},
    },
}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture
def spec(config_file):
    config = load_cluster_config(config_file, environ={})
    probe = CampaignSpec(campaign_id="c1", models=MODELS, tasks=[], store=config.s3.store_url, profile="full")
    return probe.model_copy(update={"tasks": TaskSuite.default(CampaignContext(probe).manifest, "full").names()})


def templates_by_name(manifest: dict) -> dict[str, dict]:
    return {t["name"]: t for t in manifest["spec"]["templates"]}


def run_steps(manifest: dict) -> list[dict]:
    steps = next(t for t in manifest["spec"]["templates"] if "steps" in t)["steps"]
    return [step for group in steps for step in group if step["name"].startswith("run-")]


def parameters(step: dict) -> dict[str, str]:
    """A step's arguments as the step decodes them (every engine encodes its parameters)."""
    return {p["name"]: decode_parameter(p["value"]) for p in step["arguments"]["parameters"]}


def test_a_three_model_all_task_campaign_exports_and_validates_strictly(config_file, spec, tmp_path, monkeypatch):
    monkeypatch.setenv("ARGO_TOKEN", "token-that-must-not-leak")
    output = tmp_path / "workflow.yaml"
    code = main(
        [
            "export",
            "--config",
            str(config_file),
            "--models",
            ",".join(MODELS),
            "--campaign",
            "c1",
            "--profile",
            "full",
            "-o",
            str(output),
        ]
    )
    assert code == 0
    text = output.read_text()
    manifest = yaml.safe_load(text)
    assert manifest["apiVersion"] == "argoproj.io/v1alpha1" and manifest["kind"] == "Workflow"
    validate_manifest(manifest)
    assert len(text.encode()) < 1_000_000
    for secret in ("token-that-must-not-leak", '"password"', '"admin"'):
        assert secret not in text

    jobs = {job.key: job for job in campaign_jobs(spec)}
    steps = run_steps(manifest)
    assert len(steps) == len(jobs) == 3 * len(spec.tasks)
    templates = templates_by_name(manifest)
    expected_images = {
        "chgnet-0.3.0": "ghcr.io/lambench/chgnet:0.1.0",
        "sevennet-0": "ghcr.io/lambench/sevenn:0.1.0",
        "mace-mp-0-medium": "registry.example.org/lambench/mace:custom",
    }
    for step in steps:
        values = parameters(step)
        job = jobs[values["job_key"]]
        # Deterministic keys: the job's identity key, so reuse and retries find the same step.
        assert values["dflow_key"] == f"run-{job.key}"[:63]
        assert set(values) == {"job_key", "dflow_key"}  # where the plan is comes from the template's defaults
        script = templates[step["template"]]["script"]
        template = templates[step["template"]]
        defaults = {p["name"]: decode_parameter(p["default"]) for p in template["inputs"]["parameters"] if "default" in p}
        assert defaults["store"] == "s3://lambench/prod" and defaults["campaign"] == "c1"
        assert script["image"] == expected_images[job.model]
        category = job.instance.category.value
        resources = script["resources"]
        retry = template["retryStrategy"]
        assert "asInt(lastRetry.exitCode) == 1" in retry["expression"]  # TransientError
        assert 'lastRetry.status == "Error"' in retry["expression"]  # pod lost, node preempted
        assert "== 2" not in retry["expression"]  # FatalError: never retried
        if category == "force_field":
            assert resources["requests"]["nvidia.com/gpu"] == "1" and resources["limits"]["memory"] == "16Gi"
            assert template["nodeSelector"] == {"nvidia.com/gpu.product": "A100"}
            assert template["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
            assert "asInt(lastRetry.exitCode) == 137" in retry["expression"] and retry["limit"] == "5"
            assert "'64Gi'" not in template["podSpecPatch"] and '"memory":"64Gi"' in template["podSpecPatch"]
            assert template["podSpecPatch"].startswith("{{=asInt(retries) > 0 ?")
        elif category == "efficiency":
            assert resources["requests"]["nvidia.com/gpu"] == "2" and template["timeout"] == "7200s"
            assert retry["limit"] == "2" and "podSpecPatch" not in template
        else:
            assert resources["requests"]["nvidia.com/gpu"] == "1" and template["timeout"] == "14400s"
        env = {e["name"]: e for e in script["env"]}
        assert env["LAMBENCH_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "s3-keys", "key": "accesskey"}
        assert env["LAMBENCH_S3_ENDPOINT"]["value"] == "http://minio.minio:9000"
    assert manifest["spec"]["parallelism"] == 12
    assert [p["name"] for p in manifest["spec"]["arguments"]["parameters"]] == ["spec"]
    exported = CampaignSpec.model_validate_json(workflow_spec_parameter(manifest))
    assert exported.store == "s3://lambench/prod" and exported.models == MODELS
    top = next(t for t in manifest["spec"]["templates"] if "steps" in t)["steps"]
    assert [group[0]["name"] for group in top] == ["plan", "run-0", "aggregate", "publish"]
    # Only the plan step reads the spec (once, from the workflow parameter); the others read its plan.
    assert parameters(top[0][0])["spec"] == "{{workflow.parameters.spec}}"
    reading_spec = [
        t["name"] for t in manifest["spec"]["templates"] if "spec" in {p["name"] for p in t.get("inputs", {}).get("parameters", [])}
    ]
    assert reading_spec == [top[0][0]["template"]]


def test_the_strict_schema_rejects_what_argo_would_drop(config_file, spec):
    manifest = build_workflow(spec.model_copy(update={"tasks": spec.tasks[:2]}), load_cluster_config(config_file, {}))
    validate_manifest(manifest)
    for mutate in (
        lambda m: m["spec"]["templates"][0].update({"retryStrtegy": {}}),
        lambda m: m["spec"].update({"parallelism": "many"}),
        lambda m: m.update({"kind": "Pod"}),
    ):
        broken = copy.deepcopy(manifest)
        mutate(broken)
        with pytest.raises(LambenchError):
            validate_manifest(broken)


def test_the_nightly_cron_workflow(config_file, tmp_path):
    output = tmp_path / "cron.yaml"
    code = main(
        [
            "schedule",
            "--config",
            str(config_file),
            "--models",
            "dummy,emt",
            "--tasks",
            "s22,efficiency",
            "--cron",
            "30 1 * * *",
            "-o",
            str(output),
        ]
    )
    assert code == 0
    cron = yaml.safe_load(output.read_text())
    validate_manifest(cron)
    assert cron["kind"] == "CronWorkflow" and cron["spec"]["schedules"] == ["30 1 * * *"]
    assert cron["spec"]["timezone"] == "UTC" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    workflow = cron["spec"]["workflowSpec"]
    top = next(t for t in workflow["templates"] if "steps" in t)["steps"]
    assert [group[0]["name"] for group in top] == ["plan", "run-0", "aggregate", "publish", "compare"]
    compare = top[-1][0]
    compare_template = next(t for t in workflow["templates"] if t["name"] == compare["template"])
    defaults = {p["name"]: decode_parameter(p["default"]) for p in compare_template["inputs"]["parameters"] if "default" in p}
    assert defaults["campaign"] == "nightly/{{workflow.name}}"  # each night publishes under its own folder
    assert parameters(compare)["series"] == "nightly"
    assert parameters(compare)["site"] == "{{=steps['publish'].outputs.parameters['site']}}"
    spec = CampaignSpec.model_validate_json(workflow_spec_parameter({"spec": workflow}))
    assert spec.campaign_id == "nightly"
    with pytest.raises(LambenchError, match="five-field cron"):
        cron_workflow(spec, load_cluster_config(config_file, {}), "nightly")


def test_configuration_errors_name_the_file_and_field(tmp_path, config_file):
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"s3": {"endpoint": "x:9000"}}))
    with pytest.raises(LambenchError, match=r"broken\.yaml: field 's3.bucket': Field required"):
        load_cluster_config(broken, {})
    broken.write_text(yaml.safe_dump(CONFIG | {"resources": {"gpu_jobs": {"gpus": 1}}}))
    with pytest.raises(LambenchError, match=r"field 'resources': Value error, unknown categories \['gpu_jobs'\]"):
        load_cluster_config(broken, {})
    broken.write_text(yaml.safe_dump(CONFIG | {"argo": {"server": "argo:2746"}}))
    with pytest.raises(LambenchError, match=r"field 'argo.server'.*http"):
        load_cluster_config(broken, {})
    environ = {"LAMBENCH_CLUSTER__ARGO__NAMESPACE": "nightly", "LAMBENCH_CLUSTER__RESOURCES__STABILITY__GPUS": "3"}
    config = load_cluster_config(config_file, environ)
    assert config.argo.namespace == "nightly" and config.resources_for("stability").gpus == 3
    assert config.resources_for("force_field").memory == "16Gi"  # the file's value survives
    with pytest.raises(LambenchError, match=r"LAMBENCH_CLUSTER__ARGO__PARALLELISM"):
        load_cluster_config(config_file, {"LAMBENCH_CLUSTER__ARGO__PARALLELISM": "0"})


def test_unknown_model_stops_export_with_the_known_names(config_file, capsys):
    assert main(["export", "--config", str(config_file), "--models", "nosuch"]) == 2
    assert "unknown model 'nosuch' (known:" in capsys.readouterr().err


def test_slurm_steps_and_their_batch_script(tmp_path, spec):
    from lambench_core.categories import Category
    from workflows.slurm import job_script

    document = CONFIG | {
        "slurm": {
            "context": "ssh",
            "host": "login.hpc.example.org",
            "username": "bench",
            "work_root": "/scratch/bench/lambench",
            "defaults": {"partition": "cpu", "cpus": 4, "memory": "16G", "account": "materials"},
            "resources": {
                "force_field": {
                    "partition": "gpu",
                    "gpus": 1,
                    "cpus": 8,
                    "time_limit": "06:00:00",
                    "qos": "long",
                    "prelude": ["module load cuda/12.4"],
                }
            },
        }
    }
    path = tmp_path / "slurm.yaml"
    path.write_text(yaml.safe_dump(document))
    settings = load_cluster_config(path, {})
    script = job_script(settings.slurm, Category.FORCE_FIELD, "python3 script")
    for line in (
        "#SBATCH --partition gpu",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --time=06:00:00",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=16G",
        "#SBATCH --account=materials",
        "#SBATCH --qos=long",
        "module load cuda/12.4",
    ):
        assert line in script
    other = job_script(settings.slurm, Category.PROPERTY, "python3 script")
    assert "#SBATCH --partition cpu" in other and "--gres" not in other and "#SBATCH --time=04:00:00" in other
    manifest = build_workflow(spec.model_copy(update={"tasks": ["s22"]}), settings, slurm=True)
    validate_manifest(manifest)
    run_template = templates_by_name(manifest)[run_steps(manifest)[0]["template"]]
    assert "dpdispatcher" in yaml.safe_dump(run_template) and "login.hpc.example.org" in yaml.safe_dump(run_template)
    with pytest.raises(LambenchError, match="'ssh' needs 'host' and 'username'"):
        load_cluster_config(path, {"LAMBENCH_CLUSTER__SLURM__HOST": "''"})


def test_the_example_slurm_configuration_loads():
    from lambench_core.categories import Category

    config = load_cluster_config(Path(__file__).resolve().parents[3] / "docs/examples/slurm-local.yaml", {})
    force_field = config.slurm.resources_for(Category.FORCE_FIELD)
    assert (force_field.partition, force_field.cpus, force_field.memory) == ("batch", 2, "3G")
    assert config.slurm.resources_for(Category.PROPERTY).partition == "debug"
    assert config.slurm.resources_for(Category.STABILITY).time_limit == "02:00:00"
