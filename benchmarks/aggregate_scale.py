"""How `lambench aggregate` scales with the size of the metrics table.

Generates synthetic raw-metric tables of a realistic shape — many models × force-field sets (E, F, V
errors with dummy values, three domains) × property tasks (three metrics each, with dummies) ×
adaptability tasks (MAE, baselines, normalized MAE), plus efficiency and stability rows, with a few
failed, missing, unsupported and partial rows — and runs `lambench aggregate TABLE` on each in its
own process, measuring wall time and peak RSS (os.wait4 of that process). Prints rows vs seconds vs
peak MB. Models grow with √rows and benchmarks with the rest, so 1M rows is ~500 models × ~700
benchmarks.

    python benchmarks/aggregate_scale.py [--rows 10000,100000,1000000] [--site] [--replicates 0]

--site also writes the site and the exports (`--out`); --replicates N writes the table as Parquet
with N bootstrap replicates per row (as a campaign's metrics.parquet) instead of JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FF_DOMAINS = ("inorganic_materials", "molecules", "catalysis")
PC_DOMAINS = ("inorganic_materials", "molecules", "catalysis")
FF_METRICS = (
    ("energy_rmse_per_atom", 0.1, "eV/atom"),
    ("force_rmse", 1.0, "eV/Å"),
    ("virial_rmse_per_atom", 0.2, "eV/atom"),
)
PC_METRICS = (("mae_a", 40.0, "GPa"), ("mae_b", 2.0, "eV"), ("rmse_c", 0.5, "Å"))
AD_METRICS = (
    ("mae", "eV/atom"),
    ("composition_mae", "eV/atom"),
    ("mean_predictor_mae", "eV/atom"),
    ("normalized_mae", "1"),
)


def shape(n_rows: int) -> tuple[int, int, int, int]:
    """(models, force-field sets, property tasks, adaptability tasks) for about n_rows rows."""
    models = max(4, round(math.sqrt(n_rows) / 2))
    per_model = n_rows / models
    ad_tasks = max(1, int(per_model // 200))
    rest = max(6.0, per_model - 4 - 4 * ad_tasks)
    ff_sets = max(3, round(rest * 0.5 / 3))
    pc_tasks = max(3, round(rest * 0.5 / 3))
    return models, ff_sets, pc_tasks, ad_tasks


def synthetic_rows(n_rows: int, seed: int = 0) -> tuple[list[str], list[dict]]:
    """The models and the rows of a synthetic table of about n_rows rows."""
    rng = np.random.default_rng(seed)
    n_models, ff_sets, pc_tasks, ad_tasks = shape(n_rows)
    models = [f"model-{i:04d}" for i in range(n_models)]
    skill = dict(zip(models, rng.uniform(0.05, 0.9, n_models).tolist(), strict=True))
    rows: list[dict] = []

    def add(model: str, **fields: object) -> None:
        u = rng.random()
        status = "succeeded"
        if u < 0.005:
            status, fields["value"] = "failed", None
        elif u < 0.008:
            status, fields["value"] = "missing", None
        elif u < 0.010:
            status, fields["value"] = "unsupported", None
        elif u < 0.03:
            status = "partial"
            fields["success_rate"] = round(float(rng.uniform(0.8, 1.0)), 3)
        rows.append({"model": model, "status": status, **fields})

    for model in models:
        s = skill[model]
        for i in range(ff_sets):
            domain = FF_DOMAINS[i % len(FF_DOMAINS)]
            name = f"ff_{domain[:3]}_{i:04d}"
            with_virial = i % 4 != 0
            for metric, dummy, unit in FF_METRICS if with_virial else FF_METRICS[:2]:
                add(
                    model,
                    kind="force_field",
                    benchmark=name,
                    dataset=name,
                    domain=domain,
                    metric=metric,
                    value=float(s * dummy * rng.lognormal(0, 0.3)),
                    dummy=dummy,
                    unit=unit,
                )
        for i in range(pc_tasks):
            domain = PC_DOMAINS[i % len(PC_DOMAINS)]
            name = f"pc_{domain[:3]}_{i:04d}"
            for metric, dummy, unit in PC_METRICS:
                add(
                    model,
                    kind="property",
                    benchmark=name,
                    domain=domain,
                    metric=metric,
                    value=float(s * dummy * rng.lognormal(0, 0.3)),
                    dummy=dummy,
                    unit=unit,
                )
        for i in range(ad_tasks):
            name = f"ad_{i:03d}"
            base = float(rng.uniform(0.05, 0.2))
            for metric, unit in AD_METRICS:
                value = {"mae": s * base, "composition_mae": 0.8 * base, "mean_predictor_mae": base}.get(metric, s)
                add(
                    model,
                    kind="adaptability",
                    benchmark=name,
                    domain="inorganic_materials",
                    metric=metric,
                    value=float(value),
                    unit=unit,
                )
        eta = float(rng.uniform(5, 500))
        add(
            model,
            kind="efficiency",
            benchmark="efficiency",
            domain="inorganic_materials",
            metric="m_e",
            value=100.0 / eta,
            unit="1",
        )
        add(
            model,
            kind="efficiency",
            benchmark="efficiency",
            domain="inorganic_materials",
            metric="eta_us_per_atom",
            value=eta,
            unit="µs/atom",
        )
        add(
            model,
            kind="stability",
            benchmark="md_stability",
            domain="inorganic_materials",
            metric="m_is",
            value=float(rng.uniform(0, 5)),
            unit="1",
        )
        add(
            model,
            kind="stability",
            benchmark="md_stability",
            domain="inorganic_materials",
            metric="survival_fraction",
            value=float(rng.uniform(0.5, 1)),
            unit="1",
        )
    return models, rows


def write_table(path: Path, n_rows: int, replicates: int, seed: int = 0) -> int:
    """Writes the table (JSON, or Parquet with replicates); returns its number of rows."""
    models, rows = synthetic_rows(n_rows, seed)
    if not replicates:
        path.write_text(json.dumps({"models": models, "rows": rows}))
        return len(rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lambench_core.metrics.table import _PARQUET_FIELDS, REPLICATE_FIELDS, _arrow_type

    rng = np.random.default_rng(seed + 1)
    values = np.array([np.nan if r.get("value") is None else r["value"] for r in rows], dtype=np.float32)
    spread = values[:, None] * (1 + 0.05 * rng.standard_normal((len(rows), replicates), dtype=np.float32))
    has = ~np.isnan(values)
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(np.where(has, replicates, 0))
    flat = pa.array(spread[has].ravel(), pa.float32())
    reps = pa.ListArray.from_arrays(pa.array(offsets), flat, mask=pa.array(~has))
    columns = {}
    for name in _PARQUET_FIELDS:
        if name == "replicates":
            columns[name] = reps
        elif name in REPLICATE_FIELDS:
            columns[name] = pa.nulls(len(rows), pa.list_(pa.float32()))
        else:
            default = {"success_rate": 1.0, "coverage": 1.0, "unit": "", "status": "succeeded"}.get(name)
            columns[name] = pa.array([r.get(name, default) for r in rows], _arrow_type(name))
    schema = pa.schema([(n, columns[n].type) for n in _PARQUET_FIELDS], metadata={"models": json.dumps(models)})
    pq.write_table(pa.table(columns, schema=schema), path, compression="zstd")
    return len(rows)


def run_aggregate(table: Path, out: Path | None) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MB, exit code) of `lambench aggregate TABLE` in its own
    process. CPU seconds (user + system) say what the wall time would be on an idle machine."""
    command = [sys.executable, "-m", "workflows.cli", "aggregate", str(table)]
    if out is not None:
        command += ["--out", str(out)]
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(command, cwd=REPO, stdout=sink)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss / 1024, process.returncode  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--site", action="store_true", help="also write the site and exports (--out)")
    parser.add_argument("--replicates", type=int, default=0, help="bootstrap replicates per row (Parquet input)")
    args = parser.parse_args()
    heads = ("rows", 9), ("models", 7), ("benchmarks", 10), ("input MB", 9), ("wall s", 7), ("CPU s", 7), ("peak MB", 8)
    print(" ".join(f"{name:>{width}}" for name, width in heads), f"{'exit':>5}")
    with tempfile.TemporaryDirectory() as scratch:
        for target in (int(x) for x in args.rows.split(",")):
            table = Path(scratch) / (f"table-{target}" + (".parquet" if args.replicates else ".json"))
            n = write_table(table, target, args.replicates)
            models, ff_sets, pc_tasks, ad_tasks = shape(target)
            out = Path(scratch) / f"site-{target}" if args.site else None
            seconds, cpu, peak, code = run_aggregate(table, out)
            size = table.stat().st_size / 2**20
            table.unlink()
            benchmarks = ff_sets + pc_tasks + ad_tasks + 2
            print(
                f"{n:>9} {models:>7} {benchmarks:>10} {size:>9.1f} {seconds:>7.1f} {cpu:>7.1f} {peak:>8.0f} {code:>5}",
                flush=True,
            )


if __name__ == "__main__":
    main()
