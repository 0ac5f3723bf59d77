"""Every option, argument and environment variable is checked once, as the command line is read:
a bad value is exit code 2 and one line `lambench: error: ...` naming it; never a traceback, never a
silently ignored value (`--timeout nan` once disabled the campaign's timeout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lambench_core.errors import InputError, LambenchError
from lambench_core.settings import settings
from workflows import arguments
from workflows.cli import EXIT_BAD_INPUT, main
from workflows.defaults import split_names

REPO = Path(__file__).resolve().parents[2]
BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "-1", "", "abc", "1e999", "0x10"]


def one_error_line(capsys, code: int) -> str:
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT, captured
    assert "Traceback" not in captured.err and captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("lambench: error: ")
    return lines[0]


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "t.json"
    path.write_text("[]")
    return path


# Each command's numeric options; the command line is otherwise one that fails fast, so a value that
# slipped through would show as a different error (not naming the option), never as a campaign.
NUMERIC = [
    (["run", "--models", "nosuch"], "--workers", True),
    (["run", "--models", "nosuch"], "--timeout", True),
    (["run", "--models", "nosuch"], "--job-timeout", True),
    (["run", "--models", "nosuch"], "--bootstrap", False),
    (["aggregate", "{table}"], "--confidence", True),
    (["data", "build", "nosuch-recipe"], "--frames", True),
    (["data", "build", "nosuch-recipe"], "--workers", True),
    (["data", "build", "nosuch-recipe"], "--timeout", True),
    (["status", "nosuch-workflow"], "--workers", True),
    (["status", "nosuch-workflow"], "--timeout", True),
    (["retry", "nosuch-workflow"], "--workers", True),
    (["retry", "nosuch-workflow"], "--timeout", True),
    (["resubmit", "nosuch-workflow"], "--workers", True),
    (["resubmit", "nosuch-workflow"], "--timeout", True),
]


@pytest.mark.parametrize("value", BAD_NUMBERS + ["0"])
@pytest.mark.parametrize(("command", "option", "zero_is_bad"), NUMERIC, ids=lambda x: " ".join(x) if isinstance(x, list) else str(x))
def test_every_numeric_option_refuses_nan_inf_negative_empty_and_words(
    tmp_path, table, capsys, command, option, zero_is_bad, value
):
    if value == "0" and not zero_is_bad:
        pytest.skip("0 means something here (--bootstrap 0: no intervals)")
    argv = [part.replace("{table}", str(table)) for part in command]
    if command[0] in ("run", "status", "retry", "resubmit"):
        argv += ["--workdir", str(tmp_path / "work")]
    line = one_error_line(capsys, main([*argv, f"{option}={value}"]))
    assert option in line
    assert not (tmp_path / "work" / "runs").exists()


def test_the_values_that_argparse_cannot_take_as_a_separate_word_are_one_line_too(tmp_path, capsys):
    line = one_error_line(capsys, main(["run", "--timeout", "-inf", "--workdir", str(tmp_path)]))
    assert line == "lambench: error: --timeout: expected one argument"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--timeout", "nan"], "lambench: error: --timeout must be a finite number (got 'nan')"),
        (["run", "--job-timeout", "inf"], "lambench: error: --job-timeout must be a finite number (got 'inf')"),
        (["run", "--job-timeout", "-3"], "lambench: error: --job-timeout must be > 0 seconds"),
        (["run", "--workers", "2.5"], "lambench: error: --workers must be a whole number (got '2.5')"),
        (["data", "build", "x", "--frames", "0"], "lambench: error: --frames must be ≥ 1 (got '0')"),
        (["status", "x", "--timeout", ""], "lambench: error: --timeout must be a number (got '')"),
        (["aggregate", "{table}", "--confidence", "1"], "lambench: error: --confidence must lie between 0 and 1"),
    ],
)
def test_the_line_says_what_the_value_must_be(tmp_path, table, capsys, argv, expected):
    argv = [part.replace("{table}", str(table)) for part in argv]
    assert one_error_line(capsys, main(argv)) == expected


# --- lists of names -------------------------------------------------------------------------------

BAD_LISTS = [
    ("", "must name at least one"),
    ("   ", "must name at least one"),
    (",", "has an empty name"),
    ("dummy,", "has an empty name"),
    ("a,,a", "has an empty name"),
    ("dummy,dummy", "names 'dummy' twice"),
    ("dummy, emt, dummy", "names 'dummy' twice"),
    ("dummy\n", r"whitespace or a control character: 'dummy\n'"),
    ("dummy\r\n", "whitespace or a control character"),
    ("dum my", "whitespace or a control character"),
    (" dummy", "whitespace or a control character"),
    ("dummy ", "whitespace or a control character"),
    ("dummy\t,emt", "whitespace or a control character"),
    ("dummy,\x00emt", "whitespace or a control character"),
    ("dummy\u200b", "whitespace or a control character"),
    ("dummy\u00a0", "whitespace or a control character"),
]
LIST_OPTIONS = [
    (["run", "--workdir", "{work}"], "--models"),
    (["run", "--workdir", "{work}"], "--tasks"),
    (["export"], "--models"),
    (["export"], "--tasks"),
    (["submit"], "--models"),
    (["schedule"], "--tasks"),
    (["data", "build", "nosuch-recipe"], "--levels"),
]


@pytest.mark.parametrize(("value", "reason"), BAD_LISTS)
@pytest.mark.parametrize(("command", "option"), LIST_OPTIONS, ids=lambda x: " ".join(x) if isinstance(x, list) else x)
def test_lists_of_names_refuse_empty_duplicated_and_whitespace_names(tmp_path, capsys, command, option, value, reason):
    argv = [part.replace("{work}", str(tmp_path / "work")) for part in command]
    line = one_error_line(capsys, main([*argv, option, value]))
    assert line.startswith(f"lambench: error: {option} ") and reason in line
    assert not (tmp_path / "work" / "runs").exists()


def test_a_list_of_names_may_put_spaces_after_its_commas():
    assert split_names("dummy, emt,sevennet-0") == ["dummy", "emt", "sevennet-0"]
    assert split_names(None) is None
    assert arguments.names("dummy,offline") == "dummy,offline"


def test_split_names_refuses_a_bad_list_from_any_caller():
    with pytest.raises(LambenchError, match="names 'a' twice"):
        split_names("a,a")


# --- devices, names, campaign ids, schedules ----------------------------------------------------------

BAD_DEVICES = ["bogus", "gpu", "CPU", "cuda:", "cuda:-1", "cuda:x", "cuda0", "", "cpu ", "cuda:0\n", "[bold]cpu"]


@pytest.mark.parametrize("device", BAD_DEVICES)
@pytest.mark.parametrize(
    "command", [["run", "--models", "nosuch"], ["models", "check", "dummy"]], ids=lambda c: " ".join(c)
)
def test_device_must_be_cpu_cuda_cuda_n_mps_or_auto(capsys, command, device):
    line = one_error_line(capsys, main([*command, "--device", device]))
    assert line == f"lambench: error: --device must be cpu, cuda, cuda:N, mps or auto (got {device!r})"


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_the_devices_torch_knows_are_taken(device):
    assert arguments.device(device) == device


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["models", "check", "dummy\n"], "name"),
        (["models", "check", ""], "name"),
        (["data", "fetch", "HPt_NC_2022 "], "name"),
        (["status", "wf\x1b[2J"], "workflow"),
        (["export", "--campaign", "../../etc"], "--campaign"),
        (["export", "--campaign", "a b"], "--campaign"),
        (["export", "--campaign", ""], "--campaign"),
        (["schedule", "--cron", "0 2 * *"], "--cron"),
        (["schedule", "--cron", "0 2 * * *\n"], "--cron"),
        (["schedule", "--timezone", "Mars/Olympus"], "--timezone"),
        (["run", "--engine", "kubernetes"], "--engine"),
        (["run", "--profile", ""], "--profile"),
    ],
)
def test_names_ids_and_schedules_are_checked(capsys, argv, option):
    line = one_error_line(capsys, main(argv))
    assert line.startswith(f"lambench: error: {option}")
    assert "\x1b" not in line


# --- files and folders --------------------------------------------------------------------------


def test_cards_pointing_at_nothing_at_a_file_or_at_a_card_that_is_not_utf8(tmp_path, capsys):
    missing = tmp_path / "nothing"
    line = one_error_line(capsys, main(["models", "--cards", str(missing)]))
    assert line == f"lambench: error: --cards {missing}: no such folder"

    file = tmp_path / "card.yaml"
    file.write_text("name: x\n")
    for argv in (["models", "--cards", str(file)], ["run", "--cards", str(file)], ["tasks", "--cards", str(file)]):
        line = one_error_line(capsys, main(argv))
        assert line == f"lambench: error: --cards {file}: a file, not a folder of cards"

    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "fine.yaml").write_text("name: fine\n")
    (cards / "latin1.yaml").write_bytes("name: café\n".encode("latin-1"))
    for argv in (
        ["models", "--cards", str(cards)],
        ["models", "check", "x", "--cards", str(cards)],
        ["run", "--models", "dummy", "--cards", str(cards), "--workdir", str(tmp_path / "w")],
    ):
        line = one_error_line(capsys, main(argv))
        assert line == f"lambench: error: --cards {cards / 'latin1.yaml'}: not UTF-8 text (byte 0xe9 at offset 9)"


def test_a_family_module_that_is_not_utf8_is_one_line(tmp_path, capsys):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "family.py").write_bytes(b"# \xff\n")
    line = one_error_line(capsys, main(["models", "--cards", str(cards)]))
    assert str(cards / "family.py") in line and "not UTF-8" in line


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["tasks"], "--manifest"),
        (["data", "list"], "--manifest"),
        (["data", "fetch", "x"], "--manifest"),
        (["run", "--models", "nosuch"], "--suite"),
        (["run", "--models", "nosuch", "--engine", "slurm"], "--config"),
        (["export"], "--config"),
        (["status", "x"], "--config"),
    ],
)
def test_yaml_inputs_missing_folders_or_not_utf8(tmp_path, capsys, command, option):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"datasets: [\xff]\n")
    for value, expected in (
        (tmp_path / "nosuch.yaml", "no such file"),
        (tmp_path, "a folder, not a file"),
        (bad, "not UTF-8 text (byte 0xff at offset 11)"),
    ):
        line = one_error_line(capsys, main([*command, option, str(value)]))
        assert line == f"lambench: error: {option} {value}: {expected}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--workdir", ""], "--workdir must not be empty"),
        (["run", "--workdir", "{file}"], "--workdir {file}: a file, not a folder"),
        (["run", "--store", "{file}"], "--store {file}: a file, not a folder"),
        (["run", "--manifest", "a\nb.yaml"], r"--manifest must hold no control character (got 'a\nb.yaml')"),
        (["aggregate", "{file}", "--out", "{file}"], "--out {file}: a file, not a folder"),
        (["data", "build", "x", "--out", "{file}"], "--out {file}: a file, not a folder"),
        (["data", "build", "x", "--cache", ""], "--cache must not be empty"),
        (["data", "build", "{tmp}/r.yaml"], "recipe {tmp}/r.yaml: no such file"),
        (["data", "fetch", "x", "--archive", "{tmp}"], "--archive {tmp}: a folder, not a file"),
        (["data", "fetch", "x", "--data-dir", "{file}"], "--data-dir {file}: a file, not a folder"),
        (["export", "-o", "{tmp}"], "-o/--output {tmp}: a folder, not a file"),
        (["export", "-o", "{tmp}/no/such/x.yaml"], "-o/--output {tmp}/no/such/x.yaml: no such folder {tmp}/no/such"),
        (["status", "x", "--workdir", "{file}"], "--workdir {file}: a file, not a folder"),
    ],
)
def test_paths_point_at_what_the_option_needs(tmp_path, capsys, argv, expected):
    file = tmp_path / "plain.txt"
    file.write_text("x")

    def fill(text: str) -> str:
        return text.replace("{file}", str(file)).replace("{tmp}", str(tmp_path))

    assert one_error_line(capsys, main([fill(part) for part in argv])) == f"lambench: error: {fill(expected)}"


def test_compare_given_a_file_or_nothing_instead_of_a_run_folder(tmp_path, capsys):
    file = tmp_path / "rankings.json"
    file.write_text("{}")
    line = one_error_line(capsys, main(["compare", str(file), str(tmp_path)]))
    assert line == f"lambench: error: run_a {file}: a file, not a published run folder"
    line = one_error_line(capsys, main(["compare", str(tmp_path), f"file://{file}"]))
    assert line == f"lambench: error: run_b {file}: a file, not a published run folder"
    missing = tmp_path / "no-run"
    line = one_error_line(capsys, main(["compare", str(missing), str(tmp_path)]))
    assert line == f"lambench: error: run_a {missing}: no such folder"
    assert not missing.exists()  # reading a run never creates its folder
    line = one_error_line(capsys, main(["compare", str(tmp_path), str(tmp_path), "--out", str(file)]))
    assert line == f"lambench: error: --out {file}: a file, not a folder"


# --- aggregate tables ---------------------------------------------------------------------------

ROW = {"model": "a", "kind": "force_field", "benchmark": "x", "metric": "energy_rmse", "value": 1.0}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"models": [1, 2], "rows": [ROW]}, "models.0: Input should be a valid string"),
        ({"models": [None], "rows": [ROW]}, "models.0: Input should be a valid string"),
        ([{**ROW, "model": 3}], "row 0, field 'model': Input should be a valid string"),
        ([{**ROW, "model": 3.5}], "row 0, field 'model': Input should be a valid string"),
        ([ROW, {"kind": "force_field", "benchmark": "x", "metric": "m"}], "row 1, field 'model': Field required"),
        ([{k: v for k, v in ROW.items() if k != "metric"}], "row 0, field 'metric': Field required"),
        ([3], "row 0"),
        ({"nothing": []}, "expected a list of metric rows"),
    ],
)
def test_aggregate_a_table_with_non_string_models_or_missing_columns(tmp_path, capsys, document, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    line = one_error_line(capsys, main(["aggregate", str(path)]))
    assert line.startswith(f"lambench: error: {path}: ") and expected in line


def test_aggregate_given_a_folder_or_nothing(tmp_path, capsys):
    assert one_error_line(capsys, main(["aggregate", str(tmp_path)])) == f"lambench: error: {tmp_path}: no such file"
    line = one_error_line(capsys, main(["aggregate", ""]))
    assert line == "lambench: error: table must not be empty"


def test_aggregate_a_parquet_table_with_numbers_for_model_names(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"model": [1, 2], "kind": ["force_field"] * 2, "benchmark": ["x", "y"]}), path)
    line = one_error_line(capsys, main(["aggregate", str(path)]))
    assert line.startswith(f"lambench: error: {path}: ") and "'model'" in line


# --- environment variables ------------------------------------------------------------------------

BAD_ENVIRONMENT = [
    ("LAMBENCH_S3_TIMEOUT", "nan"),
    ("LAMBENCH_S3_TIMEOUT", "inf"),
    ("LAMBENCH_S3_TIMEOUT", "-1"),
    ("LAMBENCH_S3_TIMEOUT", "0"),
    ("LAMBENCH_S3_TIMEOUT", "abc"),
    ("LAMBENCH_S3_TIMEOUT", ""),
    ("LAMBENCH_S3_TIMEOUT", "60s"),
    ("LAMBENCH_ALLOW_UNPINNED_WEIGHTS", "maybe"),
    ("LAMBENCH_ALLOW_UNPINNED_WEIGHTS", "2"),
    ("LAMBENCH_ALLOW_UNPINNED_WEIGHTS", ""),
    ("LAMBENCH_WEIGHTS_DIR", ""),
    ("LAMBENCH_WEIGHTS_DIR", "/tmp/a\nb"),
    ("LAMBENCH_DATA_DIR", ""),
    ("LAMBENCH_DATA_DIR", "/tmp/\x1b[2Jdata"),
    ("LAMBENCH_S3_ENDPOINT", ""),
    ("LAMBENCH_S3_ENDPOINT", "ftp://minio:9000"),
    ("LAMBENCH_S3_ENDPOINT", "http://minio:9000/bucket"),
    ("LAMBENCH_S3_ENDPOINT", "minio 9000"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_ENVIRONMENT)
def test_a_bad_environment_variable_stops_every_command_with_one_line(monkeypatch, capsys, variable, value):
    monkeypatch.setenv(variable, value)
    for argv in (["models"], ["tasks"], ["data", "list"]):
        line = one_error_line(capsys, main(argv))
        assert line.startswith(f"lambench: error: environment variable {variable}: ")


@pytest.mark.parametrize(("variable", "value"), BAD_ENVIRONMENT)
def test_the_library_reads_the_environment_through_the_same_checks(monkeypatch, variable, value):
    from lambench_core.data.manifest import data_dir
    from lambench_core.models.weights import weights_cache_dir

    monkeypatch.setenv(variable, value)
    with pytest.raises(InputError, match=f"^environment variable {variable}: "):
        settings()
    with pytest.raises(InputError):
        (data_dir(), weights_cache_dir())


def test_s3_settings_are_read_from_the_one_settings_module(monkeypatch):
    from lambench_core.results.s3 import S3Backend

    monkeypatch.setenv("LAMBENCH_S3_TIMEOUT", "nan")
    with pytest.raises(InputError, match="LAMBENCH_S3_TIMEOUT: must be a finite number of seconds > 0"):
        S3Backend("s3://bucket/prefix")
    monkeypatch.setenv("LAMBENCH_S3_TIMEOUT", "2.5")
    monkeypatch.setenv("LAMBENCH_S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("LAMBENCH_S3_ACCESS_KEY", "")  # empty: AWS_ACCESS_KEY_ID, as before
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "aws-key")
    monkeypatch.setenv("LAMBENCH_S3_SECRET_KEY", "lambench-secret")
    environment = settings()
    assert environment.s3_timeout == 2.5
    assert environment.s3_host == ("127.0.0.1:9", False)
    assert environment.s3_credentials == ("aws-key", "lambench-secret")
    assert "lambench-secret" not in repr(environment)


def test_good_environment_values_are_taken(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMBENCH_S3_TIMEOUT", "2")
    monkeypatch.setenv("LAMBENCH_ALLOW_UNPINNED_WEIGHTS", "1")
    monkeypatch.setenv("LAMBENCH_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("LAMBENCH_DATA_DIR", "~/data")
    monkeypatch.setenv("lambench_s3_timeout", "nan")  # names are case-sensitive, as the shell's are
    environment = settings()
    assert environment.allow_unpinned_weights and environment.s3_timeout == 2
    assert environment.weights_folder == tmp_path / "w"
    assert environment.data_folder == Path.home() / "data"


def test_a_real_process_with_a_bad_variable_or_option_prints_one_line_and_no_traceback(tmp_path):
    environment = dict(os.environ, PYTHONPATH=str(REPO), LAMBENCH_S3_TIMEOUT="nan")
    done = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "models"],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "lambench: error: environment variable LAMBENCH_S3_TIMEOUT: must be a finite number of seconds > 0 (got 'nan')"
    ]
    environment.pop("LAMBENCH_S3_TIMEOUT")
    done = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", "--timeout", "nan", "--workdir", str(tmp_path)],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["lambench: error: --timeout must be a finite number (got 'nan')"]
    assert not (tmp_path / "runs").exists()


def test_argparse_errors_are_one_line_without_usage(capsys):
    assert one_error_line(capsys, main([])) == "lambench: error: the following arguments are required: command"
    line = one_error_line(capsys, main(["aggregate"]))
    assert line == "lambench: error: the following arguments are required: table"
    line = one_error_line(capsys, main(["run", "--no-such-option"]))
    assert line == "lambench: error: unrecognized arguments: --no-such-option"
    assert one_error_line(capsys, main(["nosuch"])).startswith("lambench: error: command: invalid choice: 'nosuch'")
