"""Identity keys: a result with the same key is the same computation and is never redone.

A key is a hash of its job's identity (model, task, params, dataset digest). Every key computed here
is remembered with what it was computed from, so a stored result read back under a planned key can
be checked against that planned job: its provenance must hash to the same key (`planned_mismatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from lambench_core.hashing import sha256_json
from lambench_core.models.card import ModelCard
from lambench_core.results.record import TaskResult

KEY_LENGTH = 20
# Keys planned in this process, with what they were computed from (bounded: a cache, not a catalogue).
_PLANNED_LIMIT = 200_000


@dataclass(frozen=True)
class PlannedJob:
    """What a planned key was computed from: enough to recompute it from a result's provenance."""

    model: str
    task_name: str
    dataset_sha256: str | None


_PLANNED: dict[str, PlannedJob] = {}


def model_identity(card: ModelCard) -> dict[str, Any]:
    """The card fields that change predictions or what is scored; description or licence edits do not."""
    weights = None
    if card.weights is not None:
        weights = card.weights.sha256 or f"unpinned:{card.weights.location}"
    # Only present when set, so the keys of cards without limits (all results stored so far) stay valid.
    limits = {"limits": card.limits.model_dump()} if card.limits is not None else {}
    return {
        **limits,
        "name": card.name,
        "family": card.family,
        "version": card.version,
        "weights": weights,
        "heads": {str(domain): head for domain, head in sorted(card.heads.items())},
        "levels": {str(domain): level for domain, level in sorted(card.levels.items())},
        "options": card.options,
        "dtype": card.dtype,
    }


def _key(
    card: ModelCard, task_name: str, task_version: str, params: dict[str, Any], dataset_sha256: str | None
) -> str:
    identity = {
        "model": model_identity(card),
        "task": {"name": task_name, "version": task_version, "params": params},
        "dataset": dataset_sha256,
    }
    return sha256_json(identity)[:KEY_LENGTH]


def job_key(
    card: ModelCard,
    task_name: str,
    task_version: str,
    params: dict[str, Any],
    dataset_sha256: str | None,
) -> str:
    key = _key(card, task_name, task_version, params, dataset_sha256)
    remember_planned(key, PlannedJob(model=card.name, task_name=task_name, dataset_sha256=dataset_sha256))
    return key


def remember_planned(key: str, job: PlannedJob) -> None:
    """Record what `key` was planned from, so that results read under it are checked against it (a
    step that reads its plan instead of planning calls this for the plan's jobs)."""
    if len(_PLANNED) >= _PLANNED_LIMIT:
        _PLANNED.clear()
    _PLANNED[key] = job


def planned_job(key: str) -> PlannedJob | None:
    """The job this process computed `key` for (None when it computed no such key)."""
    return _PLANNED.get(key)


def planned_mismatch(result: TaskResult) -> tuple[str, str] | None:
    """(field, reason) where a result is not the job this process planned under its key: another
    model, or a provenance (card, task version, params, dataset digest) that hashes to another key.
    None when it matches, when this process planned no such key (nothing to compare with), or when
    the stored card no longer validates (an older card schema: it cannot tell)."""
    planned = _PLANNED.get(result.key)
    if planned is None:
        return None
    if result.model != planned.model:
        return "model", f"{result.model!r}, but the job planned under this key is for model {planned.model!r}"
    provenance = result.provenance
    if provenance is None:
        return None
    try:
        card = ModelCard.model_validate(provenance.model_card)
    except ValidationError:
        return None
    # The digest of the set the job read, as stored; a job that read none (or failed to load it) is
    # hashed with the planned digest, where a task's referenced sets join (they are not in provenance).
    digest = provenance.dataset_sha256 or planned.dataset_sha256
    recomputed = _key(card, planned.task_name, provenance.task_version, provenance.params, digest)
    if recomputed != result.key:
        return (
            "provenance",
            f"its model card, task version, params and dataset digest hash to key {recomputed}, "
            f"not {result.key}: another job's content",
        )
    return None
