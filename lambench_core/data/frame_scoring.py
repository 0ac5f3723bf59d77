"""A model's prediction on one labelled frame, and the record of its errors against the frame's labels.

The force-field task scores every frame of a set this way, and the dummy normalization of every
force-field set (data/normalization.py) runs the dummy card through the same two functions, so the
normalization constants are exactly the dummy model's force-field errors.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from lambench_core.data.frames import Frame
from lambench_core.models.card import ModelCard
from lambench_core.models.preparation import prepare_for_model

OVERLAP_DISTANCE = 0.1  # Å; two atoms closer than this are one structure's corrupt input


class FrameFailure(Exception):
    """A frame whose prediction cannot be scored (corrupt input, non-finite or wrongly shaped output)."""


def wants_virial(frame: Frame, card: ModelCard) -> bool:
    """A virial is scored where the frame has one, is periodic, and the model predicts stress."""
    return frame.virial is not None and frame.periodic and card.capabilities.stress


# A molecule this small is checked by all pair distances at once (microseconds); larger or periodic
# structures go through ASE's neighbour list.
DIRECT_OVERLAP_ATOMS = 200


def overlapping_pair(atoms: Atoms) -> tuple[int, int, float] | None:
    """The first pair of atoms closer than OVERLAP_DISTANCE, periodic images included, if any."""
    if not atoms.pbc.any() and len(atoms) <= DIRECT_OVERLAP_ATOMS:
        distances = np.linalg.norm(atoms.positions[:, None, :] - atoms.positions[None, :, :], axis=-1)
        i, j = np.nonzero(np.triu(distances < OVERLAP_DISTANCE, k=1))
        return (int(i[0]), int(j[0]), float(distances[i[0], j[0]])) if len(i) else None
    from ase.neighborlist import neighbor_list  # scipy.spatial: imported where it is needed

    i, j, distance = neighbor_list("ijd", atoms, OVERLAP_DISTANCE)
    return (int(i[0]), int(j[0]), float(distance[0])) if len(i) else None


def prepared_atoms(frame: Frame, padding: float, card: ModelCard) -> Atoms:
    """The frame's structure as `card`'s model receives it; overlapping atoms are a FrameFailure."""
    atoms = prepare_for_model(card, frame.atoms, padding)
    # Atoms on top of each other are corrupt input: a model would still return a number for them.
    # Checked on the frame as stored: preparing moves no atom against another, and a molecule's
    # vacuum box (CHGNet's) would cost the neighbour search ~7 ms of empty bins per frame.
    pair = overlapping_pair(frame.atoms)
    if pair is not None:
        i, j, distance = pair
        raise FrameFailure(f"atoms {i} and {j} overlap ({distance:.3f} Å apart)")
    return atoms


def checked_prediction(
    frame: Frame, card: ModelCard, atoms: Atoms, energy: float, forces: np.ndarray, stress: np.ndarray | None
) -> dict[str, Any]:
    """Energy (eV), forces (eV/Å) and, where scored, virial (eV) from a model's output on the
    prepared `atoms` (stress 3 × 3, ASE's sign); non-finite or wrongly shaped output is a FrameFailure."""
    forces = np.asarray(forces, float)
    prediction: dict[str, Any] = {"energy": float(energy), "forces": forces}
    if wants_virial(frame, card):
        if stress is None:
            raise FrameFailure("no stress predicted")
        prediction["virial"] = -np.asarray(stress, float) * atoms.get_volume()
    for name, value in prediction.items():
        if not np.all(np.isfinite(value)):
            raise FrameFailure(f"non-finite {name} predicted")
    if forces.shape != (frame.n_atoms, 3):
        raise FrameFailure(f"forces of shape {forces.shape}, expected ({frame.n_atoms}, 3)")
    return prediction


def predict_frame(calculator: BaseCalculator, frame: Frame, padding: float, card: ModelCard) -> dict[str, Any]:
    """Energy (eV), forces (eV/Å) and, where scored, virial (eV) of the frame as `card`'s model sees it."""
    atoms = prepared_atoms(frame, padding, card)
    atoms.calc = calculator
    energy = float(atoms.get_potential_energy())
    forces = np.asarray(atoms.get_forces(), float)
    stress = np.asarray(atoms.get_stress(voigt=False), float) if wants_virial(frame, card) else None
    return checked_prediction(frame, card, atoms, energy, forces, stress)


# Force components kept per frame for the site's parity plot (evenly spaced over the frame's 3N): enough
# to show a model's spread, small enough that a large set's records stay light.
PARITY_FORCE_COMPONENTS = 24


def _parity_pairs(reference: np.ndarray, predicted: np.ndarray, limit: int) -> list[list[float]]:
    """[reference, predicted] pairs of up to `limit` evenly spaced components, rounded to 0.1 meV."""
    flat_reference, flat_predicted = reference.ravel(), predicted.ravel()
    picks = np.unique(np.linspace(0, flat_reference.size - 1, min(limit, flat_reference.size)).round().astype(int))
    return [[round(float(flat_reference[i]), 4), round(float(flat_predicted[i]), 4)] for i in picks]


def frame_record(frame: Frame, prediction: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The frame's error record, as `metrics.force_field.force_field_metrics` reads it."""
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
            # [reference, predicted] force components (eV/Å) for the parity plot; not scored
            "force_parity": _parity_pairs(frame.forces, prediction["forces"], PARITY_FORCE_COMPONENTS),
        }
    if frame.virial is not None and "virial" in prediction:
        per_atom = (prediction["virial"] - frame.virial) / frame.n_atoms
        record |= {
            "virial_sse": float(np.sum(per_atom**2)),
            "virial_sae": float(np.sum(np.abs(per_atom))),
            "virial_n": int(per_atom.size),
            # [reference, predicted] virial components per atom (eV/atom) for the parity plot; not scored
            "virial_parity": _parity_pairs(frame.virial / frame.n_atoms, prediction["virial"] / frame.n_atoms, 9),
        }
    return record
