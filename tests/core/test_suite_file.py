"""The suite as data: the built-in suite.yaml loads, its profiles give the expected params, and a
malformed suite file stops with one line naming the file and the field."""

from __future__ import annotations

import pytest
import yaml

from lambench_core.categories import Category
from lambench_core.data.manifest import load_datasets, load_manifest
from lambench_core.errors import InputError
from lambench_core.tasks.base import task_class
from lambench_core.tasks.suite import BUILTIN_SUITE, TaskSuite, load_suite
from tests.core.test_datasets import make_set


@pytest.fixture(scope="module")
def shipped():
    return load_manifest()


def defaults(task: str) -> dict:
    return task_class(task).Params().model_dump(mode="json")


def test_builtin_suite_loads_with_every_category():
    suite = load_suite()
    assert suite.path == BUILTIN_SUITE
    categories = {task_class(entry.task).category for entry in suite.entries}
    assert categories == set(Category)


def test_quick_profile_shrinks_applicability_and_probes_with_ridge_only(shipped):
    quick = TaskSuite.default(shipped, "quick")
    efficiency = quick.get("efficiency").params
    assert efficiency == defaults("efficiency") | {
        "max_atoms": 300, "eta_window": [100, 300], "time_budget_s": 60.0, "warmup": 1, "repeats": 3
    }
    md = quick.get("md_stability").params
    assert md["steps"] == 200 and md["log_interval"] == 5
    assert {(s["dataset"], s["frame"]) for s in md["systems"]} >= {("cu_bulk_pbe", 0), ("molecules_small_pbe", 28)}
    assert len(md["systems"]) == 7
    assert quick.get("adapt_g2_formation_enthalpy").params["mlp"] is False
    assert quick.get("adapt_dcdft_bulk_modulus").params["mlp"] is False
    assert "adapt_dcdft_volume" not in quick.names()
    assert "adapt_g2_formation_enthalpy/finetune" not in quick.names()


def test_full_profile_runs_the_tasks_own_defaults(shipped):
    full = TaskSuite.default(shipped, "full")
    assert full.get("efficiency").params == defaults("efficiency")
    assert full.get("md_stability").params == defaults("md_stability")
    assert full.get("adapt_g2_formation_enthalpy").params == defaults("adapt_g2_formation_enthalpy")
    finetune = full.get("adapt_g2_formation_enthalpy/finetune")
    assert finetune.task == "adapt_g2_formation_enthalpy" and finetune.params["protocol"] == "finetune"
    assert "adapt_dcdft_volume" in full.names()
    quick = TaskSuite.default(shipped, "quick")
    assert set(quick.names()) < set(full.names())


def test_force_field_instances_follow_the_manifest(tmp_path):
    manifest = make_set(tmp_path, dispersion={"method": "d3", "damping": "d3bj", "functional": "pbe"})
    suite = TaskSuite.default(load_datasets(manifest, registry=tmp_path / "none.yaml"), "quick")
    instance = suite.get("force_field/cu_emt")
    assert instance.category == Category.FORCE_FIELD and instance.domain == "inorganic_materials"
    assert instance.datasets == {"pbe": "cu_emt"} and instance.set_name == "cu_emt"
    assert instance.params["dispersion"] == {"method": "d3", "damping": "d3bj", "functional": "pbe"}
    # A set-bound property task whose set is not here stays out; one that reads no set is always in.
    assert "torsion_scans" not in suite.names() and "s22" in suite.names()


def test_another_suite_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "tasks": [
                    {"task": "s22", "domain": "molecules"},
                    {"task": "efficiency", "domain": "molecules", "profiles": ["full"], "params": {"full": {"warmup": 2}}},
                ]
            }
        )
    )
    document = load_manifest()
    assert TaskSuite.from_file(path, document, "quick").names() == ["s22"]
    full = TaskSuite.from_file(path, document, "full")
    assert full.names() == ["s22", "efficiency"] and full.get("efficiency").params["warmup"] == 2
    assert full.get("efficiency").domain == "molecules"


MALFORMED = [
    ({"task": "s22", "domain": "molecules", "colour": "red"}, "tasks[s22].colour"),
    ({"task": "s22"}, "tasks[s22].domain"),
    ({"task": "s22", "domain": "plasma"}, "tasks[s22].domain"),
    ({"task": "force_field", "domain": "molecules", "datasets": {"each_set": True}}, "tasks[force_field].domain"),
    ({"task": "s22", "domain": "molecules", "datasets": {"sets": "x"}}, "tasks[s22].datasets.sets"),
    ({"task": "efficiency", "domain": "molecules", "params": {"quick": {"max_atoms": -3}}},
     "tasks[efficiency].params.quick.max_atoms"),
    ({"task": "efficiency", "domain": "molecules", "params": {"full": {"maxatoms": 3}}},
     "tasks[efficiency].params.full.maxatoms"),
    ({"task": "efficiency", "domain": "molecules", "params": {"fast": {}}}, "tasks[efficiency].params.fast"),
    ({"task": "efficiency", "domain": "molecules", "profiles": ["full"], "params": {"quick": {"warmup": 2}}},
     "tasks[efficiency].params"),
    ({"task": "efficiency", "domain": "molecules", "datasets": {"set": "cu_emt"}}, "tasks[efficiency].datasets"),
]


@pytest.mark.parametrize(("entry", "field"), MALFORMED)
def test_malformed_suite_is_one_line_naming_file_and_field(tmp_path, entry, field):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"tasks": [entry]}))
    with pytest.raises(InputError) as raised:
        load_suite(path)
    line = str(raised.value)
    assert "\n" not in line and line.startswith(f"{path}: {field}: "), line
    assert raised.value.field == field


def test_duplicate_instance_names_are_refused(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"tasks": [{"task": "s22", "domain": "molecules"}] * 2}))
    with pytest.raises(InputError, match=r"tasks\[s22\]\.name: duplicate task instance 's22'"):
        load_suite(path)


def test_unknown_task_is_one_clear_line(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text("tasks:\n  - {task: s23, domain: molecules}\n")
    with pytest.raises(InputError) as raised:
        TaskSuite.from_file(path, load_manifest(), "quick")
    line = str(raised.value)
    assert "\n" not in line and line.startswith(f"{path}: tasks[s23].task: unknown task 's23'") and "s22" in line


@pytest.mark.parametrize("text", ["tasks: [\n", "", "tasks: []\n"])
def test_unreadable_or_empty_suite_names_the_file(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as raised:
        load_suite(path)
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)
