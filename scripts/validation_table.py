"""Accuracy of ``neurorig analyze`` on independently generated recordings.

Runs every named condition of tests/validation/generator.py (a generator that
shares no code with the analysis or the simulator) over several seeds, scores
each against its truth (tests/validation/scoring.py) and prints a Markdown
table per condition: verdicts per fibre, velocity errors, invented fibres.

    python scripts/validation_table.py [--seeds 3] [--random N] [--only NAME,NAME]
        [--jobs 2] [--markdown FILE] [--docs docs/analysis.md]

Verdicts: ok (within ±3 % of the truth), n.d. (not determined, and the data
do not support it: right), MISSED (determinable but not reported), WRONG
(reported and more than 3 % off: the worst outcome).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tests.validation.generator import CONDITIONS, random_condition  # noqa: E402
from tests.validation.harness import run_condition  # noqa: E402

SHORT = {"ok": "ok", "not_determined_ok": "n.d.", "missed": "MISSED", "wrong": "WRONG"}


def _condition(name: str):
    if name.startswith("random_"):
        return random_condition(np.random.default_rng(int(name.split("_")[1])))
    return CONDITIONS[name]


def _one(job: tuple[str, int]) -> dict:
    name, seed = job
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return run_condition(name, _condition(name), seed, Path(tmp))
        except Exception as exc:  # a crash is a result too: it is counted
            return {"name": name, "seed": seed, "crash": f"{type(exc).__name__}: {exc}"}


def _cell(scores: list[dict], fibre: str) -> str:
    verdicts = [s["fibres"][fibre]["verdict"] for s in scores]
    errors = [
        s["fibres"][fibre]["rel_error"]
        for s in scores
        if s["fibres"][fibre]["rel_error"] is not None
    ]
    counts = {}
    for v in verdicts:
        counts[SHORT[v]] = counts.get(SHORT[v], 0) + 1
    text = " ".join(f"{k}×{n}" if len(verdicts) > 1 else k for k, n in counts.items())
    if errors:
        text += f" ({100 * max(errors):.1f} %)"
    return text


START, END = "<!-- validation-table:start -->", "<!-- validation-table:end -->"


def _replace_block(path: Path, table: str) -> None:
    text = path.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{path}: no {START} ... {END} block to replace")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated condition names")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument(
        "--docs",
        help="replace the table between the validation-table markers of this file "
        "(docs/analysis.md)",
    )
    parser.add_argument(
        "--random",
        type=int,
        default=0,
        help="also this many conditions with every knob drawn at random (one seed each)",
    )
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(CONDITIONS)
    randoms = [f"random_{k:03d}" for k in range(args.random)]
    jobs = [(n, s) for n in names for s in range(args.seeds)]
    jobs += [(n, 0) for n in randoms]
    names = names + randoms
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(_one, jobs))
    by_name: dict[str, list[dict]] = {}
    for r in results:
        by_name.setdefault(r["name"], []).append(r)
    lines = [
        "| condition | MGF | LGF | invented (max % of sweeps) |",
        "| --- | --- | --- | --- |",
    ]
    totals = {"ok": 0, "not_determined_ok": 0, "missed": 0, "wrong": 0}
    worst_invented = 0.0
    crashes = [r for r in results if "crash" in r]
    for r in crashes:
        print(f"CRASH {r['name']} seed {r['seed']}: {r['crash']}", file=sys.stderr)
    for name in names:
        scores = [s for s in by_name[name] if "crash" not in s]
        if not scores:
            lines.append(f"| `{name}` | CRASH | CRASH | |")
            continue
        invented = max(
            s["fibres"][f]["invented_fraction"] for s in scores for f in ("mgf", "lgf")
        )
        worst_invented = max(worst_invented, invented)
        for s in scores:
            for f in ("mgf", "lgf"):
                totals[s["fibres"][f]["verdict"]] += 1
        lines.append(
            f"| `{name}` | {_cell(scores, 'mgf')} | {_cell(scores, 'lgf')} | "
            f"{100 * invented:.0f} |"
        )
    n = sum(totals.values())
    lines.append("")
    lines.append(
        f"{len(names)} conditions × {args.seeds} seeds, {n} fibre verdicts: "
        f"ok {totals['ok']}, not determined (right) {totals['not_determined_ok']}, "
        f"missed {totals['missed']}, wrong {totals['wrong']}; "
        f"worst invented-fibre rate {100 * worst_invented:.0f} % of sweeps, "
        f"{len(crashes)} crashes "
        f"({time.perf_counter() - started:.0f} s)"
    )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.docs:
        _replace_block(Path(args.docs), table)
    return 1 if totals["wrong"] or crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
