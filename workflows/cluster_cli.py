"""`lambench export | submit | status | retry | resubmit | schedule`: campaigns on Argo Workflows, and
`status | retry | resubmit` of campaigns that `lambench run` drives from this host (local or Slurm)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from lambench_core.campaign import CampaignContext, CampaignSpec, campaign_jobs, plan_campaign
from lambench_core.categories import Category
from lambench_core.errors import LambenchError
from lambench_core.results.store import ResultStore
from lambench_core.tasks.suite import TaskSuite
from workflows import arguments
from workflows.cluster_config import ClusterConfig, load_cluster_config
from workflows.defaults import DEFAULT_MODELS, campaign_models, new_campaign_id, plain_console, split_names


def add_cluster_commands(commands: argparse._SubParsersAction) -> None:

    def with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--config", type=arguments.text_file, help="cluster configuration YAML (overridable by LAMBENCH_CLUSTER__*)"
        )
        return parser

    def with_campaign(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        with_config(parser)
        parser.add_argument(
            "--models", type=arguments.names, help=f"comma-separated models (default: {','.join(DEFAULT_MODELS)})"
        )
        parser.add_argument(
            "--tasks", type=arguments.names, help="comma-separated tasks (default: every task of the suite)"
        )
        parser.add_argument("--campaign", type=arguments.campaign_id, help="campaign id (default: a timestamp)")
        parser.add_argument("--profile", choices=("quick", "full"), default="full", help="applicability protocol")
        parser.add_argument("--force", action="store_true", help="recompute results already in the store")
        parser.add_argument("--executor", choices=("argo", "slurm"), default="argo", help="where run steps execute")
        return parser

    export = with_campaign(commands.add_parser("export", help="write the campaign's Argo Workflow manifest"))
    export.add_argument("-o", "--output", type=arguments.output_file, help="file to write (default: standard output)")
    export.add_argument("--slurm-script", action="store_true", help="print the batch script of one run step")
    export.add_argument(
        "--category",
        choices=[category.value for category in Category],
        default=Category.FORCE_FIELD.value,
        help="the task category whose batch script --slurm-script prints (default: force_field)",
    )
    with_campaign(commands.add_parser("submit", help="submit the campaign to Argo; prints its id and UI link"))
    def with_campaign_name(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        with_config(parser)
        parser.add_argument(
            "workflow",
            type=arguments.name,
            help="an Argo workflow's name (as `lambench submit` printed) or a `lambench run` campaign id",
        )
        parser.add_argument(
            "--workdir",
            type=arguments.folder,
            default=Path("lambench-work"),
            help="where `lambench run` keeps its runs",
        )
        parser.add_argument(
            "--workers", type=arguments.positive_int, default=2, help="jobs run (or queued on Slurm) at once"
        )
        parser.add_argument(
            "--timeout",
            type=arguments.finite_positive_float,
            default=7200.0,
            help="seconds before the campaign is stopped",
        )
        return parser

    for name, text in (("status", "a campaign's progress"), ("retry", "rerun only its failed or missing jobs")):
        with_campaign_name(commands.add_parser(name, help=text))
    resubmit = with_campaign_name(commands.add_parser("resubmit", help="a new run of the same campaign"))
    resubmit.add_argument(
        "--reuse",
        action="store_true",
        help="skip every run step that succeeded before (campaigns run here always reuse stored results)",
    )
    schedule = with_campaign(commands.add_parser("schedule", help="a CronWorkflow of the campaign (nightly)"))
    schedule.add_argument(
        "--cron", type=arguments.cron_schedule, default="0 2 * * *", help="five-field cron schedule (default: 02:00)"
    )
    schedule.add_argument("--timezone", type=arguments.timezone, default="UTC", help="IANA time zone (default: UTC)")
    schedule.add_argument(
        "-o", "--output", type=arguments.output_file, help="write the manifest instead of creating it"
    )


def _spec(args: argparse.Namespace, config: ClusterConfig) -> CampaignSpec:
    models = campaign_models(args.models)
    probe = CampaignSpec(
        campaign_id=args.campaign or new_campaign_id(),
        models=models,
        tasks=[],
        store=config.store_url,
        profile=args.profile,
        force=args.force,
    )
    tasks = split_names(args.tasks) or TaskSuite.default(CampaignContext(probe).manifest, args.profile).names()
    spec = probe.model_copy(update={"tasks": tasks})
    campaign_jobs(spec)  # unknown names stop here, with the list of known ones
    return spec


def _write(manifest: dict, output: Path | None) -> None:
    text = yaml.safe_dump(manifest, sort_keys=False)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        print(f"wrote {output} ({len(text.encode()) / 1024:.0f} KiB)", file=sys.stderr)


def command_export(args: argparse.Namespace) -> int:
    from workflows.argo import build_workflow, validate_manifest

    config = load_cluster_config(args.config)
    spec = _spec(args, config)
    if args.slurm_script:
        from workflows.slurm import job_script

        if config.slurm is None:
            raise LambenchError("--slurm-script: the cluster configuration has no 'slurm' section")
        python = config.slurm.python or "python3"
        print(job_script(config.slurm, Category(args.category), f"{python} -m workflows.batch_step script"), end="")
        return 0
    manifest = build_workflow(spec, config, slurm=args.executor == "slurm")
    validate_manifest(manifest)
    _write(manifest, args.output)
    return 0


def command_submit(args: argparse.Namespace) -> int:
    from workflows.argo import build_workflow, validate_manifest
    from workflows.argo_client import ArgoClient

    config = load_cluster_config(args.config)
    spec = _spec(args, config)
    manifest = build_workflow(spec, config, slurm=args.executor == "slurm")
    validate_manifest(manifest)
    client = ArgoClient(config.argo)
    name = client.submit(manifest)
    print(f"submitted {name} (campaign {spec.campaign_id}, {len(spec.models)} models × {len(spec.tasks)} tasks)")
    print(client.ui_link(name))
    print(f"results: {spec.store}/campaigns/{spec.campaign_id}/site/index.html once published")
    return 0


def command_status(args: argparse.Namespace) -> int:
    from workflows.argo_client import ArgoClient, run_steps
    from workflows.driven import DrivenRun, print_status

    run = DrivenRun.find(args.workdir, args.workflow)
    if run is not None:
        return print_status(run, plain_console())
    config = load_cluster_config(args.config)
    workflow = ArgoClient(config.argo).get(args.workflow)
    status = workflow.get("status") or {}
    steps = run_steps(workflow)
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.phase] = counts.get(step.phase, 0) + 1
    summary = ", ".join(f"{n} {phase.lower()}" for phase, n in sorted(counts.items())) or "no run step started"
    print(f"{args.workflow}: {status.get('phase', 'Pending')} — run steps: {summary}")
    names = _job_names(workflow)
    for step in steps:
        if step.phase in ("Failed", "Error"):
            print(f"  {step.phase.lower()} {names.get(step.job_key or '', step.job_key)}: {step.message or ''}")
    return 0


def _job_names(workflow: dict) -> dict[str, str]:
    """job key → "model × task", where this machine can plan the workflow's spec; else nothing."""
    from workflows.argo_client import workflow_spec_parameter

    try:
        spec = CampaignSpec.model_validate_json(workflow_spec_parameter(workflow))
        return {job.key: f"{job.model} × {job.instance.name}" for job in campaign_jobs(spec)}
    except Exception:  # cards or data differ here: show bare keys
        return {}


def command_retry(args: argparse.Namespace) -> int:
    from workflows.argo_client import ArgoClient, run_steps
    from workflows.driven import DrivenRun, replan, rerun

    run = DrivenRun.find(args.workdir, args.workflow)
    if run is not None:
        # The same campaign, planned anew: jobs with a result are kept, the others run again.
        return rerun(run, replan(run), run.run_dir, args.workers, args.timeout, plain_console())
    config = load_cluster_config(args.config)
    client = ArgoClient(config.argo)
    failed = [s for s in run_steps(client.get(args.workflow)) if s.phase in ("Failed", "Error")]
    client.retry(args.workflow)
    print(f"retrying {len(failed)} failed step(s) of {args.workflow}; succeeded steps are kept")
    print(client.ui_link(args.workflow))
    return 0


def command_resubmit(args: argparse.Namespace) -> int:
    from workflows.argo import build_workflow, validate_manifest
    from workflows.argo_client import ArgoClient, run_steps, workflow_spec_parameter
    from workflows.driven import DrivenRun, rerun

    run = DrivenRun.find(args.workdir, args.workflow)
    if run is not None:
        campaign_id = new_campaign_id()
        run_dir = (args.workdir / "runs" / campaign_id).resolve()
        spec = run.plan.campaign.model_copy(
            update={"campaign_id": campaign_id, "progress_dir": str(run_dir / "progress"), "force": False}
        )
        plan = plan_campaign(spec, ResultStore.open(spec.store))
        return rerun(run, plan, run_dir, args.workers, args.timeout, plain_console())
    config = load_cluster_config(args.config)
    client = ArgoClient(config.argo)
    old = client.get(args.workflow)
    spec = CampaignSpec.model_validate_json(workflow_spec_parameter(old))
    jobs = campaign_jobs(spec)
    if args.reuse:
        done = {s.job_key for s in run_steps(old) if s.phase == "Succeeded"}
        jobs = [job for job in jobs if job.key not in done]
    manifest = build_workflow(spec, config, jobs=jobs)
    validate_manifest(manifest)
    name = client.submit(manifest)
    reused = len(campaign_jobs(spec)) - len(jobs)
    print(f"submitted {name}: {len(jobs)} run step(s), {reused} reused from {args.workflow}")
    print(client.ui_link(name))
    return 0


def command_schedule(args: argparse.Namespace) -> int:
    from workflows.argo import cron_workflow, validate_manifest
    from workflows.argo_client import ArgoClient

    config = load_cluster_config(args.config)
    spec = _spec(args, config)
    if args.campaign is None:
        spec = spec.model_copy(update={"campaign_id": "nightly"})
    manifest = cron_workflow(spec, config, args.cron, args.timezone)
    validate_manifest(manifest)
    if args.output is not None:
        _write(manifest, args.output)
        return 0
    name = ArgoClient(config.argo).create_cron(manifest)
    print(f"scheduled {name}: '{args.cron}' {args.timezone}, one run at a time, compared with the previous run")
    print(json.dumps({"campaign": spec.campaign_id, "store": spec.store}))
    return 0


CLUSTER_COMMANDS = {
    "export": command_export,
    "submit": command_submit,
    "status": command_status,
    "retry": command_retry,
    "resubmit": command_resubmit,
    "schedule": command_schedule,
}
