"""No credential reaches what a local campaign writes, and the published site shows the home
directory as `~`.

dflow pastes its global configuration into every step script it generates; that configuration
holds DFLOW_TOKEN, DFLOW_HTTP_HEADERS, DFLOW_S3_ACCESS_KEY/SECRET_KEY and DFLOW_S3_REPO. The driven
engines' template writes it without them (workflows.engines.SECRET_CONFIG_KEYS): a step reads them
from its own environment, as dflow itself does. Every variable dflow, the minio client and lambench
read a credential from gets a sentinel here; nothing under the work directory (runs/: dag.log, step
scripts, logs, parameters; the store; the site) may hold one, neither as it is nor in base64.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import os
import re
import subprocess
import sys
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace

import pytest

from ops.campaign import RunJob, encode_parameter
from workflows.engines import LocalEngine

REPO = Path(__file__).resolve().parents[2]

SENTINELS = {
    # dflow (dflow/config.py)
    "DFLOW_TOKEN": "sentinel-dflow-token-4f1d",
    "DFLOW_S3_ACCESS_KEY": "sentinel-dflow-s3-access-9a2c",
    "DFLOW_S3_SECRET_KEY": "sentinel-dflow-s3-secret-77e0",
    "DFLOW_HTTP_HEADERS": "Authorization:sentinel-dflow-header-b3c8",
    "DFLOW_S3_REPO": json.dumps({"access_key": "sentinel-dflow-repo-access-1e5f", "secret_key": "sentinel-dflow-repo-secret-c0d2"}),
    # the minio client (minio/credentials/providers.py)
    "AWS_ACCESS_KEY_ID": "sentinel-aws-access-id-5b7a",
    "AWS_ACCESS_KEY": "sentinel-aws-access-0c3e",
    "AWS_SECRET_ACCESS_KEY": "sentinel-aws-secret-access-8d1b",
    "AWS_SECRET_KEY": "sentinel-aws-secret-2f6a",
    "AWS_SESSION_TOKEN": "sentinel-aws-session-9e4d",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": "sentinel-aws-container-6a0f",
    "MINIO_ACCESS_KEY": "sentinel-minio-access-3c9b",
    "MINIO_SECRET_KEY": "sentinel-minio-secret-7f2e",
    "MINIO_ROOT_USER": "sentinel-minio-root-user-4a8c",
    "MINIO_ROOT_PASSWORD": "sentinel-minio-root-password-d15e",
    # lambench (lambench_core/results/s3.py, the cluster configuration's token_env)
    "LAMBENCH_S3_ACCESS_KEY": "sentinel-lambench-s3-access-0b6d",
    "LAMBENCH_S3_SECRET_KEY": "sentinel-lambench-s3-secret-e2a7",
    "ARGO_TOKEN": "sentinel-argo-token-58c3",
}
NEEDLES = sorted(set(re.findall(r"sentinel-[a-z0-9-]+", " ".join(SENTINELS.values()))))
_BASE64 = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


def decoded_views(data: bytes) -> list[bytes]:
    """The bytes, and every base64 run in them decoded (standard and URL-safe alphabets)."""
    views = [data]
    for run in _BASE64.findall(data):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                views.append(decode(run + b"=" * (-len(run) % 4)))
            except (binascii.Error, ValueError):
                pass
    return views


def leaks(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            views = decoded_views(path.read_bytes())
            found += [f"{path.relative_to(root)}: {n}" for n in needles if any(n.encode() in v for v in views)]
    return found


def test_step_scripts_carry_no_credential_even_encoded(monkeypatch):
    from dflow import config, s3_config
    from dflow.step import render_script

    monkeypatch.setitem(config, "token", "sentinel-config-token-1")
    monkeypatch.setitem(config, "http_headers", {"Authorization": "sentinel-config-header-2"})
    monkeypatch.setitem(s3_config, "access_key", "sentinel-s3-access-3")
    monkeypatch.setitem(s3_config, "secret_key", "sentinel-s3-secret-4")
    monkeypatch.setitem(s3_config, "repo", {"secret_key": "sentinel-s3-repo-5"})
    template = deepcopy(LocalEngine().template(RunJob, "image", "run"))
    template.tmp_root = "/work/step/workdir" + template.tmp_root
    template.render_script()
    parameters = {name: SimpleNamespace(value=encode_parameter(name)) for name in RunJob.input_names}
    parameters["dflow_key"] = SimpleNamespace(value="run-key")
    script = render_script(template.script, parameters, "wf", "run-key").encode()
    views = decoded_views(script)
    assert len(views) > 3  # the configuration, the temporary directory and the parameters, decoded
    assert not [n for n in ("sentinel-config", "sentinel-s3") if any(n.encode() in v for v in views)]
    assert any(b'"debug_s3"' in v for v in views)  # the rest of the configuration is there


def test_the_home_directory_is_shown_as_a_tilde():
    from lambench_core.report.publish import redact_home

    home = os.path.expanduser("~").rstrip("/")
    text = f"weights not found at {home}/.cache/x; also '{home}' and {home}"
    assert redact_home({"a": [text]}) == {"a": ["weights not found at ~/.cache/x; also '~' and ~"]}
    assert redact_home(f"/data{home}/x {home}fs") == f"/data{home}/x {home}fs"  # not the home folder


@pytest.mark.parametrize("home", ["/home/o'brien & co <lab>", "/home/é 日本", '/home/q"uote\\'])
def test_published_text_files_show_home_as_a_tilde_in_every_escaping(monkeypatch, home):
    from markupsafe import escape

    from lambench_core.report.publish import redacted_home
    from lambench_core.report.site import _json_for_script

    monkeypatch.setenv("HOME", home)
    path = f"{home}/.cache/w.pt"
    files = {
        "a.html": f"<td>{html.escape(path)}</td><td title='{html.escape(path, False)}'>x</td>".encode(),
        "b.json": (json.dumps({"e": path}) + json.dumps({"e": path}, ensure_ascii=False)).encode(),
        "c.md": f"| {path} |".encode(),
        "d.html": f"<script>const d = {_json_for_script({'e': path})};</script>".encode(),
        "e.parquet": path.encode(),  # binary exports are redacted where they are built
        "f.html": f"<td title='{escape(path)}'>{escape(path)}</td>".encode(),  # as the site's templates escape
    }
    redacted = dict(redacted_home(files.items()))
    for name in ("a.html", "b.json", "c.md", "d.html", "f.html"):
        text = redacted[name].decode()
        assert "o'brien" not in text and "brien" not in text and "日本" not in text and "uote" not in text, text
        assert "~/.cache/w.pt" in text or "~\\/.cache" in text or "~/.cache" in text, text
    assert redacted["e.parquet"] == files["e.parquet"]


def parquet_strings(path: Path) -> str:
    import pyarrow.parquet as pq

    return json.dumps(pq.read_table(path).to_pylist(), default=str)


@pytest.mark.slow
def test_a_local_campaign_writes_no_credential_and_publishes_home_as_a_tilde(tmp_path):
    home = tmp_path / "home of o'brien"  # the failing job's message names a path under it
    home.mkdir()
    work = tmp_path / "work"
    environment = os.environ | SENTINELS | {
        "HOME": str(home),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    environment.pop("LAMBENCH_WEIGHTS_DIR", None)  # the weights cache: ~/.cache/lambench/weights
    done = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", "--models", "dummy,mace-mp-0-medium", "--tasks",
         "force_field/molecules_small", "--bootstrap", "0", "--workdir", str(work)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=environment,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert str(home) in done.stdout  # the failure as it happened, on this user's own terminal
    assert not [n for n in NEEDLES if n in done.stdout + done.stderr]
    assert not leaks(tmp_path, NEEDLES)  # runs/ (dag.log, step scripts and logs), store/, site/

    (run,) = (work / "runs").iterdir()
    sites = [run / "site", *(work / "store" / "campaigns").glob("*/site")]
    assert len(sites) == 2
    for site in sites:
        results = json.loads((site / "results.json").read_text())
        (failed,) = [job for job in results["jobs"] if job["status"] == "failed"]
        assert "weights not found at ~/.cache/lambench/weights/mace-mp-0-medium/" in failed["error"], failed["error"]
        for path in site.rglob("*"):
            if path.is_file():
                text = parquet_strings(path) if path.suffix == ".parquet" else path.read_bytes().decode(errors="replace")
                assert "home of o" not in text, path  # the home folder, in any escaping
