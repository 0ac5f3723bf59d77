"""`lambench data fetch`: real HTTP against a server on 127.0.0.1, real archives, a temporary data dir."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from lambench_core.data.fetch import DownloadError, fetch_dataset
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import DATA_DIR_ENV, REGISTRY_FILE, load_datasets, load_manifest
from lambench_core.errors import ChecksumError, InputError
from workflows.cli import main

N_FRAMES = 4
FAST = {"timeout": 5.0, "attempts": 3, "backoff": 0.01}


# --- data ---------------------------------------------------------------------------------------


def copper_frames(n: int = N_FRAMES) -> list:
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=i)
        atoms.calc = EMT()
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        frames.append(atoms)
    return frames


def extxyz_bytes() -> bytes:
    buffer = io.StringIO()
    write(buffer, copper_frames(), format="extxyz")
    return buffer.getvalue().encode()


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def good_archive() -> bytes:
    # A top directory and a second, padded file make the archive big enough to cut mid-way.
    padding = np.random.default_rng(0).bytes(200_000)
    return tar_gz({"cu_set/frames.extxyz": extxyz_bytes(), "cu_set/README.bin": padding})


def sha256_file_bytes(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def write_manifest(tmp_path: Path, url: str, sha: str | None = None, fmt: str = "extxyz", n: int = N_FRAMES) -> Path:
    entry = {
        "name": "cu_ext",
        "domain": "inorganic_materials",
        "format": fmt,
        "labels": ["energy", "forces", "virial"],
        "n_frames": n,
        "level_of_theory": {"code": "ase-emt"},
        "source": "test",
        "licence": "CC0-1.0",
        "download_url": url,
        "archive_sha256": sha,
    }
    manifest = tmp_path / "manifest" / "datasets.yaml"
    manifest.parent.mkdir(exist_ok=True)
    manifest.write_text(yaml.safe_dump({"datasets": [entry]}))
    return manifest


# --- server -------------------------------------------------------------------------------------


@dataclass
class Route:
    body: bytes
    kind: str = "range"  # range | cut_once | corrupt | ignore_range | html
    cut_at: int = 0
    cut_done: bool = False


@dataclass
class ServerState:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        requested_range = self.headers.get("Range")
        state.requests.append((self.path, requested_range))
        route = state.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        if route.kind == "html":
            self._send(200, b"<html><body>Download page</body></html>", "text/html; charset=utf-8")
            return
        body = route.body
        if route.kind == "corrupt":
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
        start = 0
        if requested_range and route.kind != "ignore_range":
            start = int(re.fullmatch(r"bytes=(\d+)-", requested_range).group(1))
            if start >= len(body):
                self._send(416, b"", extra={"Content-Range": f"bytes */{len(body)}"})
                return
            status, extra = 206, {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
        else:
            status, extra = 200, {}
        payload = body[start:]
        if route.kind == "cut_once" and not route.cut_done:
            route.cut_done = True
            # Promise the whole body, send part of it, then drop the connection.
            self._send(status, payload, extra=extra, send_only=route.cut_at)
            self.close_connection = True
            return
        self._send(status, payload, extra=extra)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/octet-stream",
        extra: dict[str, str] | None = None,
        send_only: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload if send_only is None else payload[:send_only])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url_of(server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch) -> Path:
    """Nothing touches ~/.cache, and no proxy stands between us and 127.0.0.1."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    return root


# --- tests --------------------------------------------------------------------------------------


def test_fetch_registers_a_set_that_loads_and_verifies(tmp_path, server, good_archive, isolated):
    server.state.routes["/cu.tar.gz"] = Route(good_archive)
    manifest = write_manifest(tmp_path, url_of(server, "/cu.tar.gz"))
    entry = fetch_dataset(load_datasets(manifest), "cu_ext", **FAST)

    assert entry.archive_sha256 == sha256_file_bytes(good_archive)  # recorded, since none was published
    assert [f.path for f in entry.files] == ["cu_ext/data/cu_set/frames.extxyz"]
    document = load_datasets(manifest)  # the registry in $LAMBENCH_DATA_DIR, merged over the manifest
    found = document.get("cu_ext")
    assert found.files == entry.files and document.source(found) == isolated / REGISTRY_FILE
    assert document.is_present(found)
    frames, digest = load_frames(document, found)
    assert len(frames) == N_FRAMES and len(digest) == 64
    assert frames[0].energy == pytest.approx(copper_frames(1)[0].get_potential_energy())
    assert not (isolated / "cu_ext" / "download").exists()  # the archive is not kept once registered
    assert not list((isolated / "cu_ext").glob(".data-*"))


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server, good_archive):
    cut = len(good_archive) // 3
    server.state.routes["/cu.tar.gz"] = Route(good_archive, kind="cut_once", cut_at=cut)
    sha = sha256_file_bytes(good_archive)
    manifest = write_manifest(tmp_path, url_of(server, "/cu.tar.gz"), sha=sha)
    logged: list[str] = []
    entry = fetch_dataset(load_datasets(manifest), "cu_ext", log=logged.append, **FAST)

    assert entry.archive_sha256 == sha
    ranges = [r for _, r in server.state.requests]
    assert ranges[0] is None and ranges[1] == f"bytes={cut}-"
    assert any("resuming" in line for line in logged)
    assert len(load_frames(load_datasets(manifest), load_datasets(manifest).get("cu_ext"))[0]) == N_FRAMES


def test_a_server_that_ignores_range_restarts_from_zero(tmp_path, server, good_archive, isolated):
    server.state.routes["/cu.tar.gz"] = Route(good_archive, kind="ignore_range")
    manifest = write_manifest(tmp_path, url_of(server, "/cu.tar.gz"), sha=sha256_file_bytes(good_archive))
    part = isolated / "cu_ext" / "download" / "cu.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from another download")
    entry = fetch_dataset(load_datasets(manifest), "cu_ext", **FAST)
    assert server.state.requests[0][1] == f"bytes={len(b'stale bytes from another download')}-"
    assert entry.archive_sha256 == sha256_file_bytes(good_archive)


def test_a_complete_part_file_answered_with_416_is_used(tmp_path, server, good_archive, isolated):
    server.state.routes["/cu.tar.gz"] = Route(good_archive)
    manifest = write_manifest(tmp_path, url_of(server, "/cu.tar.gz"), sha=sha256_file_bytes(good_archive))
    part = isolated / "cu_ext" / "download" / "cu.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(good_archive)
    fetch_dataset(load_datasets(manifest), "cu_ext", **FAST)
    assert server.state.requests == [("/cu.tar.gz", f"bytes={len(good_archive)}-")]


def test_corrupted_download_is_deleted_and_a_later_fetch_succeeds(tmp_path, server, good_archive, isolated):
    server.state.routes["/cu.tar.gz"] = Route(good_archive, kind="corrupt")
    manifest = write_manifest(tmp_path, url_of(server, "/cu.tar.gz"), sha=sha256_file_bytes(good_archive))
    with pytest.raises(ChecksumError) as caught:
        fetch_dataset(load_datasets(manifest), "cu_ext", **FAST)
    assert caught.value.field == "datasets[cu_ext].archive_sha256"
    assert caught.value.source == str(manifest)
    assert str(manifest) in str(caught.value)
    download = isolated / "cu_ext" / "download"
    assert not list(download.iterdir())  # neither the file nor a .part to resume from
    assert not (isolated / REGISTRY_FILE).exists() and not (isolated / "cu_ext" / "data").exists()

    server.state.routes["/cu.tar.gz"] = Route(good_archive)
    server.state.requests.clear()
    entry = fetch_dataset(load_datasets(manifest), "cu_ext", **FAST)
    assert server.state.requests == [("/cu.tar.gz", None)]  # started clean, no Range
    assert entry.archive_sha256 == sha256_file_bytes(good_archive)


def test_refetch_is_a_no_op_and_a_damaged_set_is_fetched_again(tmp_path, server, good_archive, isolated):
    server.state.routes["/cu.tar.gz"] = Route(good_archive)
    manifest = write_manifest(tmp_path, url_of(server, "/cu.tar.gz"))
    first = fetch_dataset(load_datasets(manifest), "cu_ext", **FAST)
    registry = isolated / REGISTRY_FILE
    stamp = registry.stat().st_mtime_ns
    logged: list[str] = []
    again = fetch_dataset(load_datasets(manifest), "cu_ext", log=logged.append, **FAST)
    assert again == first and len(server.state.requests) == 1
    assert registry.stat().st_mtime_ns == stamp and "already fetched" in logged[0]

    frames = isolated / "cu_ext" / "data" / "cu_set" / "frames.extxyz"
    frames.write_text(frames.read_text().replace("Cu", "Ag", 1))
    fetch_dataset(load_datasets(manifest), "cu_ext", **FAST)
    assert len(server.state.requests) == 2
    document = load_datasets(manifest)
    assert len(load_frames(document, document.get("cu_ext"))[0]) == N_FRAMES


def test_other_registry_entries_are_preserved(tmp_path, server, good_archive, isolated):
    isolated.mkdir()
    other = {
        "name": "kept",
        "domain": "molecules",
        "format": "extxyz",
        "labels": ["energy"],
        "level_of_theory": {"code": "x"},
        "source": "s",
        "licence": "l",
        "download_url": "http://127.0.0.1:9/x",
    }
    (isolated / REGISTRY_FILE).write_text(yaml.safe_dump({"datasets": [other]}))
    server.state.routes["/cu.tar.gz"] = Route(good_archive)
    fetch_dataset(load_datasets(write_manifest(tmp_path, url_of(server, "/cu.tar.gz"))), "cu_ext", **FAST)
    assert load_manifest(isolated / REGISTRY_FILE).names() == ["cu_ext", "kept"]


def evil_tar(kind: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        good = extxyz_bytes()
        info = tarfile.TarInfo("set/frames.extxyz")
        info.size = len(good)
        tar.addfile(info, io.BytesIO(good))
        if kind in ("dotdot", "absolute"):
            info = tarfile.TarInfo("../evil" if kind == "dotdot" else "/tmp/lambench-evil-absolute")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        elif kind == "symlink":
            info = tarfile.TarInfo("set/link")
            info.type, info.linkname = tarfile.SYMTYPE, "../../outside"
            tar.addfile(info)
        elif kind == "chained":
            # Each link looks harmless on its own; together they leave the target.
            info = tarfile.TarInfo("s")
            info.type, info.linkname = tarfile.SYMTYPE, "."
            tar.addfile(info)
            info = tarfile.TarInfo("set/t")
            info.type, info.linkname = tarfile.SYMTYPE, "../s/.."
            tar.addfile(info)
        elif kind == "device":
            info = tarfile.TarInfo("set/null")
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tar.addfile(info)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("kind", "member"),
    [
        ("dotdot", "../evil"),
        ("absolute", "/tmp/lambench-evil-absolute"),
        ("symlink", "set/link"),
        ("chained", "set/t"),
        ("device", "set/null"),
    ],
)
def test_unsafe_tar_members_are_refused(tmp_path, isolated, kind, member):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(evil_tar(kind))
    manifest = write_manifest(tmp_path, "http://127.0.0.1:9/never-used.tar.gz")
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    with pytest.raises(InputError) as caught:
        fetch_dataset(load_datasets(manifest), "cu_ext", archive=archive, **FAST)
    assert caught.value.source == str(archive) and caught.value.field == member
    assert member in str(caught.value)
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    assert not Path("/tmp/lambench-evil-absolute").exists()
    assert not (tmp_path / "evil").exists() and not (isolated / "outside").exists()
    set_dir = isolated / "cu_ext"
    assert not (set_dir / "data").exists() and not list(set_dir.glob(".data-*"))
    assert not (isolated / REGISTRY_FILE).exists()
    assert archive.exists()  # a file the user handed us is never deleted


def zip_symlink(bundle: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system, info.external_attr = 3, (0o120777 << 16)  # S_IFLNK | 0777
    bundle.writestr(info, target)


@pytest.mark.parametrize(("kind", "member"), [("dotdot", "../evil"), ("symlink", "set/link"), ("chained", "set/t")])
def test_unsafe_zip_members_are_refused(tmp_path, isolated, kind, member):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("set/frames.extxyz", extxyz_bytes())
        if kind == "dotdot":
            bundle.writestr("../evil", b"evil")
        elif kind == "symlink":
            zip_symlink(bundle, "set/link", "../../outside")
        else:
            zip_symlink(bundle, "s", ".")
            zip_symlink(bundle, "set/t", "../s/..")
    manifest = write_manifest(tmp_path, "http://127.0.0.1:9/never-used.zip")
    with pytest.raises(InputError) as caught:
        fetch_dataset(load_datasets(manifest), "cu_ext", archive=archive, **FAST)
    assert caught.value.field == member
    assert not (tmp_path / "evil").exists() and not (isolated / "cu_ext" / "data").exists()


def test_a_deepmd_mixed_archive_is_detected_and_loads(tmp_path, isolated):
    import dpdata

    systems = dpdata.MultiSystems(*(dpdata.LabeledSystem(a, fmt="ase/structure") for a in copper_frames()))
    systems.to_deepmd_npy_mixed(str(tmp_path / "mixed"))
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((tmp_path / "mixed").rglob("*")):
            if path.is_file():
                bundle.write(path, Path("lambench_set") / path.relative_to(tmp_path / "mixed"))
    manifest = write_manifest(tmp_path, "http://127.0.0.1:9/unused", fmt="deepmd/npy")
    entry = fetch_dataset(load_datasets(manifest), "cu_ext", archive=archive, **FAST)
    assert entry.format == "deepmd/npy/mixed"
    document = load_datasets(manifest)
    frames, _ = load_frames(document, document.get("cu_ext"))
    assert len(frames) == N_FRAMES and all(f.atoms.get_chemical_symbols() == ["Cu"] * 4 for f in frames)


def test_cli_fetches_end_to_end(tmp_path, server, good_archive, capsys, monkeypatch):
    server.state.routes["/cu.tar.gz"] = Route(good_archive)
    manifest = write_manifest(tmp_path, url_of(server, "/cu.tar.gz"), sha=sha256_file_bytes(good_archive))
    root = tmp_path / "elsewhere"
    assert main(["data", "fetch", "cu_ext", "--manifest", str(manifest), "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"is in {root / 'cu_ext' / 'data' / 'cu_set' / 'frames.extxyz'}" in out
    assert f"{DATA_DIR_ENV}={root}" in out
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    document = load_datasets(manifest)
    assert len(load_frames(document, document.get("cu_ext"))[0]) == N_FRAMES

    assert main(["data", "fetch", "cu_ext", "--manifest", str(manifest), "--data-dir", str(root)]) == 0
    assert "already fetched" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, server, capsys):
    server.state.routes["/page"] = Route(b"", kind="html")
    manifest = write_manifest(tmp_path, url_of(server, "/page"))
    assert main(["data", "fetch", "cu_ext", "--manifest", str(manifest)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lambench: error:") and "--archive" in err[0]
    assert main(["data", "fetch", "nosuch", "--manifest", str(manifest)]) == 2
    assert "unknown dataset 'nosuch'" in capsys.readouterr().err


def test_a_dead_server_fails_after_bounded_retries(tmp_path):
    manifest = write_manifest(tmp_path, "http://127.0.0.1:9/cu.tar.gz")  # discard port: refused
    with pytest.raises(DownloadError, match="after 3 attempts"):
        fetch_dataset(load_datasets(manifest), "cu_ext", **FAST)


def test_built_in_external_entries_validate():
    document = load_manifest()
    external = [e for e in document.entries() if e.download_url]
    assert all(not e.files for e in external)
    assert len([e for e in external if e.use == "force_field"]) == 18
    assert len([e for e in external if e.use == "property" and e.format == "directory"]) == 12
    assert {e.group for e in external if e.level == "wb97"} == {"AQM", "H_nature_2022", "AIMD_Chig"}
