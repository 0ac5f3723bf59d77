"""What lambench prints is what it means: text from users and models (names, paths, failure reasons)
is never read as Rich markup or emoji codes, error lines stay one line, and a reader that goes away
(`lambench ... | head -1`) ends the command quietly."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from lambench_core.categories import Category
from lambench_core.models.checks import CheckResult, Status
from workflows import cli
from workflows.cli import EXIT_BROKEN_PIPE, main
from workflows.defaults import plain_console
from workflows.models_check_cli import results_table
from workflows.progress import ProgressDisplay

REPO = Path(__file__).resolve().parents[2]
UNTRUSTED = [
    "[bold]x[/bold]",
    "[/x",
    "[name]",
    "[red]failed[/]",
    "[link=http://evil.example]click[/link]",
    "out of memory: [/bold] at step [3]",
    ":smile: :thumbs_up:",
    r"C:\path\[x]",
    "[bold",
]


def printed(*renderables: object, width: int = 300) -> str:
    buffer = io.StringIO()
    console = plain_console(file=buffer, width=width)
    for renderable in renderables:
        console.print(renderable)
    return buffer.getvalue()


@pytest.mark.parametrize("text", UNTRUSTED)
def test_the_shared_console_prints_markup_and_emoji_codes_exactly(text):
    assert printed(text) == text + "\n"
    assert printed(f"failed dummy × s22: {text}") == f"failed dummy × s22: {text}\n"


def test_every_workflows_console_is_the_plain_one():
    """One console factory (workflows.defaults.plain_console): a new Console(...) would bring markup back."""
    offenders = [
        f"{path.name}:{number}"
        for path in sorted((REPO / "workflows").glob("*.py"))
        if path.name != "defaults.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bConsole\(", line)
    ]
    assert offenders == []


def job(key: str, model: str, task: str) -> SimpleNamespace:
    return SimpleNamespace(key=key, model=model, instance=SimpleNamespace(name=task, category=Category.PROPERTY))


@pytest.mark.parametrize("text", UNTRUSTED)
def test_live_progress_shows_names_and_states_as_they_are(tmp_path, text):
    display = ProgressDisplay([job("k1", f"model {text}", f"task {text}")], tmp_path, plain_console(file=io.StringIO()))
    (tmp_path / "k1.json").write_text(json.dumps({"state": text, "done": 1, "total": 2}))
    display._read()
    table = printed(display._table())
    assert f"model {text}" in table and f"task {text}" in table and text in table.replace(f"model {text}", "")

    buffer = io.StringIO()
    display.console = plain_console(file=buffer, width=300)
    display.refresh()
    assert buffer.getvalue() == f"  model {text} × task {text}: {text}\n"


@pytest.mark.parametrize("stored", [True, False], ids=["stored failure", "step error"])
@pytest.mark.parametrize("text", UNTRUSTED)
def test_the_failure_reasons_after_a_campaign_are_printed_exactly(tmp_path, text, stored):
    from workflows.dag import run_step_key
    from workflows.local import LocalOutcome
    from workflows.outcome import report_outcome

    failing = job("k1", f"my{text}model", "s22")
    plan = SimpleNamespace(to_run=[failing], campaign=SimpleNamespace(jobs_per_step=1))
    outcome = LocalOutcome(
        run_dir=tmp_path,
        timed_out=False,
        workflow_status="Failed",
        step_phases={run_step_key("k1"): "Failed"},
        step_errors={run_step_key("k1"): f"reason {text} end"},
    )
    failure = SimpleNamespace(error=f"reason {text} end") if stored else None
    store = SimpleNamespace(url="file:///store", get=lambda key: None, get_failure=lambda key: failure)
    buffer = io.StringIO()
    assert report_outcome(plan, outcome, store, plain_console(file=buffer, width=300)) == 1
    assert f"my{text}model × s22: reason {text} end\n" in buffer.getvalue()


@pytest.mark.parametrize("text", UNTRUSTED)
def test_models_check_table_shows_reasons_and_card_names_as_they_are(text):
    results = [CheckResult(check=f"energy {text}", structure="Cu", status=Status.FAIL, reason=f"because {text}")]
    from rich.text import Text

    shown = printed(results_table(Text(f"lambench models check my{text}card"), results), width=400)
    assert f"my{text}card" in shown and f"because {text}" in shown and f"energy {text}" in shown


def test_an_error_line_with_a_line_break_or_an_escape_code_stays_one_line(tmp_path, capsys):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "two\nlines\x1b[2J.yaml").write_bytes(b"\xff")
    assert main(["models", "--cards", str(cards)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert "two\\nlines\\x1b[2J.yaml: not UTF-8 text" in line and "\x1b" not in line
    assert cli.one_line("a\nb\r\tc\x00 Å ≥ é") == "a\\nb\\r\\tc\\x00 Å ≥ é"


# --- a reader that goes away -----------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["data", "list"], ["models"], ["tasks"]], ids=" ".join)
def test_a_closed_standard_output_ends_the_command_quietly_in_process(monkeypatch, capsys, argv):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (`head`) is gone before lambench writes
    stream = open(write_end, "w")  # noqa: SIM115 (closed below)
    try:
        monkeypatch.setattr(sys, "stdout", stream)
        assert main(argv) == EXIT_BROKEN_PIPE
        stream.write("more\n" * 10_000)
        stream.flush()  # standard output now goes to /dev/null: exiting cannot fail again
    finally:
        monkeypatch.undo()
        stream.close()
    assert capsys.readouterr().err == ""


def test_a_broken_pipe_that_is_not_standard_output_is_not_hidden(monkeypatch, capsys):
    def command(args, console):
        raise BrokenPipeError("a child's stdin")

    monkeypatch.setitem(cli.COMMANDS, "tasks", command)
    with pytest.raises(BrokenPipeError):
        main(["tasks"])


def _environment() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO))


@pytest.mark.parametrize("argv", [["data", "list"], ["models"]], ids=" ".join)
def test_a_real_process_whose_reader_is_gone_exits_quietly(argv):
    process = subprocess.Popen(
        [sys.executable, "-m", "workflows.cli", *argv],
        cwd=REPO, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    process.stdout.close()  # before the child (still importing) writes a byte
    error = process.stderr.read()
    assert process.wait(timeout=300) == EXIT_BROKEN_PIPE, error
    assert error == ""


@pytest.mark.parametrize("argv", ["data list", "data list --markdown", "models", "tasks"])
def test_piping_into_head_prints_one_line_and_no_traceback(argv):
    done = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m workflows.cli {argv} | head -1; echo rc=${{PIPESTATUS[0]}} >&2"],
        cwd=REPO, env=_environment(), capture_output=True, text=True, timeout=300,
    )
    assert len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr and "Exception ignored" not in done.stderr
    assert done.stderr.strip() in ("rc=0", f"rc={EXIT_BROKEN_PIPE}")


def test_lambench_errors_are_still_one_line_when_stdout_is_a_closed_pipe(monkeypatch, capsys):
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = open(write_end, "w")  # noqa: SIM115
    try:
        monkeypatch.setattr(sys, "stdout", stream)
        assert main(["run", "--timeout", "nan"]) == 2
    finally:
        monkeypatch.undo()
        stream.close()
    assert capsys.readouterr().err == "lambench: error: --timeout must be a finite number (got 'nan')\n"
