"""Imports every built-in reference plug-in so that it registers itself."""

from lambench_core.data.labelling import pyscf_reference, qe  # noqa: F401
