from __future__ import annotations

import threading

import pytest

from lambench_core.errors import InputError
from lambench_core.models import ModelCatalog
from lambench_core.results import Metric, ResultStore, Status, TaskResult, job_key


def result(key: str, status: Status = Status.SUCCEEDED, value: float = 1.0) -> TaskResult:
    return TaskResult(key=key, model="m", task="t", status=status, metrics={"x": Metric(value=value, unit="eV")})


def test_put_get_roundtrip(tmp_path):
    store = ResultStore.open(tmp_path / "store")
    store.put(result("k1"))
    assert store.get("k1") == result("k1")
    assert store.keys() == ["k1"]
    assert store.get("nope") is None


def test_failed_results_never_occupy_the_key(tmp_path):
    store = ResultStore.open(tmp_path)
    store.put(result("k1", Status.FAILED))
    assert not store.has("k1")
    assert store.get_failure("k1") is not None
    store.put(result("k1"))
    assert store.has("k1") and store.get_failure("k1") is None


def test_torn_or_foreign_file_is_not_read_as_a_result(tmp_path):
    store = ResultStore.open(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "k1.json").write_text('{"key": "k1", "model": "m"')
    assert store.get("k1") is None
    (tmp_path / "results" / "k2.json").write_text(result("other").model_dump_json())
    assert store.get("k2") is None


def test_no_temporary_files_left_and_concurrent_writers(tmp_path):
    store = ResultStore.open(f"file://{tmp_path}")
    def write(i: int) -> None:
        for j in range(20):
            store.put(result(f"k{i}", value=float(j)))
    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(store.keys()) == ["k0", "k1", "k2", "k3"]
    assert all(store.get(f"k{i}").metric("x") == 19.0 for i in range(4))
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_unknown_store_scheme(tmp_path):
    with pytest.raises(InputError, match="unsupported store URL"):
        ResultStore.open("gopher://x")


def test_identity_key_changes_with_every_ingredient():
    catalog = ModelCatalog.load()
    chgnet, sevennet = catalog.get("chgnet-0.3.0"), catalog.get("sevennet-0")
    base = job_key(chgnet, "force_field", "1", {"a": 1}, "d" * 64)
    assert base == job_key(chgnet, "force_field", "1", {"a": 1}, "d" * 64)
    variants = {
        job_key(sevennet, "force_field", "1", {"a": 1}, "d" * 64),
        job_key(chgnet, "force_field", "2", {"a": 1}, "d" * 64),
        job_key(chgnet, "force_field", "1", {"a": 2}, "d" * 64),
        job_key(chgnet, "force_field", "1", {"a": 1}, "e" * 64),
        job_key(chgnet.model_copy(update={"dtype": "float64"}), "force_field", "1", {"a": 1}, "d" * 64),
    }
    assert base not in variants and len(variants) == 5
    # Editing prose on the card does not change what was computed.
    assert base == job_key(chgnet.model_copy(update={"description": "new"}), "force_field", "1", {"a": 1}, "d" * 64)


def test_s3_store_on_a_real_server(s3_env):
    store = ResultStore.open("s3://lambench-results/team-a")
    assert store.url == "s3://lambench-results/team-a" and store.keys() == []
    store.put(result("k1"))
    store.put(result("k2", Status.FAILED))
    assert store.get("k1") == result("k1") and store.get("nope") is None
    assert store.keys() == ["k1"] and store.get_failure("k2") is not None
    store.put(result("k2"))
    assert store.keys() == ["k1", "k2"] and store.get_failure("k2") is None
    store.put_campaign_file("c1", "site/index.html", b"<html>")
    assert store.get_campaign_file("c1", "site/index.html") == b"<html>"
    # Another prefix of the same bucket is another store.
    assert ResultStore.open("s3://lambench-results/team-b").keys() == []


def test_s3_store_errors_name_the_object_and_endpoint(monkeypatch):
    from lambench_core.errors import LambenchError

    monkeypatch.setenv("LAMBENCH_S3_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("LAMBENCH_S3_ACCESS_KEY", "x")
    monkeypatch.setenv("LAMBENCH_S3_SECRET_KEY", "y")
    store = ResultStore.open("s3://bucket/prefix")
    with pytest.raises(LambenchError, match=r"s3://bucket/prefix/results/k1.json: read failed"):
        store.get("k1")
