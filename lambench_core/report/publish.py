"""Aggregate a campaign's stored results, and publish the site and its exports.

aggregate: results → metrics table (with bootstrap replicates) → scores → leaderboard.json, kept in
the store beside metrics.parquet and records.parquet. publish: leaderboard.json → the static site
plus results.json, rankings.json, the Parquet files and leaderboard.md, to the store and to a folder.
Scores are always recomputed from the raw results; none is stored as the only copy.
"""

from __future__ import annotations

import functools
import hashlib
import html
import io
import itertools
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import escape
from pydantic import ValidationError

import lambench_core
from lambench_core.campaign import CampaignContext, CampaignSpec, Job
from lambench_core.data.manifest import ManifestDocument
from lambench_core.hashing import sha256_json
from lambench_core.metrics.table import table_to_parquet
from lambench_core.report.collect import benchmark_of
from lambench_core.report.leaderboard import Leaderboard, build_leaderboard
from lambench_core.report.markdown import to_markdown
from lambench_core.report.site import iter_site
from lambench_core.report.views import RecordIndex
from lambench_core.results.record import TaskResult
from lambench_core.results.store import ResultStore

LEADERBOARD_JSON = "leaderboard.json"
METRICS_PARQUET = "metrics.parquet"
RECORDS_PARQUET = "records.parquet"
SITE = "site"

log = logging.getLogger(__name__)


# The published files that are text, where the home directory may appear (in HTML or JSON escaping).
TEXT_SUFFIXES = (".html", ".json", ".md", ".js", ".css", ".svg", ".txt", ".csv")


def _home_spellings() -> set[str]:
    home = os.path.expanduser("~")
    homes = {h.rstrip("/") for h in (home, os.path.realpath(home)) if h.rstrip("/")}
    # As written, and as a JSON string, an HTML page (html.escape, or markupsafe in the templates) or a
    # page's script data (site._json_for_script, Jinja's tojson) escapes it.
    spellings = set()
    for h in homes:
        as_json = json.dumps(h)[1:-1]
        in_script = as_json.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        in_template_script = in_script.replace("'", "\\u0027")  # Jinja's tojson
        as_utf8_json = json.dumps(h, ensure_ascii=False)[1:-1]
        spellings |= {h, as_json, as_utf8_json, html.escape(h), html.escape(h, False), in_script, in_template_script}
        spellings.add(str(escape(h)))  # markupsafe's, as the site's templates escape text
    return spellings


def _home_pattern(spellings: set[str] | None = None) -> re.Pattern[str] | None:
    spellings = _home_spellings() if spellings is None else spellings
    if not spellings:
        return None
    alternatives = "|".join(re.escape(h) for h in sorted(spellings, key=len, reverse=True))
    return re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w.-])")


def redact_home(value: Any) -> Any:
    """`value` (JSON-like) with the user's home directory shown as `~` in every string: failure
    reasons carry paths, and a published site must not carry the user's private ones."""
    pattern = _home_pattern()

    def redact(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub("~", item) if pattern is not None else item
        if isinstance(item, list):
            return [redact(x) for x in item]
        if isinstance(item, dict):
            return {k: redact(v) for k, v in item.items()}
        return item

    return redact(value)


def redacted_home(files: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    """The text files among `files` with the home directory shown as `~` (one pass over each file's
    text, whatever escaping its format applied, instead of over every object of the board), one file
    at a time."""
    spellings = _home_spellings()
    pattern = _home_pattern(spellings)
    # A substring search first: the regex's look-behind tests every position of a large page.
    needles = [spelling.encode("utf-8") for spelling in spellings]
    for name, content in files:
        if pattern is not None and name.endswith(TEXT_SUFFIXES) and any(needle in content for needle in needles):
            content = pattern.sub("~", content.decode("utf-8")).encode("utf-8")
        yield name, content


def collect_results(jobs: Sequence[Job], store: ResultStore) -> list[TaskResult]:
    """The scored result of each job, or else its latest failure; absent jobs are left out."""
    found = []
    for job in jobs:
        result = store.get(job.key) or store.get_failure(job.key)
        if result is not None:
            found.append(result)
    return found


def records_parquet(results: Sequence[TaskResult], jobs: Sequence[Job]) -> bytes:
    """Every per-structure record, one row each: model, task, benchmark (the leaderboard column it
    belongs to), job key and item as dictionary-encoded strings, the record itself as JSON (tasks
    differ in fields). The site's views are drawn from this file alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    by_key = {job.key: job for job in jobs}
    columns: dict[str, list] = {"model": [], "task": [], "benchmark": [], "job_key": [], "item": [], "record": []}
    for result in results:
        job = by_key.get(result.key)
        task = job.instance.name if job is not None else result.task
        benchmark = benchmark_of(job) if job is not None else result.task
        for record in result.records:
            columns["model"].append(result.model)
            columns["task"].append(task)
            columns["benchmark"].append(benchmark)
            columns["job_key"].append(result.key)
            columns["item"].append(str(record.get("item", "")))
            columns["record"].append(json.dumps(redact_home(record), default=str))
    arrays = {
        name: pa.array(values, pa.string()) if name == "record" else pa.array(values, pa.string()).dictionary_encode()
        for name, values in columns.items()
    }
    buffer = io.BytesIO()
    pq.write_table(pa.table(arrays), buffer, compression="zstd")
    return buffer.getvalue()


# The code that turns results into scores: an edit to it makes every cached aggregate stale.
SCORING_SOURCES = ("report", "metrics", "categories.py", "domains.py")
AGGREGATE_FILES = (LEADERBOARD_JSON, METRICS_PARQUET, RECORDS_PARQUET)


@functools.cache
def scoring_code_digest() -> str:
    root = Path(__file__).resolve().parents[1]
    files = sorted(
        path
        for name in SCORING_SOURCES
        for path in ((root / name).rglob("*.py") if (root / name).is_dir() else [root / name])
    )
    return sha256_json({str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() for path in files})


def aggregate_inputs_digest(
    spec: CampaignSpec,
    jobs: Sequence[Job],
    results: Sequence[TaskResult],
    manifest: ManifestDocument,
    baselines: Sequence[str] = (),
) -> str:
    """Everything the leaderboard is computed from but the campaign's name and time: the models, the
    jobs, every stored result's content, the manifest (dummy errors, names), the bootstrap settings
    and the scoring code. Equal digests give equal leaderboards (the bootstrap is seeded)."""
    return sha256_json(
        {
            "models": list(spec.models),
            "baselines": list(baselines),
            "replicates": spec.bootstrap_replicates,
            "jobs": [job.model_dump(mode="json") for job in jobs],
            "results": sorted(hashlib.sha256(r.model_dump_json().encode()).hexdigest() for r in results),
            "manifest": sha256_json([entry.model_dump(mode="json") for entry in manifest.entries()]),
            "code": scoring_code_digest(),
            "version": lambench_core.__version__,
        }
    )


def _cached_aggregate(
    store: ResultStore, digest: str, spec: CampaignSpec
) -> tuple[Leaderboard, dict[str, bytes]] | None:
    """The board and campaign files of an earlier aggregate of the same inputs, renamed to this campaign."""
    files = {name: store.get_aggregate_file(digest, name) for name in AGGREGATE_FILES}
    if any(data is None for data in files.values()):
        return None
    try:
        board = Leaderboard.model_validate_json(files[LEADERBOARD_JSON] or b"")
    except ValidationError:
        return None  # an unreadable cache entry is recomputed (and overwritten) below
    board = board.model_copy(update={"campaign": spec.campaign_id, "created_at": datetime.now(UTC)})
    return board, {name: data or b"" for name, data in files.items()} | {
        LEADERBOARD_JSON: board.model_dump_json(indent=1).encode()
    }


def aggregate_campaign(spec: CampaignSpec, jobs: Sequence[Job], store: ResultStore) -> Leaderboard:
    """The campaign's leaderboard and exports, stored beside its plan. When an earlier campaign
    aggregated the same inputs (a rerun that computed nothing), its files are reused: the bootstrap
    is the cost of an aggregate, and it would give the same numbers."""
    context = CampaignContext(spec)
    results = collect_results(jobs, store)
    baselines = [card.name for card in context.catalog.select(spec.models) if card.baseline]
    digest = aggregate_inputs_digest(spec, jobs, results, context.manifest, baselines)
    cached = _cached_aggregate(store, digest, spec)
    if cached is None:
        board, table = build_leaderboard(
            spec.campaign_id,
            spec.models,
            results,
            jobs,
            context.manifest,
            n_replicates=spec.bootstrap_replicates,
            baselines=baselines,
        )
        files = {
            LEADERBOARD_JSON: board.model_dump_json(indent=1).encode(),
            METRICS_PARQUET: table_to_parquet(table),
            RECORDS_PARQUET: records_parquet(results, jobs),
        }
        for name, data in files.items():
            store.put_aggregate_file(digest, name, data)
    else:
        board, files = cached
        log.info("aggregate of %s reused from %s/aggregates/%s: no input changed", spec.campaign_id, store.url, digest)
    for name, data in files.items():
        store.put_campaign_file(spec.campaign_id, name, data)
    return board


def site_files(board: Leaderboard, metrics: bytes, records: bytes, markdown: str | None = None) -> dict[str, bytes]:
    """The whole published folder: pages, assets and the data exports beside them (the home
    directory shown as `~`). `markdown`: the board's Markdown where the caller has rendered it."""
    return dict(iter_site_files(board, metrics, records, markdown))


def iter_site_files(
    board: Leaderboard, metrics: bytes, records: bytes, markdown: str | None = None
) -> Iterator[tuple[str, bytes]]:
    """`site_files`, one file at a time, so that a writer holds one page of a large board at once."""

    def exports() -> Iterator[tuple[str, bytes]]:
        results = {
            "campaign": board.campaign,
            "created_at": board.created_at.isoformat(),
            "models": board.table.models,
            "baselines": board.table.baselines,
            "jobs": [job.model_dump(mode="json") for job in board.jobs],
            "metrics": [row.model_dump(mode="json", exclude={"replicates"}) for row in board.table.rows],
        }
        # Compact JSON: the C encoder (an indented dump is Python's, 5× slower on a large board).
        yield "results.json", json.dumps(results, separators=(",", ":")).encode()
        del results
        yield "rankings.json", board.scoreboard.model_dump_json(indent=1).encode()
        yield METRICS_PARQUET, metrics
        yield RECORDS_PARQUET, records
        yield "leaderboard.md", (markdown if markdown is not None else to_markdown(board)).encode()
        yield LEADERBOARD_JSON, board.model_dump_json(indent=1).encode()

    pages = iter_site(board, RecordIndex.from_parquet(board, records), metrics)
    yield from redacted_home(itertools.chain(pages, exports()))


def write_folder(files: Mapping[str, bytes] | Iterable[tuple[str, bytes]], folder: Path) -> None:
    """Each file written beside itself and renamed, so a reader never sees half a file; `files` may
    be a generator (one file in memory at a time)."""
    for name, content in files.items() if isinstance(files, Mapping) else files:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_bytes(content)
        temporary.replace(target)


def publish_campaign(spec: CampaignSpec, store: ResultStore, output_dir: Path | None) -> list[str]:
    """Write the site (and exports) to the store under site/ and, if given, to `output_dir`."""
    data = store.get_campaign_file(spec.campaign_id, LEADERBOARD_JSON)
    if data is None:
        raise FileNotFoundError(f"{store.url}: campaign {spec.campaign_id} has no {LEADERBOARD_JSON}")
    board = Leaderboard.model_validate_json(data)
    files = site_files(
        board,
        store.get_campaign_file(spec.campaign_id, METRICS_PARQUET) or b"",
        store.get_campaign_file(spec.campaign_id, RECORDS_PARQUET) or b"",
    )
    written = [f"{store.url}/{store.put_campaign_file(spec.campaign_id, f'{SITE}/{n}', c)}" for n, c in files.items()]
    if output_dir is not None:
        write_folder(files, output_dir)
        written.append(str(output_dir))
    return written
