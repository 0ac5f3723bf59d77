"""The one-node Slurm cluster of scripts/slurm-local.sh takes and runs a real batch job."""

from __future__ import annotations

import socket
import subprocess

from tests.support.slurm_cluster import parse_job_record


def test_job_record_parsing():
    info = parse_job_record(
        "JobId=7 JobName=wrap JobState=COMPLETED Reason=None CPUs/Task=1 AllocNode:Sid=vm:1 "
        "TRES=cpu=1,mem=100M,node=1 Command=/tmp/a b.sh WorkDir=/tmp"
    )
    assert info["JobId"] == "7"
    assert info["CPUs/Task"] == "1"
    assert info["AllocNode:Sid"] == "vm:1"
    assert info["TRES"] == "cpu=1,mem=100M,node=1"
    assert info["Command"] == "/tmp/a b.sh"
    assert info["WorkDir"] == "/tmp"


def test_batch_job_runs_with_requested_partition_memory_and_time(slurm_cluster, tmp_path):
    assert "batch" in slurm_cluster.partitions
    out = tmp_path / "job.out"
    submitted = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--partition",
            "batch",
            "--cpus-per-task",
            "1",
            "--mem",
            "100M",
            "--time",
            "00:01:00",
            "--job-name",
            "lb-slurm-local",
            "--chdir",
            str(tmp_path),
            "--output",
            str(out),
            "--wrap",
            "hostname",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    job_id = submitted.stdout.strip().split(";")[0]
    assert job_id.isdigit(), submitted.stdout

    info = slurm_cluster.wait(job_id, timeout=25)

    assert info["JobState"] == "COMPLETED", info
    assert info["ExitCode"] == "0:0"
    assert info["Partition"] == "batch"
    assert info["MinMemoryNode"] == "100M"
    assert "mem=100M" in info["TRES"]
    assert info["TimeLimit"] == "00:01:00"
    assert info["JobName"] == "lb-slurm-local"
    assert out.read_text().strip() == socket.gethostname()
