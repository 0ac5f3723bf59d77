"""No import runs back up: lambench_core's packages form the order docs/architecture.md draws, with
no circle between them, and lambench_core imports nothing of ops, workflows or dflow."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "lambench_core"
# Bottom to top; a package may import only packages before it.
ORDER = ["categories", "domains", "errors", "hashing", "settings", "models", "results", "metrics", "data", "tasks", "campaign", "report"]


def imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):  # function-level (lazy) imports included
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
    return found


def test_every_core_package_imports_only_packages_below_it():
    wrong = []
    for path in sorted(CORE.rglob("*.py")):
        parts = path.relative_to(CORE).parts
        if parts == ("__init__.py",):
            continue
        own = parts[0].removesuffix(".py")
        assert own in ORDER, f"{path}: a new lambench_core package; place it in ORDER and docs/architecture.md"
        for module, line in imports(path):
            if module.split(".")[0] in ("dflow", "ops", "workflows"):
                wrong.append(f"{path}:{line} imports {module}")
            if module.startswith("lambench_core."):
                target = module.split(".")[1]
                if target != own and ORDER.index(target) > ORDER.index(own):
                    wrong.append(f"{path}:{line} imports {module} (above {own})")
    assert not wrong, "\n".join(wrong)
