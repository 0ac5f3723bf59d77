"""The dummy model's errors on a dataset (the normalization of M_FF) and the dummy's own fit.

The dummy is the shipped `dummy` card by definition, not a campaign's choice: its errors are stored in
the manifest as properties of each set, so they are computed from that card alone, with the same
per-frame scoring as the force-field task (data/frame_scoring.py).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from lambench_core.categories import Category
from lambench_core.data.frame_scoring import frame_record, predict_frame
from lambench_core.data.frames import Frame
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import DatasetEntry, ManifestDocument, NormalizationErrors
from lambench_core.metrics.force_field import element_shifts, force_field_metrics
from lambench_core.models.card import load_card
from lambench_core.models.catalog import BUILTIN_CARDS
from lambench_core.models.loading import load_model
from lambench_core.models.preparation import unsupported_elements

DUMMY_CARD = BUILTIN_CARDS / "dummy.yaml"
DUMMY_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "weights" / "dummy_element_energies.json"
VACUUM_PADDING = 15.0  # Å, the force-field task's default
REASON_LENGTH = 300


def dummy_errors(document: ManifestDocument, entry: DatasetEntry) -> NormalizationErrors:
    """Score the dummy card on a dataset exactly as any model is scored."""
    frames, _ = load_frames(document, entry)
    return dummy_errors_of_frames(frames)


def dummy_errors_of_frames(frames: list[Frame]) -> NormalizationErrors:
    """The dummy card's force-field errors on `frames`; every frame must score."""
    model = load_model(load_card(DUMMY_CARD), None, "cpu")
    records = []
    for frame in frames:
        missing = unsupported_elements(model.card, frame.atoms)
        if missing:
            reason = f"model lacks element(s) {', '.join(missing)}"
            raise RuntimeError(f"the dummy model failed on {frame.frame_id}: {reason}")
        try:
            prediction = predict_frame(model.calculator, frame, VACUUM_PADDING, model.card)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:REASON_LENGTH]
            raise RuntimeError(f"the dummy model failed on {frame.frame_id}: {reason}") from exc
        records.append(frame_record(frame, prediction, 0.0))
    values = {name: metric.value for name, metric in force_field_metrics(records).items()}
    energy, force = values["energy_rmse_per_atom"], values["force_rmse"]
    if energy is None or force is None:
        raise RuntimeError("a force-field set needs energies and forces to be normalized")
    return NormalizationErrors(
        energy_rmse_per_atom=energy, force_rmse=force, virial_rmse_per_atom=values["virial_rmse_per_atom"]
    )


def dummy_element_energies(frames: list[Frame]) -> dict[str, float]:
    """Per-element energies (eV) whose sums best reproduce the frames' reference energies."""
    labelled = [frame for frame in frames if frame.energy is not None]
    counts = [dict(Counter(frame.atoms.get_chemical_symbols())) for frame in labelled]
    return element_shifts(counts, [float(frame.energy) for frame in labelled if frame.energy is not None])


def write_dummy_weights(document: ManifestDocument, path: Path = DUMMY_WEIGHTS) -> dict[str, float]:
    """Fit the dummy's element energies on every shipped set with energies, and save them."""
    frames: list[Frame] = []
    for entry in document.entries():
        # A set whose files are listed but missing is named by load_frames, not silently left out.
        if entry.use == Category.FORCE_FIELD and document.is_declared(entry) and "energy" in entry.labels:
            frames.extend(load_frames(document, entry)[0])
    energies = dummy_element_energies(frames)
    payload = {
        "description": "Least-squares per-element energies fitted on lambench's shipped reference sets",
        "datasets": [e.name for e in document.entries() if e.use == Category.FORCE_FIELD and document.is_declared(e)],
        "element_energies_eV": energies,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return energies
