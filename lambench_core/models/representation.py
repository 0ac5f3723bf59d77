"""A model's learned representation: per-atom features from its last hidden layer.

Each family's `Family.feature_extractor` reads them (None: RepresentationUnavailable with the family's
`no_features_reason`, and adaptability tasks skip it). Extractors read the calculator the family
factory built, so the features come from the very weights that were scored elsewhere in the campaign.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from lambench_core.errors import UnknownFamilyError
from lambench_core.models.family import FeatureExtractor, RepresentationUnavailable
from lambench_core.models.loading import LoadedModel
from lambench_core.models.preparation import prepare_for_model
from lambench_core.models.registry import family

__all__ = ["FeatureExtractor", "RepresentationUnavailable", "atom_features", "has_features", "pooled_features"]


def _extractor(model: LoadedModel) -> tuple[FeatureExtractor | None, str]:
    """The family's extractor, or None and the reason it has none."""
    name = model.card.family
    generic = f"family {name!r} exposes no representation hook in lambench yet"
    try:
        entry = family(name)
    except UnknownFamilyError:
        return None, generic
    return entry.feature_extractor, entry.no_features_reason or generic


def has_features(model: LoadedModel) -> str | None:
    """None if the model's family exposes features, else the reason it does not."""
    extractor, reason = _extractor(model)
    return None if extractor is not None else reason


def atom_features(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    """(n_atoms, d) features of the structure, after the harness's usual preparation (vacuum box for
    periodic-only models)."""
    extractor, reason = _extractor(model)
    if extractor is None:
        raise RepresentationUnavailable(reason)
    prepared = prepare_for_model(model.card, atoms, 15.0)
    features = np.asarray(extractor(model, prepared), dtype=float)
    if features.ndim != 2 or features.shape[0] != len(prepared) or not np.all(np.isfinite(features)):
        raise ValueError(f"{model.card.name}: features of shape {features.shape} (non-finite or not per atom)")
    return features


def pooled_features(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    """One vector per structure: the mean and the sum over atoms (intensive and extensive targets)."""
    features = atom_features(model, atoms)
    return np.concatenate([features.mean(axis=0), features.sum(axis=0)])
