"""Each model's level of theory beside its scores, and a visible flag where it was scored on another
level's labels (no label set at its own level): in the leaderboard document, the Markdown and the site."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from lambench_core.campaign import Job
from lambench_core.categories import Category
from lambench_core.data.manifest import BUILTIN_MANIFEST, load_datasets
from lambench_core.domains import Domain
from lambench_core.report.leaderboard import Leaderboard, build_leaderboard, leaderboard_from_table
from lambench_core.report.markdown import LEVEL_NOTE, to_markdown
from lambench_core.report.site import index_page, model_page
from lambench_core.results.record import Hardware, Metric, Provenance, Status, TaskResult
from lambench_core.tasks.suite import TaskInstance
from tests.support.site_tables import synthetic_table

HOSTILE_LEVEL = "r2SCAN <b>(MatPES)</b> & 'co'"
CARDS: dict[str, dict[str, Any]] = {
    "pbe-model": {"family": "test", "level_of_theory": "PBE/PBE+U (MPtrj)"},
    "r2scan-model": {"family": "test", "level_of_theory": HOSTILE_LEVEL, "levels": {"molecules": "r2scan"}},
    "wb97-model": {"family": "test", "level_of_theory": "ωB97M-V (OMol25)", "levels": {"molecules": "wb97"}},
    "old-model": {"family": "test"},  # stored before cards had a level of theory
}
# A force-field set with PBE and ωB97 label sets, a property task reading no dataset, and one whose
# dataset is not in the manifest: only the first can be a mismatch.
AQM = TaskInstance(
    name="force_field/AQM",
    task="force_field",
    category=Category.FORCE_FIELD,
    domain=Domain.MOLECULES,
    set_name="AQM",
    datasets={"pbe": "AQM_pbe", "wb97": "AQM_wb97"},
    params={},
)
S22 = TaskInstance(name="s22", task="s22", category=Category.PROPERTY, domain=Domain.MOLECULES, params={})
GHOST = TaskInstance(
    name="s22-ghost",
    task="s22",
    category=Category.PROPERTY,
    domain=Domain.MOLECULES,
    datasets={"pbe": "no_such_set"},
    params={},
)


def _provenance(card: dict[str, Any], dataset: str | None) -> Provenance:
    now = datetime.now(UTC)
    return Provenance(
        lambench_version="0",
        git_commit=None,
        model_card=card,
        weights_sha256=None,
        weights_pinned=True,
        head=None,
        dataset=dataset,
        dataset_sha256=None,
        task="force_field",
        task_version="1",
        params={},
        packages={},
        python="3",
        platform="test",
        hardware=Hardware(cpu="cpu", cpu_count=1, threads=1, gpu=None, memory_gib=1.0),
        device="cpu",
        dtype="float64",
        started_at=now,
        finished_at=now,
        wall_seconds=1.0,
        compute_seconds=0.5,
        load_seconds=0.1,
    )


def _level(card: dict[str, Any], domain: Domain) -> str:
    return card.get("levels", {}).get(domain.value, "pbe")


@pytest.fixture(scope="module")
def board() -> Leaderboard:
    manifest = load_datasets(BUILTIN_MANIFEST)
    jobs: list[Job] = []
    results: list[TaskResult] = []
    for index, (model, card) in enumerate(CARDS.items()):
        card = {"name": model, **card}
        for instance in (AQM, S22, GHOST):
            dataset = instance.dataset_for(_level(card, instance.domain))
            key = f"{model}-{instance.name}"
            jobs.append(Job(key=key, model=model, instance=instance, dataset=dataset))
            if instance is AQM:
                metrics = {
                    "energy_rmse_per_atom": Metric(value=0.01 * (index + 1), unit="eV/atom"),
                    "force_rmse": Metric(value=0.1 * (index + 1), unit="eV/Å"),
                }
                results.append(
                    TaskResult(
                        key=key,
                        model=model,
                        task=instance.name,
                        status=Status.SUCCEEDED,
                        metrics=metrics,
                        n_items=1,
                        n_scored=1,
                        success_rate=1.0,
                        provenance=_provenance(card, dataset),
                    )
                )
    board, _ = build_leaderboard("levels", list(CARDS), results, jobs, manifest, n_replicates=0)
    return board


def test_model_info_has_the_level_of_theory_and_the_sets_scored_at_another_level(board):
    infos = {m.name: m for m in board.models}
    assert infos["pbe-model"].level_of_theory == "PBE/PBE+U (MPtrj)" and infos["pbe-model"].level_mismatches == []
    # No r2SCAN label set: scored on the PBE one, and flagged; the property jobs (no dataset, or one the
    # manifest does not know) are ignored.
    assert infos["r2scan-model"].level_of_theory == HOSTILE_LEVEL
    assert infos["r2scan-model"].level_mismatches == ["AQM_pbe (pbe)"]
    assert infos["r2scan-model"].mismatched_levels() == ["pbe"]
    assert infos["wb97-model"].level_mismatches == []  # its own label set exists
    assert infos["old-model"].level_of_theory is None and infos["old-model"].level_mismatches == []
    assert {j.dataset for j in board.jobs if j.model == "wb97-model" and j.kind == Category.FORCE_FIELD} == {"AQM_wb97"}


def test_leaderboard_json_without_the_fields_still_loads(board):
    document = board.model_dump(mode="json")
    for model in document["models"]:
        del model["level_of_theory"], model["level_mismatches"]
    again = Leaderboard.model_validate(document)
    assert all(m.level_of_theory is None and m.level_mismatches == [] for m in again.models)
    assert Leaderboard.model_validate_json(board.model_dump_json()) == board


def test_markdown_has_a_level_column_after_model_and_marks_mismatches_once(board):
    text = to_markdown(board)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| Rank"))
    assert header.startswith("| Rank | Model | Level of theory | M_FF ↓")
    row = {name: next(line for line in lines if line.startswith("| ") and f"| {name} |" in line) for name in CARDS}
    assert f"| r2scan-model | {HOSTILE_LEVEL} (scored on pbe labels) |" in row["r2scan-model"]
    assert "| pbe-model | PBE/PBE+U (MPtrj) |" in row["pbe-model"]
    assert "| wb97-model | ωB97M-V (OMol25) |" in row["wb97-model"]
    assert "| old-model | — |" in row["old-model"]
    assert text.count("scored on pbe labels") == 1 and text.count(LEVEL_NOTE) == 1
    # The note sits right under the score table.
    start = lines.index(header)
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    assert lines[end + 1] == LEVEL_NOTE


def test_markdown_without_known_levels_has_no_level_column_or_note():
    text = to_markdown(leaderboard_from_table("synthetic", synthetic_table()))
    assert "Level of theory" not in text and "scored on" not in text


def test_site_shows_the_level_escaped_and_a_badge_listing_the_sets(board):
    index = index_page(board).decode()
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", index.split("id='leaderboard'")[1].split("</thead>")[0])
    assert heads[:4] == ["Rank", "Model", "Level of theory", "M_FF ↓"]
    assert HOSTILE_LEVEL not in index and "<b>" not in index
    escaped = "r2SCAN &lt;b&gt;(MatPES)&lt;/b&gt; &amp; &#39;co&#39;"
    rows = dict(re.findall(r"<tr data-model='([^']*)'>(.*?)</tr>", index))
    assert escaped in rows["r2scan-model"]
    badge = re.search(r"<span class='badge level-mismatch' title='([^']*)'>([^<]*)</span>", rows["r2scan-model"])
    assert badge is not None and badge.group(2) == "scored on pbe labels" and "AQM_pbe (pbe)" in badge.group(1)
    for model in ("pbe-model", "wb97-model", "old-model"):
        assert "level-mismatch" not in rows[model]
    assert "PBE/PBE+U (MPtrj)" in rows["pbe-model"] and "ωB97M-V (OMol25)" in rows["wb97-model"]
    assert index.count("class='badge level-mismatch'") == 1


def test_model_page_lists_the_level_and_the_mismatched_sets(board):
    scores = {s.model: s for s in board.scoreboard.models}
    page = model_page(board, scores["r2scan-model"]).decode()
    assert "<h2>Level of theory</h2>" in page and HOSTILE_LEVEL not in page
    assert "r2SCAN &lt;b&gt;(MatPES)&lt;/b&gt;" in page and "molecules: r2scan" in page
    assert "<ul class='level-mismatches'><li>AQM_pbe (pbe)</li></ul>" in page
    matching = model_page(board, scores["wb97-model"]).decode()
    assert "ωB97M-V (OMol25)" in matching and "level-mismatches" not in matching
    assert "<h2>Level of theory</h2>" not in model_page(board, scores["old-model"]).decode()
