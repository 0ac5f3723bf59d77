"""`lambench models check NAME`: the checks of lambench_core.models.checks as one table and a verdict."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lambench_core.models.catalog import ModelCatalog
from lambench_core.models.checks import CheckResult, CheckTolerances, Status, check_model, failed
from lambench_core.models.loading import resolve_device
from workflows import arguments
from workflows.defaults import plain_console

LOG_WIDTH = 160
STYLES = {Status.PASS: "green", Status.FAIL: "bold red", Status.SKIP: "yellow", Status.INFO: "cyan"}


def add_check_command(models: argparse.ArgumentParser) -> None:
    """`lambench models check`; `lambench models` alone still lists the cards."""
    commands = models.add_subparsers(dest="models_command", required=False, metavar="{check}")
    check = commands.add_parser("check", help="sanity-check one model's calculator before a campaign")
    check.add_argument("name", type=arguments.name, help="model name (see `lambench models`)")
    check.add_argument("--device", type=arguments.device, default="auto", help=f"{arguments.DEVICES} (default: auto)")
    # SUPPRESS: without it the subcommand's empty default would drop `lambench models --cards DIR check`.
    check.add_argument(
        "--cards",
        action="append",
        type=arguments.cards_folder,
        default=argparse.SUPPRESS,
        help="extra directory of model cards (family modules, *.py beside them, are imported too)",
    )


def results_table(title: str | Text, results: Sequence[CheckResult]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("check", "structure", "value measured", "tolerance", "result", "reason"):
        table.add_column(column, overflow="fold")
    previous = None
    for result in results:
        if previous is not None and result.structure != previous:
            table.add_section()
        previous = result.structure
        table.add_row(
            Text(result.check),
            Text(result.structure),
            Text(result.value.replace("; ", "\n")),
            Text(result.tolerance.replace("; ", "\n")),
            Text(result.status.value, style=STYLES[result.status]),
            Text(result.reason),
        )
    return table


def summary(name: str, results: Sequence[CheckResult]) -> str:
    failures = failed(results)
    if failures:
        names = "; ".join(f"{result.check} on {result.structure}" for result in failures)
        return f"{name}: FAILED {len(failures)} check(s): {names}"
    counts = {status: sum(1 for result in results if result.status is status) for status in Status}
    return f"{name}: all checks passed ({counts[Status.PASS]} passed, {counts[Status.SKIP]} skipped)"


def command_models_check(args: argparse.Namespace, console: Console) -> int:
    card = ModelCatalog.load(args.cards).get(args.name)
    device = resolve_device(args.device)
    tolerances = CheckTolerances.for_dtype(card.dtype)
    results = check_model(card, device=device, tolerances=tolerances)
    title = f"lambench models check {card.name} (family {card.family}, {card.dtype} tolerances, device {device})"
    # A log or a pipe would get rich's 80 columns, folding every row; a terminal keeps its own width.
    out = console if console.is_terminal else plain_console(file=console.file, width=LOG_WIDTH)
    out.print(results_table(Text(title), results))
    out.print(Text(summary(card.name, results)))
    return 1 if failed(results) else 0
