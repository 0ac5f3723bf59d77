"""The offline model zoo: every card whose weights ship inside its package loads, verifies its weights
and predicts what it predicted when its card was written; DeePMD runs beside lambench's torch and
fine-tunes through its own `dp`; a missing package is one clear error naming the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk, molecule
from ase.collections import g2

from lambench_core.errors import ModelPackageMissingError
from lambench_core.models.availability import unavailable_reason
from lambench_core.models.card import RunLimits
from lambench_core.models.catalog import ModelCatalog
from lambench_core.models.loading import LoadedModel, load_model
from lambench_core.models.representation import pooled_features
from lambench_core.tasks.evaluation import skip_reason
from lambench_core.tasks.finetune import Budget, fine_tune_cross_validate
from workflows.defaults import campaign_models

REPO = Path(__file__).resolve().parents[2]

# Offline cards added with the zoo, and what each predicted when its card was written (eV): Si diamond
# (a = 5.43 Å) per atom for the periodic models, a water molecule for the molecular ones.
SI_PER_ATOM = {
    "dpa4": -5.426781,
    "diep": -8.763422,
    "chgnet-r2scan": -8.733323,
}
WATER = {"dpa4": -14.099761, "ani-1x": -2078.637157, "gfn1-xtb": -156.967506, "gfn2-xtb": -137.967776}
OFFLINE_CARDS = [
    "ani-1x", "chgnet-0.2.0", "chgnet-0.3.0", "chgnet-r2scan", "diep", "dpa4",
    "gfn1-xtb", "gfn2-xtb", "sevennet-0", "sevennet-l3i5", "sevennet-mf-0",
]  # fmt: skip
_LOADED: dict[str, LoadedModel] = {}


def model(name: str) -> LoadedModel:
    if name not in _LOADED:
        _LOADED[name] = load_model(ModelCatalog.load().get(name), None, "cpu")
    return _LOADED[name]


@pytest.mark.parametrize("name", sorted(SI_PER_ATOM))
def test_periodic_models_reproduce_their_silicon_energy(name: str) -> None:
    atoms = bulk("Si", "diamond", 5.43)
    atoms.calc = model(name).calculator
    assert atoms.get_potential_energy() / len(atoms) == pytest.approx(SI_PER_ATOM[name], abs=1e-3)
    assert atoms.get_forces().shape == (2, 3)
    assert np.isfinite(atoms.get_stress()).all()


@pytest.mark.parametrize("name", sorted(WATER))
def test_molecular_models_reproduce_their_water_energy(name: str) -> None:
    atoms = molecule("H2O")
    atoms.calc = model(name).calculator
    assert atoms.get_potential_energy() == pytest.approx(WATER[name], abs=2e-3)
    assert np.abs(atoms.get_forces()).max() < 5.0


def test_every_offline_card_is_available_and_the_downloaded_ones_say_why_not() -> None:
    catalog = ModelCatalog.load()
    names = campaign_models("offline")
    assert set(OFFLINE_CARDS) <= set(names), sorted(set(OFFLINE_CARDS) - set(names))
    assert {"dummy", "emt"} <= set(names)
    for name in ("mace-mp-0-medium", "orb-v3-conservative-inf-omat", "mattersim-v1-1m"):
        reason = unavailable_reason(catalog.get(name))
        assert reason is not None and "pip install" in reason
    reason = unavailable_reason(catalog.get("dpa-3.1-3m-ft"))
    assert reason is not None and "figshare" in reason
    # 'offline' expands in place, without repeating a model named beside it.
    assert campaign_models("dummy,offline")[0] == "dummy"
    assert campaign_models("dummy,offline").count("dummy") == 1


def test_cards_state_their_level_of_theory_and_the_non_pbe_ones_their_label_level() -> None:
    catalog = ModelCatalog.load()
    assert catalog.get("diep").level_of_theory.startswith("r2SCAN")
    assert catalog.get("ani-1x").level_for("molecules") == "wb97"  # type: ignore[arg-type]
    assert catalog.get("gfn2-xtb").level_for("inorganic_materials") == "gfn2-xtb"  # type: ignore[arg-type]
    assert "unlicensed" in catalog.get("dpa4").licence


def test_card_limits_skip_what_the_card_excludes_with_the_reason() -> None:
    xtb = model("gfn2-xtb")
    reason = skip_reason(xtb, [bulk("Si", "diamond", 5.43, cubic=True)])
    assert reason is not None and "runs no periodic structure" in reason and "Γ point" in reason
    assert skip_reason(xtb, [molecule("C6H6")]) is None
    sized = xtb.card.model_copy(update={"limits": RunLimits(max_periodic_atoms=32, reason="slow on a CPU")})
    limited = LoadedModel(sized, xtb.calculator, None, True, None, "cpu")
    assert skip_reason(limited, [bulk("Si", "diamond", 5.43, cubic=True)]) is None
    large = skip_reason(limited, [bulk("Si", "diamond", 5.43, cubic=True).repeat(2)])
    assert large == "periodic, 64 atoms > the card's limit of 32 (slow on a CPU)"


def test_deepmd_runs_beside_a_torch_its_operators_were_not_built_for() -> None:
    from lambench_core.models.families._deepmd_runtime import custom_ops_enabled, op_library_mismatch

    model("dpa4")
    mismatch = op_library_mismatch()
    # With a matching source build the operators load; with the PyPI wheel beside torch 2.13 they are off.
    assert custom_ops_enabled() is (mismatch is None)
    features = pooled_features(model("dpa4"), bulk("Si", "diamond", 5.43))
    assert features.ndim == 1 and features.size > 0 and np.isfinite(features).all()


def test_a_missing_deepmd_is_one_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "deepmd.env", None)  # import of deepmd.env now raises ImportError
    with pytest.raises(ModelPackageMissingError, match=r"pip install 'lambench\[deepmd\]'"):
        load_model(ModelCatalog.load().get("dpa4"), None, "cpu")


def test_dpa4_fine_tunes_through_dp_on_the_folds() -> None:
    """Two folds of six G2 molecules, one epoch: `dp --pt train --finetune` runs, trains a property
    fitting net from the pretrained descriptor and predicts each held-out molecule."""
    names = ["H2O", "NH3", "CH4", "C2H2", "HCN", "CO2"]
    structures = [g2[name] for name in names]
    targets = np.array([-57.8, -11.0, -17.9, 54.2, 31.5, -94.1])  # kcal/mol, experimental ΔfH(298 K)
    predictions = fine_tune_cross_validate(
        model("dpa4"), structures, targets, folds=2, seed=0, budget=Budget(epochs=1), intensive=False
    )
    assert [p.index for p in predictions] == list(range(6))
    assert {p.fold for p in predictions} == {0, 1}
    assert all(np.isfinite(p.predicted) for p in predictions)
    assert all("dp --pt train" in p.head for p in predictions)


def test_dpa4_fine_tune_gives_its_m_ad_on_the_leaderboard(tmp_path: Path) -> None:
    """The fine-tune protocol as a campaign runs it (a suite entry, a run step, the aggregate): a small
    budget of ten G2 molecules, two folds, one epoch, so that it fits a CPU test."""
    suite = {
        "tasks": [
            {
                "task": "adapt_g2_formation_enthalpy",
                "name": "adapt_g2_formation_enthalpy/finetune",
                "domain": "molecules",
                "params": {"quick": {"protocol": "finetune", "max_items": 10, "folds": 2, "epochs": 1, "mlp": False}},
            }
        ]
    }
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(yaml.safe_dump(suite))
    run = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", "--models", "dummy,dpa4", "--suite", str(suite_file),
         "--bootstrap", "0", "--workdir", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = {r["model"]: r for r in map(json.loads, map(Path.read_text, (tmp_path / "work/store/results").glob("*.json")))}
    assert results["dpa4"]["status"] == "succeeded", results["dpa4"]
    heads = {record["head"] for record in results["dpa4"]["records"]}
    assert heads == {"dp --pt train --finetune (all parameters, new property fitting net), 1 epochs"}
    board = json.loads(next((tmp_path / "work/runs").glob("*/site/leaderboard.json")).read_text())
    scores = {entry["model"]: entry for entry in board["scoreboard"]["models"]}
    m_ad = scores["dpa4"]["m_ad"]["value"]
    assert m_ad is not None and 0.0 <= m_ad <= 1.0
    # The dummy has no representation to fine-tune: skipped with the reason, not scored as a zero.
    assert scores["dummy"]["m_ad"]["value"] is None
