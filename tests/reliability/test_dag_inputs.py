"""Nothing a user types becomes code in the scripts dflow generates for the campaign's steps.

dflow (1.8.134) renders each step as a Python script: it pastes its global configuration
(`config.update(jsonpickle.loads(r'''<JSON>'''))`, with the debug work directory), the step's
temporary directory (`r'<run dir>/dflow/<workflow>/<step>/workdir/tmp'`, under --workdir) and every
parameter value (`r'''{{inputs.parameters.NAME}}'''`, substituted by plain text replacement, which
also expands any `{{...}}` inside a value) into string literals. The driven engines encode every
parameter (base64 behind `b64:`) and render with `InertPythonOPTemplate`, which carries the
temporary directory and the configuration only as base64 literals.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace

import pytest

from ops.campaign import (
    ENCODED,
    STEP_ERROR_FILE,
    AggregateCampaign,
    CampaignOP,
    CompareWithPrevious,
    PlanCampaign,
    PublishCampaign,
    RunJob,
    decode_parameter,
    encode_parameter,
)
from workflows.engines import LocalEngine, inert_json_literals

REPO = Path(__file__).resolve().parents[2]

# What could end a literal or start a placeholder, run shell or Python, or confuse an encoder.
HOSTILE = [
    "O'Brien lab",
    "a'''+__import__('os').system('touch PWNED')+'''b",
    'x"""y\\"',
    "trailing backslash \\",
    "new\nline\r\ttab",
    "${IFS}$(touch PWNED)`touch PWNED`;touch PWNED",
    "{{inputs.parameters.spec}} {{workflow.name}} {{pod.name}} {{=1}}",
    "é 日本 😀 \u202e bidi",
    "percent %s %(x)s and [red]markup[/red]",
    os.fsdecode(b"not utf-8 \xff\xfe"),
    "",
]
# One folder name holding most of the above (no '/', NUL or control character: a path component,
# and the CLI refuses control characters in paths).
HOSTILE_NAME = (
    "O'Brien lab ''' \"\"\" \\ ${IFS}$(touch PWNED)`touch PWNED` '''+__import__('os').system('touch PWNED')+''' "
    "{{inputs.parameters.spec}} {{workflow.name}} é日本 [red] %s \\"
)
# Fragments of it that an encoded script can never hold as they are.
TELLTALES = ["O'Brien", "__import__('os')", "touch PWNED", "日本", "${IFS}"]
OPS = [PlanCampaign, RunJob, AggregateCampaign, PublishCampaign, CompareWithPrevious]


def environment() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_an_encoded_parameter_is_inert_and_decodes_to_what_was_typed(text):
    encoded = encode_parameter(text)
    assert re.fullmatch(r"b64:[A-Za-z0-9_=-]*", encoded)
    assert decode_parameter(encoded) == text
    assert decode_parameter("s3://bucket/plain") == "s3://bucket/plain"  # direct calls, Argo: as given


class Echo(CampaignOP):
    input_names = ("text",)
    output_names = ("text",)

    def run(self, op_in: dict[str, str]) -> dict[str, str]:
        if op_in["text"] == "fail":
            raise OSError(28, "No space left on device")
        return {"text": op_in["text"]}


def test_the_ops_decode_their_inputs_answer_in_kind_and_leave_their_error(tmp_path):
    from dflow.python import OPIO

    for text in HOSTILE:
        assert Echo().execute(OPIO(text=text))["text"] == text  # a plain call (tests, Argo): plain
        assert Echo().execute(OPIO(text=encode_parameter(text)))["text"] == encode_parameter(text)
    step = Echo()
    step.workflow_name, step.tmp_root = "lambench-campaign-abcde", str(tmp_path / "tmp")  # as a step script sets
    with pytest.raises(OSError):
        step.execute(OPIO(text=encode_parameter("fail")))
    left = json.loads((tmp_path / "tmp" / STEP_ERROR_FILE).read_text())
    assert left == {"step": "Echo", "error": "OSError: [Errno 28] No space left on device"}
    with pytest.raises(OSError):
        Echo().execute(OPIO(text="fail"))  # called directly, not as a step: nothing is left anywhere
    assert not (Path.cwd() / STEP_ERROR_FILE).exists()


def render_like_debug_mode(op: type, tmp_root: str, value: str) -> str:
    """What dflow's debug mode writes as a step's script (dflow.step.Step.exec_pod)."""
    from dflow.step import render_script

    template = deepcopy(LocalEngine().template(op, "image", "service"))
    template.tmp_root = tmp_root + template.tmp_root
    template.render_script()
    parameters = {name: SimpleNamespace(value=encode_parameter(value)) for name in op.input_names}
    parameters["dflow_key"] = SimpleNamespace(value="step-key")
    return render_script(template.script, parameters, "lambench-campaign-abcde", "step-key")


def test_step_scripts_hold_user_text_only_as_data(tmp_path, monkeypatch):
    from dflow import config

    workdir = str(tmp_path / HOSTILE_NAME / "dflow")
    monkeypatch.setitem(config, "debug_workdir", workdir)
    expected = []
    for op in OPS:
        for index, text in enumerate(HOSTILE):
            step_root = f"{workdir}/{text.replace('/', '_')}/workdir"  # a folder name holds no '/'
            script = render_like_debug_mode(op, step_root, text)
            compile(script, "script", "exec")
            assert not [t for t in TELLTALES if t in script], (op.__name__, index)
            # every parameter literal decodes to what was typed
            literals = re.findall(r"handle_input_parameter\('\w+', r'{3}([^']*)'{3}", script)
            assert len(literals) == len(op.input_names)
            assert all(decode_parameter(literal) == text for literal in literals)
            path = tmp_path / f"{op.__name__}-{index}.py"
            path.write_text(script)
            expected.append((path, step_root + "/tmp"))
    # The temporary directory evaluates to the real one (in another interpreter: a script updates
    # dflow's global configuration when it runs).
    probe = (
        "import runpy, sys\n"
        "for path in sys.argv[1:]:\n"
        "    print(ascii(runpy.run_path(path, run_name='not_main')['_lambench_tmp_root']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *[str(path) for path, _ in expected]],
        capture_output=True, text=True, env=environment(), timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [ascii(root) for _, root in expected]

def test_the_batch_jobs_directory_form_and_the_dispatcher_json_are_data_too(tmp_path):
    # dflow's DispatcherExecutor renders the inner script with "$(pwd)/tmp" (then `sed`s in the job's
    # directory); its outer script loads the machine, resources and task with json.loads(r'...').
    from workflows.engines import inert_step_script

    template = LocalEngine().template(RunJob, "image", "run")
    token = "/LAMBENCHTOKENTMPROOT"
    template.tmp_root = token
    from dflow.python import PythonOPTemplate

    PythonOPTemplate.render_script(template)  # dflow's own rendering, with the token
    script = inert_step_script(template.script, token, "$(pwd)/tmp")
    assert "$(pwd)" not in script and token not in script
    path = tmp_path / HOSTILE_NAME
    path.mkdir()
    (path / "script").write_text(script)
    probe = "import runpy; ns = runpy.run_path('script', run_name='not_main'); print(ascii(ns['_lambench_tmp_root']))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=path, capture_output=True, text=True, env=environment(), timeout=120
    )
    assert done.stdout.strip() == ascii(str(path) + "/tmp"), done.stderr[-2000:]

    machine = {"remote_root": str(tmp_path / HOSTILE_NAME), "prelude": ["echo 'x' \\", "{{inputs.parameters.x}}"]}
    outer = f"machine = Machine.load_from_dict(json.loads(r'{json.dumps(machine)}'))\nprint(1)"
    inert = inert_json_literals(outer)
    for telltale in TELLTALES:
        assert telltale not in inert
    assert "{{" not in inert
    namespace = {"json": json, "Machine": SimpleNamespace(load_from_dict=lambda d: d), "print": lambda *a: None}
    exec(compile(inert, "outer", "exec"), namespace)
    assert namespace["machine"] == machine


def test_a_slurm_run_steps_script_holds_its_work_directory_only_as_data(tmp_path):
    """--engine slurm: the work directory (--workdir/slurm) reaches dpdispatcher's machine JSON."""
    from lambench_core.categories import Category
    from workflows.cluster_config import SlurmSettings
    from workflows.engines import SlurmEngine

    engine = SlurmEngine(SlurmSettings(work_root=str(tmp_path / HOSTILE_NAME / "slurm")))
    job = SimpleNamespace(key="0123456789abcdef", instance=SimpleNamespace(category=Category.FORCE_FIELD))
    script = engine.run_executor(job).render(engine.template(RunJob, "image", "force_field")).script
    compile(script, "outer", "exec")
    assert not [t for t in TELLTALES if t in script]
    assert "{{inputs.parameters.spec}}" not in script and "$(pwd)" not in script


@pytest.mark.parametrize("option", ["--workdir", "--store", "--cards", "--suite", "--manifest"])
def test_a_path_with_a_newline_is_refused_in_one_line_or_runs(option, tmp_path, capsys):
    """A newline (or any control character) in a path: the CLI refuses it in one line, exit 2
    (workflows.arguments); were it accepted, the encoding above would carry it as data."""
    from workflows.cli import main

    folder = tmp_path / "new\nline"
    folder.mkdir()
    target = {"--cards": folder, "--suite": folder / "suite.yaml", "--manifest": folder / "datasets.yaml"}
    if option == "--suite":
        shutil.copy(REPO / "lambench_core/tasks/suite.yaml", target[option])
    if option == "--manifest":
        shutil.copy(REPO / "lambench_core/data/datasets.yaml", target[option])
        (folder / "sets").symlink_to(REPO / "lambench_core/data/sets")
    value = str(target.get(option, folder / "x"))
    arguments = ["run", "--models", "dummy", "--tasks", "force_field/molecules_small", "--bootstrap", "0"]
    if option != "--workdir":
        arguments += ["--workdir", str(tmp_path / "work")]
    code = main([*arguments, option, value])
    err = capsys.readouterr().err
    if code == 0:
        return
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"lambench: error: {option}"), err


@pytest.mark.slow
def test_a_campaign_whose_every_path_is_hostile_runs_and_executes_nothing(tmp_path):
    """--workdir, --store, --cards, --suite and --manifest all under a folder named HOSTILE_NAME."""
    workdir = tmp_path / "work" / HOSTILE_NAME
    store = tmp_path / "store" / HOSTILE_NAME
    cards = tmp_path / "cards" / HOSTILE_NAME
    cards.mkdir(parents=True)
    card = (REPO / "lambench_core/models/cards/emt.yaml").read_text()
    (cards / "emt-copy.yaml").write_text(card.replace("name: emt\n", "name: emt-copy\n", 1))
    suite = tmp_path / "suite" / HOSTILE_NAME / "suite.yaml"
    suite.parent.mkdir(parents=True)
    shutil.copy(REPO / "lambench_core/tasks/suite.yaml", suite)
    manifest = tmp_path / "manifest" / HOSTILE_NAME / "datasets.yaml"  # its paths are relative to it
    manifest.parent.mkdir(parents=True)
    shutil.copy(REPO / "lambench_core/data/datasets.yaml", manifest)
    (manifest.parent / "sets").symlink_to(REPO / "lambench_core/data/sets")
    done = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", "--models", "dummy,emt-copy", "--tasks",
         "force_field/molecules_small", "--bootstrap", "0", "--workdir", str(workdir), "--store", str(store),
         "--cards", str(cards), "--suite", str(suite), "--manifest", str(manifest)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=environment(),
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert len(list((store / "results").glob("*.json"))) == 2
    (run,) = (workdir / "runs").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert {step["phase"] for step in status["steps"]} == {"Succeeded"} and len(status["steps"]) == 5
    assert (run / "site" / "index.html").is_file()
    assert not list(tmp_path.rglob("PWNED")) and not (REPO / "PWNED").exists()
    scripts = list((run / "dflow").rglob("script"))
    assert len(scripts) == 5
    for script in scripts:
        text = script.read_text()
        assert not [t for t in TELLTALES if t in text], script
        assert ENCODED in text


def argo_substituted_scripts(manifest: dict) -> list[str]:
    """Every pod script of a Workflow manifest after Argo's text substitution of its parameters (the
    step's arguments over the template's defaults; the workflow parameter; expressions that pass
    another step's output stand for an encoded hostile value)."""
    workflow_values = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    scripts = []
    for template in templates.values():
        for group in template.get("steps") or []:
            for step in group:
                called = templates[step["template"]]
                values = {p["name"]: p["default"] for p in called.get("inputs", {}).get("parameters", []) if "default" in p}
                values.update({p["name"]: p["value"] for p in step.get("arguments", {}).get("parameters", [])})
                source = called["script"]["source"]
                for name, value in values.items():
                    value = re.sub(r"\{\{workflow\.parameters\.(\w+)\}\}", lambda m: workflow_values[m.group(1)], value)
                    value = re.sub(r"\{\{=.*?\}\}", encode_parameter(HOSTILE_NAME), value)
                    source = source.replace("{{inputs.parameters." + name + "}}", value)
                scripts.append(source)
    return scripts


def test_an_argo_workflows_pod_scripts_hold_user_text_only_as_data(tmp_path):
    """Argo pastes parameter values into each pod's script as dflow's debug mode does: the exported
    manifest carries every parameter (the workflow's `spec` too) encoded, and `status`/`resubmit`
    read them back as typed."""
    from lambench_core.campaign import CampaignSpec
    from workflows.argo import build_workflow
    from workflows.argo_client import workflow_spec_parameter
    from workflows.cluster_config import ClusterConfig

    prefix = HOSTILE_NAME.replace("/", "-")
    config = ClusterConfig.model_validate(
        {
            "argo": {"server": "https://argo.example.org:2746", "namespace": "bench"},
            "s3": {"endpoint": "http://minio.minio:9000", "bucket": "lambench", "prefix": prefix, "secret_name": "keys"},
        }
    )
    spec = CampaignSpec(campaign_id="c1", models=["dummy", "emt"], tasks=["s22", "dbh24"], store=config.s3.store_url)
    manifest = build_workflow(spec, config)
    scripts = argo_substituted_scripts(manifest)
    assert len(scripts) == 1 + 4 + 2  # plan, four run steps, aggregate and publish
    for source in scripts:
        compile(source, "<pod script>", "exec")
        assert "touch PWNED" not in source and "O'Brien" not in source
        assert ENCODED in source
    assert CampaignSpec.model_validate_json(workflow_spec_parameter(manifest)).store == spec.store
