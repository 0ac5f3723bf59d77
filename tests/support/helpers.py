"""Small helpers the test modules share: a loaded model card, a silent progress callback, EMT energies."""

from __future__ import annotations

from ase import Atoms
from ase.calculators.emt import EMT

from lambench_core.models import ModelCatalog, load_model
from lambench_core.models.loading import LoadedModel


def model(name: str) -> LoadedModel:
    return load_model(ModelCatalog.load().get(name), None, "cpu")


def quiet(done: int, total: int) -> None:
    pass


def emt_energy(atoms: Atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return float(atoms.get_potential_energy())


def plan_step(spec, campaign: str = "") -> None:
    """The campaign DAG's plan step, run here: stores the plan the later steps read."""
    from dflow.python import OPIO

    from ops.campaign import PlanCampaign

    PlanCampaign().execute(OPIO(spec=spec.model_dump_json(), campaign=campaign))


def run_step(spec, key: str, campaign: str = "") -> str:
    """The campaign DAG's run step of one job, run here (the plan step must have run)."""
    from dflow.python import OPIO

    from ops.campaign import RunJob

    return RunJob().execute(OPIO(store=spec.store, campaign=campaign or spec.campaign_id, job_key=key))["status"]
