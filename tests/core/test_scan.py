"""`lambench data scan`: a recipe's ideal structure labelled once per settings variant, for real with
pw.x (norm-conserving Si at 12–24 Ry, a second or two per run), through the label cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.units import GPa

from lambench_core.data.labelling.qe import QuantumEspressoReference, QuantumEspressoSettings
from lambench_core.data.labelling.recipe import Recipe
from lambench_core.data.labelling.scan import load_grid, markdown, scan, validate_grid
from lambench_core.errors import InputError

BASE = {"pseudopotentials": {"Si": "Si.pbe-rrkj.UPF"}, "ecutwfc": 12.0, "ecutrho": 48.0, "kspacing": 1.0}
GRID = {
    "loose": {"ecutwfc": 12.0, "ecutrho": 48.0},
    "loose-2x": {"ecutwfc": 24.0, "ecutrho": 96.0},
    "tight": {"ecutwfc": 24.0, "ecutrho": 96.0, "kspacing": 0.6},
}


def silicon_recipe() -> Recipe:
    return Recipe.model_validate(
        {
            "name": "si_scan",
            "domain": "inorganic_materials",
            "description": "diamond Si, primitive cell",
            "seed": 1,
            "systems": [
                {
                    "name": "si",
                    "structure": {"builder": "bulk", "args": {"name": "Si", "crystalstructure": "diamond", "a": 5.43}},
                    "generators": [{"generator": "rattle", "count": 1, "params": {"sigma": 0.05}}],
                }
            ],
            "references": {"pbe": {"code": "qe", "settings": BASE}},
        }
    )


def test_a_scan_tables_each_variant_against_the_last_and_derives_the_pulay_stress(tmp_path):
    rows = scan(silicon_recipe(), "pbe", GRID, tmp_path / "cache", tmp_path / "scratch", workers=2)
    by_variant = {row.variant: row for row in rows}
    assert list(by_variant) == list(GRID)

    # The same numbers as a direct pw.x run of the ideal cell at each variant's settings.
    reference = QuantumEspressoReference()
    direct = {
        name: reference.label(bulk("Si", "diamond", a=5.43), QuantumEspressoSettings(**{**BASE, **s}), tmp_path / name)
        for name, s in GRID.items()
    }
    pressure = {name: -np.mean(labels.stress[:3]) / GPa for name, labels in direct.items()}
    for name, row in by_variant.items():
        assert row.pressure_GPa == pytest.approx(pressure[name], abs=0.02)
        energy = (direct[name].energy - direct["tight"].energy) / 2 * 1000
        assert row.energy_meV_per_atom == pytest.approx(energy, abs=0.05)

    # Only "loose" has its doubled-cutoff partner in the grid.
    loose = by_variant["loose"]
    pulay = (direct["loose"].stress[0] - direct["loose-2x"].stress[0]) / GPa
    assert loose.pulay_GPa == pytest.approx(pulay, abs=0.02)
    assert loose.corrected_pressure_GPa == pytest.approx(pressure["loose"] + pulay, abs=0.03)
    assert loose.pressure_vs_last_GPa == pytest.approx(pressure["loose"] + pulay - pressure["tight"], abs=0.03)
    assert by_variant["loose-2x"].pulay_GPa is None and by_variant["tight"].pulay_GPa is None
    assert by_variant["tight"].energy_meV_per_atom == 0.0 and by_variant["tight"].pressure_vs_last_GPa == 0.0

    table = markdown(rows, GRID)
    assert table.count("\n") == 2 + len(GRID) - 1 and "| si | loose | ecutwfc 12.0, ecutrho 48.0 |" in table

    # A second scan labels nothing: every variant comes from the cache.
    again = scan(silicon_recipe(), "pbe", GRID, tmp_path / "cache", tmp_path / "scratch-again", workers=1)
    assert again == rows
    assert not (tmp_path / "scratch-again").exists() or not any((tmp_path / "scratch-again").iterdir())


def test_a_bad_grid_names_the_file_and_the_variant(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"loose": {"ecutwfc": 12.0, "kspasing": 0.5}}))
    with pytest.raises(InputError) as caught:
        validate_grid(silicon_recipe(), "pbe", load_grid(path), path)
    assert str(path) in str(caught.value) and "loose.kspasing" in str(caught.value)

    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="maps variant names to settings"):
        load_grid(path)
    path.write_text("loose: {ecutwfc: [")
    with pytest.raises(InputError, match="not valid YAML"):
        load_grid(path)
    with pytest.raises(InputError, match="scan grid not found"):
        load_grid(Path(tmp_path / "missing.yaml"))
    with pytest.raises(InputError, match="no level 'wb97'"):
        validate_grid(silicon_recipe(), "wb97", GRID, path)


def test_a_variant_that_fails_is_reported_in_its_row_and_the_others_are_kept(tmp_path):
    grid = {"one-scf-step": {"electron_maxstep": 1}, "loose": {}}
    rows = scan(silicon_recipe(), "pbe", grid, tmp_path / "cache", tmp_path / "scratch", workers=1)
    broken, loose = rows
    assert broken.failure is not None and "SCF" in broken.failure and broken.energy_meV_per_atom is None
    assert loose.failure is None and loose.energy_meV_per_atom == 0.0
    assert "| si | one-scf-step | electron_maxstep 1 | failed: " in markdown(rows, grid)
