"""The load the timing-sensitive benchmarks run under (not a benchmark itself:
``run.py`` runs only ``bench_*.py``)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def busy_processes(n: int = 2) -> Iterator[None]:
    """``n`` processes spinning on the CPU for the duration: a machine whose
    other programs (or a virtual machine's neighbours) take the cores. Two
    take every core of this 2-core VM."""
    spin = "while True: pass"
    children = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(n)]
    try:
        yield
    finally:
        for child in children:
            child.kill()
            child.wait(10)
