"""Wiggle150, PLF547 and BH876 directory tasks on small hand-made files, against direct EMT energies."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from lambench_core.errors import InputError
from lambench_core.tasks import molecular_sets
from lambench_core.tasks.base import task_class
from lambench_core.tasks.lambench_files import NoParams
from lambench_core.tasks.molecular_sets import (
    BindingTask,
    ReactionBarrierTask,
    Wiggle150Params,
    Wiggle150Task,
)
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes
from tests.support.helpers import model

EV_IN_KCAL = 23.060548  # 1 eV in kcal/mol (CODATA), written out independently of ASE
HARTREE_IN_KCAL = 627.509474


def emt_kcal(atoms: Atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return atoms.get_potential_energy() * EV_IN_KCAL


def with_energy(atoms: Atoms, energy: float | None) -> Atoms:
    atoms = atoms.copy()
    if energy is not None:
        atoms.calc = SinglePointCalculator(atoms, energy=energy)
    return atoms


# --------------------------------------------------------------------------------------------------
# Wiggle150


def conformers(name: str, n: int, seed: int) -> list[Atoms]:
    base = molecule(name)
    frames = [base.copy()]
    for i in range(1, n):
        atoms = base.copy()
        atoms.rattle(0.05, seed=seed + i)
        frames.append(atoms)
    return frames


def wiggle_file(tmp_path, missing_energy: int | None = None):
    """Two blocks of 4 frames (CH4, then C2H6), labels = 10, 12.5, 15, 17.5 … kcal/mol."""
    frames = conformers("CH4", 4, 0) + conformers("C2H6", 4, 10)
    labels = [10.0 + 2.5 * i for i in range(8)]
    stored = [with_energy(a, None if i == missing_energy else e) for i, (a, e) in enumerate(zip(frames, labels))]
    write(tmp_path / "Wiggle150.traj", stored)
    return frames, labels


def test_wiggle150_relative_energies_against_direct_emt(tmp_path):
    frames, labels = wiggle_file(tmp_path, missing_energy=6)
    output = Wiggle150Task().run(model("emt"), tmp_path, Wiggle150Params(block_size=4), task_context())
    assert output.n_items == 6
    (issue,) = output.issues
    assert issue.item == "block1/conformer02" and issue.kind == "failed" and "stored energy" in issue.reason
    errors = []
    for block in (0, 1):
        ref = 4 * block
        for i in range(ref + 1, ref + 4):
            if i == 6:
                continue
            errors.append((emt_kcal(frames[i]) - emt_kcal(frames[ref])) - (labels[i] - labels[ref]))
    errors = np.array(errors)
    assert len(output.records) == 5
    assert output.metrics["mae"].value == pytest.approx(np.mean(np.abs(errors)), rel=1e-5)
    assert output.metrics["rmse"].value == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-5)
    assert output.metrics["mae"].value > 1.0
    assert_summarizes(Wiggle150Task, output, Wiggle150Params(block_size=4))


def test_wiggle150_failed_reference_fails_its_block(tmp_path):
    wiggle_file(tmp_path, missing_energy=4)
    output = Wiggle150Task().run(model("emt"), tmp_path, Wiggle150Params(block_size=4), task_context())
    assert output.n_items == 6 and len(output.records) == 3
    assert [i.item for i in output.issues] == [f"block1/conformer0{k}" for k in (1, 2, 3)]
    assert all("reference conformer failed" in i.reason for i in output.issues)


def test_wiggle150_input_errors(tmp_path):
    with pytest.raises(InputError, match="Wiggle150.traj"):
        Wiggle150Task().run(model("emt"), tmp_path, Wiggle150Params(), task_context())
    wiggle_file(tmp_path)
    with pytest.raises(InputError, match="frames.*blocks of 51"):  # 8 frames, default block size 51
        Wiggle150Task().run(model("emt"), tmp_path, Wiggle150Params(), task_context())


# --------------------------------------------------------------------------------------------------
# PLF547 binding


def binding_dir(tmp_path, labels):
    sites, drugs, combined = [], [], []
    for i, shift in enumerate((2.6, 3.0, 3.5)):
        site = molecule("H2O")
        drug = molecule("NH3")
        drug.translate((shift, 0.3 * i, 0.0))
        for atoms, charge in ((site, 0), (drug, 0), (site + drug, 0)):
            atoms.info.update(charge=charge, spin=1)
        sites.append(site)
        drugs.append(drug)
        combined.append(site + drug)
    write(tmp_path / "active_site.traj", sites)
    write(tmp_path / "drug.traj", drugs)
    write(tmp_path / "combined.traj", combined)
    np.save(tmp_path / "labels.npy", np.asarray(labels, float))
    return sites, drugs, combined


def test_binding_energy_against_direct_emt(tmp_path):
    labels = [-3.0, np.nan, 1.25]
    sites, drugs, combined = binding_dir(tmp_path, labels)
    output = BindingTask().run(model("emt"), tmp_path, NoParams(), task_context())
    assert output.n_items == 3 and [r["item"] for r in output.records] == ["complex0", "complex2"]
    (issue,) = output.issues
    assert issue.item == "complex1" and issue.kind == "failed"
    errors = np.array(
        [emt_kcal(combined[i]) - emt_kcal(sites[i]) - emt_kcal(drugs[i]) - labels[i] for i in (0, 2)]
    )
    assert output.metrics["mae"].value == pytest.approx(np.mean(np.abs(errors)), rel=1e-5)
    assert output.metrics["rmse"].value == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-5)
    assert_summarizes(BindingTask, output, NoParams())


def test_binding_input_errors(tmp_path):
    binding_dir(tmp_path, [0.0, 0.0, 0.0])
    (tmp_path / "labels.npy").unlink()
    with pytest.raises(InputError, match="labels.npy"):
        BindingTask().run(model("emt"), tmp_path, NoParams(), task_context())
    np.save(tmp_path / "labels.npy", np.zeros(2))
    with pytest.raises(InputError, match="active_site.traj: frames"):
        BindingTask().run(model("emt"), tmp_path, NoParams(), task_context())


# --------------------------------------------------------------------------------------------------
# BH876 reaction energies


def species() -> dict[str, Atoms]:
    h2 = molecule("H2")
    h = Atoms("H")
    ts = Atoms("H3", positions=[(0, 0, 0), (0.93, 0, 0), (1.86, 0, 0)])  # a linear H3 "transition state"
    ch4 = molecule("CH4")
    ch3 = molecule("CH3")
    found = {"H2": h2, "H": h, "H3_TS": ts, "CH4": ch4, "CH3": ch3}
    for atoms in found.values():
        atoms.info.update(charge=0, spin=1)
    return found


def rxn_dir(tmp_path, rows):
    found = species()
    write(tmp_path / "BH876.traj", list(found.values()))
    (tmp_path / "lookup_table.csv").write_text("ID,Note\n" + "".join(f"{name},x\n" for name in found))
    lines = ["Reaction,Reference,Stoichiometry"] + [f'{name},{ref},"{stoich}"' for name, ref, stoich in rows]
    (tmp_path / "stoichiometry.csv").write_text("\n".join(lines) + "\n")
    return found


def test_reaction_energies_against_direct_emt(tmp_path, monkeypatch):
    rows = [
        ("fwd", 0.0156, "1,H3_TS,-1,H2,-1,H"),
        ("bwd", 0.0156, "1,H3_TS,-1,H,-1,H2"),
        ("abstraction", -0.002, "1,CH3,1,H2,-1,CH4,-1,H"),
        ("broken", 0.01, "1,H3_TS,-1,XYZ"),
    ]
    found = rxn_dir(tmp_path, rows)
    calls = []
    original = molecular_sets.Timer.energy
    monkeypatch.setattr(molecular_sets.Timer, "energy", lambda self, m, a, *r: calls.append(1) or original(self, m, a))
    output = ReactionBarrierTask().run(model("emt"), tmp_path, NoParams(), task_context())
    assert len(calls) == 5  # every species once, though H, H2 and H3_TS are used twice
    assert output.n_items == 4 and [r["item"] for r in output.records] == ["fwd", "bwd", "abstraction"]
    (issue,) = output.issues
    assert issue.item == "broken" and "XYZ" in issue.reason
    energy = {name: emt_kcal(atoms) for name, atoms in found.items()}
    predicted = [
        energy["H3_TS"] - energy["H2"] - energy["H"],
        energy["H3_TS"] - energy["H"] - energy["H2"],
        energy["CH3"] + energy["H2"] - energy["CH4"] - energy["H"],
    ]
    reference = [0.0156 * HARTREE_IN_KCAL, 0.0156 * HARTREE_IN_KCAL, -0.002 * HARTREE_IN_KCAL]
    errors = np.array(predicted) - np.array(reference)
    assert output.records[2]["reference"] == pytest.approx(-0.002 * HARTREE_IN_KCAL, rel=1e-6)
    assert output.metrics["mae"].value == pytest.approx(np.mean(np.abs(errors)), rel=1e-5)
    assert output.metrics["rmse"].value == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-5)
    assert_summarizes(ReactionBarrierTask, output, NoParams())


def test_reaction_input_errors(tmp_path):
    rxn_dir(tmp_path, [("fwd", 0.01, "1,H3_TS,-1,H2,-1,H")])
    (tmp_path / "stoichiometry.csv").write_text("Reaction,Reference,Stoich\nfwd,0.01,x\n")
    with pytest.raises(InputError, match="stoichiometry.csv: Stoichiometry"):
        ReactionBarrierTask().run(model("emt"), tmp_path, NoParams(), task_context())
    rxn_dir(tmp_path, [("fwd", 0.01, "1,H3_TS,-1,H2,-1,H")])
    (tmp_path / "lookup_table.csv").write_text("ID\nH2\n")  # 1 row for 5 frames
    with pytest.raises(InputError, match="lookup_table.csv: ID"):
        ReactionBarrierTask().run(model("emt"), tmp_path, NoParams(), task_context())
    (tmp_path / "BH876.traj").unlink()
    with pytest.raises(InputError, match="BH876.traj"):
        ReactionBarrierTask().run(model("emt"), tmp_path, NoParams(), task_context())


def test_registration_and_published_dummies():
    assert task_class("lambench_wiggle150").dummy_values == {"mae": 105.0576}
    assert task_class("lambench_binding").dummy_values == {"mae": 8.098}
    assert task_class("lambench_rxn_barrier").dummy_values == {"mae": 20.975}
    for name in ("lambench_wiggle150", "lambench_binding", "lambench_rxn_barrier"):
        task = task_class(name)
        assert set(task.scored_metrics) == set(task.dummy_values) and task.version == "1"
