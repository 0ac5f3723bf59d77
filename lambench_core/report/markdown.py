"""The leaderboard as Markdown: for the terminal, CI logs and pull requests."""

from __future__ import annotations

from lambench_core.categories import Category
from lambench_core.report import formatting as fmt
from lambench_core.report.leaderboard import Leaderboard, ModelInfo

MILLI = 1000.0
FORCE_FIELD_ERRORS = (
    ("E RMSE (meV/atom)", "energy_rmse_per_atom"),
    ("F RMSE (meV/Å)", "force_rmse"),
    ("V RMSE (meV/atom)", "virial_rmse_per_atom"),
)
APPLICABILITY_DETAIL = (
    (Category.EFFICIENCY, "eta_us_per_atom", "η̄ (µs/atom)", 1),
    (Category.STABILITY, "survival_fraction", "MD survival", 2),
)

Columns = list[tuple[str, list[str]]]


def table(columns: Columns) -> str:
    height = len(columns[0][1]) if columns else 0
    header = "| " + " | ".join(name for name, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(values[i].replace("|", "\\|") for _, values in columns) + " |" for i in range(height)]
    return "\n".join([header, rule, *body])


def score_columns(board: Leaderboard) -> Columns:
    rows = board.scoreboard.models
    level = f"{board.scoreboard.confidence:.0%}"

    statuses = board.lookup().job_statuses

    def gap(model: str, kind: Category) -> str:
        return fmt.gap_of(statuses.get((model, kind), set()))

    columns: Columns = [
        ("Rank", [fmt.rank(s) for s in rows]),
        ("Model", [s.model for s in rows]),
        *([("Level of theory", [level_cell(board, s.model) for s in rows])] if has_levels(board) else []),
        (
            f"M_FF ↓ [{level}]",
            [fmt.score(s.m_ff, s.m_ff_partial, gap=gap(s.model, Category.FORCE_FIELD)) for s in rows],
        ),
    ]
    for domain in board.scoreboard.force_field_domains:
        columns.append((f"FF {domain.value}", [fmt.estimate(s.ff_domains[domain]) for s in rows]))
    if board.benchmarks_of(Category.PROPERTY):
        columns.append(
            (
                f"M_PC ↓ [{level}]",
                [fmt.score(s.m_pc, s.m_pc_partial, gap=gap(s.model, Category.PROPERTY)) for s in rows],
            )
        )
        for domain in board.scoreboard.property_domains:
            columns.append((f"PC {domain.value}", [fmt.estimate(s.pc_domains[domain]) for s in rows]))
    if board.benchmarks_of(Category.ADAPTABILITY):
        columns.append(
            (
                f"M_AD ↓ [{level}]",
                [fmt.score(s.m_ad, s.m_ad_partial, gap=gap(s.model, Category.ADAPTABILITY)) for s in rows],
            )
        )
    lookup = board.lookup()
    for kind, attribute, title in ((Category.STABILITY, "m_is", "M_IS ↓"), (Category.EFFICIENCY, "m_e", "M_E ↑")):
        for benchmark in board.benchmarks_of(kind):
            values = []
            for s in rows:
                estimate = getattr(s, attribute)
                job = lookup.jobs.get((s.model, benchmark.name))
                absent = job.status if job and job.status in ("failed", "unsupported") else "missing"
                values.append(fmt.estimate(estimate) if estimate.value is not None else absent)
            columns.append((title, values))
    for kind, metric, title, digits in APPLICABILITY_DETAIL:
        for benchmark in board.benchmarks_of(kind):
            values = [
                fmt.cell(
                    lookup.rows.get((s.model, benchmark.name, metric)),
                    lookup.jobs.get((s.model, benchmark.name)),
                    1.0,
                    digits,
                )
                for s in rows
            ]
            columns.append((title, values))
    if board.jobs:  # a table scored elsewhere has no timings
        columns.append(("Model time (s)", [f"{_model(board, s.model).compute_seconds:.1f}" for s in rows]))
    return columns


def _model(board: Leaderboard, name: str) -> ModelInfo:
    return board.lookup().models[name]


def _model_or_none(board: Leaderboard, name: str) -> ModelInfo | None:
    return board.lookup().models.get(name)


def has_levels(board: Leaderboard) -> bool:
    """Whether any model's level of theory is known (a table scored elsewhere, or results from before
    cards had one, know none: the column is left out)."""
    return any(m.level_of_theory or m.level_mismatches for m in board.models)


def level_marker(info: ModelInfo | None) -> str:
    """'scored on pbe labels' when some reference sets had no label set at the model's own level."""
    if info is None or not info.level_mismatches:
        return ""
    return f"scored on {', '.join(info.mismatched_levels())} labels"


def level_cell(board: Leaderboard, name: str) -> str:
    info = _model_or_none(board, name)
    text = info.level_of_theory if info is not None and info.level_of_theory else fmt.GAP
    marker = level_marker(info)
    return f"{text} ({marker})" if marker else text


LEVEL_NOTE = (
    'Level of theory: what the model was trained to reproduce (its card). "(scored on … labels)": some reference '
    "sets have no label set at the model's own level, so it was scored on the labels named; per-element energy "
    "offsets are refitted, the rest of the difference between the levels counts as error. The sets are listed on "
    "the model's page and in leaderboard.json (`level_mismatches`)."
)


def error_columns(board: Leaderboard) -> Columns:
    """One row per (benchmark set, error): the raw errors behind the normalized scores."""
    labels: list[str] = []
    cells: dict[str, list[str]] = {s.model: [] for s in board.scoreboard.models}
    lookup = board.lookup()
    for benchmark in board.benchmarks_of(Category.FORCE_FIELD):
        errors = (
            FORCE_FIELD_ERRORS
            if benchmark.metrics.get("virial_rmse_per_atom", None)
            and (benchmark.metrics["virial_rmse_per_atom"].dummy is not None)
            else FORCE_FIELD_ERRORS[:2]
        )
        for title, metric in errors:
            labels.append(f"{benchmark.name} {title}")
            for model in cells:
                row = lookup.rows.get((model, benchmark.name, metric))
                cells[model].append(fmt.cell(row, lookup.jobs.get((model, benchmark.name)), MILLI, 1))
    return [("Set and error", labels), *cells.items()]


def property_columns(board: Leaderboard) -> Columns:
    """One row per scored property metric, with units and the dummy value that normalizes it."""
    labels: list[str] = []
    cells: dict[str, list[str]] = {s.model: [] for s in board.scoreboard.models}
    lookup = board.lookup()
    for benchmark in board.benchmarks_of(Category.PROPERTY):
        for metric, info in benchmark.metrics.items():
            if info.dummy is None:
                continue
            labels.append(f"{benchmark.name} {metric} ({info.unit}); dummy {info.dummy:.3g}")
            for model in cells:
                cells[model].append(
                    fmt.cell(lookup.rows.get((model, benchmark.name, metric)), lookup.jobs.get((model, benchmark.name)))
                )
        labels.append(f"{benchmark.name} success rate (coverage)")
        for model in cells:
            job = lookup.jobs.get((model, benchmark.name))
            if job is None or job.success_rate is None:
                cells[model].append(fmt.GAP)
            else:
                coverage = "" if job.coverage in (None, 1.0) else f" ({job.coverage:.2f})"
                cells[model].append(f"{job.success_rate:.2f}{coverage}")
    return [("Task metric", labels), *cells.items()]


ADAPTABILITY_ROWS = (
    ("mae", "MAE"),
    ("composition_mae", "composition baseline MAE"),
    ("mean_predictor_mae", "training-mean MAE"),
    ("normalized_mae", "x = MAE ÷ training-mean MAE"),
)


def adaptability_columns(board: Leaderboard) -> Columns:
    """Per task: the probe's out-of-fold MAE beside the composition baseline's and the mean's."""
    labels: list[str] = []
    cells: dict[str, list[str]] = {s.model: [] for s in board.scoreboard.models}
    lookup = board.lookup()
    for benchmark in board.benchmarks_of(Category.ADAPTABILITY):
        for metric, title in ADAPTABILITY_ROWS:
            unit = benchmark.metrics[metric].unit if metric in benchmark.metrics else ""
            labels.append(f"{benchmark.name} {title}" + (f" ({unit})" if unit and unit != "1" else ""))
            for model in cells:
                cells[model].append(
                    fmt.cell(lookup.rows.get((model, benchmark.name, metric)), lookup.jobs.get((model, benchmark.name)))
                )
    return [("Task metric", labels), *cells.items()]


def footnotes(board: Leaderboard) -> list[str]:
    level = f"{board.scoreboard.confidence:.0%}"
    lines = [
        "M_FF and M_PC: 0 is perfect, 1 is the composition-only dummy model (errors capped at the dummy's; "
        "M_PC's are divided by each task's success rate). Ranked by M_FF, then M_PC, M_IS, M_E.",
        f"[low, high]: {level} bootstrap intervals over structures ({board.scoreboard.n_replicates} replicates, "
        "paired across models, the whole chain recomputed per replicate); rank (low–high) the same for the rank; "
        "`=` the M_FF interval overlaps another ranked model's (tied).",
        "M_AD: mean over adaptability tasks of clip(MAE ÷ MAE of predicting the training mean, 0, 1) of a head "
        "on the model's frozen features (k-fold, seeded); not part of the ranking, as in LAMBench.",
        "M_E = 100 µs/atom ÷ η̄ (higher is faster, on the hardware in the results' provenance); M_IS: mean over "
        "MD systems of clip(log10(|drift| / 5e-4 eV/atom/ps), 0, 5), a failed run counting 5.",
        "`*` some structures were skipped or failed; `failed`, `missing` and `unsupported` (the model lacks the "
        "set's elements) are gaps, never zeros, and make a score partial.",
    ]
    references = [scores.model for scores in board.scoreboard.models if scores.baseline]
    if references:
        lines.append(
            f"`ref.`: {', '.join(references)} — reference rows (baselines), shown for scale, never ranked and "
            "never on the Pareto front."
        )
    for scores in board.scoreboard.models:
        if scores.tied_with:
            lines.append(f"{scores.model} is tied on M_FF with {', '.join(scores.tied_with)}")
        lines.extend(f"{scores.model}: {note}" for note in scores.force_field.notes)
    for job in board.jobs:
        if job.status == "failed" and job.error:
            lines.append(f"{job.model} on {job.task}: {job.error}")
    lines.extend(board.notes)
    return lines


def to_markdown(board: Leaderboard) -> str:
    sections = [f"## lambench leaderboard — campaign {board.campaign}", table(score_columns(board))]
    if any(m.level_mismatches for m in board.models):
        sections.append(LEVEL_NOTE)
    if board.benchmarks_of(Category.FORCE_FIELD):
        sections += ["### Errors per benchmark set", table(error_columns(board))]
    if board.benchmarks_of(Category.PROPERTY):
        sections += ["### Property tasks", table(property_columns(board))]
    if board.benchmarks_of(Category.ADAPTABILITY):
        sections += [
            "### Adaptability (probe of the frozen representation, out-of-fold)",
            table(adaptability_columns(board)),
        ]
    sections.append("\n".join(f"- {line}" for line in footnotes(board)))
    return "\n\n".join(sections) + "\n"
