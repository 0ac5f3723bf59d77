"""Importing DeePMD-kit's PyTorch backend beside a torch it was not compiled for.

deepmd-kit's wheels carry a custom-operator library (`deepmd/lib/libdeepmd_op_pt.so`) compiled
against one torch release (3.2.0: torch 2.11). `deepmd.pt` loads it at import time and raises when
the running torch differs, so with lambench's torch pin (2.13) nothing of the PyTorch backend would
import. Those operators serve model compression and multi-rank LAMMPS only; inference and training
of an uncompressed model run in plain PyTorch, and deepmd-kit itself supports running without them:
when the library file is absent it sets `ENABLE_CUSTOMIZED_OP = False` and goes on (its CPU-only
source builds do the same).

`import_deepmd` therefore points deepmd-kit's library directory (`deepmd.env.SHARED_LIB_DIR`, read
once by `deepmd.pt.cxx_op`) at a directory without that file, before `deepmd.pt` is first imported,
and only when the versions differ. Nothing in site-packages changes. A user who needs compression
builds deepmd-kit against their torch (`pip install deepmd-kit --no-binary deepmd-kit`), after which
the versions match and this module does nothing.

Run as a program, it is DeePMD-kit's own `dp` command behind the same guard:
`python -m lambench_core.models.families._deepmd_runtime --pt train input.json --finetune model.pt`.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

# A directory that is sure not to hold libdeepmd_op_pt.so: this package's own.
_NO_OP_LIBRARY_DIR = Path(__file__).resolve().parent


def op_library_mismatch() -> tuple[str, str] | None:
    """(torch version the op library was built for, running torch version) when they differ."""
    import torch
    from packaging.version import Version

    env = importlib.import_module("deepmd.env")
    built_for = str(env.GLOBAL_CONFIG.get("pt_version", "") or "")
    running = Version(torch.__version__).public
    if not built_for or built_for == running:
        return None
    return built_for, running


def import_deepmd(module: str) -> ModuleType:
    """`module` of deepmd-kit (e.g. 'deepmd.calculator'), importable beside any torch."""
    if "deepmd.pt.cxx_op" not in sys.modules:
        mismatch = op_library_mismatch()
        if mismatch is not None:
            env = importlib.import_module("deepmd.env")
            setattr(env, "SHARED_LIB_DIR", _NO_OP_LIBRARY_DIR)  # noqa: B010 (a module attribute mypy cannot see)
            log.info(
                "deepmd-kit's custom operators were built for torch %s, this is torch %s: running without "
                "them (plain PyTorch; compression needs a matching source build of deepmd-kit)",
                *mismatch,
            )
    return importlib.import_module(module)


def custom_ops_enabled() -> bool:
    return bool(import_deepmd("deepmd.pt.cxx_op").ENABLE_CUSTOMIZED_OP)


def main(argv: list[str]) -> int:
    """DeePMD-kit's `dp` command line, importable beside any torch."""
    dp_main = import_deepmd("deepmd.main").main
    dp_main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
