"""Dependencies point one way: dfdg (CLI) -> streams -> sinks -> schemas -> processors.
A module may import from its own package and the ones to its right, never to its left."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("dfdg", "streams", "sinks", "schemas", "processors")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", ORDER)
def test_layering_a_package_never_imports_one_to_its_left(package: str) -> None:
    forbidden = set(ORDER[:ORDER.index(package)])
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & forbidden)
                 for p in (ROOT / package).rglob("*.py") if _imports(p) & forbidden}
    assert not offenders, f"{package}/ imports from packages it must not depend on: {offenders}"
