"""ResultStore: TaskResults and campaign outputs in a local directory or S3 object storage.

Every write is atomic: a reader sees the old object or the whole new one, never a torn file.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import fsspec
from pydantic import ValidationError

from lambench_core.errors import InputError
from lambench_core.results.record import TaskResult

log = logging.getLogger(__name__)

RESULTS = "results"
FAILURES = "failures"
CAMPAIGNS = "campaigns"


class StoreBackend(Protocol):
    url: str

    def read_bytes(self, path: str) -> bytes | None: ...
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, path: str) -> None: ...


class LocalBackend:
    """A directory; atomic writes by writing a uniquely named sibling and renaming it."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.url = self.root.as_uri()
        self._fs = fsspec.filesystem("file")
        self._fs.makedirs(str(self.root), exist_ok=True)

    def _full(self, path: str) -> str:
        return str(self.root / path)

    def read_bytes(self, path: str) -> bytes | None:
        full = self._full(path)
        if not self._fs.isfile(full):
            return None
        return bytes(self._fs.cat_file(full))

    def write_bytes(self, path: str, data: bytes) -> None:
        full = Path(self._full(path))
        full.parent.mkdir(parents=True, exist_ok=True)
        temporary = full.with_name(f".{full.name}.{uuid.uuid4().hex}.tmp")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, full)

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, path: str) -> None:
        Path(self._full(path)).unlink(missing_ok=True)


BackendOpener = Callable[[str], StoreBackend]
def _s3(url: str) -> StoreBackend:
    from lambench_core.results.s3 import S3Backend

    return S3Backend(url)


_BACKENDS: dict[str, BackendOpener] = {
    "": lambda url: LocalBackend(Path(url)),
    "file": lambda url: LocalBackend(Path(urlparse(url).path)),
    "s3": _s3,
}


def open_backend(url: str | Path) -> StoreBackend:
    """The backend behind a store URL: a path, file://... or s3://bucket/prefix."""
    return ResultStore.open(url).backend


def register_backend(scheme: str, opener: BackendOpener) -> None:
    _BACKENDS[scheme] = opener


class ResultStore:
    def __init__(self, backend: StoreBackend) -> None:
        self.backend = backend

    @classmethod
    def open(cls, url: str | Path) -> ResultStore:
        text = str(url)
        scheme = urlparse(text).scheme if "://" in text else ""
        try:
            opener = _BACKENDS[scheme]
        except KeyError:
            schemes = ", ".join(s or "a path" for s in _BACKENDS)
            raise InputError("--store", None, f"unsupported store URL {text!r} (schemes: {schemes})") from None
        return cls(opener(text))

    @property
    def url(self) -> str:
        return self.backend.url

    # --- task results -------------------------------------------------------------------------
    def put(self, result: TaskResult) -> None:
        """Store a result: scored ones under results/, wholly failed ones under failures/.

        A failure never occupies the result's key, so the next run retries it.
        """
        data = result.model_dump_json(indent=1).encode()
        if result.status == "failed":
            self.backend.write_bytes(f"{FAILURES}/{result.key}.json", data)
            return
        self.backend.write_bytes(f"{RESULTS}/{result.key}.json", data)
        self.backend.delete(f"{FAILURES}/{result.key}.json")

    def get(self, key: str) -> TaskResult | None:
        return self._read(f"{RESULTS}/{key}.json", key)

    def get_failure(self, key: str) -> TaskResult | None:
        return self._read(f"{FAILURES}/{key}.json", key)

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def keys(self) -> list[str]:
        return [Path(p).stem for p in self.backend.list(RESULTS) if p.endswith(".json")]

    def _read(self, path: str, key: str) -> TaskResult | None:
        data = self.backend.read_bytes(path)
        if data is None:
            return None
        try:
            result = TaskResult.model_validate_json(data)
        except ValidationError:
            # An unreadable object is treated as absent (and so recomputed), never as a result.
            log.warning("ignoring unreadable result %s in %s", path, self.url)
            return None
        if result.key != key:
            log.warning("ignoring %s: it holds key %s", path, result.key)
            return None
        return result

    # --- campaign outputs ---------------------------------------------------------------------
    def put_campaign_file(self, campaign: str, name: str, data: bytes) -> str:
        path = f"{CAMPAIGNS}/{campaign}/{name}"
        self.backend.write_bytes(path, data)
        return path

    def get_campaign_file(self, campaign: str, name: str) -> bytes | None:
        return self.backend.read_bytes(f"{CAMPAIGNS}/{campaign}/{name}")
