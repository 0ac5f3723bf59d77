"""Pictures of where a model fails, drawn from the campaign's per-structure records (records.parquet):
parity plots of each force-field set, efficiency curves, MD stability traces and survival, and the
property curves (EOS, torsion profiles, S22x5 dissociation, phonon frequencies).

Each view is a `View`: a stable name (the page's `data-view` marker), a title, a note and Plotly
figures. The builders are registries (`CATEGORY_VIEWS` by task category, `PROPERTY_FIGURES` by
property task), so a new task adds its picture by registering a builder, not by a branch here. A
builder reads only records, so the site can be rebuilt from the exports alone. The index page's
weights and head-to-head views and the model pages' element map are here too.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lambench_core.categories import Category
from lambench_core.metrics.force_field import element_shifts
from lambench_core.report.formatting import plot_text
from lambench_core.report.leaderboard import BenchmarkInfo, Leaderboard
from lambench_core.report.rendering import render

Record = dict[str, Any]
ModelRecords = dict[str, list[Record]]  # model → its records on one benchmark
MAX_PARITY_POINTS = 2000  # per model and panel: a larger set is thinned evenly (the page stays light)
MAX_TRACE_POINTS = 400  # per MD energy trace


@dataclass
class View:
    name: str  # the `data-view` marker: stable for tests and scripts
    title: str
    note: str
    figures: list[dict[str, Any]] = field(default_factory=list)


class RecordIndex:
    """Records by (benchmark, model), read from records.parquet."""

    def __init__(self, by_benchmark: dict[str, ModelRecords] | None = None, board: Leaderboard | None = None) -> None:
        self._by_benchmark = by_benchmark or {}
        # What every model page's element map reads, computed once: each force-field set's elements,
        # each model's per-element errors and the colour scale over all models.
        self.set_elements: dict[str, set[str]] = {}
        self.element_errors: dict[str, dict[str, ElementError]] = {}
        if board is not None:
            self._summarize_elements(board)
        rmses = [e.force_rmse for errors in self.element_errors.values() for e in errors.values() if e.force_rmse]
        self.error_bounds = (min(rmses), max(rmses)) if rmses else None

    def _summarize_elements(self, board: Leaderboard) -> None:
        models = [scores.model for scores in board.scoreboard.models]
        per_model: dict[str, list[list[Record]]] = {}
        for benchmark in board.benchmarks_of(Category.FORCE_FIELD):
            for model, records in self.of(benchmark.name, models).items():
                per_model.setdefault(model, []).append(records)
                for record in records:
                    self.set_elements.setdefault(benchmark.name, set()).update(record.get("counts") or {})
        self.element_errors = {model: element_errors(sets) for model, sets in per_model.items()}

    @classmethod
    def from_parquet(cls, board: Leaderboard, data: bytes) -> RecordIndex:
        """From a campaign's records.parquet: by its benchmark column (files from before it existed:
        by job key, through the board's jobs)."""
        if not data:
            return cls()
        import pyarrow.parquet as pq

        # ParquetFile, not read_table: read_table goes through pyarrow.dataset, whose import (with
        # pandas) cost the publish step 0.3 s for a one-file read.
        table = pq.ParquetFile(io.BytesIO(data)).read()
        models = table.column("model").to_pylist()
        texts = table.column("record").to_pylist()
        if "benchmark" in table.column_names:
            benchmarks = table.column("benchmark").to_pylist()
        else:
            benchmark_of = {job.key: job.benchmark for job in board.jobs}
            benchmarks = [benchmark_of.get(key) for key in table.column("job_key").to_pylist()]
        found: dict[str, ModelRecords] = {}
        for model, benchmark, text in zip(models, benchmarks, texts, strict=True):
            if benchmark is not None:
                found.setdefault(benchmark, {}).setdefault(model, []).append(json.loads(text))
        return cls(found, board)

    def of(self, benchmark: str, models: Iterable[str]) -> ModelRecords:
        """The records of `models` (in that order) on `benchmark`; models without any are left out."""
        records = self._by_benchmark.get(benchmark)
        if not records:
            return {}
        return {model: records[model] for model in models if records.get(model)}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _thin(items: Sequence[Any], limit: int) -> list[Any]:
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def _curve(x: Sequence[Any], y: Sequence[Any], name: str, mode: str = "lines+markers") -> dict[str, Any]:
    return {"type": "scatter", "mode": mode, "x": list(x), "y": list(y), "name": name}


def _reference_curve(x: Sequence[Any], y: Sequence[Any], name: str, mode: str = "lines+markers") -> dict[str, Any]:
    """The reference of a property plot: one dashed dark line, the same on every page."""
    return _curve(x, y, name, mode) | {"line": {"color": "#222", "dash": "dash"}}


def _diagonal(low: float, high: float) -> dict[str, Any]:
    """The y = x line of a parity plot over [low, high]."""
    return _curve([low, high], [low, high], "y = x", "lines") | {
        "line": {"dash": "dot", "color": "#888"},
        "hoverinfo": "skip",
    }


def _panel(title: str, x: str, y: str, log: bool = False) -> dict[str, Any]:
    axis = {"type": "log"} if log else {}
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": x}, **axis},
        "yaxis": {"title": {"text": y}, **axis},
        # Below the axis title, as many rows as it needs: a view may have a trace per model and system.
        "legend": {"orientation": "h", "y": -0.2, "yanchor": "top"},
        "height": 560,
    }


# ---------------------------------------------------------------------------------------------------
# Force-field sets: energy parity per model


def energy_parity(records: Sequence[Record]) -> tuple[list[float], list[float], list[str]]:
    """(reference, predicted) energies per atom of each frame after the scoring's per-element bias
    removal, both relative to a per-element fit of the reference (so frames of every composition
    share one axis), and the frame names."""
    usable = [r for r in records if _number(r.get("e_pred")) is not None and _number(r.get("e_ref")) is not None]
    if not usable:
        return [], [], []
    counts = [r["counts"] for r in usable]
    bias = element_shifts(counts, [r["e_pred"] - r["e_ref"] for r in usable])
    reference_fit = element_shifts(counts, [r["e_ref"] for r in usable])
    reference, predicted = [], []
    for record in usable:
        n = record["n_atoms"]
        baseline = sum(reference_fit[e] * c for e, c in record["counts"].items())
        correction = sum(bias[e] * c for e, c in record["counts"].items())
        reference.append((record["e_ref"] - baseline) / n)
        predicted.append((record["e_pred"] - correction - baseline) / n)
    return reference, predicted, [str(r.get("item", "")) for r in usable]


def parity_view(benchmark: BenchmarkInfo, records: ModelRecords) -> View | None:
    figures = []
    for index, (model, model_records) in enumerate(records.items()):
        # The bias fit and the RMSE over every frame, as the scores have them; only the points drawn are thinned.
        every = energy_parity(model_records)
        if not every[0]:
            continue
        rmse = float(np.sqrt(np.mean((np.asarray(every[1]) - np.asarray(every[0])) ** 2))) * 1000
        reference, predicted, names = (_thin(values, MAX_PARITY_POINTS) for values in every)
        low, high = min(reference + predicted), max(reference + predicted)
        layout = _panel(plot_text(model), "reference E/atom (eV, composition fit removed)", "predicted E/atom (eV)")
        layout["annotations"] = [
            {
                "text": f"RMSE {rmse:.1f} meV/atom",
                "xref": "paper",
                "yref": "paper",
                "x": 0.02,
                "y": 0.98,
                "showarrow": False,
            }
        ]
        figures.append(
            {
                "id": f"parity-{index}",
                "data": [
                    _diagonal(low, high),
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "x": reference,
                        "y": predicted,
                        "text": [plot_text(n) for n in names],
                        "name": plot_text(model),
                        "hovertemplate": "%{text}<br>ref %{x:.4f}<br>pred %{y:.4f}",
                    },
                ],
                "layout": layout,
            }
        )
    for label, record_field, unit in (
        ("Force components", "force_parity", "eV/Å"),
        ("Virial per atom", "virial_parity", "eV/atom"),
    ):
        figure = component_parity(records, label, record_field, unit)
        if figure is not None:
            figures.append(figure)
    if not figures:
        return None
    return View(
        "parity",
        "Parity",
        "Energy: one panel per model, each point a frame (hover names it), after the per-element bias removal "
        "the scores use. Force components (up to 24 per frame, evenly spaced) and virial components per atom: "
        "one trace per model (click the legend to show one). The RMSE in each legend is over the points drawn; "
        "the table's RMSE is over every component.",
        figures,
    )


def component_parity(records: ModelRecords, label: str, record_field: str, unit: str) -> dict[str, Any] | None:
    """Reference against predicted components (force or virial) of every frame, a trace per model."""
    data: list[dict[str, Any]] = []
    extent: list[float] = []
    for model, model_records in records.items():
        x, y, names = [], [], []
        for record in model_records:
            for reference, predicted in record.get(record_field) or []:
                x.append(reference)
                y.append(predicted)
                names.append(plot_text(record.get("item")))
        if not x:
            continue
        x, y, names = (_thin(values, MAX_PARITY_POINTS * 2) for values in (x, y, names))
        rmse = float(np.sqrt(np.mean((np.asarray(y) - np.asarray(x)) ** 2)))
        extent += [min(x + y), max(x + y)]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": x,
                "y": y,
                "text": names,
                "name": f"{plot_text(model)} (RMSE {rmse:.3g} {unit})",
                "marker": {"size": 4, "opacity": 0.6},
                "hovertemplate": "%{text}<br>ref %{x:.3f}<br>pred %{y:.3f}",
            }
        )
    if not data:
        return None
    low, high = min(extent), max(extent)
    return {
        "id": f"parity-{record_field}",
        "data": [_diagonal(low, high), *data],
        "layout": _panel(label, f"reference ({unit})", f"predicted ({unit})"),
    }


# ---------------------------------------------------------------------------------------------------
# Efficiency: µs/atom against atoms, memory against atoms


def efficiency_view(benchmark: BenchmarkInfo, records: ModelRecords) -> View | None:
    speed: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    for model, model_records in records.items():
        for record in model_records:
            sizes = [s for s in record.get("sizes") or [] if _number(s.get("us_per_atom")) is not None]
            if not sizes:
                continue
            atoms = [s["n_atoms"] for s in sizes]
            label = plot_text(f"{model} · {record.get('formula') or record.get('item')}")
            exponent = ""
            if len(sizes) >= 2:
                seconds = [s["us_per_atom"] * s["n_atoms"] for s in sizes]
                slope = np.polyfit(np.log(atoms), np.log(seconds), 1)[0]
                exponent = f" (exponent {slope:.2f})"
            stop = plot_text(f"stopped at {max(atoms)} atoms: {record.get('stop_reason') or 'finished'}")
            speed.append(
                _curve(atoms, [s["us_per_atom"] for s in sizes], label + exponent)
                | {"legendgroup": plot_text(model), "hovertemplate": f"%{{x}} atoms: %{{y:.0f}} µs/atom<br>{stop}"}
            )
            rss = [_number(s.get("device_peak_mib")) or _number(s.get("rss_mib")) for s in sizes]
            memory.append(_curve(atoms, rss, label) | {"legendgroup": plot_text(model)})
    if not speed:
        return None
    return View(
        "efficiency-curve",
        "Efficiency curves",
        "Median time per atom of energy + forces (+ stress) against supercell size, log–log, with the fitted "
        "scaling exponent per system; hover a point for the largest size reached and why the sweep stopped. "
        "Memory: the device peak on GPU, the process RSS on CPU.",
        [
            {"id": "efficiency-speed", "data": speed, "layout": _panel("µs/atom", "atoms", "µs/atom", log=True)},
            {
                "id": "efficiency-memory",
                "data": memory,
                "layout": _panel("memory", "atoms", "MiB") | {"xaxis": {"type": "log", "title": {"text": "atoms"}}},
            },
        ],
    )


# ---------------------------------------------------------------------------------------------------
# MD stability: energy traces and survival


def survival_curve(runs: Sequence[Record]) -> tuple[list[float], list[float]]:
    """(time in ps, fraction of runs still alive) as a step curve over the runs' end times."""
    ends = []
    for run in runs:
        requested, done = run.get("steps_requested") or 0, run.get("steps_completed") or 0
        simulated = _number(run.get("simulated_time_ps")) or 0.0
        failed = run.get("status") != "completed" or (requested and done < requested)
        ends.append((simulated, failed))
    if not ends:
        return [], []
    total = len(ends)
    horizon = max(t for t, _ in ends) or 0.0
    times, alive = [0.0], [1.0]
    remaining = total
    for time_ps, failed in sorted(ends):
        if failed:
            times += [time_ps, time_ps]
            alive += [remaining / total, (remaining - 1) / total]
            remaining -= 1
    times.append(horizon)
    alive.append(remaining / total)
    return times, alive


def stability_view(benchmark: BenchmarkInfo, records: ModelRecords) -> View | None:
    survival, traces = [], []
    for model, runs in records.items():
        times, alive = survival_curve(runs)
        if times:
            survival.append(_curve(times, alive, plot_text(model), "lines"))
        for run in runs:
            samples = run.get("energy_samples") or {}
            time_ps, energy = samples.get("time_ps") or [], samples.get("total_energy_per_atom") or []
            if len(time_ps) < 2 or len(time_ps) != len(energy):
                continue
            start = energy[0]
            points = _thin(list(zip(time_ps, energy, strict=True)), MAX_TRACE_POINTS)
            name = plot_text(f"{model} · {run.get('item')}")
            drift = [(p[1] - start) * 1000 for p in points]
            traces.append(_curve([p[0] for p in points], drift, name, "lines") | {"legendgroup": plot_text(model)})
    if not survival:
        return None
    return View(
        "md-survival",
        "MD stability",
        "Survival: the fraction of a model's NVE runs still alive (finite, within the energy-change limit) "
        "against simulated time. Traces: total energy per atom relative to its first sample.",
        [
            {
                "id": "md-survival",
                "data": survival,
                "layout": _panel("survival", "simulated time (ps)", "fraction alive")
                | {"yaxis": {"range": [0, 1.05], "title": {"text": "fraction alive"}}},
            },
            {"id": "md-drift", "data": traces, "layout": _panel("energy drift", "time (ps)", "ΔE (meV/atom)")},
        ],
    )


# ---------------------------------------------------------------------------------------------------
# Property curves: one figure per task, a menu over its items


def _menu_figure(
    figure_id: str, title: str, x: str, y: str, items: Mapping[str, list[dict[str, Any]]]
) -> dict[str, Any] | None:
    """One figure whose dropdown shows one item's traces at a time (first item shown)."""
    names = [name for name, traces in items.items() if traces]
    if not names:
        return None
    data, owner = [], []
    for name in names:
        for trace in items[name]:
            data.append(trace | {"visible": name == names[0]})
            owner.append(name)
    buttons = [
        {
            "label": name,
            "method": "update",
            "args": [{"visible": [o == name for o in owner]}, {"title": {"text": f"{title}: {name}"}}],
        }
        for name in names
    ]
    layout = _panel(f"{title}: {names[0]}", x, y)
    layout["updatemenus"] = [{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.15, "yanchor": "top"}]
    return {"id": figure_id, "data": data, "layout": layout}


def _birch_murnaghan(volumes: np.ndarray, v0: float, b0_gpa: float, b1: float) -> np.ndarray:
    """E(V) − E(V0) in eV/atom of the third-order Birch–Murnaghan EOS (B0 in GPa)."""
    b0 = b0_gpa / 160.21766208  # GPa → eV/Å³
    eta = (v0 / volumes) ** (2 / 3)
    return 9 * v0 * b0 / 16 * ((eta - 1) ** 3 * b1 + (eta - 1) ** 2 * (6 - 4 * eta))


def eos_figure(records: ModelRecords) -> dict[str, Any] | None:
    items: dict[str, list[dict[str, Any]]] = {}
    for model, model_records in records.items():
        for record in model_records:
            volumes, energies = record.get("volumes") or [], record.get("energies") or []
            if len(volumes) < 2 or len(volumes) != len(energies):
                continue
            element = plot_text(record.get("item"))
            lowest = min(energies)
            traces = items.setdefault(element, [])
            if not traces and all(_number(record.get(k)) for k in ("v0_ref", "b0_ref", "b1_ref")):
                grid = np.linspace(min(volumes), max(volumes), 40)
                curve = _birch_murnaghan(grid, record["v0_ref"], record["b0_ref"], record["b1_ref"])
                traces.append(_reference_curve(grid.tolist(), curve.tolist(), "WIEN2k (Birch–Murnaghan)", "lines"))
            traces.append(_curve(volumes, [e - lowest for e in energies], plot_text(model)))
    return _menu_figure("eos-curves", "EOS", "volume (Å³/atom)", "E − E_min (eV/atom)", items)


def torsion_figure(records: ModelRecords) -> dict[str, Any] | None:
    items: dict[str, list[dict[str, Any]]] = {}
    for model, model_records in records.items():
        for record in model_records:
            angles, reference, predicted = (record.get(k) or [] for k in ("dihedral_deg", "reference", "predicted"))
            if not angles or len(angles) != len(predicted):
                continue
            traces = items.setdefault(plot_text(record.get("item")), [])
            if not traces and len(reference) == len(angles):
                traces.append(_reference_curve(angles, reference, "reference"))
            traces.append(_curve(angles, predicted, plot_text(model)))
    return _menu_figure("torsion-profiles", "Torsion profile", "dihedral (°)", "relative energy (kcal/mol)", items)


def _by_factor(curve: Mapping[str, float]) -> tuple[list[float], list[float]]:
    """A dissociation curve stored as {distance factor: energy}, in increasing distance."""
    factors = sorted(curve, key=float)
    return [float(f) for f in factors], [curve[f] for f in factors]


def s22_figure(records: ModelRecords) -> dict[str, Any] | None:
    items: dict[str, list[dict[str, Any]]] = {}
    for model, model_records in records.items():
        for record in model_records:
            curve, reference = record.get("curve") or {}, record.get("curve_ref") or {}
            if not curve:
                continue
            traces = items.setdefault(plot_text(record.get("item")), [])
            if not traces and reference:
                traces.append(_reference_curve(*_by_factor(reference), "reference (S22x5)"))
            traces.append(_curve(*_by_factor(curve), plot_text(model)))
    return _menu_figure(
        "s22-curves", "S22x5 dissociation", "distance ÷ equilibrium distance", "interaction energy (kcal/mol)", items
    )


def phonon_figure(records: ModelRecords) -> dict[str, Any] | None:
    data: list[dict[str, Any]] = []
    everything: list[float] = []
    for model, model_records in records.items():
        x, y, text = [], [], []
        for record in model_records:
            for ref_branch, branch in zip(
                record.get("frequencies_ref") or [], record.get("frequencies") or [], strict=False
            ):
                for ref, value in zip(np.ravel(ref_branch), np.ravel(branch), strict=False):
                    x.append(float(ref))
                    y.append(float(value))
                    text.append(plot_text(record.get("item")))
        if x:
            everything += x + y
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": x,
                    "y": y,
                    "text": text,
                    "name": plot_text(model),
                    "hovertemplate": "%{text}: ref %{x:.2f}, model %{y:.2f} THz",
                }
            )
    if not data:
        return None
    low, high = min(everything), max(everything)
    data.insert(0, _diagonal(low, high))
    return {
        "id": "phonon-parity",
        "data": data,
        "layout": _panel("Phonon frequencies", "reference (THz)", "model (THz)"),
    }


PropertyFigure = Callable[[ModelRecords], dict[str, Any] | None]
PROPERTY_FIGURES: dict[str, PropertyFigure] = {
    "eos_dcdft": eos_figure,
    "torsion_scans": torsion_figure,
    "s22": s22_figure,
    "phonons_phonopy": phonon_figure,
}


def property_view(benchmark: BenchmarkInfo, records: ModelRecords) -> View | None:
    builder = PROPERTY_FIGURES.get(benchmark.task)
    figure = builder(records) if builder is not None else None
    if figure is None:
        return None
    return View(
        "property-curves",
        "Curves",
        "The curve behind the number: each model against the reference; the menu picks the item.",
        [figure],
    )


ViewBuilder = Callable[[BenchmarkInfo, ModelRecords], View | None]
# By category; a property task has a view when PROPERTY_FIGURES knows its task.
CATEGORY_VIEWS: dict[Category, ViewBuilder] = {
    Category.FORCE_FIELD: parity_view,
    Category.EFFICIENCY: efficiency_view,
    Category.STABILITY: stability_view,
    Category.PROPERTY: property_view,
}


def benchmark_views(board: Leaderboard, benchmark: BenchmarkInfo, index: RecordIndex) -> list[View]:
    builder = CATEGORY_VIEWS.get(benchmark.kind)
    if builder is None:
        return []
    records = index.of(benchmark.name, [scores.model for scores in board.scoreboard.models])
    view = builder(benchmark, records) if records else None
    return [view] if view is not None else []


def render_views(views: Sequence[View]) -> str:
    return render("views.html.j2", views=views)


# ---------------------------------------------------------------------------------------------------
# Per-element error map (a model page): force RMSE over the frames that contain each element


@dataclass
class ElementError:
    symbol: str
    force_rmse: float | None  # eV/Å over every force component of frames containing the element
    energy_mae: float | None  # eV/atom, bias-removed, over the same frames
    frames: int


@dataclass
class ElementCell:
    symbol: str
    row: int
    column: int
    error: ElementError | None  # None: in no scored frame of this model
    in_sets: bool  # the element is in some force-field set of the campaign
    colour: str = ""


def element_position(z: int) -> tuple[int, int]:
    """(row, column) of element `z` in the 18-column table; lanthanides and actinides in rows 9–10."""
    if z == 1:
        return 1, 1
    if z == 2:
        return 1, 18
    starts = ((3, 2), (11, 3), (19, 4), (37, 5), (55, 6), (87, 7))
    start, row = max((s for s in starts if s[0] <= z), key=lambda s: s[0])
    offset = z - start
    if row in (2, 3):
        return row, offset + 1 if offset < 2 else offset + 11
    if row in (6, 7):
        if offset < 2:
            return row, offset + 1
        if offset < 17:  # La–Lu, Ac–Lr
            return row + 3, offset + 1
        return row, offset - 13
    return row, offset + 1


def element_errors(force_field_records: Iterable[Sequence[Record]]) -> dict[str, ElementError]:
    """Per element, over one model's frames of every force-field set containing it."""
    sse: dict[str, float] = {}
    count: dict[str, float] = {}
    energy: dict[str, list[float]] = {}
    frames: dict[str, int] = {}
    for records in force_field_records:
        reference, predicted, names = energy_parity(records)
        per_atom_error = dict(zip(names, np.abs(np.subtract(predicted, reference)).tolist(), strict=True))
        for record in records:
            for symbol in record.get("counts") or {}:
                frames[symbol] = frames.get(symbol, 0) + 1
                if record.get("force_n"):
                    sse[symbol] = sse.get(symbol, 0.0) + float(record["force_sse"])
                    count[symbol] = count.get(symbol, 0.0) + float(record["force_n"])
                name = str(record.get("item", ""))
                if name in per_atom_error:
                    energy.setdefault(symbol, []).append(per_atom_error[name])
    return {
        symbol: ElementError(
            symbol,
            math.sqrt(sse[symbol] / count[symbol]) if count.get(symbol) else None,
            float(np.mean(energy[symbol])) if energy.get(symbol) else None,
            n,
        )
        for symbol, n in frames.items()
    }


# A colour-blind-safe sequential scale (low error → high error), interpolated on log(error).
_SCALE = (
    (0.0, (68, 1, 84)),
    (0.25, (59, 82, 139)),
    (0.5, (33, 145, 140)),
    (0.75, (94, 201, 98)),
    (1.0, (253, 231, 37)),
)


def _colour(fraction: float) -> str:
    fraction = min(1.0, max(0.0, fraction))
    for (a, low), (b, high) in zip(_SCALE, _SCALE[1:], strict=False):
        if fraction <= b:
            t = (fraction - a) / (b - a)
            return "#" + "".join(f"{round(lo + t * (hi - lo)):02x}" for lo, hi in zip(low, high, strict=True))
    return "#fde725"


def element_cells(
    errors: Mapping[str, ElementError], in_sets: set[str], bounds: tuple[float, float]
) -> list[ElementCell]:
    """The table's cells: every element up to Rn, coloured by force RMSE on a log scale over `bounds`."""
    from ase.data import chemical_symbols

    low, high = (math.log(b) for b in bounds)
    cells = []
    for z in range(1, 87):
        symbol = chemical_symbols[z]
        row, column = element_position(z)
        error = errors.get(symbol)
        cell = ElementCell(symbol, row, column, error, symbol in in_sets)
        if error is not None and error.force_rmse:
            span = (high - low) or 1.0
            cell.colour = _colour((math.log(error.force_rmse) - low) / span)
        cells.append(cell)
    return cells


def render_element_map(model: str, cells: Sequence[ElementCell], bounds: tuple[float, float]) -> str:
    rows = [[None] * 18 for _ in range(10)]
    for cell in cells:
        rows[cell.row - 1][cell.column - 1] = cell  # type: ignore[call-overload]
    return render(
        "element_map.html.j2",
        model=model,
        rows=rows,
        low=bounds[0] * 1000,
        high=bounds[1] * 1000,
        low_colour=_colour(0),
        high_colour=_colour(1),
    )


def element_map(index: RecordIndex, model: str) -> str:
    """The model page's element map ("" when the campaign has no force-field records)."""
    in_sets = set().union(*index.set_elements.values())
    if not in_sets or index.error_bounds is None:
        return ""
    cells = element_cells(index.element_errors.get(model, {}), in_sets, index.error_bounds)
    return render_element_map(model, cells, index.error_bounds)


# ---------------------------------------------------------------------------------------------------
# Reweightable score (index page): the browser recomputes the ranking from the domain scores


def weights_data(board: Leaderboard) -> dict[str, Any]:
    """What the weights view needs: each model's per-domain normalized errors (the scores' own
    point values) and whether its M_FF is complete (only those are ranked, as in the official table)."""
    scoreboard = board.scoreboard
    return {
        "ff_domains": [str(d) for d in scoreboard.force_field_domains],
        "pc_domains": [str(d) for d in scoreboard.property_domains],
        "models": [
            {
                "model": s.model,
                "ranked": s.rank is not None,
                "ff": {str(d): e.value for d, e in s.ff_domains.items()},
                "pc": {str(d): e.value for d, e in s.pc_domains.items()},
                "m_pc": s.m_pc.value,
            }
            for s in scoreboard.models
        ],
        "official": [s.model for s in scoreboard.models if s.rank is not None],
    }


def render_weights(board: Leaderboard) -> str:
    data = weights_data(board)
    if not data["official"]:
        return ""
    return render("weights.html.j2", data=data)


# ---------------------------------------------------------------------------------------------------
# Head-to-head (index page): two models, every shared metric, paired-bootstrap differences

H2H_REPLICATES = 200  # replicates per value carried to the page (the interval needs no more)
H2H_MAX_NUMBERS = 1_000_000  # beyond this the page carries point values only (a note says so)
H2H_MAX_ROWS = 50_000  # a larger table is left to `lambench compare` (the page would weigh tens of MB)
HIGHER_IS_BETTER = frozenset({"m_e", "survival_fraction", "success_rate"})


def _significant(value: float | None, digits: int = 5) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def head_to_head_data(board: Leaderboard, metrics_parquet: bytes) -> dict[str, Any] | None:
    """Every metric of the campaign with each model's value and bootstrap replicates. Replicate b of
    every model on a benchmark resampled the same items, so B_b − A_b is a paired replicate of the
    difference; the page takes its percentile interval."""
    if not metrics_parquet:
        return None
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(io.BytesIO(metrics_parquet))
    if parquet.metadata.num_rows > H2H_MAX_ROWS:
        return None
    columns = ("model", "benchmark", "metric", "value", "unit", "replicates")
    table = parquet.read(columns=list(columns))  # not read_table: see RecordIndex.from_parquet
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    numbers = 0
    carried = [table.column(c).to_pylist() for c in columns]
    for model, benchmark, metric, value, unit, replicates in zip(*carried, strict=True):
        if value is None:
            continue
        row = rows.setdefault(
            (benchmark, metric),
            {
                "benchmark": benchmark,
                "metric": metric,
                "unit": unit or "",
                "values": {},
                "replicates": {},
                "higher_is_better": metric in HIGHER_IS_BETTER,
            },
        )
        row["values"][model] = _significant(value)
        if replicates:
            kept = [_significant(r) for r in replicates[:H2H_REPLICATES]]
            row["replicates"][model] = kept
            numbers += len(kept)
    if not rows:
        return None
    point_only = numbers > H2H_MAX_NUMBERS
    if point_only:
        for row in rows.values():
            row["replicates"] = {}
    models = [s.model for s in board.scoreboard.models]
    return {"models": models, "rows": list(rows.values()), "point_only": point_only}


def render_head_to_head(board: Leaderboard, metrics_parquet: bytes) -> str:
    data = head_to_head_data(board, metrics_parquet)
    if data is None or len(data["models"]) < 2:
        return ""
    return render("head_to_head.html.j2", data=data, confidence=board.scoreboard.confidence)
