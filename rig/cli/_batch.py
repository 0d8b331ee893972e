"""``neurorig analyze --batch DIR``: every recording under DIR, one task each.

The options are added to ``analyze``'s parser here and the body runs here, so
that ``rig/cli/analyze.py`` keeps only the dispatch (rig.offline.batch does the
work; docs/batch.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rig.cli._common import fail, out_folder_problem


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """``--batch DIR``, ``--executor``, ``--json-dir``."""
    group = parser.add_argument_group("batch analysis (docs/batch.md)")
    group.add_argument(
        "--batch",
        metavar="DIR",
        help="analyse every recording under DIR (instead of PATH), one task each",
    )
    group.add_argument(
        "--executor",
        default="serial",
        metavar="serial|local[:N]|dask://HOST:PORT",
        help="where the tasks run: here, one after another (default); a Dask "
        "LocalCluster of N worker processes (default N: the CPU count); or a "
        "running Dask scheduler (a lab server, a cluster). Dask: pip install "
        "'neurorig[dask]'",
    )
    group.add_argument(
        "--json-dir",
        metavar="OUT",
        help="write each recording's results (OUT/<recording>.json) and the "
        "pooled ones (OUT/batch.json)",
    )


def batch_command(args: argparse.Namespace) -> int:
    """Run the batch; print per worm and pooled; 1 if a recording failed."""
    from rig.offline import batch

    problem = out_folder_problem(args.json_dir, "--json-dir")
    if problem is not None:
        return fail(problem)
    root = Path(args.batch)
    options = {
        "electrode_positions_mm": args.electrode_positions_mm,
        "px_per_mm": args.px_per_mm,
        "mains_hz": args.mains_hz,
        "retrack": args.retrack,
    }
    try:
        recordings = batch.find_recordings(root)
        with batch.open_executor(args.executor) as executor:
            results = batch.run_batch(
                recordings,
                executor,
                options=options,
                progress=lambda n: batch.stderr_bar(n, enabled=not args.quiet),
            )
    except batch.BatchError as exc:
        return fail(str(exc))
    names = [batch.json_name(r, root).removesuffix(".json") for r in recordings]
    worms = [batch.worm_of(r, root) for r in recordings]
    pooled = batch.pool(results, worms, names)
    note = batch.version_note(results)
    if note:
        print(note, file=sys.stderr)
    failed = [
        (n, r["error"]) for n, r in zip(names, results, strict=True) if "error" in r
    ]
    for name, error in failed:
        print(f"neurorig: {name}: not analysed: {error}", file=sys.stderr)
    if args.json_dir:
        _write(Path(args.json_dir), recordings, root, results, worms, pooled, args)
    _print_summary(pooled, len(recordings), len(failed))
    return 1 if failed else 0


def _write(out, recordings, root, results, worms, pooled, args) -> None:
    from rig.offline import batch
    from rig.recording.metadata import software_version

    out.mkdir(parents=True, exist_ok=True)
    listing = []
    for recording, result, worm in zip(recordings, results, worms, strict=True):
        name = batch.json_name(recording, root)
        (out / name).write_text(batch.dumps(result))
        listing.append(
            {
                "recording": str(recording),
                "worm": worm,
                "json": name,
                "software_version": result.get("software_version"),
                "error": result.get("error"),
            }
        )
    summary = {
        "software_version": software_version(),
        "executor": args.executor,
        "recordings": listing,
        **pooled,
    }
    (out / "batch.json").write_text(batch.dumps(summary))
    print(f"json: {out}/ ({len(listing)} recordings, batch.json)")


def _print_summary(pooled, n_recordings: int, n_failed: int) -> None:
    per_worm = pooled["per_worm"]
    print(
        f"{n_recordings - n_failed} of {n_recordings} recordings analysed, "
        f"{len(per_worm)} worms"
    )
    for worm, group in per_worm.items():
        print(f"  {worm}: {_describe(group)}")
    print(f"  pooled: {_describe(pooled['pooled'])}")


def _describe(group) -> str:
    parts = [f"{len(group['recordings'])} rec, {group['n_stimuli']} stimuli"]
    weiss = group["strength_duration"]["weiss"] or {}
    if weiss.get("determined"):
        parts.append(
            f"rheobase {weiss['rheobase_vpp']:.2f} Vpp, chronaxie "
            f"{weiss['chronaxie_s'] * 1e3:.2f} ms (Weiss)"
        )
    else:  # the JSON says why
        parts.append("strength–duration not determined")
    for fibre, v in group["fibre_velocity_m_per_s"].items():
        if v is not None:
            parts.append(f"{fibre.upper()} {v:.2f} m/s")
    return "; ".join(parts)
