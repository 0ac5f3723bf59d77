"""`lambench models check NAME`: the real offline models pass every check, and calculators broken on
purpose (forces that are not the gradient, a stress of the wrong sign, an energy that moves with the
origin, noise, forces of the wrong shape) fail exactly the check that catches them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from lambench_core.models import registry
from lambench_core.models.card import Capabilities
from lambench_core.models.checks import CheckResult, CheckTolerances, ModelTraits, Status, check_calculator
from workflows.cli import EXIT_BAD_INPUT, main
from workflows.defaults import campaign_models

EMT_TRAITS = ModelTraits(
    elements=frozenset("H C N O Al Ni Cu Pd Ag Pt Au".split()), capabilities=Capabilities(stress=True), dtype="float64"
)
FORCES = "forces = −∇E (finite diff.)"
STRESS = "stress = (1/V)∂E/∂ε (finite diff.)"
SHAPES = "shapes and dtypes"


class Wrapped(Calculator):
    """EMT with its results passed through `alter`: the base of every broken calculator below."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        inner = self.atoms.copy()
        inner.calc = EMT()
        results = {"energy": inner.get_potential_energy(), "forces": inner.get_forces()}
        if "stress" in properties:
            results["stress"] = inner.get_stress()
        self.results = self.alter(self.atoms, results)
        self.results["free_energy"] = self.results["energy"]

    def alter(self, atoms, results):
        return results


class ScaledForces(Wrapped):
    def alter(self, atoms, results):
        return {**results, "forces": 1.5 * results["forces"]}


class StressOfWrongSign(Wrapped):
    def alter(self, atoms, results):
        return {**results, "stress": -results["stress"]} if "stress" in results else results


class PulledToOrigin(Wrapped):
    """E + k|Σr|², with forces and stress its exact derivatives: consistent, but the origin matters."""

    k = 0.01

    def alter(self, atoms, results):
        total = atoms.positions.sum(axis=0)
        altered = {
            "energy": results["energy"] + self.k * total @ total,
            "forces": results["forces"] - 2 * self.k * total,
        }
        if "stress" in results:
            extra = 2 * self.k * np.outer(total, total) / atoms.cell.volume
            altered["stress"] = results["stress"] + extra[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        return altered


class Noisy(Wrapped):
    rng = np.random.default_rng()

    def alter(self, atoms, results):
        return {
            **results,
            "energy": results["energy"] + self.rng.normal(0, 1e-3),
            "forces": results["forces"] + self.rng.normal(0, 1e-3, results["forces"].shape),
        }


class FlatForces(Wrapped):
    def alter(self, atoms, results):
        return {**results, "forces": results["forces"].reshape(-1)}


def statuses(results: Sequence[CheckResult], check: str) -> set[Status]:
    return {result.status for result in results if result.check == check}


def only_failing(results: Sequence[CheckResult]) -> set[str]:
    return {result.check for result in results if result.status is Status.FAIL}


def test_emt_passes_every_check_on_a_molecule_a_bulk_cell_and_a_slab():
    results = check_calculator(EMT(), EMT_TRAITS)
    assert not only_failing(results), [r for r in results if r.status is Status.FAIL]
    structures = {result.structure for result in results}
    assert structures == {"CH3CH2OH molecule, 9 atoms", "Cu fcc bulk, 4 atoms", "Cu(111) slab, 8 atoms"}
    # Stress is checked where the cell is periodic in 3D, and skipped with the reason elsewhere.
    assert {r.structure: r.status for r in results if r.check == STRESS} == {
        "CH3CH2OH molecule, 9 atoms": Status.SKIP,
        "Cu fcc bulk, 4 atoms": Status.PASS,
        "Cu(111) slab, 8 atoms": Status.SKIP,
    }
    assert statuses(results, "extensivity (2×2×2 supercell)") == {Status.PASS}
    assert statuses(results, "time per call") == {Status.INFO}


def test_forces_that_are_not_the_gradient_fail_the_finite_difference_check_only():
    results = check_calculator(ScaledForces(), EMT_TRAITS)
    assert only_failing(results) == {FORCES}
    assert statuses(results, FORCES) == {Status.FAIL}
    failure = next(r for r in results if r.check == FORCES)
    assert "−dE/d" in failure.reason and failure.tolerance.startswith("1e-04 eV/Å")


def test_a_stress_of_the_wrong_sign_fails_the_strain_check_only():
    results = check_calculator(StressOfWrongSign(), EMT_TRAITS)
    assert only_failing(results) == {STRESS}
    assert [r.structure for r in results if r.status is Status.FAIL] == ["Cu fcc bulk, 4 atoms"]


def test_an_energy_that_depends_on_the_origin_fails_translation_invariance():
    results = check_calculator(PulledToOrigin(), EMT_TRAITS)
    assert statuses(results, "translation invariance") == {Status.FAIL}
    # Its forces and stress are exact derivatives and it ignores the order of atoms.
    for check in (FORCES, "permutation equivariance", "determinism", SHAPES):
        assert statuses(results, check) == {Status.PASS}, check
    assert statuses(results, STRESS) == {Status.PASS, Status.SKIP}


def test_noise_fails_determinism_on_every_structure():
    results = check_calculator(Noisy(), EMT_TRAITS)
    assert statuses(results, "determinism") == {Status.FAIL}
    assert statuses(results, SHAPES) == {Status.PASS}


def test_forces_of_the_wrong_shape_fail_the_shape_check_without_stopping_the_others():
    results = check_calculator(FlatForces(), EMT_TRAITS)
    shapes = [r for r in results if r.check == SHAPES]
    assert {r.status for r in shapes} == {Status.FAIL}
    assert "forces have shape (27,)" in shapes[0].reason
    assert statuses(results, "time per call") == {Status.FAIL}  # every row is reported, none crashes


def test_structures_follow_the_card_elements_and_pbc():
    organic = check_calculator(EMT(), ModelTraits(frozenset("HCNO"), Capabilities(), "float64"))
    assert {r.structure for r in organic if r.status is Status.SKIP and r.check == "all"} == {"bulk", "slab"}
    assert not only_failing(organic)
    copper = ModelTraits(frozenset({"Cu"}), Capabilities(stress=True, requires_pbc=True), "float64")
    results = check_calculator(EMT(), copper)
    skipped = {r.structure: r.reason for r in results if r.check == "all"}
    assert skipped == {"molecule": "the card requires PBC"}
    # A slab for a periodic-only model is periodic in 3D (vacuum in the box), so its stress is checked.
    assert {r.structure: r.status for r in results if r.check == STRESS}["Cu(111) slab, 8 atoms"] is Status.PASS


def test_tolerances_per_dtype():
    single, double = CheckTolerances.for_dtype("float32"), CheckTolerances.for_dtype("float64")
    assert single.force_step > double.force_step and single.force_fd > double.force_fd
    with pytest.raises(ValueError, match="float16"):
        CheckTolerances.for_dtype("float16")


# Every card that runs here without a download (the offline zoo); the dummy is no model of physics.
OFFLINE = [name for name in campaign_models("offline") if name != "dummy"]


@pytest.mark.parametrize("name", OFFLINE)
def test_the_offline_models_pass_through_the_cli(name, capsys):
    assert main(["models", "check", name, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"{name}: all checks passed" in out.splitlines()[-1]
    assert "FAIL" not in out
    for check in (FORCES, "rotation equivariance", "permutation equivariance", "determinism", "time per call"):
        assert check in out
    if " bulk, " in out:  # a molecule-only card (ANI-1x, GFN-xTB) checks no cell
        assert STRESS in out and "extensivity (2×2×2 supercell)" in out


BROKEN_FAMILY = """
from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT

from lambench_core.models.family import Family
from lambench_core.models.registry import register


class ScaledForces(EMT):
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results["forces"] = 1.5 * self.results["forces"]


register(Family(name="broken-emt", factory=lambda card, context: ScaledForces(), image="base", packages={}))
"""

BROKEN_CARD = """
name: broken-emt-1
family: broken-emt
version: "1"
description: EMT with its forces scaled by 1.5.
licence: MIT
level_of_theory: none
capabilities: {energy: true, forces: true, stress: true}
elements: [Cu]
dtype: float64
image: ghcr.io/lambench/base:0.1.0
"""


@pytest.fixture
def own_registry(monkeypatch):
    """Families registered by a test are gone after it (the built-in ones stay)."""
    registry.known_families()
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    monkeypatch.setattr(registry, "_LOADED_MODULES", {})


def test_a_failing_check_exits_1_and_is_named_in_the_summary(tmp_path, capsys, own_registry):
    (tmp_path / "broken_emt.py").write_text(BROKEN_FAMILY)
    (tmp_path / "broken-emt-1.yaml").write_text(BROKEN_CARD)
    assert main(["models", "check", "broken-emt-1", "--cards", str(tmp_path)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("broken-emt-1: FAILED 2 check(s)")
    assert f"{FORCES} on Cu fcc bulk, 4 atoms" in last and f"{FORCES} on Cu(111) slab, 8 atoms" in last
    # The catalog option before the subcommand works too.
    assert main(["models", "--cards", str(tmp_path), "check", "broken-emt-1"]) == 1


def test_unknown_model_is_bad_input(capsys):
    assert main(["models", "check", "no-such-model"]) == EXIT_BAD_INPUT
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_models_alone_still_lists_the_cards(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "emt " in listing and "chgnet-0.3.0" in listing and "check" not in listing
