"""The code's shape, checked: no import cycles (even inside functions), no reaching into
another object's private members, so each module can be read and changed on its own."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from registry._devtools import imports

REPO = Path(__file__).resolve().parent.parent


def test_the_project_has_no_import_cycles() -> None:
    done = subprocess.run([sys.executable, "-m", "registry._devtools.imports"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 import cycle(s)" in done.stdout


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    pkg = tmp_path / "registry"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from . import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import X\n")
    (pkg / "d.py").write_text("from . import c\n")
    (tmp_path / "backends").mkdir()
    graph = imports.import_graph(tmp_path)
    assert imports.cycles(graph) == [["registry.a", "registry.b"]]  # c <-> d is for the type checker only


def test_no_module_reaches_into_another_objects_private_members() -> None:
    found = []
    for path in sorted((REPO / "registry").rglob("*.py")) + sorted((REPO / "backends").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls", "os", "sys"):
                    continue  # own members, and os._exit / sys._getframe
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
