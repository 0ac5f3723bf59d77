"""A synthetic metrics table for report tests: three models (one with a hostile name), two
force-field sets in two domains, a property task, efficiency and stability, with replicates."""

from __future__ import annotations

import numpy as np

from lambench_core.domains import Domain
from lambench_core.metrics.table import MetricsTable, RawMetric

HOSTILE = "<script>window.__pwned=1</script>"
QUOTED = "model \"quoted\" & 'apostrophes'"
MODELS = ["alpha", HOSTILE, QUOTED]
SCALE = {"alpha": 0.2, HOSTILE: 0.5, QUOTED: 0.8}


def _row(rng: np.random.Generator, model: str, **fields) -> RawMetric:
    value = fields.pop("value")
    spread = 0.05 * value
    replicates = [float(v) for v in rng.normal(value, spread, size=200)]
    return RawMetric(model=model, value=value, replicates=replicates, **fields)


def synthetic_table() -> MetricsTable:
    rng = np.random.default_rng(11)
    rows = []
    for model in MODELS:
        s = SCALE[model]
        for benchmark, domain in (("mol_set", Domain.MOLECULES), ("cat_set", Domain.CATALYSIS)):
            for metric, dummy, unit in (("energy_rmse_per_atom", 0.1, "eV/atom"), ("force_rmse", 1.0, "eV/Å")):
                rows.append(
                    _row(
                        rng,
                        model,
                        kind="force_field",
                        benchmark=benchmark,
                        dataset=benchmark,
                        domain=domain,
                        metric=metric,
                        value=s * dummy,
                        dummy=dummy,
                        unit=unit,
                    )
                )
        rows.append(
            _row(
                rng,
                model,
                kind="property",
                benchmark="bulk_moduli",
                domain=Domain.INORGANIC_MATERIALS,
                metric="bulk_modulus_mae",
                value=40.0 * s,
                dummy=50.0,
                unit="GPa",
            )
        )
        rows.append(
            _row(
                rng,
                model,
                kind="efficiency",
                benchmark="efficiency",
                domain=Domain.INORGANIC_MATERIALS,
                metric="m_e",
                value=1.0 / s,
                unit="1",
            )
        )
        rows.append(
            _row(
                rng,
                model,
                kind="stability",
                benchmark="md_stability",
                domain=Domain.INORGANIC_MATERIALS,
                metric="m_is",
                value=2.0 * s,
                unit="1",
            )
        )
    return MetricsTable(models=MODELS, rows=rows)
