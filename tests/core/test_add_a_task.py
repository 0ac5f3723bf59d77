"""Adding a task is one module in the tasks package and one suite entry, nothing else: a toy task
(the H2 bond energy against a fixed reference) written to a folder on the package's path, and a
suite file with one more entry, run through `lambench run` like a built-in task
(docs/add-a-task.md walks through the same two files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from lambench_core.tasks.suite import BUILTIN_SUITE

REPO = Path(__file__).resolve().parents[2]

TOY_TASK = '''
"""A toy task: the H2 bond energy (E(H2) - 2 E(H)) against the reference -4.75 eV."""

from ase import Atoms
from pydantic import BaseModel, ConfigDict

from lambench_core.categories import Category
from lambench_core.results.record import Metric
from lambench_core.tasks.base import ItemResults, StandaloneTask, register_task
from lambench_core.tasks.evaluation import evaluate_items

REFERENCE_EV = -4.75


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bond_length: float = 0.74


@register_task
class ToyBondTask(StandaloneTask[Params]):
    name = "toy_h2_bond"
    category = Category.PROPERTY
    version = "1"
    Params = Params
    scored_metrics = ("abs_error",)
    dummy_values = {"abs_error": 4.75}

    @classmethod
    def summarize(cls, records, params):
        errors = [abs(r["bond_ev"] - REFERENCE_EV) for r in records]
        return {"abs_error": Metric(value=sum(errors) / len(errors) if errors else None, unit="eV")}

    def run(self, model, params, context):
        molecule = Atoms("H2", positions=[(0, 0, 0), (0, 0, params.bond_length)], cell=[10, 10, 10])
        atom = Atoms("H", cell=[10, 10, 10])

        def energy(atoms):
            atoms.calc = model.calculator
            return atoms.get_potential_energy()

        items = [("h2", (molecule, atom))]
        results: ItemResults = evaluate_items(
            model,
            items,
            lambda pair: list(pair),
            lambda name, pair: {"bond_ev": energy(pair[0].copy()) - 2 * energy(pair[1].copy())},
            context.progress,
        )
        return self.output(params, results)
'''


def test_a_toy_task_is_one_module_and_one_suite_entry(tmp_path):
    # 1. The module: in a folder that the tasks package's path includes (a plugin folder; in the
    #    repository it would be lambench_core/tasks/toy_h2_bond.py).
    plugins = tmp_path / "plugins"
    (plugins / "lambench_core" / "tasks").mkdir(parents=True)
    (plugins / "lambench_core" / "tasks" / "toy_h2_bond.py").write_text(TOY_TASK)
    extend = tmp_path / "extend"
    extend.mkdir()
    (extend / "sitecustomize.py").write_text(
        "import lambench_core.tasks\n"
        f"lambench_core.tasks.__path__.append({str(plugins / 'lambench_core' / 'tasks')!r})\n"
    )
    # 2. The suite entry: the built-in suite plus one line.
    suite = yaml.safe_load(BUILTIN_SUITE.read_text())
    suite["tasks"].append({"task": "toy_h2_bond", "domain": "molecules", "params": {"quick": {"bond_length": 0.75}}})
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(yaml.safe_dump(suite))

    env = dict(os.environ, PYTHONPATH=str(extend), LAMBENCH_WEIGHTS_DIR=str(tmp_path / "no-weights"))
    run = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", "--models", "dummy,emt", "--tasks", "toy_h2_bond",
         "--suite", str(suite_file), "--bootstrap", "0", "--workdir", str(tmp_path / "work")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = [json.loads(p.read_text()) for p in (tmp_path / "work/store/results").glob("*.json")]
    by_model = {r["model"]: r for r in results}
    assert set(by_model) == {"dummy", "emt"}
    # The dummy's energies are per-element constants: its bond energy is 0, its error the reference's size.
    assert abs(by_model["dummy"]["metrics"]["abs_error"]["value"] - 4.75) < 1e-9
    assert by_model["emt"]["provenance"]["params"] == {"bond_length": 0.75}
    assert "toy_h2_bond" in (next((tmp_path / "work/runs").iterdir()) / "site/leaderboard.md").read_text()
