"""What `lambench run` (and `retry`/`resubmit` of its campaigns) print before and after driving a DAG."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from lambench_core.campaign import Plan
from lambench_core.report.publish import SITE
from lambench_core.results.store import ResultStore
from workflows.dag import run_step_keys
from workflows.local import LocalOutcome


def describe_plan(plan: Plan, store: ResultStore, console: Console) -> None:
    total = len(plan.all_jobs)
    console.print(
        f"lambench campaign {plan.campaign.campaign_id}: {len(plan.campaign.models)} models × "
        f"{len(plan.campaign.tasks)} tasks = {total} jobs; store {store.url}",
        highlight=False,
    )
    if not plan.to_run:
        console.print(
            f"All {total} jobs are already in the store: nothing to compute (use --force to recompute). "
            "Aggregating and publishing only.",
            highlight=False,
        )
    else:
        console.print(f"{len(plan.to_run)} to compute, {len(plan.already_done)} already in the store.", highlight=False)


def report_outcome(plan: Plan, outcome: LocalOutcome, store: ResultStore, console: Console) -> int:
    """The failed jobs with their reasons, then the leaderboard; 1 when there is none."""
    run_dir = outcome.run_dir
    if outcome.timed_out:
        console.print(f"lambench: the campaign was stopped after its timeout; finished results are kept in {store.url}")
    step_of = run_step_keys(plan.campaign, plan.to_run)
    for key in outcome.failed_jobs(plan):
        if store.get(key) is not None:  # its step failed for another of its jobs
            continue
        job = next(j for j in plan.to_run if j.key == key)
        failure = store.get_failure(key)
        step_error = outcome.step_errors.get(step_of[key])
        reason = failure.error if failure and failure.error else step_error or "see " + str(run_dir / "dag.log")
        console.print(
            Text.assemble(("failed", "red"), f" {job.model} × {job.instance.name}: {reason}"), highlight=False
        )
    site = run_dir / SITE
    board_path = site / "leaderboard.md"
    if outcome.stage_failed("aggregate") or outcome.stage_failed("publish") or not board_path.exists():
        # The one line that says why: the first failed stage's own reason, carried out of the DAG.
        failed = outcome.first_error()
        why = f"the {failed[0]} step failed: {failed[1]}" if failed else f"see {run_dir / 'dag.log'}"
        console.print(
            f"lambench: the campaign did not produce a leaderboard; {why} (finished results are kept in {store.url})",
            markup=False,
            highlight=False,
        )
        return 1
    console.print()
    console.print(board_path.read_text(), markup=False, highlight=False)
    console.print(
        f"Leaderboard site: {site / 'index.html'} (exports beside it) ({outcome.wall_seconds:.1f} s)",
        highlight=False,
    )
    return 0
