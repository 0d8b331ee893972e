"""The examples in docstrings run (issue 14, item 7): doctest over every module of
firmware_bridge, analysis, calibration and rig.

Write an example in a docstring as a doctest (``>>>``), not as a ``::`` literal
block, so that it is run here and cannot go stale. Examples must be quick (no
simulated rig, no files) and deterministic; ``...`` matches anything
(``ELLIPSIS``) and runs of whitespace compare equal (``NORMALIZE_WHITESPACE``).
Qt runs offscreen (tests/conftest.py), so the GUI modules are imported and
searched too.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("firmware_bridge", "analysis", "calibration", "rig")
# Importing these runs a program, or they are scripts, not library modules.
NOT_MODULES = {"rig.cli.__main__", "firmware_bridge.testdata.make_golden"}
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if info.name not in NOT_MODULES:
                names.append(info.name)
    return sorted(names)


MODULES = _modules()


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    # Only what the module defines: an imported object is tested at its home.
    return [t for t in tests if t.examples and _defined_in(t, module)]


def _defined_in(test: doctest.DocTest, module) -> bool:
    return test.filename is None or test.filename == module.__file__


@pytest.mark.parametrize("name", [m for m in MODULES if _examples(m)])
def test_docstring_examples_run(name):
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in _examples(name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_the_examples_are_found():
    """The search is not empty: a broken finder would pass every module."""
    found = {m: sum(len(t.examples) for t in _examples(m)) for m in MODULES}
    assert found["firmware_bridge.protocol.framing"] >= 3
    assert found["rig.protocols._parse"] >= 3
    assert sum(found.values()) >= 40


def test_a_wrong_example_fails():
    """The runner reports a wrong expected output (so the test above can fail)."""
    parser = doctest.DocTestParser()
    test = parser.get_doctest(">>> 1 + 1\n3\n", {}, "wrong", None, 0)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    runner.run(test, out=lambda text: None)
    assert runner.summarize(verbose=False).failed == 1
