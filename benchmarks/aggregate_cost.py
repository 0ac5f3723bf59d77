"""What the aggregate and publish steps cost: bootstrap intervals, scoring, and rendering the site.

Reads the results already in a store (run `lambench run` first; its store is the default) for the
default suite, and prints a table of seconds per stage against the number of bootstrap replicates.

    python benchmarks/aggregate_cost.py [--store lambench-work/store] [--models ...] [--replicates 0,200,1000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lambench_core.campaign import CampaignContext, CampaignSpec, plan_campaign
from lambench_core.metrics.table import table_to_parquet
from lambench_core.report.leaderboard import build_leaderboard
from lambench_core.report.publish import collect_results, records_parquet, site_files
from lambench_core.results.store import ResultStore
from lambench_core.tasks.suite import TaskSuite

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(REPO / "lambench-work" / "store"))
    parser.add_argument("--models", default="dummy,emt,chgnet-0.3.0,sevennet-0")
    parser.add_argument("--replicates", default="0,200,1000")
    args = parser.parse_args()
    models = args.models.split(",")
    probe = CampaignSpec(campaign_id="cost", models=models, tasks=[], store=args.store)
    tasks = TaskSuite.default(CampaignContext(probe).manifest, probe.profile).names()
    spec = probe.model_copy(update={"tasks": tasks})
    store = ResultStore.open(args.store)
    plan = plan_campaign(spec, store)
    jobs = plan.all_jobs
    start = time.perf_counter()
    results = collect_results(jobs, store)
    read = time.perf_counter() - start
    records = sum(len(r.records) for r in results)
    print(f"{len(jobs)} jobs, {len(results)} results with {records} per-item records; reading them: {read:.1f} s")
    print(f"{'replicates':>10} {'table+bootstrap s':>18} {'score s':>8} {'site+exports s':>15} {'site MB':>8}")
    manifest = CampaignContext(spec).manifest
    for n in (int(x) for x in args.replicates.split(",")):
        start = time.perf_counter()
        board, table = build_leaderboard("cost", models, results, jobs, manifest, n_replicates=n)
        built = time.perf_counter() - start
        start = time.perf_counter()
        files = site_files(board, table_to_parquet(table), records_parquet(results, jobs))
        rendered = time.perf_counter() - start
        size = sum(len(content) for content in files.values()) / 2**20
        # build_leaderboard scores inside; time the scoring alone on the finished table.
        from lambench_core.metrics.scoring import score_table

        start = time.perf_counter()
        score_table(table)
        scored = time.perf_counter() - start
        print(f"{n:>10} {built - scored:>18.2f} {scored:>8.2f} {rendered:>15.2f} {size:>8.1f}")


if __name__ == "__main__":
    main()
