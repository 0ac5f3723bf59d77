"""The last step of `lambench data certify`: the certificate from the check labels in the cache,
written beside the set (`certificate_<level>.json`) and pinned in the set's entry file, so that a
certificate is part of the set's identity and a relabel (new entry, no certificate) voids it."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from lambench_core.data.checksums import path_sha256
from lambench_core.data.labelling.convergence import Certificate, certify
from lambench_core.data.labelling.plan import LabellingPlan
from lambench_core.data.labelling.recipe import LabelCache
from lambench_core.errors import LambenchError
from lambench_core.hashing import sha256_file


def certificate_name(level: str) -> str:
    return f"certificate_{level}.json"


def write_certificate(plan: LabellingPlan) -> Path:
    target = plan.certify
    if target is None:
        raise LambenchError("this labelling plan is not a certification")
    labels_file = Path(target.labels_file)
    if path_sha256(labels_file) != target.labels_sha256:
        raise LambenchError(f"{labels_file} changed since the certification was planned: certify again")
    from ase.io import read  # here: ase.io costs 0.5 s, and the aggregate step reads certificates only

    shipped = list(read(labels_file, index=":"))
    position = {str(atoms.info.get("frame_id", i)): i for i, atoms in enumerate(shipped)}
    cache = LabelCache(Path(plan.cache))
    keys = plan.keys[target.level]
    checked = {}
    missing = []
    for (frame_id, _), key in zip(target.sample, keys, strict=True):
        labels = cache.get(key)
        if labels is None:
            missing.append(frame_id)
        else:
            checked[position[frame_id]] = labels
    if missing:
        raise LambenchError(
            f"{len(missing)} of {len(keys)} check labels are missing ({', '.join(missing)}): "
            "their labelling steps failed; rerun `lambench data certify` to retry only those"
        )
    certificate = certify(
        dataset=target.dataset,
        level=target.level,
        labels_sha256=target.labels_sha256,
        shipped_reference=target.shipped_reference,
        frames=shipped,
        sample=[(position[frame_id], why) for frame_id, why in target.sample],
        checked=checked,
        wall_seconds=sum(labels.wall_seconds for labels in checked.values()),
    )
    entry_file = Path(target.entry_file)
    path = entry_file.parent / certificate_name(target.level)
    previous = _readable(path)
    note = target.note
    if not note and previous is not None and previous.labels_sha256 == certificate.labels_sha256:
        note = previous.note  # a maintainer's reason stays while the labels do
    certificate = certificate.model_copy(update={"note": note})
    path.write_text(certificate.model_dump_json(indent=1) + "\n")
    pin_certificate(entry_file, path)
    return path


def _readable(path: Path) -> Certificate | None:
    """The certificate at `path`, or None where there is none or it is of an older format."""
    try:
        return read_certificate(path)
    except (FileNotFoundError, ValidationError):
        return None


def read_certificate(path: Path) -> Certificate:
    return Certificate.model_validate_json(path.read_text())


def pin_certificate(entry_file: Path, certificate: Path) -> None:
    """Record the certificate's file and checksum in the entry, keeping everything else as it is."""
    document = yaml.safe_load(entry_file.read_text())
    document["certificate"] = {"path": certificate.name, "sha256": sha256_file(certificate)}
    entry_file.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def certificate_status(entry_file: Path, labels_sha256: str) -> tuple[str, Certificate | None]:
    """("passed" | "failed" | "uncertified" | "stale", certificate) of a set's level."""
    level = entry_file.name.removesuffix(".entry.yaml")
    path = entry_file.parent / certificate_name(level)
    if not path.exists():
        return "uncertified", None
    certificate = read_certificate(path)
    if certificate.labels_sha256 != labels_sha256:
        return "stale", certificate
    return ("passed" if certificate.passed else "failed"), certificate
