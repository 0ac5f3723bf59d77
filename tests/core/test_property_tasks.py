"""Property tasks checked against independent computations (ASE's own EOS fit, direct energies)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.calculators.emt import EMT
from ase.collections import dcdft
from ase.data import dbh24 as dbh24_data
from ase.data import s22 as s22_data
from ase.eos import EquationOfState

from lambench_core.domains import Domain
from lambench_core.metrics.property import PropertyNormalization, RawPropertyRow, score_property
from lambench_core.tasks.barriers import DBH24Params, DBH24Task
from lambench_core.tasks.eos import EOSParams, EquationOfStateTask, delta_gauge, fit_birch_murnaghan, wien2k_reference
from lambench_core.tasks.evaluation import ItemUnsupported
from lambench_core.tasks.noncovalent import S22Params, S22Task
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes
from tests.support.helpers import model

KCAL = units.kcal / units.mol


def test_eos_matches_ases_own_fit():
    output = EquationOfStateTask().run(model("emt"), EOSParams(elements=["Cu", "Pd", "Si"]), task_context())
    (record_cu, record_pd) = output.records
    assert [i.item for i in output.issues] == ["Si"] and output.issues[0].kind == "skipped"
    for element, record in (("Cu", record_cu), ("Pd", record_pd)):
        crystal = dcdft[element]
        volumes, energies = [], []
        for factor in np.linspace(0.94, 1.06, 7):
            atoms = crystal.copy()
            atoms.set_cell(crystal.cell * factor ** (1 / 3), scale_atoms=True)
            atoms.calc = EMT()
            volumes.append(atoms.get_volume() / len(atoms))
            energies.append(atoms.get_potential_energy() / len(atoms))
        eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
        v0, _, b0 = eos.fit()
        assert record["v0"] == pytest.approx(v0, rel=1e-6)
        assert record["b0"] == pytest.approx(b0 / units.GPa, rel=1e-4)
        assert record["v0_ref"] == dcdft.data[element]["wien2k_volume"]
    assert output.metrics["v0_mae"].value == pytest.approx(
        np.mean([abs(r["v0"] - r["v0_ref"]) for r in output.records])
    )
    assert_summarizes(EquationOfStateTask, output, EOSParams(elements=["Cu", "Pd", "Si"]))


def test_birch_murnaghan_fit_is_exact_and_delta_vanishes_for_identical_curves():
    reference = wien2k_reference("Al")
    volumes = np.linspace(0.94, 1.06, 9) * reference.v0
    fit = fit_birch_murnaghan(volumes, reference.energy(volumes) - 3.0)
    assert (fit.v0, fit.b0, fit.b1) == pytest.approx((reference.v0, reference.b0, reference.b1), rel=1e-8)
    assert delta_gauge(fit, reference) < 1e-9
    shifted = fit_birch_murnaghan(volumes, reference.energy(volumes) + 0.01 * (volumes - reference.v0) ** 2)
    assert delta_gauge(shifted, reference) > 1e-4


def test_a_volume_independent_energy_is_unsupported_not_a_fit():
    with pytest.raises(ItemUnsupported, match="does not depend on the volume"):
        fit_birch_murnaghan([10, 11, 12, 13, 14], [1.0] * 5)


def test_the_dummy_on_eos_is_unsupported_and_stored_so_a_rerun_computes_nothing(tmp_path):
    """The dummy's energy is a sum of element constants: every EOS item is a coverage gap, not a
    failure, so the job is stored as unsupported (a failed job would be computed again every run)."""
    from lambench_core.campaign import CampaignSpec, execute_job, plan_campaign
    from lambench_core.results import ResultStore, Status

    spec = CampaignSpec(campaign_id="c", models=["dummy"], tasks=["eos_dcdft"], store=str(tmp_path / "store"))
    store = ResultStore.open(spec.store)
    (job,) = plan_campaign(spec, store).to_run
    result = execute_job(spec, job)
    store.put(result)
    assert result.status == Status.UNSUPPORTED and "does not depend on the volume" in (result.error or "")
    assert plan_campaign(spec, store).to_run == []


def test_s22_interaction_energy_computed_directly():
    output = S22Task().run(model("emt"), S22Params(systems=["Water_dimer"]), task_context())
    (record,) = output.records
    dimer = s22_data.create_s22_system("Water_dimer")
    split = s22_data.get_number_of_dimer_atoms("Water_dimer")[0]
    energies = []
    for atoms in (dimer, dimer[:split], dimer[split:]):
        atoms = atoms.copy()
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
    expected = (energies[0] - energies[1] - energies[2]) / KCAL
    assert record["e_int"] == pytest.approx(expected, rel=1e-9)
    assert record["e_int_ref"] == pytest.approx(-5.02, abs=0.01)  # S22 CCSD(T)/CBS, kcal/mol
    assert set(record["curve"]) == {"0.9", "1.0", "1.2", "1.5", "2.0"}
    assert_summarizes(S22Task, output, S22Params(systems=["Water_dimer"]))


def test_dummy_values_are_what_the_dummy_model_scores():
    dummy = model("dummy")
    s22 = S22Task().run(dummy, S22Params(), task_context())
    assert s22.metrics["s22_mae"].value == pytest.approx(S22Task.dummy_values["s22_mae"])
    assert s22.metrics["s22x5_mae"].value == pytest.approx(S22Task.dummy_values["s22x5_mae"])
    barriers = DBH24Task().run(dummy, DBH24Params(), task_context())
    assert barriers.metrics["barrier_mae"].value == pytest.approx(DBH24Task.dummy_values["barrier_mae"])
    assert_summarizes(S22Task, s22, S22Params())
    assert_summarizes(DBH24Task, barriers, DBH24Params())
    eos = EquationOfStateTask().run(dummy, EOSParams(elements=["Cu", "Al"]), task_context())
    assert eos.n_scored == 0 and all("does not depend" in i.reason for i in eos.issues)


def test_dbh24_barrier_from_direct_energies():
    output = DBH24Task().run(model("emt"), DBH24Params(reactions=["dbh24_r1"]), task_context())
    (record,) = output.records
    spec = dbh24_data.dbh24_reaction_list["dbh24_r1"]

    def energy(name):
        atoms = dbh24_data.create_dbh24_system(name)
        atoms.calc = EMT()
        return atoms.get_potential_energy()

    expected = (energy(spec["tst"]) - sum(energy(n) for n in spec["initial"])) / KCAL
    assert record["vf"] == pytest.approx(expected, rel=1e-9)


def test_m_pc_definition():
    norms = [
        PropertyNormalization(task="eos", domain=Domain.INORGANIC_MATERIALS, dummy={"v0_mae": 10.0, "b0_mae": 100.0}),
        PropertyNormalization(task="s22", domain=Domain.MOLECULES, dummy={"s22_mae": 8.0}),
    ]
    rows = [
        RawPropertyRow(model="m", task="eos", metrics={"v0_mae": 1.0, "b0_mae": 300.0}, success_rate=0.5),
        RawPropertyRow(model="m", task="s22", metrics={"s22_mae": 2.0}, success_rate=1.0),
    ]
    (score,) = score_property(["m"], rows, norms)
    materials = (0.1 / 0.5 + 1.0 / 0.5) / 2
    assert score.domains[Domain.INORGANIC_MATERIALS] == pytest.approx(materials)
    assert score.domains[Domain.MOLECULES] == pytest.approx(0.25)
    assert score.m_pc == pytest.approx((materials + 0.25) / 2) and not score.partial
    (missing,) = score_property(["m"], rows[:1], norms)
    assert missing.partial and missing.missing == ["s22"]
    (uncovered,) = score_property(["m"], [rows[0], rows[1].model_copy(update={"coverage": 0.5})], norms)
    assert uncovered.partial


def test_leaderboard_success_rate_excludes_skipped_items_and_shows_coverage():
    from lambench_core.report.collect import rates
    from lambench_core.results.record import ItemIssue, Metric, Status, TaskResult

    result = TaskResult(
        key="k", model="emt", task="elastic_cubic", status=Status.PARTIAL, n_items=4, n_scored=2,
        success_rate=0.5, metrics={"k_vrh_mae": Metric(value=1.0, unit="GPa")},
        issues=[ItemIssue(item="rh", kind="skipped", reason="model lacks element(s) Rh"),
                ItemIssue(item="x", kind="failed", reason="boom")],
    )
    success_rate, coverage = rates(result)
    assert success_rate == pytest.approx(2 / 3) and coverage == pytest.approx(3 / 4)
