"""Whether a card can run on this machine without a download: its packages installed, its weights present.

Cheap by design (no import of the model package, no checksum): `lambench run --models offline` asks it
of every card before planning. Loading still verifies the weights' sha256.
"""

from __future__ import annotations

from importlib import metadata

from lambench_core.errors import LambenchError
from lambench_core.models.card import ModelCard
from lambench_core.models.registry import family
from lambench_core.models.weights import expected_weights_path


def unavailable_reason(card: ModelCard) -> str | None:
    """Why `card` cannot run here without a download (one line), or None when it can."""
    try:
        hint = family(card.family).install_hint()
    except LambenchError as exc:
        return str(exc)
    missing = [distribution for distribution in card.packages if not _installed(distribution)]
    if missing:
        return f"not installed: {', '.join(missing)} ({hint})"
    try:
        path = expected_weights_path(card)
    except LambenchError as exc:
        return str(exc)
    if path is not None and not path.exists():
        assert card.weights is not None
        return f"weights not on this machine ({path}); they come from {card.weights.location}"
    return None


def _installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True
