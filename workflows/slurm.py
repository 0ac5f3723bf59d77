"""Run steps as Slurm batch jobs: dflow's DispatcherExecutor hands each step to dpdispatcher, which
writes a batch script with the category's partition, time limit, CPUs, memory, GPUs, account, QOS and
prelude, submits it with sbatch (on this host, or over SSH), polls the queue and brings the step's
outputs back. `job_script` renders that script offline (what `lambench export --slurm-script` prints).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from dflow.plugins.dispatcher import DispatcherExecutor

from lambench_core.categories import Category
from workflows.cluster_config import SlurmResources, SlurmSettings
from workflows.slurm_names import job_name


def _python(settings: SlurmSettings) -> str:
    return settings.python or sys.executable


def machine_dict(settings: SlurmSettings, retries: int) -> dict[str, Any]:
    machine: dict[str, Any] = {
        "batch_type": "Slurm",
        "context_type": "LocalContext" if settings.context == "local" else "SSHContext",
        "local_root": ".",
        "remote_root": settings.work_root,
        # dpdispatcher resubmits a job that ended without finishing (killed, cancelled, node lost) this
        # many times; a job's own deterministic failure ends "finished" (see batch_step) and is not.
        "retry_count": retries,
    }
    if settings.context == "ssh":
        profile: dict[str, Any] = {"hostname": settings.host, "username": settings.username, "port": settings.port}
        if settings.key_filename:
            profile["key_filename"] = settings.key_filename
        machine["remote_profile"] = profile
    return machine


def sbatch_flags(resources: SlurmResources, name: str | None = None) -> list[str]:
    """The `#SBATCH` lines dpdispatcher's own header does not write."""
    flags = [f"#SBATCH --time={resources.time_limit}", f"#SBATCH --cpus-per-task={resources.cpus}"]
    if resources.memory:
        flags.append(f"#SBATCH --mem={resources.memory}")
    if resources.gres:
        flags.append(f"#SBATCH --gres={resources.gres}")
    if resources.account:
        flags.append(f"#SBATCH --account={resources.account}")
    if resources.qos:
        flags.append(f"#SBATCH --qos={resources.qos}")
    if name:
        flags.append(f"#SBATCH --job-name={name}")
    return flags + list(resources.custom_flags or [])


# Slurm signals every process of a job on scancel, preemption or its time limit, and kills what is left
# as soon as the batch script exits. Ignored in the batch shell (and so in the shells and Python it
# starts, until the run step installs its handler), SIGTERM leaves the script waiting for the step,
# whose handler stores the job's failure with Slurm's reason; SIGKILL follows after KillWait.
KEEP_THE_STEP_ALIVE = 'trap "" TERM'  # no single quotes: dflow embeds this in a r'...' literal


def resources_dict(resources: SlurmResources, name: str | None = None, execution: str | None = None) -> dict[str, Any]:
    envs = {"LAMBENCH_DAG_EXECUTION": execution} if execution else {}
    return {
        "number_node": 1,
        "cpu_per_node": 1,  # one task; its CPUs come from --cpus-per-task
        "gpu_per_node": 0 if resources.gres else resources.gpus or 0,
        "queue_name": resources.partition or "",
        "group_size": 1,
        "custom_flags": sbatch_flags(resources, name),
        "prepend_script": [KEEP_THE_STEP_ALIVE, *(resources.prelude or [])],
        # dpdispatcher recognizes a submission by its content and resumes it (finished or failed)
        # instead of submitting it again: each execution of the DAG (a retry) must differ.
        "envs": envs,
    }


class SlurmExecutor(DispatcherExecutor):
    """dflow's DispatcherExecutor, polling the queue every `check_interval` seconds.

    dflow writes `submission.run_submission(clean=...)` into the step's script with dpdispatcher's
    default poll of 30 s and has no setting for it: a campaign of short jobs would spend most of its
    time waiting for the next look at the queue.
    """

    check_interval = 30

    def render(self, template):  # noqa: ANN001, ANN201 (dflow's types)
        rendered = super().render(template)
        if getattr(rendered, "script", None):
            rendered.script = re.sub(
                r"submission\.run_submission\(clean=(\w+)\)",
                rf"submission.run_submission(clean=\1, check_interval={self.check_interval})",
                rendered.script,
            )
        return rendered


def slurm_executor(  # noqa: ANN201 (dflow's type)
    settings: SlurmSettings, category: Category, job_key: str | None = None, execution: str | None = None
):
    """The executor that makes a step one Slurm batch job with its category's resources;
    `execution` tells this execution of the DAG from earlier ones (see resources_dict)."""
    resources = settings.resources_for(category)
    executor = SlurmExecutor(
        host=settings.host,
        username=settings.username or "root",
        port=settings.port,
        # dflow annotates Optional[os.PathLike] but only takes os.path.basename of it: a str path works.
        private_key_file=settings.key_filename if settings.context == "ssh" else None,  # type: ignore[arg-type]
        remote_root=settings.work_root,
        command=_python(settings),
        # A deterministic failure must not look like a killed job to dpdispatcher (which resubmits
        # those): batch_step turns the step's FatalError exit into a finished job; dflow still
        # fails the step, whose outputs are missing.
        remote_command=[_python(settings), "-m", "workflows.batch_step"],
        machine_dict=machine_dict(settings, resources.retries or 0),
        resources_dict=resources_dict(resources, job_name(job_key) if job_key else None, execution),
    )
    executor.check_interval = settings.check_interval
    return executor


def job_script(settings: SlurmSettings, category: Category, command: str, work_dir: str = "step") -> str:
    """The batch script dpdispatcher would submit for one step of `category` running `command`."""
    from dpdispatcher import Machine, Resources, Submission, Task

    resources = settings.resources_for(category)
    machine = Machine.load_from_dict(
        machine_dict(settings, resources.retries or 0) | {"context_type": "LazyLocalContext", "local_root": "."}
    )
    submission = Submission(
        work_base=".",
        machine=machine,
        resources=Resources.load_from_dict(resources_dict(resources, job_name("0" * 16))),
        task_list=[Task(command=command, task_work_path=work_dir, forward_files=[], backward_files=[])],
    )
    submission.generate_jobs()
    (job,) = submission.belonging_jobs
    return machine.gen_script(job)
