"""Aggregate a campaign's stored results into a leaderboard and publish it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lambench_core.campaign import CampaignContext, CampaignSpec, Job
from lambench_core.report.leaderboard import Leaderboard, build_leaderboard, to_html, to_markdown
from lambench_core.results.record import TaskResult
from lambench_core.results.store import ResultStore

LEADERBOARD_JSON = "leaderboard.json"
RESULTS_JSON = "results.json"


def collect_results(jobs: Sequence[Job], store: ResultStore) -> list[TaskResult]:
    """The scored result of each job, or else its latest failure; absent jobs are left out."""
    found = []
    for job in jobs:
        result = store.get(job.key) or store.get_failure(job.key)
        if result is not None:
            found.append(result)
    return found


def aggregate_campaign(spec: CampaignSpec, jobs: Sequence[Job], store: ResultStore) -> Leaderboard:
    context = CampaignContext(spec)
    results = collect_results(jobs, store)
    board = build_leaderboard(spec.campaign_id, spec.models, results, jobs, context.manifest)
    store.put_campaign_file(spec.campaign_id, LEADERBOARD_JSON, board.model_dump_json(indent=1).encode())
    raw = [r.model_dump(mode="json", exclude={"records"}) for r in results]
    store.put_campaign_file(spec.campaign_id, RESULTS_JSON, _json_bytes(raw))
    return board


def _json_bytes(value: object) -> bytes:
    import json

    return json.dumps(value, indent=1).encode()


def publish_campaign(spec: CampaignSpec, store: ResultStore, output_dir: Path | None) -> list[str]:
    """Write leaderboard.{json,md,html} (and results.json) to the store and to `output_dir`."""
    data = store.get_campaign_file(spec.campaign_id, LEADERBOARD_JSON)
    if data is None:
        raise FileNotFoundError(f"{store.url}: campaign {spec.campaign_id} has no {LEADERBOARD_JSON}")
    board = Leaderboard.model_validate_json(data)
    outputs = {
        LEADERBOARD_JSON: data,
        "leaderboard.md": to_markdown(board).encode(),
        "leaderboard.html": to_html(board).encode(),
        RESULTS_JSON: store.get_campaign_file(spec.campaign_id, RESULTS_JSON) or b"[]",
    }
    written = []
    for name, content in outputs.items():
        written.append(f"{store.url}/{store.put_campaign_file(spec.campaign_id, name, content)}")
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)
            target = output_dir / name
            temporary = target.with_name(f".{name}.tmp")
            temporary.write_bytes(content)
            temporary.replace(target)
            written.append(str(target))
    return written
