"""No import cycles between the modules of the four packages.

import-linter's contracts check which way packages may import; a cycle between
two modules of one package (``a`` imports ``b``, ``b`` imports ``a``, perhaps
inside a function) passes them all. This test builds the import graph with grimp
(import-linter's own graph library, function-level imports included) and finds
every cycle as a strongly connected component of more than one module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import grimp
import pytest

import rig

PACKAGES = ("rig", "analysis", "firmware_bridge", "calibration")

# Cycles known and left for the package's owners (not this test's to fix). Each
# entry must still be a cycle: delete it when the cycle is broken, so that it
# cannot come back unnoticed.
KNOWN: set[frozenset[str]] = {
    # the simulated camera renders the checkerboard target, and the target
    # undistorts with the camera's lens maps
    frozenset({"firmware_bridge.sim.camera", "firmware_bridge.sim.targets"}),
}


def cycles(
    modules: Iterable[str], imported_by: Callable[[str], Iterable[str]]
) -> set[frozenset[str]]:
    """The import cycles: strongly connected components of two or more modules
    (Tarjan's algorithm, iterative so deep packages cannot exhaust the stack)."""
    inside = set(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in sorted(inside):
        if root in index:
            continue
        work = [(root, iter(sorted(set(imported_by(root)) & inside)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(set(imported_by(child)) & inside))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # cache_dir=None: a cache written by another checkout must not answer for this one
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_the_graph_is_of_this_checkout(graph):
    assert Path(rig.__file__).resolve().parents[1] == Path(__file__).parents[1]
    assert "rig.core.camera" in graph.modules and "calibration._set" in graph.modules


def test_no_module_imports_itself_back(graph):
    modules = [m for m in graph.modules if m.split(".")[0] in PACKAGES]
    found = cycles(modules, graph.find_modules_directly_imported_by)
    new = found - KNOWN
    assert not new, "import cycles: " + "; ".join(
        " ↔ ".join(sorted(c)) for c in sorted(new, key=sorted)
    )
    gone = KNOWN - found
    assert not gone, f"no longer cycles, delete them from KNOWN: {gone}"


def test_cycles_finds_a_cycle_through_a_function_level_import():
    graph = grimp.ImportGraph()
    for importer, imported in [
        ("pkg.camera", "pkg.stream"),  # open_camera's import inside the function
        ("pkg.stream", "pkg.camera"),
        ("pkg.files", "pkg.gain"),
        ("pkg.gain", "pkg.timing"),
        ("pkg.timing", "pkg.files"),
        ("pkg.timing", "pkg.leaf"),
        ("pkg.top", "pkg.files"),
    ]:
        graph.add_import(importer=importer, imported=imported)
    found = cycles(graph.modules, graph.find_modules_directly_imported_by)
    assert found == {
        frozenset({"pkg.camera", "pkg.stream"}),
        frozenset({"pkg.files", "pkg.gain", "pkg.timing"}),
    }
    graph.remove_import(importer="pkg.stream", imported="pkg.camera")
    found = cycles(graph.modules, graph.find_modules_directly_imported_by)
    assert found == {frozenset({"pkg.files", "pkg.gain", "pkg.timing"})}
