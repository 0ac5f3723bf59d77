"""Adding a model family is one module and one card, and nothing else: a toy family written to a
temporary card directory runs a campaign job like a built-in one (docs/add-a-model.md walks through
the same two files). Also the registry's contract: one module per built-in family, family modules of
card directories imported once with one clear error when they are broken, and `_FACTORIES` as the
view of the registry that tests patch."""

from __future__ import annotations

import math
import pkgutil
from pathlib import Path

import pytest
from ase.calculators.lj import LennardJones

import lambench_core.models.families as builtin_families
from lambench_core.campaign import CampaignSpec, campaign_jobs, execute_job
from lambench_core.errors import InputError
from lambench_core.models import ModelCatalog, registry
from lambench_core.models.representation import has_features
from lambench_core.results.record import Status
from lambench_core.tasks.finetune import trainable_reason

MOLECULES = "force_field/molecules_small"

TOY_FAMILY = '''
"""A toy model family: ASE's Lennard-Jones potential, its parameters from the card's options."""

from ase.calculators.lj import LennardJones

from lambench_core.models.family import Family
from lambench_core.models.registry import register


def build(card, context):
    return LennardJones(**card.options)


register(Family(name="toy-lj", factory=build, image="base", packages={"ase": "3.29.0"}))
'''

TOY_CARD = """
name: toy-lj-1
family: toy-lj
version: "1"
description: Lennard-Jones with one set of parameters for every element pair.
licence: MIT
level_of_theory: PBE
capabilities: {energy: true, forces: true, stress: true}
elements: [all]
dtype: float64
image: ghcr.io/lambench/base:0.1.0
packages: {ase: "3.29.0"}
options: {sigma: 1.0, epsilon: 0.01, rc: 6.0}
"""


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """Families registered by a test are gone after it (the built-in ones stay)."""
    registry.known_families()
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    monkeypatch.setattr(registry, "_LOADED_MODULES", {})


def toy_cards(tmp_path: Path, module: str = TOY_FAMILY, name: str = "toy_lj.py") -> Path:
    cards = tmp_path / "cards"
    cards.mkdir(exist_ok=True)
    (cards / name).write_text(module)
    (cards / "toy-lj-1.yaml").write_text(TOY_CARD)
    return cards


def test_a_family_module_and_a_card_run_a_job(tmp_path):
    cards = toy_cards(tmp_path)
    assert "toy-lj" not in registry.known_families()
    spec = CampaignSpec(
        campaign_id="toy",
        models=["toy-lj-1"],
        tasks=[MOLECULES],
        store=str(tmp_path / "store"),
        cards_dirs=[str(cards)],
        device="cpu",
        bootstrap_replicates=0,
    )
    (job,) = campaign_jobs(spec)
    result = execute_job(spec, job)
    assert result.status == Status.SUCCEEDED, result.error
    assert result.n_items > 0 and result.n_scored == result.n_items
    assert all(math.isfinite(m.value) for m in result.metrics.values() if m.value is not None)
    assert result.provenance is not None and result.provenance.model_card["family"] == "toy-lj"
    assert "ase" in result.provenance.packages  # the card's packages are recorded
    # The card's pins are its family's, like every built-in card's (tests/core/test_model_cards.py).
    toy = registry.family("toy-lj")
    assert ModelCatalog.load([cards]).get("toy-lj-1").packages == dict(toy.packages)
    # The calculator is the module's: Lennard-Jones with the card's parameters.
    assert isinstance(toy.factory(ModelCatalog.load([cards]).get("toy-lj-1"), None), LennardJones)
    # No extractor and no recipe: adaptability skips it with a reason instead of failing.
    loaded = type("Loaded", (), {"card": ModelCatalog.load([cards]).get("toy-lj-1")})()
    assert "no representation hook" in has_features(loaded)
    assert "no fine-tuning adapter" in trainable_reason(loaded)


def test_a_family_module_is_imported_once_per_file(tmp_path):
    cards = toy_cards(tmp_path)
    for _ in range(3):
        assert "toy-lj-1" in ModelCatalog.load([cards]).names()
    assert registry.known_families().count("toy-lj") == 1


@pytest.mark.parametrize(
    ("module", "says"),
    [
        ("import no_such_package_here\n", "ModuleNotFoundError"),
        (TOY_FAMILY + "\nraise RuntimeError('half-registered')\n", "half-registered"),
        (TOY_FAMILY.replace('name="toy-lj"', 'name="emt"'), "'emt' is registered twice"),
        ("X = 1\n", "registers no model family"),
        (TOY_FAMILY.replace('"3.29.0"', '">=3.29"'), "not an exact pin"),
    ],
)
def test_a_broken_family_module_is_one_line_naming_the_file(tmp_path, module, says):
    cards = toy_cards(tmp_path, module)
    before = registry.known_families()
    with pytest.raises(InputError) as caught:
        ModelCatalog.load([cards])
    message = str(caught.value)
    assert str(cards / "toy_lj.py") in message and says in message and "\n" not in message
    assert registry.known_families() == before  # nothing half-registered stays behind
    assert registry.family("emt").image == "base"


def test_modules_starting_with_an_underscore_are_not_imported(tmp_path):
    cards = toy_cards(tmp_path)
    (cards / "_helpers.py").write_text("raise RuntimeError('imported')\n")
    assert "toy-lj-1" in ModelCatalog.load([cards]).names()


def test_an_unknown_family_still_stops_the_plan(tmp_path):
    cards = toy_cards(tmp_path)
    (cards / "toy_lj.py").unlink()
    with pytest.raises(InputError, match=r"toy-lj-1\.yaml: family: unknown model family 'toy-lj'"):
        ModelCatalog.load([cards]).select(["toy-lj-1"])


def test_every_builtin_family_is_one_module_of_the_families_package():
    modules = [m.name for m in pkgutil.iter_modules(builtin_families.__path__) if not m.name.startswith("_")]
    assert sorted(modules) == sorted({card.family for card in ModelCatalog.load().cards()} | {"emt", "dummy"})
    for name in modules:
        module = __import__(f"{builtin_families.__name__}.{name}", fromlist=["FAMILY"])
        assert module.FAMILY.name == name and registry.family(name) is module.FAMILY


def test_the_family_records_carry_what_used_to_be_name_lists():
    assert registry.families_in_image("base") == {"dummy", "emt"}
    assert registry.normalizer_families() == {"dummy"}
    with_features = {f.name for f in registry.families() if f.feature_extractor is not None}
    assert {"chgnet", "sevenn", "deepmd"} <= with_features
    assert {f.name for f in registry.families() if f.finetune is not None} >= {"chgnet", "sevenn"}


def test_factories_is_a_view_of_the_registry_that_tests_can_patch():
    original = registry.family("emt")

    def stand_in(card, context):
        return LennardJones()

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(registry._FACTORIES, "emt", stand_in)
        assert registry.factory_for("emt") is stand_in and registry.family("emt").image == original.image
        patch.setitem(registry._FACTORIES, "only-a-factory", stand_in)
        assert "only-a-factory" in registry.known_families()
    assert registry.family("emt") == original and "only-a-factory" not in registry.known_families()
    registry.register_family("decorated")(stand_in)
    assert registry._FACTORIES["decorated"] is stand_in and registry.family("decorated").image is None
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_family("decorated")(stand_in)
