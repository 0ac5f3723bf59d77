"""Adaptability: how well a model's learned representation predicts properties it was not trained on.

Protocol `finetune` (tasks/finetune.py): the last interaction block and a linear head (started from
the ridge probe) are trained for a fixed budget on each training part, from the pretrained weights.
Protocol `probe` (the default): the model's per-atom features from its last hidden layer, pooled per
structure (mean and sum), feed a small head chosen by inner validation (ridge or a two-layer MLP)
under seeded k-fold cross-validation (tasks/probing.py). A model-free baseline — the same heads on
composition features — runs on the same folds, so the score shows what the representation adds.
Score of a task: x = clip(MAE ÷ MAE of predicting each fold's training mean, 0, 1); M_AD is the mean
over tasks (0: perfect, 1: no better than the mean).

Tasks with labels that ship offline:
- `adapt_g2_formation_enthalpy` (molecules): the 148 molecules of G2-1 and G2-2 (ASE's g2 data), their
  experimental standard enthalpy of formation at 298 K, kcal/mol (ASE tabulates the free atoms' values
  at 0 K, so an atomization enthalpy built from those fields would mix temperatures: not used);
- `adapt_dcdft_bulk_modulus`, `adapt_dcdft_volume` (inorganic materials): the 71 elemental crystals of
  the Delta test (ASE dcdft), WIEN2k PBE bulk modulus (GPa) and equilibrium volume (Å³/atom).
Matbench's structure→property tasks (`matbench_<name>`, 5 folds) run once their data is fetched.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.models.loading import LoadedModel
from lambench_core.models.representation import has_features, pooled_features
from lambench_core.results.record import ItemIssue, Metric
from lambench_core.tasks.base import (
    DirectoryTask,
    ItemResults,
    ProgressCallback,
    StandaloneTask,
    Task,
    TaskContext,
    TaskOutput,
    register_task,
)
from lambench_core.tasks.evaluation import issue_for, skip_reason
from lambench_core.tasks.finetune import Budget, fine_tune_cross_validate, trainable_reason
from lambench_core.tasks.probing import composition_features, cross_validate

ADAPTABILITY_METRICS = ("mae", "mean_predictor_mae", "composition_mae", "normalized_mae", "composition_normalized_mae")


class AdaptabilityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: Literal["probe", "finetune"] = Field(
        default="probe", description="probe: frozen features and a small head; finetune: last block + linear head"
    )
    epochs: int = Field(default=10, ge=1, le=200, description="Fine-tuning budget (protocol finetune)")
    folds: int = Field(default=5, ge=2, le=20)
    inner_folds: int = Field(default=3, ge=2, le=10)
    seed: int = 0
    mlp: bool = Field(default=True, description="Also try a two-layer MLP head (else ridge only)")
    max_items: int | None = Field(default=None, ge=10, description="Only the first N items (a quick subset)")


@dataclass(frozen=True)
class Item:
    name: str
    atoms: Atoms
    target: float


def _mean_abs(values: Sequence[float]) -> float | None:
    return float(np.mean(np.abs(values))) if len(values) else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return float(min(max(numerator / denominator, 0.0), 1.0))


class _Adaptability(Task[AdaptabilityParams]):
    """What every adaptability task shares: features, cross-validation, records, metrics."""

    category = Category.ADAPTABILITY
    version = "1"
    Params = AdaptabilityParams
    unit: ClassVar[str] = ""
    # Whether the target stays the same for a larger copy of the structure (a per-atom volume, a
    # modulus) or grows with it (a molecule's formation enthalpy): a family's own fine-tuning program
    # picks its readout by it.
    intensive: ClassVar[bool] = True

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: AdaptabilityParams) -> dict[str, Metric]:
        """Out-of-fold errors of the model's head, of the fold's training mean and of the composition
        baseline; the normalized errors clip MAE ÷ mean-predictor MAE to [0, 1]."""
        mae = _mean_abs([r["predicted"] - r["target"] for r in records])
        mean_mae = _mean_abs([r["train_mean"] - r["target"] for r in records])
        composition = _mean_abs([r["composition"] - r["target"] for r in records])
        return {
            "mae": Metric(value=mae, unit=cls.unit),
            "mean_predictor_mae": Metric(value=mean_mae, unit=cls.unit),
            "composition_mae": Metric(value=composition, unit=cls.unit),
            "normalized_mae": Metric(value=_ratio(mae, mean_mae), unit="1"),
            "composition_normalized_mae": Metric(value=_ratio(composition, mean_mae), unit="1"),
        }

    def evaluate(
        self, model: LoadedModel, items: list[Item], params: AdaptabilityParams, progress: ProgressCallback
    ) -> TaskOutput:
        if params.max_items is not None:
            items = items[: params.max_items]
        reason = has_features(model) if params.protocol == "probe" else trainable_reason(model)
        if reason is not None:
            return self.all_skipped(params, [item.name for item in items], reason)
        features: list[np.ndarray] = []
        kept: list[Item] = []
        issues: list[ItemIssue] = []
        seconds = 0.0
        for done, item in enumerate(items, start=1):
            skipped = skip_reason(model, [item.atoms])
            if skipped:
                issues.append(ItemIssue(item=item.name, kind="skipped", reason=skipped))
            else:
                start = time.perf_counter()
                try:  # the frozen features serve the probe, and check that fine-tuning can read the item
                    features.append(pooled_features(model, item.atoms))
                    kept.append(item)
                except Exception as exc:  # one structure the model cannot featurize
                    issues.append(issue_for(item.name, exc))
                seconds += time.perf_counter() - start
            progress(done, len(items))
        if len(kept) < 2 * params.folds:
            issues.extend(
                ItemIssue(item=i.name, kind="failed", reason="too few featurized items to cross-validate") for i in kept
            )
            return self.output(params, ItemResults(issues=issues, n_items=len(items)), compute_seconds=seconds)
        targets = np.array([item.target for item in kept])
        start = time.perf_counter()
        if params.protocol == "finetune":
            budget = Budget(epochs=params.epochs)
            learned = fine_tune_cross_validate(
                model, [i.atoms for i in kept], targets, params.folds, params.seed, budget, self.intensive
            )
        else:
            learned = cross_validate(
                np.array(features), targets, params.folds, params.seed, params.inner_folds, params.mlp
            )
        seconds += time.perf_counter() - start
        baseline = cross_validate(
            composition_features([item.atoms.get_chemical_symbols() for item in kept]),
            targets,
            params.folds,
            params.seed,
            params.inner_folds,
            params.mlp,
        )
        records = [
            {
                "item": kept[p.index].name,
                "formula": kept[p.index].atoms.get_chemical_formula(),
                "fold": p.fold,
                "target": p.target,
                "predicted": p.predicted,
                "train_mean": p.train_mean,
                "composition": b.predicted,
                "head": p.head,
                "composition_head": b.head,
            }
            for p, b in zip(learned, baseline, strict=True)
        ]
        return self.output(params, ItemResults(records, issues, len(items)), compute_seconds=seconds)


def g2_items() -> list[Item]:
    from ase.data import g2_1, g2_2

    data = {**g2_1.data, **g2_2.data}
    items = []
    for name in sorted(data):
        entry = cast(dict[str, Any], data[name])  # ase's table is inferred as dict[str, object]
        if len(entry["positions"]) < 2:
            continue
        atoms = Atoms(entry["symbols"], positions=entry["positions"])
        items.append(Item(name=name, atoms=atoms, target=float(entry["enthalpy"])))
    return items


def dcdft_items(key: str) -> list[Item]:
    from ase.collections import dcdft

    items = []
    for name in dcdft.names:
        atoms = dcdft[name]
        items.append(Item(name=name, atoms=atoms, target=float(dcdft.data[name][key])))
    return items


class ShippedLabelsTask(_Adaptability, StandaloneTask[AdaptabilityParams]):
    """An adaptability task whose structures and labels ship offline: `load_items` gives them."""

    @staticmethod
    def load_items() -> list[Item]:
        raise NotImplementedError

    def run(self, model: LoadedModel, params: AdaptabilityParams, context: TaskContext) -> TaskOutput:
        return self.evaluate(model, self.load_items(), params, context.progress)


@register_task
class G2FormationEnthalpyTask(ShippedLabelsTask):
    """Experimental enthalpies of formation (298 K, kcal/mol) of the 148 G2-1/G2-2 molecules from the
    model's frozen representation, under 5-fold cross-validation."""

    name = "adapt_g2_formation_enthalpy"
    unit = "kcal/mol"
    intensive = False
    load_items = staticmethod(g2_items)


@register_task
class DcdftBulkModulusTask(ShippedLabelsTask):
    """WIEN2k PBE bulk moduli (GPa) of the 71 elemental crystals of the Delta test from the model's
    frozen representation of the crystal at its reference volume."""

    name = "adapt_dcdft_bulk_modulus"
    unit = "GPa"
    load_items = staticmethod(lambda: dcdft_items("wien2k_B"))


@register_task
class DcdftVolumeTask(ShippedLabelsTask):
    """WIEN2k PBE equilibrium volumes (Å³/atom) of the 71 Delta-test crystals from the model's frozen
    representation (of the crystal as ASE ships it, near that volume)."""

    name = "adapt_dcdft_volume"
    unit = "Å³/atom"
    load_items = staticmethod(lambda: dcdft_items("wien2k_volume"))


# Matbench v0.1's structure → property tasks (Dunn et al., npj Comput. Mater. 6, 138 (2020)) with their
# target column and unit; LAMBench fine-tunes on these with 5 folds.
MATBENCH_TASKS: dict[str, tuple[str, str]] = {
    "dielectric": ("n", "1"),
    "jdft2d": ("exfoliation_en", "meV/atom"),
    "log_gvrh": ("log10(G_VRH)", "log10(GPa)"),
    "log_kvrh": ("log10(K_VRH)", "log10(GPa)"),
    "mp_e_form": ("e_form", "eV/atom"),
    "mp_gap": ("gap pbe", "eV"),
    "perovskites": ("e_form", "eV/atom"),
    "phonons": ("last phdos peak", "cm⁻¹"),
}


def read_matbench(root: Path, column: str) -> list[Item]:
    """A Matbench JSON (pandas 'split' orient: columns, index, data of [structure dict, target])."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    files = sorted(p for p in root.rglob("*") if p.name.endswith((".json", ".json.gz")))
    if not files:
        raise FileNotFoundError(f"{root}: no Matbench .json or .json.gz file")
    opener = gzip.open if files[0].name.endswith(".gz") else open
    with opener(files[0], "rt") as handle:
        document = json.load(handle)
    columns = document["columns"]
    if column not in columns or "structure" not in columns:
        raise ValueError(f"{files[0]}: columns {columns}, expected 'structure' and {column!r}")
    s_index, y_index = columns.index("structure"), columns.index(column)
    return [
        Item(
            name=str(name),
            atoms=AseAtomsAdaptor.get_atoms(Structure.from_dict(row[s_index])),
            target=float(row[y_index]),
        )
        for name, row in zip(document["index"], document["data"], strict=True)
    ]


class MatbenchTask(_Adaptability, DirectoryTask[AdaptabilityParams]):
    """A Matbench structure → property task on the fetched Matbench JSON."""

    column: ClassVar[str] = ""

    def run(self, model: LoadedModel, root: Path, params: AdaptabilityParams, context: TaskContext) -> TaskOutput:
        return self.evaluate(model, read_matbench(root, self.column), params, context.progress)


for _name, (_column, _unit) in MATBENCH_TASKS.items():
    register_task(
        type(
            f"Matbench_{_name}",
            (MatbenchTask,),
            {
                "name": f"matbench_{_name}",
                "column": _column,
                "unit": _unit,
                "__doc__": f"Matbench {_name} ({_column}, {_unit}) from the model's representation, 5 folds.",
            },
        )
    )
