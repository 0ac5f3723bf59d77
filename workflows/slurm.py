"""Run steps on a Slurm or PBS cluster: dflow's DispatcherExecutor hands each step to dpdispatcher,
which writes a batch script with the queue and GPU settings of the configuration and submits it
over SSH. `job_script` renders that script offline (what `lambench export --slurm-script` prints)."""

from __future__ import annotations

from typing import Any

from workflows.cluster_config import SlurmSettings


def machine_dict(settings: SlurmSettings) -> dict[str, Any]:
    remote_profile: dict[str, Any] = {"hostname": settings.host, "username": settings.username, "port": settings.port}
    if settings.key_filename:
        remote_profile["key_filename"] = settings.key_filename
    return {
        "batch_type": settings.batch_type,
        "context_type": "SSHContext",
        "remote_root": settings.remote_root,
        "remote_profile": remote_profile,
    }


def resources_dict(settings: SlurmSettings) -> dict[str, Any]:
    flags = list(settings.custom_flags)
    if settings.batch_type == "Slurm":
        flags.append(f"#SBATCH --time={settings.walltime}")
    elif settings.batch_type == "PBS":
        flags.append(f"#PBS -l walltime={settings.walltime}")
    return {
        "number_node": 1,
        "cpu_per_node": settings.cpus_per_node,
        "gpu_per_node": settings.gpus_per_node,
        "queue_name": settings.queue,
        "group_size": 1,
        "custom_flags": flags,
        "prepend_script": list(settings.prelude),
    }


def dispatcher_executor(settings: SlurmSettings):  # noqa: ANN201 (dflow's type)
    """The executor that sends a step to the batch system instead of a Kubernetes pod."""
    from dflow.plugins.dispatcher import DispatcherExecutor

    return DispatcherExecutor(
        host=settings.host,
        username=settings.username,
        port=settings.port,
        private_key_file=settings.key_filename,
        queue_name=settings.queue,
        remote_root=settings.remote_root,
        command=settings.python,
        machine_dict=machine_dict(settings),
        resources_dict=resources_dict(settings),
    )


def job_script(settings: SlurmSettings, command: str, work_dir: str = "step") -> str:
    """The batch script dpdispatcher would submit for one step running `command` (offline)."""
    from dpdispatcher import Machine, Resources, Submission, Task

    machine = Machine.load_from_dict(machine_dict(settings) | {"context_type": "LazyLocalContext", "local_root": "."})
    resources = Resources.load_from_dict(resources_dict(settings))
    task = Task(command=command, task_work_path=work_dir, forward_files=[], backward_files=[])
    submission = Submission(work_base=".", machine=machine, resources=resources, task_list=[task])
    submission.generate_jobs()
    (job,) = submission.belonging_jobs
    return machine.gen_script(job)
