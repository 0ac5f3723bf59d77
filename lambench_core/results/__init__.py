"""TaskResult records, identity keys and the ResultStore."""

from lambench_core.results.identity import job_key, model_identity
from lambench_core.results.record import ItemIssue, Metric, Provenance, Status, TaskResult
from lambench_core.results.store import ResultStore

__all__ = [
    "ItemIssue",
    "Metric",
    "Provenance",
    "ResultStore",
    "Status",
    "TaskResult",
    "job_key",
    "model_identity",
]
