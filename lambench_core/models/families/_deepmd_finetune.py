"""DeePMD-kit's own fine-tuning as the fine-tune protocol of the deepmd family.

For each fold: the training structures are written as DeePMD systems (one system per structure,
since a DeePMD system holds frames of one composition), an input file takes the pretrained model's
own descriptor settings with a new property fitting net, and `dp --pt train input.json --finetune
<checkpoint> --model-branch RANDOM` trains every parameter from the pretrained descriptor (the
fitting net starts from random weights and DeePMD's output statistics of the fold's targets). The
fold's test structures are then predicted with `deepmd.infer.DeepProperty` on the trained checkpoint.

Budget: `epochs` passes over the fold's training part at one structure per step (DeePMD cannot batch
structures of different compositions), so the other families' fine-tunes and this one see the same
structures the same number of times.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from lambench_core.models.families._deepmd_runtime import import_deepmd
from lambench_core.models.weights import expected_weights_path

if TYPE_CHECKING:
    from lambench_core.models.loading import LoadedModel

PROPERTY = "target"
_LOG_TAIL = 1500


class DeepmdTrainingError(RuntimeError):
    """`dp --pt train` failed; the message ends with the tail of its log."""


def pretrained_model_params(checkpoint: Path, head: str | None) -> dict[str, Any]:
    """The model section a checkpoint was trained with (the chosen branch of a multi-task one)."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    params = state["model"]["_extra_state"]["model_params"]
    branches = params.get("model_dict")
    if branches:
        params = branches[head] if head in branches else next(iter(branches.values()))
    return dict(params)


def training_input(
    pretrained: dict[str, Any], systems: list[str], steps: int, seed: int, intensive: bool
) -> dict[str, Any]:
    model = {key: copy.deepcopy(value) for key, value in pretrained.items() if key not in ("fitting_net", "info")}
    model["fitting_net"] = {
        "type": "property",
        "property_name": PROPERTY,
        "task_dim": 1,
        "intensive": intensive,
        "seed": seed,
    }
    # torch.compile would spend minutes compiling on a CPU for a run of a few hundred steps.
    model["use_compile"] = False
    return {
        "model": model,
        "learning_rate": {
            "type": "exp",
            "start_lr": 5e-4,
            "stop_lr": 5e-5,
            "decay_steps": max(steps // 10, 1),
        },
        "loss": {"type": "property", "metric": ["mae"], "loss_func": "smooth_mae"},
        "training": {
            "training_data": {"systems": systems, "batch_size": 1},
            "numb_steps": steps,
            "seed": seed,
            "disp_file": "lcurve.out",
            "disp_freq": max(steps // 10, 1),
            "save_freq": steps,
        },
    }


def write_system(directory: Path, atoms: Atoms, type_map: list[str], target: float | None) -> None:
    """One structure as a DeePMD system (deepmd/npy): types, coordinates, cell, and its target."""
    frames = directory / "set.000"
    frames.mkdir(parents=True)
    (directory / "type_map.raw").write_text("\n".join(type_map) + "\n")
    (directory / "type.raw").write_text("\n".join(str(type_map.index(s)) for s in atoms.get_chemical_symbols()) + "\n")
    np.save(frames / "coord.npy", atoms.positions.reshape(1, -1))
    if atoms.pbc.all():
        np.save(frames / "box.npy", atoms.cell.array.reshape(1, 9))
    else:
        (directory / "nopbc").write_text("")
        np.save(frames / "box.npy", np.zeros((1, 9)))
    if target is not None:
        np.save(frames / f"{PROPERTY}.npy", np.array([[target]], dtype=float))


def run_dp_train(workdir: Path, checkpoint: Path) -> Path:
    """`dp --pt train input.json --finetune CHECKPOINT --model-branch RANDOM` in `workdir`; the trained checkpoint."""
    command = [
        sys.executable, "-m", "lambench_core.models.families._deepmd_runtime",
        "--pt", "train", "input.json", "--finetune", str(checkpoint), "--model-branch", "RANDOM",
    ]  # fmt: skip
    environment = {**os.environ, "DP_INTER_OP_PARALLELISM_THREADS": "1"}
    with (workdir / "train.log").open("w") as log:
        completed = subprocess.run(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=environment)
    trained = workdir / "model.ckpt.pt"
    if completed.returncode != 0 or not trained.exists():
        tail = (workdir / "train.log").read_text(errors="replace")[-_LOG_TAIL:]
        raise DeepmdTrainingError(f"dp --pt train exited with {completed.returncode}: ...{tail}")
    return trained


def predict(trained: Path, structures: Sequence[Atoms]) -> np.ndarray:
    potential = import_deepmd("deepmd.infer.deep_property").DeepProperty(str(trained))
    type_map = list(potential.get_type_map())
    predictions = []
    for atoms in structures:
        cell = atoms.cell.array.reshape(1, 9) if atoms.pbc.all() else None
        types = [type_map.index(symbol) for symbol in atoms.get_chemical_symbols()]
        output = potential.eval(atoms.positions.reshape(1, -1), cell, types)
        predictions.append(float(np.asarray(output[0]).ravel()[0]))
    return np.array(predictions)


class DeepmdFineTune:
    """The deepmd family's PropertyTrainer (lambench_core.models.family)."""

    description = "dp --pt train --finetune (all parameters, new property fitting net)"

    def __call__(
        self,
        model: LoadedModel,
        train: Sequence[Atoms],
        targets: np.ndarray,
        test: Sequence[Atoms],
        *,
        epochs: int,
        seed: int,
        intensive: bool,
    ) -> np.ndarray:
        checkpoint = expected_weights_path(model.card)
        if checkpoint is None:
            raise ValueError(f"model {model.card.name}: fine-tuning needs the pretrained checkpoint")
        pretrained = pretrained_model_params(checkpoint, model.head)
        type_map = list(pretrained["type_map"])
        with tempfile.TemporaryDirectory(prefix="lambench-dp-finetune-") as scratch:
            workdir = Path(scratch)
            systems = []
            for index, (atoms, target) in enumerate(zip(train, targets, strict=True)):
                write_system(workdir / f"train{index:05d}", atoms, type_map, float(target))
                systems.append(f"train{index:05d}")
            steps = epochs * len(systems)
            document = training_input(pretrained, systems, steps, seed, intensive)
            (workdir / "input.json").write_text(json.dumps(document, indent=1))
            trained = run_dp_train(workdir, checkpoint)
            return predict(trained, test)
