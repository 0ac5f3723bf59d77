"""The engine file a runner writes beside its plan (`local_dag.ENGINE_FILE`): which engine drives the
DAG and with what configuration. Kept apart from `workflows.engines`, which imports dflow, so the CLI
can write it without that import."""

from __future__ import annotations

import json
from pathlib import Path

from workflows.cluster_config import ClusterConfig

# The local engine's name (`engines.LocalEngine.name`), here because a run directory without an engine
# file (from before the file existed) was driven by it.
LOCAL_ENGINE = "local"


def read_engine_file(path: Path) -> tuple[str, ClusterConfig | None]:
    """The engine's name and configuration a runner wrote beside its plan (none written: local)."""
    if not path.exists():
        return LOCAL_ENGINE, None
    document = json.loads(path.read_text())
    config = ClusterConfig.model_validate(document["config"]) if document.get("config") else None
    return document["engine"], config


def write_engine_file(path: Path, name: str, config: ClusterConfig | None) -> None:
    path.write_text(json.dumps({"engine": name, "config": config.model_dump(mode="json") if config else None}))
