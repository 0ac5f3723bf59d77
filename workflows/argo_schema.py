"""Argo's Workflow and CronWorkflow schema, from hera's generated pydantic models, made strict.

hera's models ignore unknown fields; a manifest with a misspelt or misplaced field would pass them
and then lose that field silently in the cluster. Here every model forbids extra fields.
"""

from __future__ import annotations

import inspect
from functools import cache

from pydantic import BaseModel

from lambench_core.errors import LambenchError


@cache
def _strict_models() -> dict[str, type[BaseModel]]:
    import hera.workflows.models as argo

    classes = [c for _, c in inspect.getmembers(argo, inspect.isclass) if issubclass(c, BaseModel)]
    for cls in classes:
        cls.model_config["extra"] = "forbid"
    # Nested schemas are copied into their parents when built: rebuild every class after all
    # configs changed, twice, so that parents pick up their children's strict schemas.
    for _ in range(2):
        for cls in classes:
            cls.model_rebuild(force=True)
    return {"Workflow": argo.Workflow, "CronWorkflow": argo.CronWorkflow, "WorkflowTemplate": argo.WorkflowTemplate}


def strict_model(kind: object) -> type[BaseModel]:
    models = _strict_models()
    if kind not in models:
        raise LambenchError(f"manifest kind {kind!r} is not one of {', '.join(models)}")
    return models[str(kind)]
