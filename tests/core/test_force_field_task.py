from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from lambench_core.data.frames import Frame
from lambench_core.domains import Domain
from lambench_core.models import ModelCatalog, load_model
from lambench_core.models.loading import LoadedModel
from lambench_core.models.preparation import in_vacuum_box
from lambench_core.tasks.force_field import ForceFieldParams, ForceFieldTask
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes


def emt_frames(n: int = 5):
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=i)
        atoms.calc = EMT()
        virial = -atoms.get_stress(voigt=False) * atoms.get_volume()
        frames.append(Frame(f"cu-{i}", atoms.copy(), atoms.get_potential_energy(), atoms.get_forces(), virial))
    return frames


def loaded(name: str) -> LoadedModel:
    return load_model(ModelCatalog.load().get(name), Domain.INORGANIC_MATERIALS, "cpu")


def test_model_that_made_the_labels_scores_zero():
    output = ForceFieldTask().run(loaded("emt"), emt_frames(), ForceFieldParams(), task_context())
    values = {k: m.value for k, m in output.metrics.items()}
    assert values["energy_rmse"] == pytest.approx(0, abs=1e-9)
    assert values["force_rmse"] == pytest.approx(0, abs=1e-9)
    assert values["virial_rmse_per_atom"] == pytest.approx(0, abs=1e-9)
    assert output.n_scored == 5 and not output.issues


def test_dummy_errors_are_the_label_magnitudes():
    frames = emt_frames()
    output = ForceFieldTask().run(loaded("dummy"), frames, ForceFieldParams(), task_context())
    forces = np.concatenate([f.forces.ravel() for f in frames])
    virials = np.concatenate([(f.virial / f.n_atoms).ravel() for f in frames])
    assert output.metrics["force_rmse"].value == pytest.approx(np.sqrt(np.mean(forces**2)))
    assert output.metrics["virial_rmse_per_atom"].value == pytest.approx(np.sqrt(np.mean(virials**2)))
    assert_summarizes(ForceFieldTask, output, ForceFieldParams())


class FlakyCalculator(Calculator):
    """EMT, except that it raises on one frame and returns NaN on another."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self) -> None:
        super().__init__()
        self.emt = EMT()
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("simulated crash")
        self.emt.calculate(self.atoms, properties, system_changes)
        self.results = dict(self.emt.results)
        if self.calls == 3:
            self.results["energy"] = float("nan")


def test_failed_and_non_finite_frames_are_recorded_not_fatal():
    model = loaded("emt")
    model.calculator = FlakyCalculator()
    output = ForceFieldTask().run(model, emt_frames(), ForceFieldParams(), task_context())
    reasons = {issue.item: issue.reason for issue in output.issues}
    assert reasons == {"cu-1": "RuntimeError: simulated crash", "cu-2": "FrameFailure: non-finite energy predicted"}
    assert output.n_items == 5 and output.n_scored == 3
    assert output.metrics["force_rmse"].value == pytest.approx(0, abs=1e-9)
    assert_summarizes(ForceFieldTask, output, ForceFieldParams())


def test_unsupported_element_is_skipped_with_reason():
    water = molecule("H2O")
    water.calc = EMT()
    frames = emt_frames(2) + [Frame("lif", molecule("LiF"), -1.0, np.zeros((2, 3)), None)]
    output = ForceFieldTask().run(loaded("emt"), frames, ForceFieldParams(), task_context())
    (issue,) = output.issues
    assert issue.kind == "skipped" and issue.item == "lif" and "F, Li" in issue.reason


def test_periodic_only_model_gets_a_vacuum_box_without_changing_geometry():
    water = molecule("CH3CH2OH")
    boxed = in_vacuum_box(water, padding=15.0)
    assert boxed.pbc.all() and (boxed.cell.lengths() >= 30).all()
    distances = water.get_all_distances()
    np.testing.assert_allclose(boxed.get_all_distances(), distances, atol=1e-10)


def test_progress_is_reported_for_every_frame():
    seen = []
    ForceFieldTask().run(loaded("emt"), emt_frames(3), ForceFieldParams(), task_context(lambda d, t: seen.append((d, t))))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_dispersion_is_added_when_the_reference_contains_it():
    from lambench_core.data.manifest import Dispersion

    frames = emt_frames(2)
    plain = ForceFieldTask().run(loaded("emt"), frames, ForceFieldParams(), task_context())
    with_d3 = ForceFieldTask().run(loaded("emt"), frames, ForceFieldParams(dispersion=Dispersion()), task_context())
    assert with_d3.records[0]["e_pred"] < plain.records[0]["e_pred"]  # D3 is attractive
    assert with_d3.metrics["force_rmse"].value > 0


@pytest.mark.parametrize("bad", [{"vacuum_padding": -1}, {"vacuum_padding": 1e6}, {"max_frames": 0}, {"colour": 1}])
def test_absurd_params_are_refused(bad):
    with pytest.raises(ValueError):
        ForceFieldParams.model_validate(bad)
