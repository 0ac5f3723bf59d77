"""Live progress of a local campaign, read from the progress files that run steps write."""

from __future__ import annotations

import json
import math
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from lambench_core.campaign import Job
from lambench_core.data.labelling.plan import LabellingPlan
from workflows.slurm_names import JOB_NAME_PREFIX, job_name

DONE_STATES = {"succeeded", "partial", "unsupported", "failed"}
_STYLE = {
    "succeeded": "green",
    "partial": "yellow",
    "unsupported": "yellow",
    "failed": "red",
    "running": "cyan",
    "loading": "cyan",
}


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    state: str
    reason: str  # squeue's %R: why it waits (Resources, Priority) or the node it runs on


class SlurmQueue:
    """Each run step's Slurm job, read from one `squeue` call by job name (at most every `interval` s)."""

    def __init__(self, interval: float = 3.0) -> None:
        self.interval = interval
        self._last = -math.inf
        self._jobs: dict[str, QueuedJob] = {}

    def lookup(self, job_key: str) -> QueuedJob | None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            jobs = self._read()
            if jobs is not None:  # squeue failed: keep what it said last
                self._jobs = jobs
        return self._jobs.get(job_name(job_key))

    @staticmethod
    def _read() -> dict[str, QueuedJob] | None:
        try:
            text = subprocess.run(
                ["squeue", "-h", "-o", "%j|%i|%T|%R"], capture_output=True, text=True, timeout=10, check=True
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        jobs = {}
        for line in text.splitlines():
            name, job_id, state, reason = (line.split("|", 3) + ["", "", ""])[:4]
            if name.startswith(JOB_NAME_PREFIX):
                jobs[name] = QueuedJob(job_id, state, reason)
        return jobs


class ProgressDisplay:
    """A live table on a terminal; one plain line per state change elsewhere (CI logs)."""

    def __init__(self, jobs: list[Job], progress_dir: Path, console: Console, queue: SlurmQueue | None = None) -> None:
        self.jobs = jobs
        self.progress_dir = progress_dir
        self.console = console
        self.queue = queue
        self._slurm: dict[str, str] = {}
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

    def _read_queue(self) -> None:
        if self.queue is None:
            return
        for job in self.jobs:
            found = self.queue.lookup(job.key)
            if found is not None:
                self._slurm[job.key] = f"{found.job_id} {found.state}"
            elif job.key in self._slurm and not self._slurm[job.key].endswith(" left the queue"):
                self._slurm[job.key] = self._slurm[job.key].split()[0] + " left the queue"

    def _elapsed(self, key: str) -> str:
        first = self._first_seen.get(key)
        return f"{time.monotonic() - first:.0f}s" if first else ""

    def _table(self) -> Table:
        done = sum(1 for s in self._states.values() if s.get("state") in DONE_STATES)
        table = Table(title=f"lambench: {done}/{len(self.jobs)} jobs done, {time.monotonic() - self.started:.0f}s")
        columns = ("model", "task", "state", "structures", "time") + (("slurm job",) if self.queue else ())
        for column in columns:
            table.add_column(column)
        for job in self.jobs:
            state = self._states.get(job.key, {})
            name = str(state.get("state", "pending"))
            total = state.get("total") or ""
            # Text, never markup: names and states come from cards and progress files
            cells = [
                Text(job.model),
                Text(job.instance.name),
                Text(name, style=_STYLE.get(name, "white")),
                Text(f"{state.get('done', 0)}/{total}" if total else ""),
                Text(self._elapsed(job.key)),
            ]
            table.add_row(*cells, *((Text(self._slurm.get(job.key, "")),) if self.queue else ()))
        return table

    def refresh(self, final: bool = False) -> None:
        self._read()
        self._read_queue()
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
            return
        for job in self.jobs:
            state = str(self._states.get(job.key, {}).get("state", "pending"))
            slurm = self._slurm.get(job.key, "")
            announced = f"{state} {slurm}"
            if self._announced.get(job.key) != announced and (state != "pending" or slurm):
                self._announced[job.key] = announced
                extra = ""
                if state in DONE_STATES:
                    s = self._states[job.key]
                    extra = f" ({s.get('done')}/{s.get('total')} structures, {self._elapsed(job.key)})"
                where = f" [Slurm job {slurm}]" if slurm else ""
                self.console.print(Text(f"  {job.model} × {job.instance.name}: {state}{extra}{where}"))


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
            self.console.print(Text(f"  labelled {done}/{len(self.keys)}"))
