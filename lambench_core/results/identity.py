"""Identity keys: a result with the same key is the same computation and is never redone."""

from __future__ import annotations

from typing import Any

from lambench_core.hashing import sha256_json
from lambench_core.models.card import ModelCard

KEY_LENGTH = 20


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


def job_key(
    card: ModelCard,
    task_name: str,
    task_version: str,
    params: dict[str, Any],
    dataset_sha256: str | None,
) -> str:
    identity = {
        "model": model_identity(card),
        "task": {"name": task_name, "version": task_version, "params": params},
        "dataset": dataset_sha256,
    }
    return sha256_json(identity)[:KEY_LENGTH]
