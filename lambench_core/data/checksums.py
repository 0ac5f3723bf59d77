"""Checksums of dataset files and directories, verified before any frame is read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lambench_core.data.manifest import DatasetEntry, ManifestDocument
from lambench_core.errors import ChecksumError, InputError
from lambench_core.hashing import sha256_file, sha256_json


def tree_sha256(path: Path) -> str:
    """Digest of a directory: its files' relative paths and digests, in sorted order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def path_sha256(path: Path) -> str:
    return tree_sha256(path) if path.is_dir() else sha256_file(path)


def verify_dataset(document: ManifestDocument, entry: DatasetEntry) -> str:
    """Check every file of a dataset; return the dataset digest used in result identities."""
    source = document.source(entry)
    if not entry.files:
        raise InputError(
            source, f"datasets[{entry.name}].files", f"not on this machine; run `lambench data fetch {entry.name}`"
        )
    for index, dataset_file in enumerate(entry.files):
        path = document.file_path(entry, dataset_file)
        field = f"datasets[{entry.name}].files.{index}.sha256"
        if not path.exists():
            raise InputError(
                source,
                f"datasets[{entry.name}].files.{index}.path",
                f"{path} does not exist"
                + (f"; fetch it from {entry.download_url}" if entry.download_url else ""),
            )
        actual = path_sha256(path)
        if actual != dataset_file.sha256:
            raise ChecksumError(
                source, field, f"{path} has sha256 {actual}, the manifest pins {dataset_file.sha256}"
            )
    if entry.certificate is not None:
        path = document.file_path(entry, entry.certificate)
        field = f"datasets[{entry.name}].certificate.sha256"
        if not path.exists():
            raise InputError(source, f"datasets[{entry.name}].certificate.path", f"{path} does not exist")
        if (actual := sha256_file(path)) != entry.certificate.sha256:
            raise ChecksumError(
                source, field, f"{path} has sha256 {actual}, the manifest pins {entry.certificate.sha256}"
            )
    return dataset_digest(entry)


def dataset_digest(entry: DatasetEntry) -> str:
    # The certificate is part of the set's identity; a set without one keeps the digest it had.
    certificate = [entry.certificate.sha256] if entry.certificate is not None else []
    return sha256_json([f.sha256 for f in entry.files] + certificate)
