"""Imports every built-in task module so that each registers itself."""

from lambench_core.tasks import barriers, energetics, eos, force_field, noncovalent, phonons  # noqa: F401
