"""Imports every built-in task module so that each registers itself."""

from lambench_core.tasks import (  # noqa: F401
    adaptability,
    barriers,
    efficiency,
    elasticity,
    energetics,
    eos,
    force_field,
    interfaces,
    molecular_sets,
    neb,
    noncovalent,
    phonon_mdr,
    phonons,
    pressure,
    stability,
    torsion,
)
