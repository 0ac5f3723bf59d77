"""Locate a model's weights on this machine and verify their checksum before anything loads them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from lambench_core.errors import (
    ChecksumError,
    ModelPackageMissingError,
    UnknownFamilyError,
    WeightsUnavailableError,
)
from lambench_core.hashing import sha256_tree
from lambench_core.models.card import ModelCard
from lambench_core.models.registry import family
from lambench_core.settings import ALLOW_UNPINNED_ENV, WEIGHTS_DIR_ENV, settings  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    sha256: str
    pinned: bool


def weights_cache_dir() -> Path:
    return settings().weights_folder


def _package_path(card: ModelCard, location: str) -> Path:
    module, _, inner = location.removeprefix("package://").partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPackageMissingError(
            f"model {card.name}: its weights ship inside the Python package '{module}', which is "
            f"not installed ({_install_hint(card)})"
        )
    return Path(next(iter(spec.submodule_search_locations))) / inner


def _install_hint(card: ModelCard) -> str:
    try:
        return family(card.family).install_hint()
    except UnknownFamilyError:
        return f"install the packages of family '{card.family}'"


def _file_path(card: ModelCard, location: str) -> Path:
    return Path(urlparse(location).path)


def _cached_download_path(card: ModelCard, location: str) -> Path:
    # Downloads are the user's (or `lambench weights` on a networked machine); at run time we only
    # look in the cache, so a campaign never stalls on the network.
    assert card.weights is not None
    filename = card.weights.filename or Path(urlparse(location).path).name
    return weights_cache_dir() / card.name / filename


_RESOLVERS: dict[str, Callable[[ModelCard, str], Path]] = {
    "package": _package_path,
    "file": _file_path,
    "https": _cached_download_path,
    "http": _cached_download_path,
}


def expected_weights_path(card: ModelCard) -> Path | None:
    if card.weights is None:
        return None
    scheme = card.weights.location.split("://", 1)[0]
    return _RESOLVERS[scheme](card, card.weights.location)


def resolve_weights(card: ModelCard) -> ResolvedWeights | None:
    """The verified weights of a card, or None for a model without weights (EMT)."""
    path = expected_weights_path(card)
    if path is None or card.weights is None:
        return None
    if not path.exists():
        hint = ""
        if card.weights.location.startswith("http"):
            hint = f" (download them to that path, or set {WEIGHTS_DIR_ENV} to another cache)"
        raise WeightsUnavailableError(
            f"model {card.name}: weights not found at {path}; "
            f"they come from {card.weights.location}{hint}"
        )
    actual = sha256_tree(path)
    if card.weights.sha256 is not None and actual != card.weights.sha256:
        raise ChecksumError(
            f"card {card.name}",
            "weights.sha256",
            f"{path} has sha256 {actual}, the card pins {card.weights.sha256}",
        )
    if card.weights.sha256 is None and not settings().allow_unpinned_weights:
        # The packages of downloaded checkpoints may unpickle them: never load bytes nobody vouched for.
        raise ChecksumError(
            f"card {card.name}",
            "weights.sha256",
            f"not set, and {path} would be loaded unverified; after checking where the file came from, pin it "
            f"(sha256: {actual}) or set {ALLOW_UNPINNED_ENV}=1",
        )
    return ResolvedWeights(path=path, sha256=actual, pinned=card.weights.sha256 is not None)
