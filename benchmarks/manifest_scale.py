"""How the Argo manifest scales: build and export a campaign of many models × many tasks.

Makes N model cards (copies of the shipped cards under new names, so every model family and image
appears) and M force-field benchmark sets (copies of a shipped set's entry under new names) in a
scratch directory, then times planning, building (dflow), strict validation and YAML export, and
prints the manifest's size against Argo's limits (etcd's 1.5 MB object limit without offloading).

    python benchmarks/manifest_scale.py [--models 50] [--tasks 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

from lambench_core.campaign import CampaignContext, CampaignSpec, campaign_jobs
from lambench_core.models.catalog import BUILTIN_CARDS
from workflows.argo import build_workflow, validate_manifest
from workflows.cluster_config import ClusterConfig

REPO = Path(__file__).resolve().parents[1]
SETS = REPO / "lambench_core" / "data" / "sets"


def make_cards(directory: Path, count: int) -> list[str]:
    shipped = sorted(BUILTIN_CARDS.glob("*.yaml"))
    names = []
    for index in range(count):
        card = yaml.safe_load(shipped[index % len(shipped)].read_text())
        card["name"] = f"{card['name']}-copy{index:03d}"
        (directory / f"{card['name']}.yaml").write_text(yaml.safe_dump(card))
        names.append(card["name"])
    return names


def make_manifest(directory: Path, count: int) -> Path:
    entry = yaml.safe_load((SETS / "molecules_small" / "pbe.entry.yaml").read_text())
    datasets = []
    for index in range(count):
        copy = dict(entry, name=f"set{index:03d}_pbe", group=f"set{index:03d}")
        copy["files"] = [dict(f, path=str(SETS / "molecules_small" / f["path"])) for f in entry["files"]]
        datasets.append(copy)
    path = directory / "datasets.yaml"
    path.write_text(yaml.safe_dump({"datasets": datasets}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=40)
    args = parser.parse_args()
    config = ClusterConfig.model_validate({"s3": {"endpoint": "http://minio:9000", "bucket": "lambench"}})
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "cards").mkdir()
        models = make_cards(root / "cards", args.models)
        manifest = make_manifest(root, args.tasks)
        probe = CampaignSpec(
            campaign_id="scale",
            models=models,
            tasks=[],
            store=config.s3.store_url,
            manifest=str(manifest),
            cards_dirs=[str(root / "cards")],
        )
        tasks = CampaignContext(probe).suite.names()[: args.tasks]
        spec = probe.model_copy(update={"tasks": tasks})
        start = time.perf_counter()
        jobs = campaign_jobs(spec)
        planned = time.perf_counter() - start
        start = time.perf_counter()
        workflow = build_workflow(spec, config, jobs=jobs)
        built = time.perf_counter() - start
        start = time.perf_counter()
        validate_manifest(workflow)
        validated = time.perf_counter() - start
        start = time.perf_counter()
        text = yaml.safe_dump(workflow, sort_keys=False)
        dumped = time.perf_counter() - start
    size = len(text.encode())
    json_size = len(json.dumps(workflow, separators=(",", ":")).encode())  # what the API server stores
    templates = len(workflow["spec"]["templates"])
    print(
        f"{'models':>6} {'tasks':>5} {'jobs':>5} {'plan s':>7} {'build s':>8} {'validate s':>10} {'yaml s':>7} "
        f"{'templates':>9} {'manifest KiB':>12}"
    )
    print(
        f"{len(models):>6} {len(tasks):>5} {len(jobs):>5} {planned:>7.2f} {built:>8.2f} {validated:>10.2f} "
        f"{dumped:>7.2f} {templates:>9} {size / 1024:>12.0f}"
    )
    print(
        f"build + export (plan, build, yaml): {planned + built + dumped:.2f} s; manifest {size / 1e6:.2f} MB as YAML, "
        f"{json_size / 1e6:.2f} MB as the JSON the API server stores "
        f"({'within' if max(size, json_size) < 1_000_000 else 'OVER'} 1 MB; etcd's object limit is 1.5 MB)"
    )


if __name__ == "__main__":
    main()
