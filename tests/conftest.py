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
