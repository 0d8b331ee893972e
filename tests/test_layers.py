"""Only rig.gui may import Qt or pyqtgraph (docs/architecture.md, "Import layering");
checked on the source text."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT_MODULES = ("PyQt5", "pyqtgraph", "PySide2", "PySide6")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_qt_outside_rig_gui():
    offenders = []
    for package in ("rig", "analysis", "firmware_bridge", "calibration"):
        for path in (ROOT / package).rglob("*.py"):
            if (ROOT / "rig" / "gui") in path.parents:
                continue
            bad = [m for m in _imported_modules(path) if m.startswith(QT_MODULES)]
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert offenders == []


def test_checker_sees_a_qt_import(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("from pyqtgraph.Qt import QtCore\nimport numpy\n")
    assert _imported_modules(sample) == {"pyqtgraph.Qt", "numpy"}
