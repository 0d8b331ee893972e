"""Did a change leave every analysis result as it was? For speed work.

Analyses fixed inputs and writes each result as JSON; run it on two checkouts
and compare. The inputs: neurorig recordings (folders: ``neurorig run ...
--sim [--camera sim]`` makes them) and the independently generated recordings
of tests/validation/generator.py (every named condition, and ``--random N``
random ones, seed 0).

    python scripts/same_results.py dump OUT [--recordings DIR ...] [--random 40]
    python scripts/same_results.py compare BEFORE AFTER

``compare`` says how many files are byte-identical and lists every number that
differs by more than 1e-9 relative and every other difference (exit 1 if any):
a speed change should leave them all byte-identical. Keys that name the run
rather than the result (the software version, a temporary file's path: top
level) are left out of the dump.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VOLATILE = ("software", "software_version", "source")


def _write(out: Path, name: str, result: Any) -> None:
    kept = {k: v for k, v in result.items() if k not in VOLATILE}
    text = json.dumps(kept, indent=0, sort_keys=True, default=str)
    (out / f"{name}.json").write_text(text)


def dump(out: Path, recordings: list[Path], n_random: int) -> int:
    import numpy as np

    from rig.offline.batch import _no_progress
    from rig.offline.load import load_recording
    from rig.offline.pipeline import analyse
    from tests.validation.generator import CONDITIONS, make_case, random_condition
    from tests.validation.harness import analyse_case

    out.mkdir(parents=True, exist_ok=True)
    for folder in recordings:
        with contextlib.redirect_stderr(io.StringIO()):
            result = analyse(load_recording(folder), _no_progress)
        _write(out, f"rec_{folder.name}", result)
    names = [*CONDITIONS, *(f"random_{i}" for i in range(n_random))]
    for name in names:
        condition = (
            random_condition(np.random.default_rng(int(name.split("_")[1])))
            if name.startswith("random_")
            else CONDITIONS[name]
        )
        with tempfile.TemporaryDirectory() as tmp:
            try:
                result = analyse_case(make_case(condition, 0), Path(tmp))
            except Exception as exc:  # a crash is a result too
                result = {"crash": f"{type(exc).__name__}: {exc}"}
        _write(out, f"val_{name}", result)
    print(f"{len(recordings)} recordings and {len(names)} generated ones -> {out}")
    return 0


def _walk(a: Any, b: Any, where: str, found: list[str], worst: list) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            found.append(f"{where}: keys {sorted(set(a) ^ set(b))}")
        for key in sorted(set(a) & set(b)):
            _walk(a[key], b[key], f"{where}.{key}", found, worst)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            found.append(f"{where}: {len(a)} items, then {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{where}[{i}]", found, worst)
    elif (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        if a != b:
            rel = abs(a - b) / max(abs(a), abs(b))
            worst[:] = max(worst, [rel, f"{where}: {a!r} then {b!r}"])
            if rel > 1e-9:
                found.append(f"{where}: {a!r} then {b!r} (relative {rel:.2g})")
    elif a != b:
        found.append(f"{where}: {a!r:.80} then {b!r:.80}")


def compare(before: Path, after: Path) -> int:
    found: list[str] = []
    worst: list = [0.0, ""]
    files = sorted(before.glob("*.json"))
    same = 0
    for path in files:
        other = after / path.name
        if not other.exists():
            found.append(f"{path.name}: missing in {after}")
        elif path.read_bytes() == other.read_bytes():
            same += 1
        else:
            a, b = json.loads(path.read_text()), json.loads(other.read_text())
            _walk(a, b, path.name, found, worst)
    print(f"{len(files)} results, {same} byte-identical; largest relative difference "
          f"{worst[0]:.3g} {worst[1]}")  # fmt: skip
    print(f"{len(found)} differences over 1e-9 relative or not numbers")
    for line in found[:40]:
        print("  " + line)
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="analyse the inputs, one JSON each")
    d.add_argument("out", type=Path)
    d.add_argument("--recordings", type=Path, nargs="*", default=[])
    d.add_argument("--random", type=int, default=40)
    c = sub.add_parser("compare", help="compare two dumps")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dump":
        return dump(args.out, args.recordings, args.random)
    return compare(args.before, args.after)


if __name__ == "__main__":
    raise SystemExit(main())
