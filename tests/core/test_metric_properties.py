"""Property-based tests (hypothesis) of the metric functions: invariances, units and bounds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lambench_core.domains import Domain
from lambench_core.metrics.aggregate import DatasetNormalization, RawForceFieldRow, normalized_error, score_force_field
from lambench_core.metrics.bootstrap import interval
from lambench_core.metrics.force_field import force_field_metrics

ELEMENTS = ("H", "C", "O")


@st.composite
def frames(draw: st.DrawFn) -> list[dict]:
    """Frames as (element counts, reference and predicted energies, force errors per atom)."""
    count = draw(st.integers(min_value=4, max_value=12))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    result = []
    for index in range(count):
        symbols = list(rng.choice(ELEMENTS, size=int(rng.integers(1, 6))))
        e_ref = float(rng.normal(-10, 3))
        result.append(
            {
                "item": f"f{index}",
                "symbols": symbols,
                "e_ref": e_ref,
                "e_pred": e_ref + float(rng.normal(0, 0.5)) + 0.3 * symbols.count("C"),
                "force_error": rng.normal(0, 0.2, size=(len(symbols), 3)),
            }
        )
    return result


def records(frames: list[dict], scale: float = 1.0, permute_atoms: bool = False) -> list[dict]:
    out = []
    for frame in frames:
        error = frame["force_error"] * scale
        if permute_atoms:
            error = error[::-1]
        counts = {e: frame["symbols"].count(e) for e in set(frame["symbols"])}
        out.append(
            {
                "item": frame["item"],
                "n_atoms": len(frame["symbols"]),
                "counts": counts,
                "e_ref": frame["e_ref"] * scale,
                "e_pred": frame["e_pred"] * scale,
                "force_sse": float(np.sum(error**2)),
                "force_sae": float(np.sum(np.abs(error))),
                "force_n": int(error.size),
            }
        )
    return out


def values(metrics: dict) -> dict[str, float | None]:
    return {name: metric.value for name, metric in metrics.items()}


@settings(max_examples=60, deadline=None)
@given(frames(), st.randoms())
def test_force_field_metrics_ignore_frame_order_and_atom_order(data, random):
    base = values(force_field_metrics(records(data)))
    shuffled = records(data)
    random.shuffle(shuffled)
    again = values(force_field_metrics(shuffled))
    permuted = values(force_field_metrics(records(data, permute_atoms=True)))
    for name, value in base.items():
        if value is None:
            assert again[name] is None and permuted[name] is None
            continue
        assert np.isclose(again[name], value, rtol=1e-9, atol=1e-12)
        assert np.isclose(permuted[name], value, rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(frames(), st.floats(min_value=0.01, max_value=100.0))
def test_force_field_errors_scale_with_the_unit_and_respect_rmse_above_mae(data, scale):
    base = values(force_field_metrics(records(data)))
    scaled = values(force_field_metrics(records(data, scale=scale)))
    for name, value in base.items():
        if value is not None:
            assert np.isclose(scaled[name], scale * value, rtol=1e-7, atol=1e-9)
    for rmse, mae in (("energy_rmse", "energy_mae"), ("force_rmse", "force_mae")):
        assert base[rmse] >= base[mae] - 1e-12 >= -1e-12


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=1e3, allow_nan=False), min_size=3, max_size=3),
    st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=3, max_size=3),
)
def test_normalized_errors_and_m_ff_stay_in_zero_one(errors, dummies):
    for error, dummy in zip(errors, dummies, strict=True):
        assert 0.0 <= normalized_error(error, dummy) <= 1.0
    norms = [
        DatasetNormalization(
            dataset="a", domain=Domain.MOLECULES, energy_rmse_per_atom=dummies[0], force_rmse=dummies[1]
        ),
        DatasetNormalization(
            dataset="b",
            domain=Domain.CATALYSIS,
            energy_rmse_per_atom=dummies[2],
            force_rmse=dummies[0],
            virial_rmse_per_atom=dummies[1],
        ),
    ]
    rows = [
        RawForceFieldRow(model="m", dataset="a", energy_rmse_per_atom=errors[0], force_rmse=errors[1]),
        RawForceFieldRow(
            model="m", dataset="b", energy_rmse_per_atom=errors[2], force_rmse=errors[0], virial_rmse_per_atom=errors[1]
        ),
    ]
    (score,) = score_force_field(["m"], rows, norms)
    assert 0.0 <= score.m_ff <= 1.0
    perfect = [r.model_copy(update={k: 0.0 for k in ("energy_rmse_per_atom", "force_rmse")}) for r in rows]
    perfect[1] = perfect[1].model_copy(update={"virial_rmse_per_atom": 0.0})
    (zero,) = score_force_field(["m"], perfect, norms)
    assert zero.m_ff == 0.0


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=10, max_size=200), st.floats(0.5, 0.99))
def test_intervals_are_ordered_and_inside_the_replicates(replicates, confidence):
    bounds = interval(replicates, confidence)
    assert bounds is not None
    low, high = bounds
    assert min(replicates) <= low <= high <= max(replicates)
