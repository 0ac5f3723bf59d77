"""Shared fixtures: temporary stores and small hand-made frames."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Torch and BLAS threads: the suite runs on 2-core CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (SeaweedFS on 127.0.0.1) for the whole session."""
    from tests.support.s3_server import seaweedfs

    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The S3 server's endpoint and keys in this process's environment; returns the server."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return s3_server
from tests.support.slurm_cluster import slurm_cluster  # noqa: E402,F401  (the real one-node Slurm fixture)
