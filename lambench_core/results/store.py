"""ResultStore: TaskResults and campaign outputs in a local directory or S3 object storage.

Every write is atomic: a reader sees the old object or the whole new one, never a torn file, and a
write that fails (disk full, store unreachable) leaves nothing behind.

Nothing read back is trusted: a result must parse, hold the key it is stored under, agree with its
own provenance and with the job planned under that key, and stay within physical bounds
(`trust.result_problem`). An object that does not is moved aside to `quarantine/` with a file
saying why, one line says so, and the job counts as not computed, so the next run computes it again.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import fsspec
from pydantic import ValidationError

from lambench_core.errors import InputError, LambenchError, first_validation_problem
from lambench_core.results.record import TaskResult
from lambench_core.results.trust import Problem, result_problem

log = logging.getLogger(__name__)

RESULTS = "results"
FAILURES = "failures"
CAMPAIGNS = "campaigns"
AGGREGATES = "aggregates"  # aggregates/<inputs digest>/<file>: reused while no input changed
QUARANTINE = "quarantine"


class UnreadableObject(LambenchError):
    """Something that is not an object stands where one should be (a directory, a device)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


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
        full = Path(self._full(path))
        if not full.is_file():
            if full.is_symlink() or full.exists():
                raise UnreadableObject(path, "a directory or special file, not a file")
            return None
        return bytes(self._fs.cat_file(str(full)))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a uniquely named sibling and rename it over the target; on any failure (disk full,
        permissions, an interrupt) the sibling is removed and one error names the object."""
        full = Path(self._full(path))
        if full.is_dir() and not full.is_symlink():
            raise UnreadableObject(path, "a directory stands where the file goes")
        temporary = full.with_name(f".{full.name}.{secrets.token_hex(8)}.tmp")
        try:
            full.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, full)
        except BaseException as exc:
            try:
                temporary.unlink(missing_ok=True)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise LambenchError(f"{self.url}/{path}: write failed ({type(exc).__name__}: {exc})") from None
            raise

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
        full = Path(self._full(path))
        if full.is_dir() and not full.is_symlink():
            raise UnreadableObject(path, "a directory stands where a file should be")
        full.unlink(missing_ok=True)

    def move(self, path: str, target: str) -> None:
        """Rename a file, link or directory within the store."""
        destination = Path(self._full(target))
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(self._full(path), destination)


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
            self._write(f"{FAILURES}/{result.key}.json", data)
            return
        self._write(f"{RESULTS}/{result.key}.json", data)
        failure = f"{FAILURES}/{result.key}.json"
        try:
            self.backend.delete(failure)
        except UnreadableObject as exc:
            self._quarantine(failure, ("(file)", exc.reason))

    def _write(self, path: str, data: bytes) -> None:
        try:
            self.backend.write_bytes(path, data)
        except UnreadableObject as exc:  # a directory in the way: moved aside, then written
            self._quarantine(path, ("(file)", exc.reason))
            self.backend.write_bytes(path, data)

    def get(self, key: str) -> TaskResult | None:
        return self._read(f"{RESULTS}/{key}.json", key)

    def get_failure(self, key: str) -> TaskResult | None:
        return self._read(f"{FAILURES}/{key}.json", key)

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def keys(self) -> list[str]:
        return [Path(p).stem for p in self.backend.list(RESULTS) if p.endswith(".json")]

    def _read(self, path: str, key: str) -> TaskResult | None:
        """The result stored at `path` if it is a trustworthy result of `key`; else None, the
        object quarantined (so the job is computed again) and one line saying why."""
        try:
            data = self.backend.read_bytes(path)
        except UnreadableObject as exc:
            self._quarantine(path, ("(file)", exc.reason))
            return None
        if data is None:
            return None
        try:
            result = TaskResult.model_validate_json(data)
        except ValidationError as exc:
            # An unreadable object is treated as absent (and so recomputed), never as a result.
            self._quarantine(path, first_validation_problem(exc))
            return None
        problem = result_problem(result, key)
        if problem is not None:
            self._quarantine(path, problem)
            return None
        return result

    def _quarantine(self, path: str, problem: Problem) -> None:
        """Move the object at `path` to quarantine/ beside a file saying why, and say so once."""
        field, reason = problem
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        stem, dot, suffix = path.rpartition(".")
        target = f"{QUARANTINE}/{stem}.{stamp}{dot}{suffix}" if dot else f"{QUARANTINE}/{path}.{stamp}"
        where = f"{self.url}/{path}"
        note = f"{where}: {field}: {reason}"
        try:
            _move(self.backend, path, target)
        except FileNotFoundError:
            return  # another reader moved it first, and said so
        except Exception as exc:  # noqa: BLE001 - the store may refuse; the object is still not used
            # It stays where it is: say so once per object, not at every read.
            if where not in _IGNORED:
                _IGNORED.add(where)
                log.warning("lambench: ignoring %s (could not move it to %s/: %s)", note, QUARANTINE, exc)
            return
        try:
            stamped = f"{note}\nquarantined at {datetime.now(UTC).isoformat()} (pid {os.getpid()})\n"
            self.backend.write_bytes(f"{target}.reason.txt", stamped.encode())
        except Exception:  # noqa: BLE001 - the line below still says why
            log.debug("no reason file beside %s", target, exc_info=True)
        log.warning("lambench: quarantined %s; moved to %s/%s, the job will be computed again", note, self.url, target)

    # --- campaign outputs ---------------------------------------------------------------------
    def put_campaign_file(self, campaign: str, name: str, data: bytes) -> str:
        path = f"{CAMPAIGNS}/{campaign}/{name}"
        self.backend.write_bytes(path, data)
        return path

    def put_aggregate_file(self, digest: str, name: str, data: bytes) -> None:
        self.backend.write_bytes(f"{AGGREGATES}/{digest}/{name}", data)

    def get_aggregate_file(self, digest: str, name: str) -> bytes | None:
        try:
            return self.backend.read_bytes(f"{AGGREGATES}/{digest}/{name}")
        except UnreadableObject:
            return None

    def get_campaign_file(self, campaign: str, name: str) -> bytes | None:
        try:
            return self.backend.read_bytes(f"{CAMPAIGNS}/{campaign}/{name}")
        except UnreadableObject:
            return None


def _move(backend: StoreBackend, path: str, target: str) -> None:
    """Move an object within a store: the backend's own move where it has one, else copy and delete."""
    move = getattr(backend, "move", None)
    if move is not None:
        move(path, target)
        return
    data = backend.read_bytes(path)
    if data is None:
        raise FileNotFoundError(path)
    backend.write_bytes(target, data)
    backend.delete(path)


# Objects that could not be moved aside, already reported by this process.
_IGNORED: set[str] = set()
