"""`lambench serve`: a run's site over HTTP on 127.0.0.1 only, found from the site, run or work folder."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from lambench_core.metrics.table import table_to_parquet
from lambench_core.report.leaderboard import leaderboard_from_table
from lambench_core.report.publish import site_files, write_folder
from tests.support.site_tables import synthetic_table

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path) -> Path:
    table = synthetic_table()
    site = tmp_path / "work" / "runs" / "20261207T000000Z-abcd" / "site"
    write_folder(site_files(leaderboard_from_table("served", table), table_to_parquet(table), b""), site)
    return tmp_path / "work"


@pytest.mark.parametrize("given", ["work", "run", "site"])
def test_serve_answers_on_loopback_with_the_runs_pages(workdir, given):
    run = workdir / "runs" / "20261207T000000Z-abcd"
    target = {"work": workdir, "run": run, "site": run / "site"}[given]
    process = subprocess.Popen(
        [sys.executable, "-m", "workflows.cli", "serve", str(target), "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        assert "at http://127.0.0.1:" in line, line + process.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url, timeout=30) as response:
            page = response.read().decode()
        assert response.status == 200 and "lambench leaderboard" in page and "Campaign served" in page
        root = url.rsplit("/", 1)[0]
        with urllib.request.urlopen(f"{root}/assets/plotly.min.js", timeout=30) as response:
            assert response.status == 200
        # Nothing outside the site folder is served.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{root}/../../../etc/passwd", timeout=30)
        assert refused.value.code == 404
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_serve_names_a_folder_without_a_site(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "serve", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"lambench: error: {tmp_path}: no site here: give a run's site/ folder, a run folder or a work directory"
