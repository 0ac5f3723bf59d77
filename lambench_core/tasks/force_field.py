"""Force-field task: per-frame energy, force and virial errors against the reference labels."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np
from ase.calculators.calculator import BaseCalculator, Calculator
from ase.calculators.mixing import SumCalculator
from ase.neighborlist import neighbor_list
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.data.frames import Frame
from lambench_core.data.manifest import Dispersion
from lambench_core.metrics.force_field import force_field_metrics
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import ItemIssue, Metric
from lambench_core.tasks.base import ProgressCallback, Task, TaskOutput, register_task
from lambench_core.tasks.structures import prepare_for_model, unsupported_elements

_REASON_LENGTH = 300
OVERLAP_DISTANCE = 0.1  # Å; two atoms closer than this are one structure's corrupt input


class ForceFieldParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vacuum_padding: float = Field(
        default=15.0, gt=0, le=100, description="Å of vacuum around molecules for periodic-only models"
    )
    max_frames: int | None = Field(default=None, gt=0, description="Score only the first N frames")
    dispersion: Dispersion | None = Field(
        default=None, description="Added to the model when the reference contains it (from the manifest)"
    )


def with_dispersion(calculator: Calculator, dispersion: Dispersion | None) -> BaseCalculator:
    if dispersion is None:
        return calculator
    from dftd3.ase import DFTD3

    d3 = DFTD3(method=dispersion.functional, damping=dispersion.damping)
    return SumCalculator([calculator, d3])


class FrameFailure(Exception):
    """A frame whose prediction cannot be scored (non-finite or wrongly shaped output)."""


def _predict(
    calculator: BaseCalculator, frame: Frame, padding: float, model: LoadedModel, want_virial: bool
) -> dict[str, Any]:
    atoms = prepare_for_model(model.card, frame.atoms, padding)
    # Atoms on top of each other are corrupt input: a model would still return a number for them.
    i, j, distance = neighbor_list("ijd", atoms, OVERLAP_DISTANCE)
    if len(i):
        raise FrameFailure(f"atoms {i[0]} and {j[0]} overlap ({distance[0]:.3f} Å apart)")
    atoms.calc = calculator
    energy = float(atoms.get_potential_energy())
    forces = np.asarray(atoms.get_forces(), float)
    prediction: dict[str, Any] = {"energy": energy, "forces": forces}
    if want_virial:
        stress = np.asarray(atoms.get_stress(voigt=False), float)
        prediction["virial"] = -stress * atoms.get_volume()
    for name, value in prediction.items():
        if not np.all(np.isfinite(value)):
            raise FrameFailure(f"non-finite {name} predicted")
    if forces.shape != (frame.n_atoms, 3):
        raise FrameFailure(f"forces of shape {forces.shape}, expected ({frame.n_atoms}, 3)")
    return prediction


def _frame_record(frame: Frame, prediction: dict[str, Any], seconds: float) -> dict[str, Any]:
    record: dict[str, Any] = {
        "item": frame.frame_id,
        "formula": frame.atoms.get_chemical_formula(),
        "n_atoms": frame.n_atoms,
        "counts": dict(Counter(frame.atoms.get_chemical_symbols())),
        "e_ref": frame.energy,
        "e_pred": prediction["energy"] if frame.energy is not None else None,
        "seconds": seconds,
    }
    if frame.forces is not None:
        difference = prediction["forces"] - frame.forces
        record |= {
            "force_sse": float(np.sum(difference**2)),
            "force_sae": float(np.sum(np.abs(difference))),
            "force_n": int(difference.size),
        }
    if frame.virial is not None and "virial" in prediction:
        per_atom = (prediction["virial"] - frame.virial) / frame.n_atoms
        record |= {
            "virial_sse": float(np.sum(per_atom**2)),
            "virial_sae": float(np.sum(np.abs(per_atom))),
            "virial_n": int(per_atom.size),
        }
    return record


@register_task
class ForceFieldTask(Task):
    name = "force_field"
    category = Category.FORCE_FIELD
    version = "1"
    Params = ForceFieldParams

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: BaseModel) -> dict[str, Metric]:
        """Error metrics of the scored frames (one record per frame; the energy shifts are refitted
        on whatever frames are given)."""
        return force_field_metrics(records)

    def run(
        self,
        model: LoadedModel,
        frames: list[Frame],
        params: BaseModel,
        progress: ProgressCallback,
    ) -> TaskOutput:
        assert isinstance(params, ForceFieldParams)
        selected = frames[: params.max_frames] if params.max_frames else frames
        calculator = with_dispersion(model.calculator, params.dispersion)
        records: list[dict[str, Any]] = []
        issues: list[ItemIssue] = []
        compute_seconds = 0.0
        for done, frame in enumerate(selected, start=1):
            missing = unsupported_elements(model.card, frame.atoms)
            want_virial = (
                frame.virial is not None and frame.periodic and model.card.capabilities.stress
            )
            if missing:
                reason = f"model lacks element(s) {', '.join(missing)}"
                issues.append(ItemIssue(item=frame.frame_id, kind="skipped", reason=reason))
            else:
                start = time.perf_counter()
                try:
                    prediction = _predict(calculator, frame, params.vacuum_padding, model, want_virial)
                except Exception as exc:  # one structure never sinks the task
                    reason = f"{type(exc).__name__}: {exc}"[:_REASON_LENGTH]
                    issues.append(ItemIssue(item=frame.frame_id, kind="failed", reason=reason))
                else:
                    records.append(_frame_record(frame, prediction, time.perf_counter() - start))
                compute_seconds += time.perf_counter() - start
            progress(done, len(selected))
        return TaskOutput(
            metrics=self.summarize(records, params),
            n_items=len(selected),
            records=records,
            issues=issues,
            compute_seconds=compute_seconds,
        )
