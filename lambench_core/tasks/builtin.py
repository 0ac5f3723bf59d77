"""Imports every module of the tasks package, so that each task registers itself: a new task is one
module in this package (and one entry in suite.yaml), with no list to edit."""

from __future__ import annotations

import importlib
import pkgutil

import lambench_core.tasks as package


def import_task_modules() -> None:
    # Iterating the package's __path__ (not a fixed folder) lets a task package extended on its path
    # (a plugin, or a test's toy task) register the same way.
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package.__name__}.{module.name}")


import_task_modules()
