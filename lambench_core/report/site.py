"""The static leaderboard site: one folder of HTML pages, a stylesheet, a script and plotly.js.

Pages work from file:// and from any object store (relative links only, no fetch, no CDN): plot
figures travel inside each page as JSON. Every user-supplied string (model names, card fields,
errors) is HTML-escaped in markup, and the embedded JSON is escaped so it cannot close its script.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from lambench_core.categories import Category
from lambench_core.metrics.scoring import Estimate, ModelScores
from lambench_core.report import formatting as fmt
from lambench_core.report.leaderboard import BenchmarkInfo, ConvergenceInfo, Leaderboard, ModelInfo
from lambench_core.report.markdown import LEVEL_NOTE, footnotes, has_levels, level_marker
from lambench_core.report.rendering import labelled
from lambench_core.report.site_assets import SCRIPT, STYLE, plotly_javascript
from lambench_core.report.views import (
    RecordIndex,
    benchmark_views,
    element_map,
    force_field_elements,
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
# Names, units and statuses repeat on every page: escape each distinct string once.
e = functools.lru_cache(maxsize=1 << 16)(html.escape)
_NO_ESTIMATE = Estimate(value=None)  # read only


def plot_text(text: str) -> str:
    """Plotly renders a little HTML in labels and decodes &lt; &gt; &amp; but not &quot;."""
    return html.escape(text, quote=False)


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


def _page(board: Leaderboard, title: str, body: str, depth: int, figures: Sequence[dict[str, Any]] = ()) -> bytes:
    up = "../" * depth
    plots = ""
    if figures:
        plots = (
            f'<script type="application/json" id="plot-data">{_json_for_script(list(figures))}</script>'
            f'<script src="{up}assets/plotly.min.js"></script>'
        )
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{e(title)} — lambench</title><link rel='stylesheet' href='{up}assets/site.css'></head><body>"
        f"<header><h1>{e(title)}</h1><nav><a href='{up}index.html'>Leaderboard</a>"
        f"<a href='{up}index.html#tasks'>Tasks</a><a href='{up}index.html#downloads'>Downloads</a></nav>"
        f"<div class='muted'>Campaign {e(board.campaign)} · {e(board.created_at.isoformat(timespec='seconds'))}"
        "</div></header>"
        f"<main>{body}</main>{plots}<script src='{up}assets/site.js'></script></body></html>\n"
    )
    return document.encode()


def _td(text: str, value: float | str | None, classes: str = "", title: str = "") -> str:
    attr = "" if value is None else f" data-value='{e(str(value))}'"
    tip = f" title='{e(title)}'" if title else ""
    cls = f" class='{classes}'" if classes else ""
    return f"<td{cls}{attr}{tip}>{text}</td>"


def _estimate_td(estimate: Estimate, partial: bool = False, gap: str = "missing", digits: int = 3) -> str:
    if estimate.value is None:
        return _td(e(gap), None, "gap")
    ci = ""
    if estimate.low is not None and estimate.high is not None:
        ci = f"<span class='ci'>[{fmt.number(estimate.low, digits)}, {fmt.number(estimate.high, digits)}]</span>"
    mark = " (partial)" if partial else ""
    return _td(f"{fmt.number(estimate.value, digits)}{mark}{ci}", estimate.value, "partial" if partial else "")


def _applicability_estimate(
    board: Leaderboard, scores: ModelScores, kind: Category, metric: str
) -> tuple[Estimate, str]:
    benchmark = next(iter(board.benchmarks_of(kind)), None)
    if benchmark is None:
        return Estimate(value=None), "missing"
    job = board.job(scores.model, benchmark.name)
    estimate = scores.metrics.get(benchmark.name, {}).get(metric, Estimate(value=None))
    return estimate, (job.status if job and job.status in ("failed", "unsupported") else "missing")


def _leaderboard_table(board: Leaderboard) -> str:
    board_scores = board.scoreboard
    show_levels = has_levels(board)
    heads = ["Rank", "Model", *(["Level of theory"] if show_levels else []), "M_FF ↓"]
    heads += [f"FF {d.value}" for d in board_scores.force_field_domains]
    has_pc = bool(board.benchmarks_of(Category.PROPERTY))
    if has_pc:
        heads += ["M_PC ↓", *[f"PC {d.value}" for d in board_scores.property_domains]]
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
        heads.append("M_AD ↓")
    heads += [title for *_, title in applicability] + ["Tied with"]
    head = "".join(
        f"<th class='sortable{' name' if h in ('Model', 'Level of theory') else ''}' scope='col'>{e(h)}</th>"
        for h in heads
    )
    infos = {m.name: m for m in board.models}
    rows = []
    for scores in board_scores.models:
        cells = [
            _td(e(fmt.rank(scores)), scores.rank, "", _rank_title(scores)),
            f"<td class='name' data-value='{e(scores.model)}'><a href='models/{slug(scores.model)}.html'>"
            f"{e(scores.model)}</a></td>",
            *([_level_td(infos.get(scores.model))] if show_levels else []),
            _estimate_td(scores.m_ff, scores.m_ff_partial, _gap(board, scores.model, Category.FORCE_FIELD)),
            *(_estimate_td(scores.ff_domains[d]) for d in board_scores.force_field_domains),
        ]
        if has_pc:
            cells.append(_estimate_td(scores.m_pc, scores.m_pc_partial, _gap(board, scores.model, Category.PROPERTY)))
            cells += [_estimate_td(scores.pc_domains[d]) for d in board_scores.property_domains]
        if has_ad:
            cells.append(
                _estimate_td(scores.m_ad, scores.m_ad_partial, _gap(board, scores.model, Category.ADAPTABILITY))
            )
        for kind, metric, _ in applicability:
            estimate, gap = _applicability_estimate(board, scores, kind, metric)
            cells.append(_estimate_td(estimate, gap=gap, digits=1 if metric == "eta_us_per_atom" else 3))
        tied = ", ".join(scores.tied_with)
        cells.append(f"<td class='name tie' data-value='{e(tied)}'>{e(tied)}</td>")
        reference = " class='baseline' title='a reference row: shown, never ranked'" if scores.baseline else ""
        rows.append(f"<tr data-model='{e(scores.model)}'{reference}>{''.join(cells)}</tr>")
    return (
        "<div class='table-wrap'><table id='leaderboard' class='sortable-table'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _level_badge(info: ModelInfo | None) -> str:
    """A visible 'scored on pbe labels' badge whose tooltip lists the mismatched reference sets."""
    marker = level_marker(info)
    if info is None or not marker:
        return ""
    tip = f"No label set at this model's level; {marker}: {', '.join(info.level_mismatches)}"
    return f"<span class='badge level-mismatch' title='{e(tip)}'>{e(marker)}</span>"


def _level_td(info: ModelInfo | None) -> str:
    level = info.level_of_theory if info is not None else None
    return _td(f"{e(level or fmt.GAP)}{_level_badge(info)}", level, "name level")


def _level_section(info: ModelInfo) -> str:
    """The model's level of theory, its label level per domain, and the sets scored at another level."""
    if not info.level_of_theory and not info.level_mismatches:
        return ""
    levels = (info.card or {}).get("levels") or {}
    per_domain = ", ".join(f"{domain}: {level}" for domain, level in sorted(levels.items())) or "pbe (every domain)"
    section = "<h2>Level of theory</h2>" + _kv(
        [("Level of theory", info.level_of_theory or fmt.GAP), ("Label level per domain", per_domain)]
    )
    if info.level_mismatches:
        items = "".join(f"<li>{e(name)}</li>" for name in info.level_mismatches)
        section += (
            f"<p>{_level_badge(info)} No label set at the model's own level exists for these reference sets, so it "
            "was scored on the labels named (per-element energy offsets refitted; the rest of the difference "
            f"between the levels counts as error):</p><ul class='level-mismatches'>{items}</ul>"
        )
    return section


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


def _plot_divs(figures: Sequence[dict[str, Any]]) -> str:
    return "<div class='plots'>" + "".join(f"<div class='plot' id='{f['id']}'></div>" for f in figures) + "</div>"


def _benchmark_list(board: Leaderboard) -> str:
    parts = []
    for kind in Category:
        members = board.benchmarks_of(kind)
        if not members:
            continue
        items = "".join(
            f"<li><a href='tasks/{slug(b.name)}.html'>{e(b.name)}</a> <span class='muted'>({e(b.domain.value)})</span>"
            "</li>"
            for b in members
        )
        parts.append(f"<h3>{e(kind.title)}</h3><ul>{items}</ul>")
    return "".join(parts)


def index_page(board: Leaderboard, metrics_parquet: bytes = b"") -> bytes:
    figures = [f for f in (_radar(board), _pareto(board), _benchmark_overview(board)) if f is not None]
    downloads = "".join(f"<li><a href='{name}'>{name}</a>: {e(what)}</li>" for name, what in EXPORTS)
    notes = "".join(f"<li>{e(line)}</li>" for line in footnotes(board))
    level_note = f"<p class='muted'>{e(LEVEL_NOTE)}</p>" if any(m.level_mismatches for m in board.models) else ""
    body = (
        f"<h2>Leaderboard</h2><p class='muted'>Click a column to sort. Values in brackets are "
        f"{board.scoreboard.confidence:.0%} bootstrap intervals over structures "
        f"({board.scoreboard.n_replicates} replicates). Gaps are shown, never averaged away.</p>"
        f"{_leaderboard_table(board)}{level_note}{render_weights(board)}<h2>Plots</h2>{_plot_divs(figures)}"
        f"{render_head_to_head(board, metrics_parquet)}"
        f"<h2 id='tasks'>Tasks</h2>{_benchmark_list(board)}"
        f"<h2 id='downloads'>Downloads</h2><ul>{downloads}</ul><h2>Notes</h2><ul class='notes'>{notes}</ul>"
    )
    return _page(board, "lambench leaderboard", body, 0, figures)


def _kv(pairs: Iterable[tuple[str, Any]]) -> str:
    return labelled(pairs)


def model_page(board: Leaderboard, scores: ModelScores, records: RecordIndex | None = None) -> bytes:
    records = records or RecordIndex()
    elements_of = force_field_elements(board, records)
    info = board.lookup().models[scores.model]
    card = info.card or {}
    summary = _kv(
        [
            ("Rank", fmt.rank(scores)),
            ("M_FF", fmt.score(scores.m_ff, scores.m_ff_partial)),
            ("M_PC", fmt.score(scores.m_pc, scores.m_pc_partial)),
            ("M_AD", fmt.score(scores.m_ad, scores.m_ad_partial)),
            ("M_IS", fmt.estimate(scores.m_is)),
            ("M_E", fmt.estimate(scores.m_e)),
            ("Tied with", ", ".join(scores.tied_with)),
            ("Missing benchmark sets", ", ".join(scores.force_field.missing)),
        ]
    )
    provenance = _kv(
        [
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
    )
    heads = [
        "Benchmark",
        "Kind",
        "Status",
        "Metrics",
        "Success rate",
        "Coverage",
        "Dataset sha256",
        "Wall (s)",
        "Error",
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
        metrics = "<br>".join(
            f"{e(name)} = {e(fmt.estimate(estimate))} {e(units.get(name, ''))}" for name, estimate in estimates.items()
        )
        gap = " gap" if status in ("failed", "missing", "unsupported") else ""
        elements = " ".join(sorted(elements_of.get(benchmark.name, ())))
        rows.append(
            (f"<tr data-elements='{e(elements)}'>" if elements else "<tr>")
            + f"<td class='name'><a href='../tasks/{slug(benchmark.name)}.html'>{e(benchmark.name)}</a></td>"
            f"<td class='name'>{e(benchmark.kind)}</td><td class='name{gap}'>{e(status)}</td>"
            f"<td class='name'>{metrics}</td><td>{fmt.number(success_rate, 2)}</td>"
            f"<td>{fmt.number(coverage, 2)}</td><td class='name'><code>{e(digest)}</code></td>"
            f"<td>{fmt.number(wall, 1)}</td><td class='name'>{e(error)}</td></tr>"
        )
    table = (
        "<div class='table-wrap'><table class='sortable-table'><thead><tr>"
        + "".join(f"<th>{e(h)}</th>" for h in heads)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    body = (
        f"<h2>Scores</h2>{summary}{_level_section(info)}<h2>Model card</h2>{_kv(sorted(card.items()))}"
        f"<h2>Provenance</h2>{provenance}{element_map(board, records, scores.model)}<h2>Every task</h2>{table}"
    )
    return _page(board, f"Model {scores.model}", body, 1)


def _convergence(info: ConvergenceInfo | None) -> str:
    """The set's convergence certificate: one row per criterion (worst frame, pass/fail)."""
    if info is None:
        return ""
    if info.verdict == "uncertified":
        return (
            "<p class='muted' data-certificate='uncertified'>"
            "Convergence: uncertified (no certificate of these labels).</p>"
        )
    rows = "".join(
        f"<tr><td class='name'>{e(c.criterion)}</td><td>≤ {c.limit:g}</td>"
        f"<td>{fmt.GAP if c.worst is None else f'{c.worst:.3g}'}</td><td class='name'>{e(c.frame or fmt.GAP)}</td>"
        f"<td class='name'>{'pass' if c.passed else 'FAIL'}</td></tr>"
        for c in info.criteria
    )
    note = f"<p>{e(info.note)}</p>" if info.note else ""
    return (
        f"<h4>Convergence certificate: {e(info.verdict)}</h4>"
        f"<p class='muted'>{e(info.protocol or '')}; {info.frames} frames recomputed.</p>"
        f"<table data-certificate='{e(info.verdict)}'><thead><tr><th>criterion</th><th>limit</th><th>worst</th>"
        f"<th>frame</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>{note}"
    )


def task_page(board: Leaderboard, benchmark: BenchmarkInfo, records: RecordIndex | None = None) -> bytes:
    views = benchmark_views(board, benchmark, records or RecordIndex())
    figures = _task_bars(board, benchmark) + [figure for view in views for figure in view.figures]
    definition = _kv(
        [
            ("Kind", benchmark.kind),
            ("Domain", benchmark.domain.value),
            ("Task", benchmark.task),
            ("Version", benchmark.version),
            ("Definition", benchmark.description),
            ("Parameters", benchmark.params),
        ]
    )
    datasets = "".join(
        f"<h3>{e(d.name)}</h3>"
        + _kv(
            [
                ("Reference level", d.level),
                ("Level of theory", d.level_of_theory),
                ("Source", d.source),
                ("Citation", d.citation),
                ("Licence", d.licence),
                ("Description", d.description),
                ("sha256", d.sha256),
            ]
        )
        + _convergence(d.convergence)
        for d in benchmark.datasets
    )
    metric_names = list(benchmark.metrics)
    heads = ["Model", "Status", *(f"{m} ({benchmark.metrics[m].unit})" for m in metric_names)]
    rows = []
    jobs = board.lookup().jobs
    for scores in board.scoreboard.models:
        job = jobs.get((scores.model, benchmark.name))
        status = job.status if job else "missing"
        estimates = scores.metrics.get(benchmark.name, {})
        cells = "".join(_estimate_td(estimates.get(m, _NO_ESTIMATE), gap=status) for m in metric_names)
        rows.append(
            f"<tr><td class='name'><a href='../models/{slug(scores.model)}.html'>{e(scores.model)}</a></td>"
            f"<td class='name'>{e(status)}</td>{cells}</tr>"
        )
    table = (
        "<div class='table-wrap'><table class='sortable-table'><thead><tr>"
        + "".join(f"<th class='sortable'>{e(h)}</th>" for h in heads)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    dummies = ", ".join(
        f"{name} = {info.dummy:.4g} {info.unit}" for name, info in benchmark.metrics.items() if info.dummy is not None
    )
    body = (
        f"<h2>Definition</h2>{definition}"
        + (f"<p>Normalized by the dummy model's values: {e(dummies)}.</p>" if dummies else "")
        + f"<h2>References</h2>{datasets or '<p class=muted>Reference values are part of the task itself.</p>'}"
        + f"<h2>Results</h2>{table}{_plot_divs(_task_bars_only(figures))}"
        + render_views(views)
    )
    return _page(board, f"Task {benchmark.name}", body, 1, figures)


def _task_bars_only(figures: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in figures if str(f["id"]).startswith("plot-task-")]


def render_site(
    board: Leaderboard, records: RecordIndex | None = None, metrics_parquet: bytes = b""
) -> dict[str, bytes]:
    """Relative path → content of every file of the site except the data exports; `records` (the
    campaign's per-structure records) draw the task pages' views."""
    files = {
        "index.html": index_page(board, metrics_parquet),
        "assets/site.css": STYLE.encode(),
        "assets/site.js": SCRIPT.encode(),
        "assets/plotly.min.js": plotly_javascript().encode(),
    }
    for scores in board.scoreboard.models:
        files[f"models/{slug(scores.model)}.html"] = model_page(board, scores, records)
    for benchmark in board.benchmarks:
        files[f"tasks/{slug(benchmark.name)}.html"] = task_page(board, benchmark, records)
    return files
