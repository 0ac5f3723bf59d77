"""Read a dataset's frames, by format: extxyz through ASE, deepmd formats through dpdata."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress

from lambench_core.data.checksums import verify_dataset
from lambench_core.data.frames import Frame
from lambench_core.data.manifest import DIRECTORY_FORMAT, DatasetEntry, ManifestDocument
from lambench_core.errors import InputError

FrameReader = Callable[[Path, str], list[Frame]]

_MIN_VOLUME = 1e-6  # Å³; a periodic cell at most this large is degenerate

_READERS: dict[str, FrameReader] = {}


def register_format(name: str) -> Callable[[FrameReader], FrameReader]:
    def register(reader: FrameReader) -> FrameReader:
        _READERS[name] = reader
        return reader

    return register


def known_formats() -> list[str]:
    return sorted(_READERS)


@register_format("extxyz")
def read_extxyz(path: Path, dataset: str) -> list[Frame]:
    from ase.io import read  # ase.io pulls in scipy: imported where frames are read

    frames = []
    for index, atoms in enumerate(read(path, index=":", format="extxyz")):
        calc = atoms.calc
        results = dict(calc.results) if calc is not None else {}
        virial = None
        if "virial" in atoms.info:
            virial = np.asarray(atoms.info.pop("virial"), float).reshape(3, 3)
        elif "stress" in results and atoms.cell.rank == 3 and atoms.cell.volume > _MIN_VOLUME:
            # A zero-volume cell has no virial: _check_labels refuses such a frame, naming it.
            stress = np.asarray(results["stress"], float)
            full = voigt_6_to_full_3x3_stress(stress) if stress.shape == (6,) else stress
            virial = -full * atoms.get_volume()
        atoms.calc = None
        frames.append(
            Frame(
                frame_id=str(atoms.info.get("frame_id", f"{dataset}:{path.name}:{index}")),
                atoms=atoms,
                energy=float(results["energy"]) if "energy" in results else None,
                forces=np.asarray(results["forces"], float) if "forces" in results else None,
                virial=virial,
            )
        )
    return frames


def _frames_from_dpdata_system(system: object, label: str) -> list[Frame]:
    data = system.data  # type: ignore[attr-defined]
    names = np.array(data["atom_names"])[data["atom_types"]]
    periodic = not data.get("nopbc", False)
    frames = []
    for index in range(len(data["coords"])):
        atoms = Atoms(
            symbols=list(names),
            positions=data["coords"][index],
            cell=data["cells"][index] if periodic else None,
            pbc=periodic,
        )
        frames.append(
            Frame(
                frame_id=f"{label}:{index}",
                atoms=atoms,
                energy=float(data["energies"][index]) if "energies" in data else None,
                forces=np.asarray(data["forces"][index], float) if "forces" in data else None,
                virial=np.asarray(data["virials"][index], float) if "virials" in data else None,
            )
        )
    return frames


@register_format("deepmd/npy")
def read_deepmd_npy(path: Path, dataset: str) -> list[Frame]:
    import dpdata

    system = dpdata.LabeledSystem(str(path), fmt="deepmd/npy")
    return _frames_from_dpdata_system(system, f"{dataset}:{path.name}")


@register_format("deepmd/npy/mixed")
def read_deepmd_npy_mixed(path: Path, dataset: str) -> list[Frame]:
    import dpdata

    systems = dpdata.MultiSystems.from_file(str(path), fmt="deepmd/npy/mixed", labeled=True)
    frames: list[Frame] = []
    for system_index, system in enumerate(list(systems)):  # type: ignore[call-overload]
        frames.extend(_frames_from_dpdata_system(system, f"{dataset}:{path.name}:{system_index}"))
    return frames


def load_frames(document: ManifestDocument, entry: DatasetEntry) -> tuple[list[Frame], str]:
    """Verify checksums, read every file and check the labels the manifest promises.

    Returns the frames and the dataset digest.
    """
    try:
        reader = _READERS[entry.format]
    except KeyError:
        raise InputError(
            document.source(entry),
            f"datasets[{entry.name}].format",
            f"unknown format {entry.format!r} (known: {', '.join(known_formats())})",
        ) from None
    digest = verify_dataset(document, entry)
    frames: list[Frame] = []
    origins: list[int] = []  # the index in entry.files of each frame's file
    for index, dataset_file in enumerate(entry.files):
        path = document.file_path(entry, dataset_file)
        try:
            read_frames = reader(path, entry.name)
        except (ImportError, MemoryError):
            raise  # a missing reader package or memory is not the file's fault
        except Exception as exc:
            # A truncated or inconsistent file (frame cut short, mismatched arrays, missing labels):
            # one line naming the manifest, the file's field and the reader's reason.
            raise InputError(
                document.source(entry),
                f"datasets[{entry.name}].files.{index}",
                f"{path} cannot be read as {entry.format}: {type(exc).__name__}: {exc}".replace("\n", " "),
            ) from None
        frames.extend(read_frames)
        origins.extend([index] * len(read_frames))
    _check_labels(document, entry, frames)
    _check_values(document, entry, frames, origins)
    return frames, digest


def _check_labels(document: ManifestDocument, entry: DatasetEntry, frames: list[Frame]) -> None:
    where = f"datasets[{entry.name}]"
    source = document.source(entry)
    if not frames:
        raise InputError(source, f"{where}.files", "the files hold no frames")
    if entry.n_frames is not None and len(frames) != entry.n_frames:
        raise InputError(source, f"{where}.n_frames", f"manifest says {entry.n_frames}, files hold {len(frames)}")
    for frame in frames:
        cell = frame.atoms.cell
        if frame.atoms.pbc.any() and (cell.rank < 3 or abs(cell.volume) <= _MIN_VOLUME):
            # Scored as it is, a degenerate periodic cell would silently pass for a molecule.
            raise InputError(
                source,
                f"{where}.files",
                f"frame {frame.frame_id}: periodic cell (pbc {frame.atoms.pbc.tolist()}) has zero volume",
            )
        missing = [
            label
            for label, value in (
                ("energy", frame.energy),
                ("forces", frame.forces),
                ("virial", frame.virial),
            )
            if label in entry.labels and value is None
        ]
        if missing:
            raise InputError(
                source, f"{where}.labels", f"frame {frame.frame_id} lacks {', '.join(missing)}"
            )
        if frame.forces is not None and frame.forces.shape != (frame.n_atoms, 3):
            raise InputError(
                source,
                f"{where}.files",
                f"frame {frame.frame_id}: forces have shape {frame.forces.shape}, "
                f"expected ({frame.n_atoms}, 3)",
            )


def _first_non_finite(values: np.ndarray) -> str | None:
    """'[i, j] is nan' for the first non-finite element of an array (None when all are finite)."""
    bad = np.argwhere(~np.isfinite(values))
    if not len(bad):
        return None
    index = tuple(int(i) for i in bad[0])
    position = f"[{', '.join(map(str, index))}]" if index else ""
    return f"{position} is {values[index] if index else values}"


def _check_values(document: ManifestDocument, entry: DatasetEntry, frames: list[Frame], origins: list[int]) -> None:
    """What scoring cannot survive, checked once where frames are loaded: a frame with no atoms,
    non-finite positions, cell or labels, and two frames under one id (scores are resampled by frame
    id). One error names the manifest, the file (its field and path), the frame and the field."""
    source = document.source(entry)
    first_seen: dict[str, int] = {}
    for frame, index in zip(frames, origins, strict=True):
        path = document.file_path(entry, entry.files[index])
        field = f"datasets[{entry.name}].files.{index}"

        def refuse(message: str, field: str = field, path: Path = path, frame: Frame = frame) -> InputError:
            return InputError(source, field, f"{path}: frame {frame.frame_id}: {message}")

        if frame.frame_id in first_seen:
            other = first_seen[frame.frame_id]
            elsewhere = "earlier in the same file" if other == index else f"in files.{other} too"
            raise refuse(f"duplicate frame id (it appears {elsewhere}); frame ids must be unique")
        first_seen[frame.frame_id] = index
        if frame.n_atoms == 0:
            raise refuse("has no atoms")
        arrays: list[tuple[str, np.ndarray | float | None]] = [
            ("positions", frame.atoms.positions),
            ("cell", np.asarray(frame.atoms.cell.array, float)),
            ("energy", frame.energy),
            ("forces", frame.forces),
            ("virial", frame.virial),
        ]
        for name, value in arrays:
            if value is None:
                continue
            problem = _first_non_finite(np.asarray(value, float))
            if problem is not None:
                raise refuse(f"{name}{problem} (positions, cell and labels must be finite numbers)")


def load_directory(document: ManifestDocument, entry: DatasetEntry) -> tuple[Path, str]:
    """A `directory` dataset's verified root and digest; the property task reads the files itself."""
    if entry.format != DIRECTORY_FORMAT:
        field = f"datasets[{entry.name}].format"
        raise InputError(document.source(entry), field, f"is {entry.format!r}, not a directory")
    digest = verify_dataset(document, entry)
    return document.file_path(entry, entry.files[0]), digest
