"""Run the benchmarks and print their figures.

Usage::

    python benchmarks/run.py [NAME ...] [--quick] [--json OUT]

Each ``benchmarks/bench_<name>.py`` defines ``run(quick: bool) -> dict[str, float]``
returning named figures (``decode_mb_per_s``, ...). NAME selects modules by ``<name>``;
no NAME runs them all. ``--json`` writes one flat ``{figure_name: number}`` object.
``--quick`` shortens long runs (soaks) for a smoke check; the README's figures come
from full runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> dict[str, Path]:
    """Return ``{name: path}`` of every ``bench_<name>.py`` beside this file."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def load(path: Path):
    """Import one benchmark module from its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmark names (default: all)")
    parser.add_argument("--json", type=Path, help="write figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE.parent))
    available = discover()
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {sorted(available)}")
    selected = args.names or list(available)

    figures: dict[str, float] = {}
    for name in selected:
        started = time.perf_counter()
        print(f"[{name}] running ...", flush=True)
        result = load(available[name]).run(quick=args.quick)
        elapsed = time.perf_counter() - started
        print(f"[{name}] done in {elapsed:.1f} s", flush=True)
        figures.update({k: float(v) for k, v in result.items()})

    width = max((len(k) for k in figures), default=10)
    print()
    print(f"{'figure':<{width}}  value")
    print(f"{'-' * width}  ----------")
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.6g}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
