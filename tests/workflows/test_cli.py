from __future__ import annotations

import subprocess
import sys

from workflows.cli import main


def test_unknown_model_is_one_line_naming_the_known_ones(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", "--models", "nosuch", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unknown model 'nosuch'" in lines[0] and "chgnet-0.3.0" in lines[0] and "sevennet-0" in lines[0]


def test_unknown_task(tmp_path, capsys):
    assert main(["run", "--tasks", "force_field/nope", "--workdir", str(tmp_path)]) == 2
    assert "unknown task 'force_field/nope'" in capsys.readouterr().err


def test_bad_worker_count(tmp_path, capsys):
    assert main(["run", "--workers", "0", "--workdir", str(tmp_path)]) == 2
    assert "--workers" in capsys.readouterr().err


def test_models_and_tasks_are_listed(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "sevennet-mf-0" in listing and "mace-mp-0-medium" in listing
    assert main(["tasks"]) == 0
    assert "force_field/molecules_small" in capsys.readouterr().out
