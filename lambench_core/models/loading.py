"""Build a model's calculator once, from a validated card and verified weights."""

from __future__ import annotations

from dataclasses import dataclass

from ase.calculators.calculator import Calculator

from lambench_core.domains import Domain
from lambench_core.errors import InputError, UnknownFamilyError
from lambench_core.models.card import ModelCard
from lambench_core.models.family import LoadContext
from lambench_core.models.registry import factory_for
from lambench_core.models.weights import resolve_weights


@dataclass
class LoadedModel:
    card: ModelCard
    calculator: Calculator
    weights_sha256: str | None
    weights_pinned: bool
    head: str | None
    device: str


def resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(card: ModelCard, domain: Domain | None = None, device: str = "auto") -> LoadedModel:
    try:
        factory = factory_for(card.family)
    except UnknownFamilyError as exc:
        raise InputError(f"card {card.name}", "family", str(exc)) from None
    weights = resolve_weights(card)
    head = card.head_for(domain) if domain is not None else None
    resolved_device = resolve_device(device)
    context = LoadContext(
        weights=weights.path if weights else None, head=head, device=resolved_device
    )
    return LoadedModel(
        card=card,
        calculator=factory(card, context),
        weights_sha256=weights.sha256 if weights else None,
        weights_pinned=weights.pinned if weights else True,
        head=head,
        device=resolved_device,
    )


class ModelCache:
    """The models one process has loaded, by card, head and device: a run step that carries several
    jobs of one model imports its package and reads its weights once. A card that fails to load is
    not cached (each job reports the failure itself)."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str | None, str], LoadedModel] = {}

    def load(self, card: ModelCard, domain: Domain | None, device: str) -> tuple[LoadedModel, bool]:
        """(the model, whether it was already loaded)."""
        from lambench_core.hashing import sha256_json

        head = card.head_for(domain) if domain is not None else None
        key = (sha256_json(card.model_dump(mode="json")), head, resolve_device(device))
        if key in self._loaded:
            return self._loaded[key], True
        loaded = load_model(card, domain, device)
        self._loaded[key] = loaded
        return loaded, False
