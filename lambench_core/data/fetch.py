"""Fetch an external dataset: resumable download, checksum, safe extraction, registration.

A fetched set lives in `<data_dir>/<name>/data/`; `<data_dir>/registry.yaml` is a dataset manifest
whose entries are the built-in ones with `files` filled in, so `load_datasets()` sees the set and
`load_frames()` verifies every file before reading it.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Literal

import yaml

from lambench_core.data.checksums import path_sha256, verify_dataset
from lambench_core.data.manifest import (
    DIRECTORY_FORMAT,
    REGISTRY_FILE,
    DatasetEntry,
    DatasetFile,
    ManifestDocument,
    data_dir,
    load_manifest,
)
from lambench_core.errors import ChecksumError, InputError, LambenchError
from lambench_core.hashing import sha256_file

Log = Callable[[str], None]
MemberKind = Literal["file", "dir", "symlink", "hardlink", "special"]

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_S = 2.0
DEEPMD_FORMATS = ("deepmd/npy", "deepmd/npy/mixed")
XYZ_SUFFIXES = (".extxyz", ".xyz")
_CHUNK = 1 << 20
_STAGING_PREFIX = ".data-"


class DownloadError(LambenchError):
    """The download failed on every attempt, or the server answered with something unusable."""


class _Transient(Exception):
    """A failure worth another attempt; the next one resumes from what the .part file holds."""


def fetch_dataset(
    document: ManifestDocument,
    name: str,
    target_root: Path | None = None,
    *,
    archive: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF_S,
    log: Log | None = None,
) -> DatasetEntry:
    """Download, verify, unpack and register dataset `name`; return its registered entry.

    `archive` registers a file already downloaded by hand instead of downloading `download_url`
    (for sets published behind a web page rather than at a direct link). A set that is already
    registered and whose files verify is left alone.
    """
    say: Log = log or (lambda message: None)
    entry = document.get(name)
    root = (target_root or data_dir()).expanduser().resolve()
    if entry.files and not entry.download_url and archive is None:
        verify_dataset(document, entry)  # names the missing or damaged file
        say(f"{name} ships with lambench ({document.source(entry)}); nothing to fetch")
        return entry
    if not entry.download_url and archive is None:
        raise InputError(document.source(entry), f"datasets[{name}].download_url", "not set: nothing to fetch from")
    set_dir = root / name
    set_dir.mkdir(parents=True, exist_ok=True)
    # Two fetches of one set would interleave bytes in the same .part file.
    with _locked(set_dir / ".lock"):
        registered = _verified_registration(root, entry)
        if registered is not None:
            say(f"{name} is already fetched and verified in {set_dir / 'data'}")
            return registered
        if archive is None:
            assert entry.download_url is not None
            source = _download(entry.download_url, name, set_dir / "download", timeout, attempts, backoff, say)
        else:
            source = archive.expanduser().resolve()
            if not source.is_file():
                raise InputError(source, None, "no such file")
        owned = archive is None
        digest = _check_archive(document, entry, source, delete_on_mismatch=owned)
        fetched = _unpack_and_place(entry, source, set_dir, owned=owned, say=say)
        fetched = DatasetEntry.model_validate(fetched.model_dump() | {"archive_sha256": digest})
        registry = _register(root, fetched)
        check = load_manifest(registry)
        verify_dataset(check, check.get(name))
        if owned:
            # The unpacked set is verified and registered; the archive would only double the disk use.
            shutil.rmtree(set_dir / "download", ignore_errors=True)
        say(f"{name}: {len(fetched.files)} {fetched.format} path(s) in {set_dir / 'data'}, registered in {registry}")
        return check.get(name)


# --- already fetched? ---------------------------------------------------------------------------


def _verified_registration(root: Path, entry: DatasetEntry) -> DatasetEntry | None:
    """The registered entry of this set if its files are all there and match their checksums."""
    registry = root / REGISTRY_FILE
    if not registry.is_file():
        return None
    fetched = load_manifest(registry)  # a registry we cannot read is reported, never overwritten
    if entry.name not in fetched.names():
        return None
    found = fetched.get(entry.name)
    stale = found.download_url != entry.download_url or (
        entry.archive_sha256 is not None and found.archive_sha256 != entry.archive_sha256
    )
    if stale or not found.files:
        return None
    try:
        verify_dataset(fetched, found)
    except InputError:  # missing or damaged files (ChecksumError too): fetch again
        return None
    return found


# --- download -----------------------------------------------------------------------------------


def _download(url: str, name: str, folder: Path, timeout: float, attempts: int, backoff: float, say: Log) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / _file_name(url)
    if final.is_file():
        # Only a complete download is renamed from .part; its checksum is checked next.
        return final
    part = final.with_name(final.name + ".part")
    for attempt in range(1, max(1, attempts) + 1):
        try:
            _download_once(url, name, part, timeout, say)
            break
        except _Transient as exc:
            if attempt >= attempts:
                raise DownloadError(
                    f"downloading {url} failed after {attempts} attempts ({exc}); "
                    f"run the fetch again to resume from {part}"
                ) from None
            delay = backoff * 2 ** (attempt - 1)
            say(f"{name}: {exc}; attempt {attempt + 1} of {attempts} in {delay:.1f} s")
            time.sleep(delay)
    os.replace(part, final)
    return final


def _download_once(url: str, name: str, part: Path, timeout: float, say: Log) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "lambench-fetch", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            if _content_range_total(exc.headers.get("Content-Range")) == offset:
                return  # the .part file already holds the whole file
            part.unlink(missing_ok=True)
            raise _Transient("the server cannot resume this download; starting over") from None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, refused, reset, timed out
        raise _Transient(str(getattr(exc, "reason", exc))) from None
    with response:
        _refuse_web_page(url, name, response.headers.get("Content-Type", ""))
        mode = "wb"
        if offset and response.status == 206:
            if _content_range_start(response.headers.get("Content-Range")) != offset:
                part.unlink(missing_ok=True)
                raise _Transient("the server resumed at another offset; starting over")
            mode = "ab"
            say(f"{name}: resuming {url} at byte {offset}")
        elif offset:
            say(f"{name}: the server ignored the range request; downloading {url} from the start")
            offset = 0
        else:
            say(f"{name}: downloading {url}")
        length = response.headers.get("Content-Length", "")
        expected = int(length) if length.isdigit() else None
        received = _copy_body(response, part, mode, offset)
    if expected is not None and received < expected:
        raise _Transient(f"connection closed after {offset + received} of {offset + expected} bytes")


def _copy_body(response: http.client.HTTPResponse, part: Path, mode: str, offset: int) -> int:
    received = 0
    with part.open(mode) as sink:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"connection lost after {offset + received} bytes ({exc})") from None
            if not chunk:
                return received
            sink.write(chunk)
            received += len(chunk)


def _refuse_web_page(url: str, name: str, content_type: str) -> None:
    # A landing page saved as the "archive" would only fail later with a puzzling message.
    if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        raise DownloadError(
            f"{url} is a web page, not a data archive: download {name} from that page and register it "
            f"with `lambench data fetch {name} --archive FILE`"
        )


def _content_range_start(header: str | None) -> int | None:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", header or "")
    return int(match.group(1)) if match else None


def _content_range_total(header: str | None) -> int | None:
    match = re.match(r"bytes (?:\*|\d+-\d+)/(\d+)", header or "")
    return int(match.group(1)) if match else None


def _file_name(url: str) -> str:
    base = posixpath.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return safe or "download"


# --- checksum -----------------------------------------------------------------------------------


def _check_archive(document: ManifestDocument, entry: DatasetEntry, archive: Path, delete_on_mismatch: bool) -> str:
    actual = sha256_file(archive)
    pinned = entry.archive_sha256
    if pinned is None or actual == pinned:
        return actual
    if delete_on_mismatch:
        archive.unlink(missing_ok=True)  # so the next fetch downloads it afresh instead of resuming
    raise ChecksumError(
        document.source(entry),
        f"datasets[{entry.name}].archive_sha256",
        f"{archive.name} has sha256 {actual}, the manifest pins {pinned}"
        + ("; the download was deleted" if delete_on_mismatch else ""),
    )


# --- unpack -------------------------------------------------------------------------------------


def _unpack_and_place(entry: DatasetEntry, source: Path, set_dir: Path, owned: bool, say: Log) -> DatasetEntry:
    """Unpack into a staging directory, find the data there, then rename it to `data/`."""
    for leftover in set_dir.glob(_STAGING_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)  # from a fetch that crashed; never registered
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=set_dir))
    try:
        _unpack(source, staging, keep_source=not owned)
        systems, fmt = _find_data(staging, entry.format, source)
        if fmt != entry.format:
            say(f"{entry.name}: the archive holds {fmt} data (the manifest says {entry.format}); registering {fmt}")
        files = [
            DatasetFile(
                path=(PurePosixPath(entry.name) / "data" / path.relative_to(staging).as_posix()).as_posix(),
                sha256=path_sha256(path),
            )
            for path in systems
        ]
        _swap_into_place(staging, set_dir / "data")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DatasetEntry.model_validate(entry.model_dump() | {"files": files, "format": fmt})


def _unpack(source: Path, staging: Path, keep_source: bool) -> None:
    if zipfile.is_zipfile(source):
        _extract_zip(source, staging)
    elif _is_tar(source):
        _extract_tar(source, staging)
    else:  # a single data file
        (shutil.copy2 if keep_source else shutil.move)(source, staging / source.name)
    _check_links_stay_inside(staging, source)


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError, EOFError):
        return False


def _check_member(archive: Path, name: str, kind: MemberKind, link: str, symlinks: set[str]) -> str:
    """Reject a member that could write or point outside the target; return its normalized path."""
    text = name.replace("\\", "/")
    path = PurePosixPath(text)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", text):
        raise InputError(archive, name, "absolute path in the archive")
    if ".." in path.parts:
        raise InputError(archive, name, "'..' in a member path would write outside the target")
    if kind == "special":
        raise InputError(archive, name, "device file, FIFO or other special file")
    normalized = posixpath.normpath(text)
    if any(str(parent) in symlinks for parent in PurePosixPath(normalized).parents):
        raise InputError(archive, name, "written through a symbolic link")
    if kind in ("symlink", "hardlink"):
        target = link.replace("\\", "/")
        # A symlink is relative to its own directory, a hard link to the archive's root.
        base = posixpath.dirname(normalized) if kind == "symlink" else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise InputError(
                archive,
                name,
                f"{'symbolic' if kind == 'symlink' else 'hard'} link to {link!r} points outside the target",
            )
        if kind == "symlink":
            symlinks.add(normalized)
    return normalized


def _tar_kind(member: tarfile.TarInfo) -> MemberKind:
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isdir():
        return "dir"
    if member.isfile():
        return "file"
    return "special"


def _extract_tar(archive: Path, staging: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            symlinks: set[str] = set()
            for member in members:
                _check_member(archive, member.name, _tar_kind(member), member.linkname, symlinks)
            # The stdlib "data" filter re-checks every path against the real tree as it extracts.
            tar.extractall(staging, members=members, filter="data")
    except tarfile.FilterError as exc:
        bad: tarfile.TarInfo | None = getattr(exc, "tarinfo", None)
        raise InputError(archive, bad.name if bad else None, f"unsafe member ({exc})") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(archive, None, f"cannot unpack ({exc.__class__.__name__}: {exc})") from None


def _zip_kind(info: zipfile.ZipInfo) -> MemberKind:
    if info.is_dir():
        return "dir"
    # On Unix the high bits hold st_mode; many writers leave the file-type bits at zero.
    file_type = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
    if file_type == stat.S_IFLNK:
        return "symlink"
    if file_type in (0, stat.S_IFREG, stat.S_IFDIR):
        return "file"
    return "special"


def _extract_zip(archive: Path, staging: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            symlinks: set[str] = set()
            plan = []
            for info in bundle.infolist():
                kind = _zip_kind(info)
                link = bundle.read(info).decode() if kind == "symlink" else ""
                plan.append((info, kind, link, _check_member(archive, info.filename, kind, link, symlinks)))
            for info, kind, link, relative in plan:
                _write_zip_member(bundle, info, kind, link, staging, relative, archive)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        raise InputError(archive, None, f"cannot unpack ({exc.__class__.__name__}: {exc})") from None


def _write_zip_member(
    bundle: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    kind: MemberKind,
    link: str,
    staging: Path,
    relative: str,
    archive: Path,
) -> None:
    destination = staging / relative
    if kind == "dir":
        destination.mkdir(parents=True, exist_ok=True)
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(destination.parent, staging):
        raise InputError(archive, info.filename, "written through a link that leaves the target")
    if kind == "symlink":
        os.symlink(link, destination)
        return
    with bundle.open(info) as stream, destination.open("xb") as sink:
        shutil.copyfileobj(stream, sink, _CHUNK)


def _inside(path: Path, root: Path) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top + os.sep)


def _check_links_stay_inside(staging: Path, archive: Path) -> None:
    """Links that are each harmless can still combine to leave the target: check the real tree."""
    for folder, dirs, files in os.walk(staging):
        for entry in dirs + files:
            path = Path(folder) / entry
            if path.is_symlink() and not _inside(path, staging):
                raise InputError(
                    archive, path.relative_to(staging).as_posix(), "symbolic link resolves outside the target"
                )


def _swap_into_place(staging: Path, final: Path) -> None:
    """Rename the complete staging directory to `final`, so `final` is never half-written."""
    old: Path | None = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX + "old-", dir=final.parent))
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- find the data ------------------------------------------------------------------------------


def _find_data(staging: Path, declared: str, archive: Path) -> tuple[list[Path], str]:
    """The paths to list in the manifest, and the format they are really in."""
    if declared == DIRECTORY_FORMAT:
        # A property task's own layout: the archive's single top folder, or everything it holds.
        top = [p for p in staging.iterdir() if not p.name.startswith(".")]
        root = top[0] if len(top) == 1 and top[0].is_dir() else staging
        if not any(p.is_file() for p in root.rglob("*")):
            raise InputError(archive, None, "holds no files")
        return [root], declared
    if declared == "extxyz":
        found = sorted(p for p in staging.rglob("*") if p.is_file() and p.suffix.lower() in XYZ_SUFFIXES)
        if not found:
            raise InputError(archive, None, "holds no *.extxyz or *.xyz file")
        return found, declared
    if declared not in DEEPMD_FORMATS:
        raise InputError(archive, None, f"lambench cannot locate {declared!r} data in an archive")
    mixed, plain = _deepmd_systems(staging)
    # LAMBench ships both flavours and tells them apart by real_atom_types.npy; reading a mixed
    # system as deepmd/npy would silently give every atom the first element of the type map.
    if mixed and plain:
        raise InputError(archive, None, "holds both deepmd/npy and deepmd/npy/mixed systems; split them into two sets")
    if mixed:
        return mixed, "deepmd/npy/mixed"
    if plain:
        return plain, "deepmd/npy"
    raise InputError(
        archive, None, "holds no DeePMD system (a directory with type.raw or type_map.raw and set.* directories)"
    )


def _deepmd_systems(staging: Path) -> tuple[list[Path], list[Path]]:
    mixed: list[Path] = []
    plain: list[Path] = []
    folders = [staging, *sorted(p for p in staging.rglob("*") if p.is_dir() and not p.is_symlink())]
    for folder in folders:
        sets = [s for s in folder.glob("set.*") if s.is_dir()]
        if not sets:
            continue
        if (folder / "type_map.raw").is_file() and any((s / "real_atom_types.npy").is_file() for s in sets):
            # dpdata's mixed reader walks below the path it is given: list only the outermost.
            if not any(folder.is_relative_to(m) for m in mixed):
                mixed.append(folder)
        elif (folder / "type.raw").is_file():
            plain.append(folder)
    return mixed, plain


# --- register -----------------------------------------------------------------------------------

REGISTRY_HEADER = (
    "# Datasets fetched by `lambench data fetch`; paths are relative to this file.\n"
    "# Rewritten by every fetch: edit the built-in manifest instead.\n"
)


def _register(root: Path, entry: DatasetEntry) -> Path:
    """Add or replace `entry` in the registry, keeping every other entry as it was."""
    registry = root / REGISTRY_FILE
    with _locked(root / ".registry.lock"):
        raw_entries: list[dict] = []
        if registry.is_file():
            load_manifest(registry)  # validates it: never overwrite a registry we cannot read
            raw_entries = list((yaml.safe_load(registry.read_text()) or {}).get("datasets") or [])
        new = entry.model_dump(mode="json", exclude_none=True)
        names = [item.get("name") for item in raw_entries]
        if entry.name in names:
            raw_entries[names.index(entry.name)] = new
        else:
            raw_entries.append(new)
        text = REGISTRY_HEADER + yaml.safe_dump({"datasets": raw_entries}, sort_keys=False, allow_unicode=True)
        _write_atomically(registry, text)
    return registry


def _write_atomically(path: Path, text: str) -> None:
    handle = tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False, encoding="utf-8"
    )
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
