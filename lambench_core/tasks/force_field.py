"""Force-field task: per-frame energy, force and virial errors against the reference labels."""

from __future__ import annotations

import time
from typing import Any

from ase.calculators.calculator import BaseCalculator, Calculator
from ase.calculators.mixing import SumCalculator
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.data.frame_scoring import frame_record, predict_frame
from lambench_core.data.frames import Frame
from lambench_core.data.manifest import Dispersion
from lambench_core.metrics.force_field import force_field_metrics
from lambench_core.models.loading import LoadedModel
from lambench_core.models.registry import family
from lambench_core.results.record import Metric
from lambench_core.tasks.base import FramesTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.batching import evaluate_frames_in_batches
from lambench_core.tasks.evaluation import evaluate_items


class ForceFieldParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vacuum_padding: float = Field(
        default=15.0, gt=0, le=100, description="Å of vacuum around molecules for periodic-only models"
    )
    max_frames: int | None = Field(default=None, gt=0, description="Score only the first N frames")
    dispersion: Dispersion | None = Field(
        default=None, description="Added to the model when the reference contains it (from the manifest)"
    )
    batched: bool = Field(
        default=True,
        description="Frames in batches where the model's family can (the same records within float "
        "tolerance, tests/core/test_batching.py); False: one model call per frame",
    )


def with_dispersion(calculator: Calculator, dispersion: Dispersion | None) -> BaseCalculator:
    if dispersion is None:
        return calculator
    from dftd3.ase import DFTD3

    d3 = DFTD3(method=dispersion.functional, damping=dispersion.damping)
    return SumCalculator([calculator, d3])


@register_task
class ForceFieldTask(FramesTask[ForceFieldParams]):
    name = "force_field"
    category = Category.FORCE_FIELD
    version = "1"
    Params = ForceFieldParams

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: ForceFieldParams) -> dict[str, Metric]:
        """Error metrics of the scored frames (one record per frame; the energy shifts are refitted
        on whatever frames are given)."""
        return force_field_metrics(records)

    def run(
        self, model: LoadedModel, frames: list[Frame], params: ForceFieldParams, context: TaskContext
    ) -> TaskOutput:
        selected = frames[: params.max_frames] if params.max_frames else frames
        batch_predict = family(model.card.family).batch_predict
        if params.batched and batch_predict is not None and params.dispersion is None:
            results, seconds = evaluate_frames_in_batches(
                model, selected, params.vacuum_padding, batch_predict, context.progress
            )
            return self.output(params, results, compute_seconds=seconds)
        calculator = with_dispersion(model.calculator, params.dispersion)
        compute_seconds = 0.0

        def evaluate(name: str, frame: Frame) -> dict[str, Any]:
            nonlocal compute_seconds
            start = time.perf_counter()
            try:
                prediction = predict_frame(calculator, frame, params.vacuum_padding, model.card)
            finally:
                seconds = time.perf_counter() - start
                compute_seconds += seconds
            return frame_record(frame, prediction, seconds)

        results = evaluate_items(
            model, [(frame.frame_id, frame) for frame in selected], lambda frame: [frame.atoms], evaluate,
            context.progress,
        )
        return self.output(params, results, compute_seconds=compute_seconds)
