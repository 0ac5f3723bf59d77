"""The `lambench` command line."""

from __future__ import annotations

import argparse
import os
import secrets
import select
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from lambench_core.campaign import CampaignContext, CampaignSpec, plan_campaign
from lambench_core.data.manifest import BUILTIN_MANIFEST, DATA_DIR_ENV
from lambench_core.errors import InputError, LambenchError, first_validation_problem
from lambench_core.report.publish import SITE
from lambench_core.results.store import ResultStore
from lambench_core.settings import settings
from lambench_core.tasks.suite import BUILTIN_SUITE
from workflows import arguments
from workflows.cluster_config import ClusterConfig, SlurmSettings, load_cluster_config
from workflows.defaults import DEFAULT_MODELS, OFFLINE, campaign_models, new_campaign_id, plain_console, split_names

DEFAULT_WORKDIR = Path("lambench-work")
EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell shows for a writer whose reader went away
# The wording tests/reliability/test_bad_input.py pins for `run --workers 0` and `run --timeout -5`.
_RUN_LIMITS = "--workers must be ≥ 1 and --timeout > 0"
# Jobs per local run step: every job of a model and task category of the default suite in one step
# (its model loaded once). Measured on 2 cores, the default campaign interleaved: 19 against 6 took
# 231.6 against 256.8 s and 218.6 against 231.3 s; benchmarks/harness_overhead.py gives the 7
# force-field sets of one model 2.1× their model-call time at 7 and up, 2.9× at 6 (two loads).
LOCAL_JOBS_PER_STEP = 19


def _add_catalog_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cards",
        action="append",
        default=[],
        type=arguments.cards_folder,
        help="extra directory of model cards (family modules, *.py beside them, are imported too)",
    )
    parser.add_argument(
        "--manifest", type=arguments.text_file, default=BUILTIN_MANIFEST, help="dataset manifest (YAML)"
    )


def build_parser() -> argparse.ArgumentParser:
    """Every command's options, each with the validator (workflows.arguments) that checks it once."""
    parser = arguments.Parser(prog="lambench", description="Benchmark Large Atomic Models.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="run a campaign driven from this host (local processes or Slurm jobs) and print the leaderboard"
    )
    run.add_argument(
        "--engine",
        choices=("local", "slurm"),
        default="local",
        help="local (default): steps as local processes; slurm: every job a Slurm batch job (see --config)",
    )
    run.add_argument(
        "--config",
        type=arguments.text_file,
        help="cluster configuration YAML (the slurm section: partitions, time limits, CPUs, memory, GPUs, prelude"
        " per task category; default: the cluster's default partition)",
    )
    run.add_argument(
        "--models",
        type=arguments.names,
        help=f"comma-separated model names; '{OFFLINE}': every card whose packages and weights are on this "
        f"machine (default: {','.join(DEFAULT_MODELS)})",
    )
    run.add_argument(
        "--tasks", type=arguments.names, help="comma-separated task names (default: every task whose data is present)"
    )
    run.add_argument(
        "--workdir", type=arguments.folder, default=DEFAULT_WORKDIR, help="where runs and the default store live"
    )
    run.add_argument(
        "--store", type=arguments.location, help="result store: a directory or file:// URL (default: WORKDIR/store)"
    )
    run.add_argument("--force", action="store_true", help="recompute jobs already in the store")
    run.add_argument(
        "--workers",
        type=arguments.whole_number(ge=1, rule=_RUN_LIMITS),
        default=2,
        help="jobs run (or queued on Slurm) at once (default: 2)",
    )
    run.add_argument(
        "--jobs-per-step",
        type=arguments.whole_number(ge=1),
        default=None,
        help="jobs of one model and task category per run step, so the model loads once per step "
        f"(default: {LOCAL_JOBS_PER_STEP} locally, 1 on Slurm)",
    )
    run.add_argument(
        "--threads",
        type=arguments.whole_number(ge=1),
        default=None,
        help="torch, BLAS and OpenMP threads per job (default: 1; on Slurm the CPUs of its category)",
    )
    run.add_argument("--device", type=arguments.device, default="auto", help=f"{arguments.DEVICES} (default: auto)")
    run.add_argument(
        "--timeout",
        type=arguments.finite_float(gt=0, rule=_RUN_LIMITS),
        default=7200.0,
        help="seconds before the campaign is stopped",
    )
    run.add_argument(
        "--profile",
        choices=("quick", "full"),
        default="quick",
        help="quick (default): laptop-sized efficiency sweep and 200-step MD; full: LAMBench's protocol (10 ps MD)",
    )
    run.add_argument(
        "--job-timeout",
        type=arguments.finite_float(gt=0, rule="must be > 0 seconds"),
        help="seconds one job may run; a job over it is recorded as failed and the campaign goes on",
    )
    run.add_argument(
        "--bootstrap",
        type=arguments.whole_number(ge=0, rule="must be ≥ 0 (0: no intervals)"),
        default=1000, help="bootstrap replicates of every interval (default: 1000; 0: none)"
    )
    run.add_argument(
        "--compare-previous",
        action="store_true",
        help="then compare with the previous run of WORKDIR that published a site (nightly runs): "
        "comparison.md/.json beside this run's site",
    )
    _add_catalog_options(run)
    run.add_argument(
        "--suite", type=arguments.text_file, default=BUILTIN_SUITE, help="suite file: tasks and their params (YAML)"
    )

    aggregate = commands.add_parser(
        "aggregate", help="score a table of raw metrics (JSON or Parquet) made anywhere, the way lambench scores"
    )
    aggregate.add_argument(
        # a path only: read_table names a missing file, after the options were checked
        "table", type=arguments.path, help="results.json or metrics.parquet of a run, or your own table"
    )
    aggregate.add_argument("--out", type=arguments.folder, help="also write the site and exports to this folder")
    aggregate.add_argument(
        "--records",
        type=arguments.path,
        help="a run's records.parquet: the site (--out) then draws its parity, element, efficiency, MD and "
        "property views, so a published run's site can be rebuilt from its exports alone",
    )
    aggregate.add_argument(
        "--confidence",
        type=arguments.finite_float(gt=0, lt=1, rule="must lie between 0 and 1"),
        default=0.95,
        help="interval level (default: 0.95)",
    )

    compare = commands.add_parser(
        "compare", help="regression report between two published runs (folders or s3://bucket/prefix)"
    )
    compare.add_argument("run_a", type=arguments.published_run, help="the earlier run (baseline)")
    compare.add_argument("run_b", type=arguments.published_run, help="the later run")
    compare.add_argument(
        "--out",
        type=arguments.location,
        default="lambench-comparison", help="folder or s3:// URL for comparison.{md,json} (%(default)s)"
    )
    compare.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 if any score got worse beyond A's interval"
    )

    from workflows.cluster_cli import add_cluster_commands
    from workflows.serve import add_serve_command

    add_cluster_commands(commands)
    add_serve_command(commands)

    models = commands.add_parser("models", help="list the model cards; `models check NAME`: sanity-check one")
    _add_catalog_options(models)
    from workflows.models_check_cli import add_check_command

    add_check_command(models)
    tasks = commands.add_parser("tasks", help="list the tasks whose data is on this machine")
    _add_catalog_options(tasks)

    data = commands.add_parser("data", help="dataset maintenance")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    errors = data_commands.add_parser("dummy-errors", help="recompute the dummy model's errors of each set")
    errors.add_argument("--check", action="store_true", help="exit 1 if the manifest's values differ")
    errors.add_argument("--manifest", type=arguments.text_file, default=BUILTIN_MANIFEST)
    build = data_commands.add_parser("build", help="label a recipe's frames with its reference codes (a dflow DAG)")
    build.add_argument(
        "recipe", type=arguments.recipe, help="a shipped recipe name (lambench_core/data/recipes) or a YAML path"
    )
    build.add_argument(
        "--levels", type=arguments.names, help="comma-separated reference levels (default: all of the recipe's)"
    )
    build.add_argument("--frames", type=arguments.positive_int, help="only the first N frames (a quick subset)")
    build.add_argument("--out", type=arguments.folder, help="output directory (default: the shipped set's directory)")
    build.add_argument("--cache", type=arguments.folder, help="label cache (default: ~/.cache/lambench/labels)")
    build.add_argument("--workers", type=arguments.positive_int, default=2, help="labelling steps at once")
    build.add_argument("--timeout", type=arguments.finite_positive_float, default=4 * 3600.0)
    certify = data_commands.add_parser(
        "certify", help="recompute a sample of a shipped set at tighter settings and write its convergence certificate"
    )
    certify.add_argument("recipe", type=arguments.recipe, help="a shipped recipe name (the set's) or a YAML path")
    certify.add_argument("--levels", type=arguments.names, help="comma-separated levels (default: all of the recipe's)")
    certify.add_argument(
        "--set-dir", type=arguments.folder, help="the set's directory (default: the shipped set's directory)"
    )
    certify.add_argument("--sample", type=arguments.positive_int, default=3, help="frames to recompute (at least 3)")
    certify.add_argument("--note", default="", help="why the set ships as it is, if its certificate fails")
    certify.add_argument("--cache", type=arguments.folder, help="label cache (default: ~/.cache/lambench/labels)")
    certify.add_argument("--workers", type=arguments.positive_int, default=2, help="labelling steps at once")
    certify.add_argument("--timeout", type=arguments.finite_positive_float, default=8 * 3600.0)
    scan = data_commands.add_parser(
        "scan", help="label a recipe's ideal structures once per settings variant and table how the labels move"
    )
    scan.add_argument("recipe", type=arguments.recipe, help="a shipped recipe name or a YAML path")
    scan.add_argument(
        "--grid", type=arguments.text_file, required=True, help="YAML: variant → settings (the last is the tightest)"
    )
    scan.add_argument("--level", type=arguments.name, help="reference level (default: the recipe's first)")
    scan.add_argument("--cache", type=arguments.folder, help="label cache (default: ~/.cache/lambench/labels)")
    scan.add_argument("--workers", type=arguments.positive_int, default=2, help="labelling processes at once")
    listing = data_commands.add_parser("list", help="list the datasets (--markdown: docs/datasets.md)")
    listing.add_argument("--markdown", action="store_true")
    listing.add_argument("--manifest", type=arguments.text_file, default=BUILTIN_MANIFEST)
    fit = data_commands.add_parser("fit-dummy", help="refit the dummy model's element energies")
    fit.add_argument("--manifest", type=arguments.text_file, default=BUILTIN_MANIFEST)
    fetch = data_commands.add_parser("fetch", help="download, verify, unpack and register an external dataset")
    fetch.add_argument("name", type=arguments.name, help="dataset name from the manifest (e.g. HPt_NC_2022)")
    fetch.add_argument(
        "--data-dir",
        type=arguments.folder,
        help=f"where fetched sets live (default: ${DATA_DIR_ENV} or ~/.cache/lambench/data)",
    )
    fetch.add_argument(
        "--archive", type=arguments.existing_file, help="register an archive you downloaded yourself instead"
    )
    fetch.add_argument("--manifest", type=arguments.text_file, default=BUILTIN_MANIFEST)
    return parser


def _spec_from_args(
    args: argparse.Namespace, campaign_id: str, run_dir: Path, config: ClusterConfig | None
) -> CampaignSpec:
    configured_store = config.store if config is not None else None
    return CampaignSpec(
        campaign_id=campaign_id,
        models=campaign_models(args.models, args.cards),
        tasks=split_names(args.tasks) or [],
        store=args.store or configured_store or str((args.workdir / "store").resolve()),
        manifest=str(args.manifest.resolve()),
        suite=str(args.suite.resolve()),
        cards_dirs=[str(d.resolve()) for d in args.cards],
        device=args.device,
        # One thread per job by default: the cores are used through --workers (on Slurm a job uses the
        # CPUs its category asks for, SLURM_CPUS_PER_TASK).
        threads_per_job=args.threads,
        jobs_per_step=args.jobs_per_step or (LOCAL_JOBS_PER_STEP if args.engine == "local" else 1),
        force=args.force,
        progress_dir=str(run_dir / "progress"),
        profile=args.profile,
        bootstrap_replicates=args.bootstrap,
        job_timeout_s=args.job_timeout,
        engine=args.engine,
    )


def _engine_config(args: argparse.Namespace) -> ClusterConfig | None:
    """The cluster configuration of a Slurm run: its file (or the environment's overrides), with a
    relative work directory placed under --workdir (which must be on the nodes' shared filesystem)."""
    if args.engine == "local":
        if args.config is not None:
            raise LambenchError("--config: only for --engine slurm (Argo campaigns: lambench submit --config)")
        return None
    config = load_cluster_config(args.config)
    settings = config.slurm or SlurmSettings()
    if not Path(settings.work_root).is_absolute():
        settings = settings.model_copy(update={"work_root": str((args.workdir / "slurm").resolve())})
    return config.model_copy(update={"slurm": settings})


def check_device_present(device: str) -> None:
    """--device names a device this machine has, or the campaign does not start: a job would
    otherwise fail, or its result be discarded, far from the flag that caused it."""
    if device in ("auto", "cpu"):
        return
    use_cpu = "use --device cpu or auto"
    try:
        import torch
    except ImportError:
        raise LambenchError(f"--device {device}: PyTorch is not installed here, so no such device; {use_cpu}") from None
    if device == "mps":
        if not torch.backends.mps.is_available():
            why = "torch.backends.mps.is_available() is False"
            raise LambenchError(f"--device mps: this machine has no Apple GPU ({why}); {use_cpu}")
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        why = "torch.cuda.is_available() is False"
        raise LambenchError(f"--device {device}: this machine has no CUDA device ({why}); {use_cpu}")
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise LambenchError(f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")


def open_writable_store(url: str, campaign_id: str) -> ResultStore:
    """The store, once it has taken (and given back) a small object under each folder the campaign
    writes: a read-only, full or misplaced store stops the campaign here, with one line, before the
    DAG starts (inside it, it would surface as a failed step)."""
    from lambench_core.results.store import CAMPAIGNS, FAILURES, RESULTS

    try:
        store = ResultStore.open(url)
    except LambenchError:
        raise
    except Exception as exc:
        raise LambenchError(f"--store {url}: cannot be opened ({type(exc).__name__}: {exc})") from None
    probe = f".write-probe-{secrets.token_hex(4)}"
    for folder in (f"{CAMPAIGNS}/{campaign_id}", RESULTS, FAILURES):
        try:
            store.backend.write_bytes(f"{folder}/{probe}", b"lambench write probe\n")
            store.backend.delete(f"{folder}/{probe}")
        except Exception as exc:
            why = str(exc) if isinstance(exc, LambenchError) else f"{type(exc).__name__}: {exc}"
            raise LambenchError(f"--store {url}: cannot write in {folder}/: {why}") from None
    return store


def command_run(args: argparse.Namespace, console: Console) -> int:
    from workflows.local import run_locally
    from workflows.outcome import describe_plan, report_outcome
    from workflows.progress import ProgressDisplay, SlurmQueue

    # --workers, --timeout, --bootstrap, --job-timeout: checked as they were read (build_parser)
    if args.engine == "local":  # on Slurm the device is the compute nodes', not this host's
        check_device_present(args.device)
    config = _engine_config(args)
    campaign_id = new_campaign_id()
    run_dir = (args.workdir / "runs" / campaign_id).resolve()
    spec = _spec_from_args(args, campaign_id, run_dir, config)
    if not spec.tasks:
        spec.tasks = CampaignContext(spec).suite.names()
    store = open_writable_store(spec.store, campaign_id)
    plan = plan_campaign(spec, store)
    describe_plan(plan, store, console)
    queue = SlurmQueue() if args.engine == "slurm" else None
    display = ProgressDisplay(plan.to_run, run_dir / "progress", console, queue=queue)
    outcome = run_locally(plan, run_dir, args.workers, args.timeout, display, engine=args.engine, config=config)
    code = report_outcome(plan, outcome, store, console)
    if code == 0 and args.compare_previous:
        compare_with_previous(run_dir, console)
    return code


def compare_with_previous(run_dir: Path, console: Console) -> None:
    """Compare this run's site with the newest earlier run's in the same work directory."""
    from lambench_core.report.compare import compare_runs, comparison_markdown, load_run

    earlier = sorted(
        path
        for path in run_dir.parent.iterdir()
        if path.name < run_dir.name and (path / SITE / "leaderboard.json").exists()
    )
    if not earlier:
        console.print(Text("No earlier run with a leaderboard in this work directory: nothing to compare with."))
        return
    comparison = compare_runs(load_run(str(earlier[-1] / SITE)), load_run(str(run_dir / SITE)))
    report = comparison_markdown(comparison)
    (run_dir / "comparison.md").write_text(report)
    (run_dir / "comparison.json").write_text(comparison.model_dump_json(indent=1))
    console.print(Text(report))
    console.print(Text(f"Compared with {earlier[-1].name}: {run_dir / 'comparison.md'}"))


def command_models(args: argparse.Namespace, console: Console) -> int:
    from lambench_core.models import ModelCatalog

    if args.models_command == "check":
        from workflows.models_check_cli import command_models_check

        return command_models_check(args, console)
    catalog = ModelCatalog.load(args.cards)
    for name in catalog.names():
        card = catalog.get(name)
        print(f"{name:32} {card.family:10} {card.version}")
    return 0


def command_tasks(args: argparse.Namespace, console: Console) -> int:
    from lambench_core.data.manifest import load_datasets
    from lambench_core.tasks.suite import TaskSuite

    suite = TaskSuite.default(load_datasets(args.manifest))
    for name in suite.names():
        instance = suite.get(name)
        print(f"{name:40} {instance.category.value:12} {instance.domain.value}")
    return 0


def command_data(args: argparse.Namespace, console: Console) -> int:
    from lambench_core.data.manifest import load_datasets
    from lambench_core.data.normalization import DUMMY_WEIGHTS, dummy_errors, write_dummy_weights
    from lambench_core.hashing import sha256_file

    if args.data_command == "build":
        return command_data_build(args, console)
    if args.data_command == "certify":
        return command_data_certify(args, console)
    if args.data_command == "fetch":
        return command_data_fetch(args)
    if args.data_command == "scan":
        return command_data_scan(args)
    if args.data_command == "list":
        from lambench_core.data.catalog_doc import render
        from lambench_core.data.manifest import load_manifest

        document = load_manifest(args.manifest)
        if args.markdown:
            print(render(document), end="")
        else:
            from lambench_core.data.catalog_doc import certification

            for entry in document.entries():
                state = "present" if document.is_present(entry) else "not fetched"
                certified = certification(document, entry)
                print(f"{entry.name:28} {entry.domain.value:20} {entry.level:6} {state:12} {certified}")
        return 0
    document = load_datasets(args.manifest)
    if args.data_command == "fit-dummy":
        energies = write_dummy_weights(document)
        print(f"wrote {DUMMY_WEIGHTS} ({len(energies)} elements); set weights.sha256 in the dummy card to")
        print(sha256_file(DUMMY_WEIGHTS))
        return 0
    differs = False
    for entry in document.entries():
        if entry.use != "force_field":
            continue  # property data is not scored frame by frame
        if not document.is_present(entry):
            print(f"# {entry.name}: files not on this machine, skipped")
            continue
        fresh = dummy_errors(document, entry)
        stored = entry.dummy_errors
        same = stored is not None and all(
            (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b)))
            for a, b in zip(fresh.model_dump().values(), stored.model_dump().values(), strict=True)
        )
        differs |= not same
        print(f"# {entry.name}{'' if same else '  (differs from the manifest)'}")
        print("    dummy_errors:")
        for name, value in fresh.model_dump().items():
            if value is not None:
                print(f"      {name}: {value!r}")
    return 1 if args.check and differs else 0


def label_cache(args: argparse.Namespace) -> Path:
    """`--cache`, else the label cache that `data build`, `certify` and `scan` share."""
    return (args.cache or Path.home() / ".cache" / "lambench" / "labels").resolve()


def command_data_build(args: argparse.Namespace, console: Console) -> int:
    from lambench_core.data.labelling.plan import LABELLING_PLAN_FILE, plan_labelling
    from lambench_core.data.labelling.recipe import SETS_DIR, load_recipe
    from workflows.local import run_child_dag
    from workflows.progress import LabellingDisplay

    recipe = load_recipe(args.recipe)
    levels = split_names(args.levels)
    for level in levels or []:
        if level not in recipe.references:
            raise LambenchError(f"recipe {recipe.name} has no level {level!r} (levels: {', '.join(recipe.references)})")
    cache = label_cache(args)
    run_dir = (DEFAULT_WORKDIR / "labelling" / new_campaign_id()).resolve()
    out_dir = (args.out or SETS_DIR / recipe.name).resolve()
    plan = plan_labelling(recipe, run_dir, cache, out_dir, levels, args.frames)
    frames = sum(len(k) for k in plan.keys.values())
    console.print(
        Text(
            f"recipe {recipe.name}: {frames} labels over levels {', '.join(plan.levels)}; "
            f"{plan.already_labelled} already in the cache {cache}, {len(plan.chunks)} labelling step(s) to run"
        )
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LABELLING_PLAN_FILE).write_text(plan.model_dump_json(indent=1))
    display = LabellingDisplay(plan, console)
    outcome = run_child_dag(run_dir, "labelling", args.workers, args.timeout, display)
    failed = [key for key in outcome.failed_steps() if key.startswith("label-")]
    if failed:
        console.print(
            Text(f"{len(failed)} labelling step(s) failed; see {run_dir / 'dflow'} (rerun to retry only those)")
        )
    if outcome.stage_failed("assemble"):
        console.print(Text(f"lambench: the dataset was not assembled; see {run_dir / 'dag.log'}"))
        return 1
    for level in plan.levels:
        console.print(Text(f"wrote {out_dir / (level + '.extxyz')} and {out_dir / (level + '.entry.yaml')}"))
    return 0


def command_data_scan(args: argparse.Namespace) -> int:
    from lambench_core.data.labelling.recipe import load_recipe
    from lambench_core.data.labelling.scan import load_grid, markdown, scan, validate_grid

    recipe = load_recipe(args.recipe)
    level = args.level or next(iter(recipe.references))
    grid = load_grid(Path(args.grid))
    validate_grid(recipe, level, grid, Path(args.grid))
    cache = label_cache(args)
    scratch = DEFAULT_WORKDIR / "scan" / new_campaign_id()
    print(markdown(scan(recipe, level, grid, cache, scratch.resolve(), args.workers), grid))
    return 0


def command_data_certify(args: argparse.Namespace, console: Console) -> int:
    from lambench_core.data.labelling.certify import certificate_name, read_certificate
    from lambench_core.data.labelling.plan import LABELLING_PLAN_FILE, plan_certification
    from lambench_core.data.labelling.recipe import SETS_DIR, load_recipe
    from workflows.local import run_child_dag
    from workflows.progress import LabellingDisplay

    if args.sample < 3:
        raise LambenchError(f"--sample must be at least 3 (got {args.sample})")
    recipe = load_recipe(args.recipe)
    levels = split_names(args.levels) or list(recipe.references)
    cache = label_cache(args)
    set_dir = (args.set_dir or SETS_DIR / recipe.name).resolve()
    code = 0
    for level in levels:
        run_dir = (DEFAULT_WORKDIR / "certify" / new_campaign_id()).resolve()
        plan = plan_certification(recipe, level, set_dir, run_dir, cache, args.sample, args.note)
        assert plan.certify is not None
        console.print(
            Text(
                f"certify {plan.certify.dataset}: {len(plan.certify.sample)} frames at the check level "
                f"({plan.already_labelled} already in the cache {cache}, {len(plan.chunks)} labelling step(s) to run)"
            )
        )
        (run_dir / LABELLING_PLAN_FILE).write_text(plan.model_dump_json(indent=1))
        outcome = run_child_dag(run_dir, "labelling", args.workers, args.timeout, LabellingDisplay(plan, console))
        if outcome.stage_failed("certify"):
            console.print(Text(f"lambench: {plan.certify.dataset} was not certified; see {run_dir / 'dag.log'}"))
            code = 1
            continue
        path = set_dir / certificate_name(level)
        console.print(Text(f"{plan.certify.dataset}: {read_certificate(path).summary()} → {path}"))
    return code


def command_data_fetch(args: argparse.Namespace) -> int:
    from lambench_core.data.fetch import fetch_dataset
    from lambench_core.data.manifest import REGISTRY_FILE, data_dir, load_datasets

    root = (args.data_dir or data_dir()).expanduser().resolve()
    registry = root / REGISTRY_FILE
    fetch_dataset(load_datasets(args.manifest, registry), args.name, root, archive=args.archive, log=print)
    document = load_datasets(args.manifest, registry)
    entry = document.get(args.name)
    paths = [str(document.file_path(entry, f)) for f in entry.files]
    where = os.path.commonpath(paths) if len(paths) > 1 else paths[0]
    print(f"{entry.name} ({entry.format}, {len(paths)} path(s)) is in {where}")
    if document.source(entry) == registry and root != data_dir().expanduser().resolve():
        # Other commands find fetched sets through the registry in the default data directory.
        print(f"set {DATA_DIR_ENV}={root} so that other lambench commands see it")
    return 0


def command_aggregate(args: argparse.Namespace, console: Console) -> int:
    import gc

    from lambench_core.metrics.table import read_table, table_to_parquet
    from lambench_core.report.leaderboard import leaderboard_from_table
    from lambench_core.report.markdown import to_markdown
    from lambench_core.report.publish import iter_site_files, write_folder

    # A large table is millions of long-lived, acyclic objects: the cyclic collector would walk them
    # again and again as the scores and pages are built (a third of the time at 1M rows). Off for
    # this command only.
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            table = read_table(args.table)
        except ValidationError as exc:  # the table as a whole, e.g. a `models` list holding numbers
            field, message = first_validation_problem(exc)
            raise InputError(args.table, field, message) from None
        board = leaderboard_from_table(args.table.stem, table, args.confidence)
        markdown = to_markdown(board)
        print(markdown, end="")
        if args.out is not None:
            records = _records_file(args.records) if args.records is not None else b""
            write_folder(iter_site_files(board, table_to_parquet(table), records, markdown), args.out)
            print(f"wrote the site and exports to {args.out}")
    finally:
        if collecting:
            gc.enable()
    return 0


def _records_file(path: Path) -> bytes:
    """The bytes of a records.parquet, checked to be one (named in one line otherwise)."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except FileNotFoundError:
        raise InputError("--records", None, f"{path}: no such file") from None
    except Exception as exc:  # pyarrow's errors name no file
        raise InputError("--records", None, f"{path}: not a readable Parquet file ({one_line(str(exc))})") from None
    missing = {"model", "record"} - set(names)
    if missing:
        raise InputError("--records", None, f"{path}: not a records.parquet (no {', '.join(sorted(missing))} column)")
    return path.read_bytes()


def command_compare(args: argparse.Namespace, console: Console) -> int:
    from lambench_core.report.compare import compare_runs, comparison_markdown, load_run
    from lambench_core.results.store import open_backend

    comparison = compare_runs(load_run(args.run_a), load_run(args.run_b))
    report = comparison_markdown(comparison)
    print(report, end="")
    out = open_backend(args.out)
    out.write_bytes("comparison.md", report.encode())
    out.write_bytes("comparison.json", comparison.model_dump_json(indent=1).encode())
    print(f"wrote {out.url}/comparison.md and comparison.json")
    return 1 if args.fail_on_regression and comparison.regressions else 0


COMMANDS = {
    "run": command_run,
    "aggregate": command_aggregate,
    "compare": command_compare,
    "serve": lambda args, console: _serve(args),
    "models": command_models,
    "tasks": command_tasks,
    "data": command_data,
}


def _serve(args: argparse.Namespace) -> int:
    from workflows.serve import command_serve

    return command_serve(args)


def _command(name: str):  # noqa: ANN202
    from workflows.cluster_cli import CLUSTER_COMMANDS

    if name in CLUSTER_COMMANDS:
        return lambda args, console: CLUSTER_COMMANDS[name](args)
    return COMMANDS[name]


def one_line(message: str) -> str:
    """The message with every line break and control character shown escaped: one line, always."""
    return "".join(
        char.encode("unicode_escape").decode() if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char
        for char in message
    )


def _stdout_gone() -> bool:
    """True if standard output is a pipe or socket whose reader went away (`lambench ... | head`)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no real file behind sys.stdout
        return False


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit cannot fail again (the recipe
    of the Python docs, signal module, 'Note on SIGPIPE')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Every command: bad input (options, environment variables, files) is one line on standard error
    and exit code 2; a reader that goes away (`| head`) ends the command quietly. SIGPIPE stays
    ignored (Python's default), so a closed socket can never kill a campaign: a closed standard output
    is a BrokenPipeError, handled here once."""
    console = plain_console()
    try:
        args = arguments.parse_arguments(build_parser(), argv)
        settings()  # every environment variable lambench reads, checked before anything runs
        code = _command(args.command)(args, console)
        sys.stdout.flush()  # a reader gone away shows here, not as a traceback at exit
        return code
    except LambenchError as exc:
        print(f"lambench: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValidationError as exc:  # a record read from a file nobody checked yet: still one line
        field, message = first_validation_problem(exc)
        print(f"lambench: error: {exc.title}: {one_line(field)}: {one_line(message)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        if not _stdout_gone():
            raise  # some other pipe (a child's, a socket): a real failure
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("lambench: interrupted; finished results are kept in the store", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
