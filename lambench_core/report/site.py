"""The static leaderboard site: one folder of HTML pages, a stylesheet, a script and plotly.js.

Pages work from file:// and from any object store (relative links only, no fetch, no CDN): plot
figures travel inside each page as JSON. The pages are Jinja2 templates (templates/, autoescaped):
this module prepares their data (cells, figures) and never writes markup itself; the embedded JSON is
escaped so it cannot close its script.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from lambench_core.categories import Category
from lambench_core.metrics.scoring import Estimate, ModelScores
from lambench_core.report import formatting as fmt
from lambench_core.report.formatting import plot_text
from lambench_core.report.leaderboard import BenchmarkInfo, ConvergenceInfo, Leaderboard, ModelInfo
from lambench_core.report.markdown import LEVEL_NOTE, footnotes, has_levels, level_marker
from lambench_core.report.rendering import render
from lambench_core.report.site_assets import SCRIPT, STYLE, plotly_javascript
from lambench_core.report.views import (
    RecordIndex,
    benchmark_views,
    element_map,
    render_head_to_head,
    render_views,
    render_weights,
)

EXPORTS = (
    ("results.json", "raw metrics per model and task, and every job's outcome"),
    ("rankings.json", "scores, intervals, ranks and ties"),
    ("metrics.parquet", "the metrics table with its bootstrap replicates (`lambench aggregate` reads it)"),
    ("records.parquet", "per-structure records"),
    ("leaderboard.md", "the Markdown summary"),
    ("leaderboard.json", "everything this site shows"),
)
_NO_ESTIMATE = Estimate(value=None)  # read only


@functools.lru_cache(maxsize=1 << 16)
def slug(name: str) -> str:
    """A file name for any model or task name: readable part plus a digest, so no two names collide
    and no name can climb out of its folder."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "x"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers become gaps."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_for_script(value: Any) -> str:
    try:  # almost always nothing to replace: walk the figures only when a NaN or infinity is there
        text = json.dumps(value, allow_nan=False, default=str)
    except ValueError:
        text = json.dumps(_finite(value), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(
    board: Leaderboard, template: str, title: str, depth: int, plotted: Sequence[dict[str, Any]], **context: Any
) -> bytes:
    """A page from its template (which extends base.html.j2): title, links `depth` folders up, and the
    plot figures as JSON the page script draws (escaped by `_json_for_script`, so it cannot close its
    script element)."""
    document = render(
        template,
        title=title,
        up="../" * depth,
        campaign=board.campaign,
        created_at=board.created_at.isoformat(timespec="seconds"),
        # Script-safe JSON (no <, >, & left): markup the template may place verbatim.
        plot_data=Markup(_json_for_script(list(plotted))) if plotted else None,
        **context,
    )
    return (document + "\n").encode()


@dataclass
class Cell:
    """One table cell as the templates draw it (`_macros.sortable_table`): text, sort value, class, tooltip, a
    bootstrap interval, a link and a level-of-theory badge (marker, tooltip)."""

    text: str
    value: float | str | None = None
    classes: str = ""
    title: str = ""
    ci: str = ""
    link: str = ""
    badge: tuple[str, str] | None = None
    lines: list[str] = field(default_factory=list)  # shown one per line instead of `text`


@dataclass
class Head:
    text: str
    name: bool = False  # a text column (left-aligned)


@dataclass
class Row:
    cells: list[Cell]
    attributes: list[tuple[str, str]] = field(default_factory=list)


def _estimate_cell(estimate: Estimate, partial: bool = False, gap: str = "missing", digits: int = 3) -> Cell:
    if estimate.value is None:
        return Cell(gap, None, "gap")
    ci = ""
    if estimate.low is not None and estimate.high is not None:
        ci = f"[{fmt.number(estimate.low, digits)}, {fmt.number(estimate.high, digits)}]"
    mark = " (partial)" if partial else ""
    return Cell(f"{fmt.number(estimate.value, digits)}{mark}", estimate.value, "partial" if partial else "", ci=ci)


def _applicability_estimate(
    board: Leaderboard, scores: ModelScores, kind: Category, metric: str
) -> tuple[Estimate, str]:
    benchmark = next(iter(board.benchmarks_of(kind)), None)
    if benchmark is None:
        return Estimate(value=None), "missing"
    job = board.job(scores.model, benchmark.name)
    estimate = scores.metrics.get(benchmark.name, {}).get(metric, Estimate(value=None))
    return estimate, (job.status if job and job.status in ("failed", "unsupported") else "missing")


def _leaderboard_rows(board: Leaderboard) -> tuple[list[Head], list[Row]]:
    board_scores = board.scoreboard
    show_levels = has_levels(board)
    titles = ["Rank", "Model", *(["Level of theory"] if show_levels else []), "M_FF ↓"]
    titles += [f"FF {d.value}" for d in board_scores.force_field_domains]
    has_pc = bool(board.benchmarks_of(Category.PROPERTY))
    if has_pc:
        titles += ["M_PC ↓", *[f"PC {d.value}" for d in board_scores.property_domains]]
    applicability = [
        (kind, metric, title)
        for kind, metric, title in (
            (Category.STABILITY, "m_is", "M_IS ↓"),
            (Category.EFFICIENCY, "m_e", "M_E ↑"),
            (Category.EFFICIENCY, "eta_us_per_atom", "η̄ (µs/atom)"),
            (Category.STABILITY, "survival_fraction", "MD survival"),
        )
        if board.benchmarks_of(kind)
    ]
    has_ad = bool(board.benchmarks_of(Category.ADAPTABILITY))
    if has_ad:
        titles.append("M_AD ↓")
    titles += [title for *_, title in applicability] + ["Tied with"]
    heads = [Head(title, title in ("Model", "Level of theory")) for title in titles]
    infos = {m.name: m for m in board.models}
    rows = []
    for scores in board_scores.models:
        cells = [
            Cell(fmt.rank(scores), scores.rank, "", _rank_title(scores)),
            Cell(scores.model, scores.model, "name", link=f"models/{slug(scores.model)}.html"),
            *([_level_cell(infos.get(scores.model))] if show_levels else []),
            _estimate_cell(scores.m_ff, scores.m_ff_partial, _gap(board, scores.model, Category.FORCE_FIELD)),
            *(_estimate_cell(scores.ff_domains[d]) for d in board_scores.force_field_domains),
        ]
        if has_pc:
            cells.append(_estimate_cell(scores.m_pc, scores.m_pc_partial, _gap(board, scores.model, Category.PROPERTY)))
            cells += [_estimate_cell(scores.pc_domains[d]) for d in board_scores.property_domains]
        if has_ad:
            cells.append(
                _estimate_cell(scores.m_ad, scores.m_ad_partial, _gap(board, scores.model, Category.ADAPTABILITY))
            )
        for kind, metric, _ in applicability:
            estimate, gap = _applicability_estimate(board, scores, kind, metric)
            cells.append(_estimate_cell(estimate, gap=gap, digits=1 if metric == "eta_us_per_atom" else 3))
        tied = ", ".join(scores.tied_with)
        cells.append(Cell(tied, tied, "name tie"))
        attributes = [("data-model", scores.model)]
        if scores.baseline:
            attributes += [("class", "baseline"), ("title", "a reference row: shown, never ranked")]
        rows.append(Row(cells, attributes))
    return heads, rows


def _level_badge(info: ModelInfo | None) -> tuple[str, str] | None:
    """A visible 'scored on pbe labels' badge (marker, tooltip listing the mismatched reference sets)."""
    marker = level_marker(info)
    if info is None or not marker:
        return None
    return marker, f"No label set at this model's level; {marker}: {', '.join(info.level_mismatches)}"


def _level_cell(info: ModelInfo | None) -> Cell:
    level = info.level_of_theory if info is not None else None
    return Cell(level or fmt.GAP, level, "name level", badge=_level_badge(info))


def _level_section(info: ModelInfo) -> dict[str, Any] | None:
    """The model's level of theory, its label level per domain, and the sets scored at another level."""
    if not info.level_of_theory and not info.level_mismatches:
        return None
    levels = (info.card or {}).get("levels") or {}
    per_domain = ", ".join(f"{domain}: {level}" for domain, level in sorted(levels.items())) or "pbe (every domain)"
    return {
        "pairs": [("Level of theory", info.level_of_theory or fmt.GAP), ("Label level per domain", per_domain)],
        "mismatches": info.level_mismatches,
        "badge": _level_badge(info),
    }


def _gap(board: Leaderboard, model: str, kind: Category) -> str:
    return fmt.gap_of(board.lookup().job_statuses.get((model, kind), set()))


def _rank_title(scores: ModelScores) -> str:
    if scores.rank is None:
        return "not ranked: no complete M_FF"
    if scores.rank_low is None:
        return "no bootstrap interval"
    return f"rank interval {scores.rank_low}–{scores.rank_high}"


def _error_bars(estimates: Sequence[Estimate]) -> dict[str, Any]:
    return {
        "type": "data",
        "symmetric": False,
        "array": [(x.high - x.value) if x.high is not None and x.value is not None else 0 for x in estimates],
        "arrayminus": [(x.value - x.low) if x.low is not None and x.value is not None else 0 for x in estimates],
    }


PLOT_MODELS = 30  # the index page's radar and per-benchmark bars draw at most this many models


def _first_models(board: Leaderboard, title: str) -> tuple[list[ModelScores], str]:
    """The models an index plot draws, in ranking order, and its title: at most PLOT_MODELS (hundreds
    of traces are unreadable and make the page megabytes); every model stays on the task pages."""
    models = board.scoreboard.models
    if len(models) <= PLOT_MODELS:
        return models, title
    return models[:PLOT_MODELS], f"{title} — the first {PLOT_MODELS} of {len(models)} models"


def _radar(board: Leaderboard) -> dict[str, Any] | None:
    axes = [(f"FF {d.value}", "ff", d) for d in board.scoreboard.force_field_domains]
    axes += [(f"PC {d.value}", "pc", d) for d in board.scoreboard.property_domains]
    if len(axes) < 3:
        return None
    traces = []
    models, title = _first_models(board, "1 − normalized error per domain (outer is better)")
    for scores in models:
        values = [(scores.ff_domains if kind == "ff" else scores.pc_domains)[d].value for _, kind, d in axes]
        if all(v is None for v in values):
            continue
        r = [None if v is None else 1.0 - v for v in values]
        traces.append(
            {
                "type": "scatterpolar",
                "name": plot_text(scores.model),
                "r": [*r, r[0]],
                "theta": [*(a for a, *_ in axes), axes[0][0]],
                "fill": "toself",
                "opacity": 0.55,
            }
        )
    return {
        "id": "plot-radar",
        "data": traces,
        "layout": {
            "title": {"text": title},
            "polar": {"radialaxis": {"range": [0, 1]}},
            "margin": {"t": 60},
        },
    }


def pareto_front(points: Iterable[tuple[str, float, float]]) -> list[str]:
    """Names of the points no other point beats on both accuracy (lower y) and speed (higher x), in
    their given order. A sweep from the fastest down: O(n log n)."""
    points = list(points)
    if any(math.isnan(x) or math.isnan(y) for _, x, y in points):  # NaN orders nothing: pairwise
        return [
            name
            for name, x, y in points
            if not any((x2 >= x and y2 <= y) and (x2 > x or y2 < y) for _, x2, y2 in points)
        ]
    order = sorted(range(len(points)), key=lambda i: -points[i][1])
    dominated = [False] * len(points)
    best_faster = math.inf  # the lowest y among points strictly faster than the current group
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and points[order[end]][1] == points[order[start]][1]:
            end += 1
        group = order[start:end]
        lowest = min(points[i][2] for i in group)
        for i in group:
            y = points[i][2]
            dominated[i] = best_faster <= y or lowest < y
        best_faster = min(best_faster, lowest)
        start = end
    return [name for (name, _, _), out in zip(points, dominated, strict=True) if not out]


def _scatter_trace(name: str, models: list[ModelScores], symbol: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers+text",
        "name": name,
        "x": [s.m_e.value for s in models],
        "y": [s.m_ff.value for s in models],
        "text": [plot_text(s.model) for s in models],
        "textposition": "top center",
        "error_y": _error_bars([s.m_ff for s in models]),
        "error_x": _error_bars([s.m_e for s in models]),
        "marker": {"size": 11, "symbol": symbol},
    }


def _pareto(board: Leaderboard) -> dict[str, Any] | None:
    """M_FF against M_E; the front is drawn through complete scores only (a partial M_FF is not
    comparable), partial ones are shown hollow beside it."""
    scored = [s for s in board.scoreboard.models if s.m_ff.value is not None and s.m_e.value]
    if not scored:
        return None
    complete = [s for s in scored if not s.m_ff_partial and not s.baseline]
    partial = [s for s in scored if s.m_ff_partial and not s.baseline]
    front = set(pareto_front((s.model, s.m_e.value or 0.0, s.m_ff.value or 0.0) for s in complete))
    traces = [
        _scatter_trace("on the Pareto front", [s for s in complete if s.model in front], "star"),
        _scatter_trace("complete M_FF", [s for s in complete if s.model not in front], "circle"),
        _scatter_trace("partial M_FF", partial, "circle-open"),
        # Baselines are references for the eye, never part of the front.
        _scatter_trace("reference (not ranked)", [s for s in scored if s.baseline], "diamond-open"),
    ]
    ordered = sorted((s for s in complete if s.model in front), key=lambda s: s.m_e.value or 0.0)
    traces.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Pareto front",
            "x": [s.m_e.value for s in ordered],
            "y": [s.m_ff.value for s in ordered],
            "line": {"dash": "dot"},
        }
    )
    return {
        "id": "plot-pareto",
        "data": [trace for trace in traces if trace["x"]],
        "layout": {
            "title": {"text": "Accuracy vs efficiency (M_FF lower is better, M_E higher is faster)"},
            "xaxis": {"title": {"text": "M_E (log)"}, "type": "log"},
            "yaxis": {"title": {"text": "M_FF"}},
        },
    }


def _benchmark_overview(board: Leaderboard) -> dict[str, Any] | None:
    """Mean normalized error per benchmark (force-field sets and property tasks) for each model."""
    names: list[str] = []
    for benchmark in (*board.benchmarks_of(Category.FORCE_FIELD), *board.benchmarks_of(Category.PROPERTY)):
        names.append(benchmark.name)
    if not names:
        return None
    traces = []
    models, title = _first_models(board, "Normalized error per benchmark (mean over its metrics; 1 = dummy model)")
    for scores in models:
        normalized = dict(scores.force_field.normalized)
        if scores.property is not None:
            normalized |= scores.property.normalized
        ys = []
        for name in names:
            xs = [x for x in normalized.get(name, {}).values() if x is not None]
            ys.append(sum(xs) / len(xs) if xs else None)
        traces.append({"type": "bar", "name": plot_text(scores.model), "x": [plot_text(n) for n in names], "y": ys})
    return {
        "id": "plot-benchmarks",
        "data": traces,
        "layout": {
            "title": {"text": title},
            "barmode": "group",
            "yaxis": {"title": {"text": "normalized error"}},
            "xaxis": {"tickangle": -40, "automargin": True},
        },
    }


def _task_bars(board: Leaderboard, benchmark: BenchmarkInfo) -> list[dict[str, Any]]:
    """One bar chart per metric that enters a score (or the task's headline metric), with intervals."""
    headline = {
        Category.EFFICIENCY: ["m_e", "eta_us_per_atom"],
        Category.STABILITY: ["m_is"],
        Category.ADAPTABILITY: ["normalized_mae", "mae", "composition_mae"],
    }
    metrics = [m for m, info in benchmark.metrics.items() if info.dummy is not None] or headline.get(benchmark.kind, [])
    figures = []
    for index, metric in enumerate(metrics):
        models = [s for s in board.scoreboard.models if metric in s.metrics.get(benchmark.name, {})]
        if not models:
            continue
        estimates = [s.metrics[benchmark.name][metric] for s in models]
        unit = benchmark.metrics[metric].unit if metric in benchmark.metrics else ""
        figures.append(
            {
                "id": f"plot-task-{index}",
                "data": [
                    {
                        "type": "bar",
                        "x": [plot_text(s.model) for s in models],
                        "y": [x.value for x in estimates],
                        "error_y": _error_bars(estimates),
                    }
                ],
                "layout": {
                    "title": {"text": plot_text(f"{metric} ({unit})" if unit else metric)},
                    "yaxis": {"title": {"text": plot_text(unit)}},
                },
            }
        )
    return figures


def _benchmark_groups(board: Leaderboard) -> list[dict[str, Any]]:
    groups = []
    for kind in Category:
        members = board.benchmarks_of(kind)
        if members:
            groups.append(
                {
                    "title": kind.title,
                    "members": [{"name": b.name, "slug": slug(b.name), "domain": b.domain.value} for b in members],
                }
            )
    return groups


def index_page(board: Leaderboard, metrics_parquet: bytes = b"") -> bytes:
    figures = [f for f in (_radar(board), _pareto(board), _benchmark_overview(board)) if f is not None]
    heads, rows = _leaderboard_rows(board)
    return _page(
        board,
        "index.html.j2",
        "lambench leaderboard",
        0,
        figures,
        confidence=f"{board.scoreboard.confidence:.0%}",
        replicates=board.scoreboard.n_replicates,
        heads=heads,
        rows=rows,
        level_note=LEVEL_NOTE if any(m.level_mismatches for m in board.models) else "",
        weights=render_weights(board),
        figures=figures,
        head_to_head=render_head_to_head(board, metrics_parquet),
        benchmark_groups=_benchmark_groups(board),
        exports=EXPORTS,
        notes=footnotes(board),
    )


MODEL_TASK_HEADS = [
    Head("Benchmark", True),
    Head("Kind", True),
    Head("Status", True),
    Head("Metrics", True),
    Head("Success rate"),
    Head("Coverage"),
    Head("Dataset sha256", True),
    Head("Wall (s)"),
    Head("Error", True),
]


def model_page(board: Leaderboard, scores: ModelScores, records: RecordIndex | None = None) -> bytes:
    records = records or RecordIndex()
    elements_of = records.set_elements
    info = board.lookup().models[scores.model]
    card = info.card or {}
    summary = [
        ("Rank", fmt.rank(scores)),
        ("M_FF", fmt.score(scores.m_ff, scores.m_ff_partial)),
        ("M_PC", fmt.score(scores.m_pc, scores.m_pc_partial)),
        ("M_AD", fmt.score(scores.m_ad, scores.m_ad_partial)),
        ("M_IS", fmt.estimate(scores.m_is)),
        ("M_E", fmt.estimate(scores.m_e)),
        ("Tied with", ", ".join(scores.tied_with)),
        ("Missing benchmark sets", ", ".join(scores.force_field.missing)),
    ]
    provenance = [
        ("lambench", info.lambench_version),
        ("git commit", info.git_commit),
        ("weights sha256", info.weights_sha256),
        ("device", info.device),
        ("dtype", info.dtype),
        ("hardware", info.hardware),
        ("python", info.python),
        ("platform", info.platform),
        ("packages", info.packages),
        ("model time (s)", f"{info.compute_seconds:.1f}"),
        ("wall time (s)", f"{info.wall_seconds:.1f}"),
    ]
    rows = []
    lookup = board.lookup()
    for benchmark in board.benchmarks:
        job = lookup.jobs.get((scores.model, benchmark.name))
        row = lookup.first_row.get((scores.model, benchmark.name))
        if job is None and row is None:
            continue
        if job is not None:
            status, success_rate, coverage = job.status, job.success_rate, job.coverage
            digest, wall, error = (job.dataset_sha256 or "")[:16], job.wall_seconds, job.error or ""
        else:  # a table scored elsewhere: no job record, only its rows
            assert row is not None  # both absent was skipped above
            status, success_rate, coverage = row.status, row.success_rate, row.coverage
            digest, wall, error = "", None, ""
        estimates = scores.metrics.get(benchmark.name, {})
        units = {name: info.unit for name, info in benchmark.metrics.items()}
        metrics = [
            f"{name} = {fmt.estimate(estimate)} {units.get(name, '')}".rstrip() for name, estimate in estimates.items()
        ]
        gap = " gap" if status in ("failed", "missing", "unsupported") else ""
        elements = " ".join(sorted(elements_of.get(benchmark.name, ())))
        rows.append(
            Row(
                [
                    Cell(benchmark.name, classes="name", link=f"../tasks/{slug(benchmark.name)}.html"),
                    Cell(benchmark.kind, classes="name"),
                    Cell(status, classes=f"name{gap}"),
                    Cell("", classes="name", lines=metrics),
                    Cell(fmt.number(success_rate, 2)),
                    Cell(fmt.number(coverage, 2)),
                    Cell(digest, classes="name"),
                    Cell(fmt.number(wall, 1)),
                    Cell(error, classes="name"),
                ],
                [("data-elements", elements)] if elements else [],
            )
        )
    return _page(
        board,
        "model.html.j2",
        f"Model {scores.model}",
        1,
        (),
        summary=summary,
        level=_level_section(info),
        card=sorted(card.items()),
        provenance=provenance,
        element_map=element_map(records, scores.model),
        heads=MODEL_TASK_HEADS,
        rows=rows,
    )


def _convergence(info: ConvergenceInfo | None) -> dict[str, Any] | None:
    """The set's convergence certificate: one row per criterion (worst frame, pass/fail)."""
    if info is None:
        return None
    return {
        "verdict": info.verdict,
        "protocol": info.protocol,
        "frames": info.frames,
        "note": info.note,
        "rows": [
            {
                "criterion": c.criterion,
                "limit": f"{c.limit:g}",
                "worst": fmt.GAP if c.worst is None else f"{c.worst:.3g}",
                "frame": c.frame or fmt.GAP,
                "verdict": "pass" if c.passed else "FAIL",
            }
            for c in info.criteria
        ],
    }


def convergence_html(info: ConvergenceInfo | None) -> str:
    """The certificate table of a reference set, as the task page shows it."""
    return render("certificate.html.j2", c=_convergence(info))


def task_page(board: Leaderboard, benchmark: BenchmarkInfo, records: RecordIndex | None = None) -> bytes:
    views = benchmark_views(board, benchmark, records or RecordIndex())
    bars = _task_bars(board, benchmark)
    definition = [
        ("Kind", benchmark.kind),
        ("Domain", benchmark.domain.value),
        ("Task", benchmark.task),
        ("Version", benchmark.version),
        ("Definition", benchmark.description),
        ("Parameters", benchmark.params),
    ]
    datasets = [
        {
            "name": d.name,
            "pairs": [
                ("Reference level", d.level),
                ("Level of theory", d.level_of_theory),
                ("Source", d.source),
                ("Citation", d.citation),
                ("Licence", d.licence),
                ("Description", d.description),
                ("sha256", d.sha256),
            ],
            "convergence": _convergence(d.convergence),
        }
        for d in benchmark.datasets
    ]
    metric_names = list(benchmark.metrics)
    heads = [Head("Model", True), Head("Status", True)]
    heads += [Head(f"{m} ({benchmark.metrics[m].unit})") for m in metric_names]
    rows = []
    jobs = board.lookup().jobs
    for scores in board.scoreboard.models:
        job = jobs.get((scores.model, benchmark.name))
        status = job.status if job else "missing"
        estimates = scores.metrics.get(benchmark.name, {})
        cells = [
            Cell(scores.model, classes="name", link=f"../models/{slug(scores.model)}.html"),
            Cell(status, classes="name"),
            *(_estimate_cell(estimates.get(m, _NO_ESTIMATE), gap=status) for m in metric_names),
        ]
        rows.append(Row(cells))
    dummies = ", ".join(
        f"{name} = {info.dummy:.4g} {info.unit}" for name, info in benchmark.metrics.items() if info.dummy is not None
    )
    return _page(
        board,
        "task.html.j2",
        f"Task {benchmark.name}",
        1,
        bars + [figure for view in views for figure in view.figures],
        definition=definition,
        dummies=dummies,
        datasets=datasets,
        heads=heads,
        rows=rows,
        bars=bars,
        views=render_views(views),
    )


def iter_site(
    board: Leaderboard, records: RecordIndex | None = None, metrics_parquet: bytes = b""
) -> Iterator[tuple[str, bytes]]:
    """(relative path, content) of every file of the site except the data exports, one at a time (a
    board of 500 models × 664 benchmarks is a gigabyte of pages: a writer keeps one of them in memory);
    `records` (the campaign's per-structure records) draw the views."""
    yield "index.html", index_page(board, metrics_parquet)
    yield "assets/site.css", STYLE.encode()
    yield "assets/site.js", SCRIPT.encode()
    yield "assets/plotly.min.js", plotly_javascript().encode()
    for scores in board.scoreboard.models:
        yield f"models/{slug(scores.model)}.html", model_page(board, scores, records)
    for benchmark in board.benchmarks:
        yield f"tasks/{slug(benchmark.name)}.html", task_page(board, benchmark, records)
