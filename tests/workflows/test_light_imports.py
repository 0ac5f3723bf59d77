"""Every campaign step is a fresh Python process, so what a process imports is paid once per step
(benchmarks/harness_overhead.py). These modules stay free of the heavy packages they do not use;
each check runs in a fresh interpreter, so an earlier test's imports cannot hide a regression."""

from __future__ import annotations

import subprocess
import sys

import pytest

# (what one process imports and calls, packages it must not load, why it is run)
LIGHT = [
    ("import workflows.cli, workflows.local, workflows.driven", ("dflow", "scipy", "torch"), "the CLI"),
    (
        "import ops.campaign; from lambench_core.models.registry import known_families; known_families()",
        ("scipy", "ase.io", "torch"),
        "the plan, aggregate and publish steps",
    ),
    ("import lambench_core.data.catalog_doc", ("ase.io", "scipy"), "the aggregate step's certificate table"),
]


@pytest.mark.parametrize(("code", "absent", "who"), LIGHT, ids=[who for _, _, who in LIGHT])
def test_processes_import_only_what_they_use(code, absent, who):
    check = f"{code}\nimport sys\nprint(' '.join(m for m in {absent!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{who} imports {done.stdout.strip()}"
