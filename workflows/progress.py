"""Live progress of a local campaign, read from the progress files that run steps write."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from lambench_core.campaign import Job
from workflows.data_dag import LabellingPlan

_DONE_STATES = {"succeeded", "partial", "unsupported", "failed"}
_STYLE = {
    "succeeded": "green",
    "partial": "yellow",
    "unsupported": "yellow",
    "failed": "red",
    "running": "cyan",
    "loading": "cyan",
}


class ProgressDisplay:
    """A live table on a terminal; one plain line per state change elsewhere (CI logs)."""

    def __init__(self, jobs: list[Job], progress_dir: Path, console: Console) -> None:
        self.jobs = jobs
        self.progress_dir = progress_dir
        self.console = console
        self.started = time.monotonic()
        self._states: dict[str, dict[str, object]] = {}
        self._first_seen: dict[str, float] = {}
        self._announced: dict[str, str] = {}
        self._live: Live | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.console.is_terminal and self.jobs:
            self._live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(kind, value, tb)

    def _read(self) -> None:
        for job in self.jobs:
            path = self.progress_dir / f"{job.key}.json"
            try:
                self._states[job.key] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            self._first_seen.setdefault(job.key, time.monotonic())

    def _elapsed(self, key: str) -> str:
        first = self._first_seen.get(key)
        return f"{time.monotonic() - first:.0f}s" if first else ""

    def _table(self) -> Table:
        done = sum(1 for s in self._states.values() if s.get("state") in _DONE_STATES)
        table = Table(title=f"lambench: {done}/{len(self.jobs)} jobs done, {time.monotonic() - self.started:.0f}s")
        for column in ("model", "task", "state", "structures", "time"):
            table.add_column(column)
        for job in self.jobs:
            state = self._states.get(job.key, {})
            name = str(state.get("state", "pending"))
            total = state.get("total") or ""
            table.add_row(
                job.model,
                job.instance.name,
                f"[{_STYLE.get(name, 'white')}]{name}[/]",
                f"{state.get('done', 0)}/{total}" if total else "",
                self._elapsed(job.key),
            )
        return table

    def refresh(self, final: bool = False) -> None:
        self._read()
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
            return
        for job in self.jobs:
            state = str(self._states.get(job.key, {}).get("state", "pending"))
            if self._announced.get(job.key) != state and state != "pending":
                self._announced[job.key] = state
                extra = ""
                if state in _DONE_STATES:
                    s = self._states[job.key]
                    extra = f" ({s.get('done')}/{s.get('total')} structures, {self._elapsed(job.key)})"
                self.console.print(f"  {job.model} × {job.instance.name}: {state}{extra}", highlight=False)


class LabellingDisplay:
    """Prints how many labels of a labelling plan are in the cache, whenever the count changes."""

    def __init__(self, plan: LabellingPlan, console: Console) -> None:
        self.keys = [key for level in plan.levels for key in plan.keys[level]]
        self.cache = Path(plan.cache)
        self.console = console
        self._last = -1

    def __enter__(self) -> LabellingDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def refresh(self, final: bool = False) -> None:
        done = sum((self.cache / f"{key}.json").exists() for key in self.keys)
        if done != self._last:
            self._last = done
            self.console.print(f"  labelled {done}/{len(self.keys)}", highlight=False)
