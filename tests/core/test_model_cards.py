from __future__ import annotations

from pathlib import Path

import pytest

from lambench_core.domains import Domain
from lambench_core.errors import (
    ChecksumError,
    InputError,
    ModelPackageMissingError,
    UnknownNameError,
    WeightsUnavailableError,
)
from lambench_core.models import ModelCatalog, load_card, load_model
from lambench_core.models.card import expand_elements
from lambench_core.models.registry import family, known_families

DOWNLOADED = ["mace-mp-0-medium", "orb-v3-conservative-inf-omat", "mattersim-v1-1m", "dpa-3.1-3m-ft"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "card.yaml"
    path.write_text(text)
    return path


MINIMAL = """
name: my-model
family: emt
version: "1"
description: test
licence: MIT
level_of_theory: PBE
elements: [H, C]
image: img
"""


def test_builtin_catalog_has_every_required_card():
    names = ModelCatalog.load().names()
    for required in ["dummy", "emt", "chgnet-0.3.0", "chgnet-0.2.0", "sevennet-0", "sevennet-l3i5", "sevennet-mf-0", *DOWNLOADED]:
        assert required in names


def test_every_builtin_card_names_a_registered_family():
    catalog = ModelCatalog.load()
    families = set(known_families())
    for name in catalog.names():
        assert catalog.get(name).family in families


def test_builtin_cards_record_their_family_pins():
    """A card's `packages` go into every result's provenance: they are its family's pins."""
    for card in ModelCatalog.load().cards():
        assert card.packages == dict(family(card.family).packages), (
            f"card {card.name}: packages {card.packages}, family {card.family} pins {dict(family(card.family).packages)}"
        )


def test_minimal_card_loads(tmp_path):
    card = load_card(write(tmp_path, MINIMAL))
    assert card.supported_elements() == {"H", "C"}
    assert card.dtype == "float32"


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: t.replace("family: emt\n", ""), "family"),
        (lambda t: t + "colour: blue\n", "colour"),
        (lambda t: t.replace("[H, C]", "[H, Qq]"), "elements"),
        (lambda t: t + "dtype: float16\n", "dtype"),
        (lambda t: t.replace("name: my-model", "name: 'bad name!'"), "name"),
        (lambda t: t + "weights: {location: 'ftp://x/y', sha256: null}\n", "weights.location"),
        (lambda t: t + "weights: {location: 'https://x/y', sha256: 'abc'}\n", "weights.sha256"),
    ],
)
def test_malformed_card_names_file_and_field(tmp_path, edit, field):
    path = write(tmp_path, edit(MINIMAL))
    with pytest.raises(InputError) as caught:
        load_card(path)
    message = str(caught.value)
    assert str(path) in message and f": {field}" in message
    assert "\n" not in message


def test_card_that_is_not_yaml_mapping(tmp_path):
    with pytest.raises(InputError, match="must be a YAML mapping"):
        load_card(write(tmp_path, "- a\n- b\n"))


def test_element_ranges_expand():
    assert expand_elements(["H-Li"]) == {"H", "He", "Li"}
    assert len(expand_elements(["H-Bi", "Ac-Pu"])) == 89
    assert expand_elements(["all"]) is None
    with pytest.raises(ValueError):
        expand_elements(["Li-H"])


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownNameError) as caught:
        ModelCatalog.load().get("nosuch")
    assert "nosuch" in str(caught.value) and "chgnet-0.3.0" in str(caught.value)


def test_duplicate_card_name_in_extra_dir(tmp_path):
    (tmp_path / "emt2.yaml").write_text(MINIMAL.replace("my-model", "emt"))
    with pytest.raises(InputError, match="already defined"):
        ModelCatalog.load([tmp_path])


def test_unknown_family_is_one_clear_error(tmp_path):
    card = load_card(write(tmp_path, MINIMAL.replace("family: emt", "family: nosuchfamily")))
    with pytest.raises(InputError) as caught:
        load_model(card, Domain.MOLECULES, "cpu")
    assert "family" in str(caught.value) and "nosuchfamily" in str(caught.value) and "chgnet" in str(caught.value)


@pytest.mark.parametrize("name", DOWNLOADED)
def test_downloaded_weights_missing_say_where_they_come_from(name, tmp_path, monkeypatch):
    monkeypatch.setenv("LAMBENCH_WEIGHTS_DIR", str(tmp_path))
    card = ModelCatalog.load().get(name)
    with pytest.raises(WeightsUnavailableError) as caught:
        load_model(card, Domain.MOLECULES, "cpu")
    message = str(caught.value)
    assert card.weights is not None and card.weights.location in message
    assert str(tmp_path) in message and "\n" not in message


def test_downloaded_weights_present_but_package_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("LAMBENCH_WEIGHTS_DIR", str(tmp_path))
    card = ModelCatalog.load().get("mace-mp-0-medium")
    target = tmp_path / card.name / "2023-12-03-mace-128-L1_epoch-199.model"
    target.parent.mkdir()
    target.write_bytes(b"not really a model")
    # Unpinned downloaded weights are refused before anything could unpickle them...
    with pytest.raises(ChecksumError, match=r"card mace-mp-0-medium: weights.sha256: not set, and .* would be loaded "
                       r"unverified; .* pin it \(sha256: [0-9a-f]{64}\) or set LAMBENCH_ALLOW_UNPINNED_WEIGHTS=1"):
        load_model(card, Domain.MOLECULES, "cpu")
    # ...unless the user accepts them; then the missing package is the next clear error.
    monkeypatch.setenv("LAMBENCH_ALLOW_UNPINNED_WEIGHTS", "1")
    with pytest.raises(ModelPackageMissingError, match="mace.calculators"):
        load_model(card, Domain.MOLECULES, "cpu")


def test_weights_checksum_mismatch_is_refused(tmp_path):
    weights = tmp_path / "w.json"
    weights.write_text('{"element_energies_eV": {"H": -1.0}}')
    text = MINIMAL.replace("family: emt", "family: dummy") + (
        f"weights: {{location: 'file://{weights}', sha256: '{'0' * 64}'}}\n"
    )
    card = load_card(write(tmp_path, text))
    with pytest.raises(ChecksumError) as caught:
        load_model(card, Domain.MOLECULES, "cpu")
    assert "weights.sha256" in str(caught.value) and str(weights) in str(caught.value)


def test_pinned_weights_are_recorded(tmp_path):
    card = ModelCatalog.load().get("dummy")
    loaded = load_model(card, Domain.MOLECULES, "cpu")
    assert card.weights is not None and loaded.weights_sha256 == card.weights.sha256
    assert loaded.weights_pinned
