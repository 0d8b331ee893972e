"""Accuracy of ``analysis.bidirectional.analyse_bidirectional`` on the independent
generator of tests/analysis/_bidir_generator.py (not the simulator).

For each site (head, between the first two pairs, middle, tail; the four
standard pairs at 37.5–97.5 mm, and eight pairs 15–120 mm), one fibre
(MGF 30 m/s) or two (and LGF 15 m/s), the cathode known or not, over SEEDS
epochs (odd seeds: pair 1 wired reversed; every fifth: pair 2 off the worm),
prints a Markdown table of verdicts per fibre:

ok      determined and within ±3 % of the generator's velocity
n.d.    not determined (or not found)
WRONG   determined and more than 3 % off; "(c)" counts those on a volley
        the detector called clean, "(p)" those whose 95 % interval is
        within ±5 % (a confident wrong number)
median  the median of the speeds ``site_map`` pools (determined, and the
        volley clean or the speed precise: 95 % interval within ±5 %) over
        the epochs, % off the truth, and how many
site    median |site error| (mm) over determined sites, and how many

    python scripts/bidirectional_table.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from analysis.bidirectional import analyse_bidirectional, precise  # noqa: E402
from tests.analysis._bidir_generator import Fibre, Scene, render  # noqa: E402

FOUR = (0.0375, 0.0575, 0.0775, 0.0975)  # the standard pairs, m from the head
EIGHT = tuple(float(v) for v in np.linspace(0.015, 0.120, 8))
SITES_M = {
    "head (0 mm)": (0.0, FOUR), "47.5 mm": (0.0475, FOUR),
    "middle 67.5 mm": (0.0675, FOUR), "tail (120 mm)": (0.12, FOUR),
    "middle 67.5 mm, 8 pairs": (0.0675, EIGHT),
}  # fmt: skip
FIBRES = {"MGF": (Fibre(30.0),), "MGF+LGF": (Fibre(30.0), Fibre(15.0, 90.0))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args(argv)
    print("| site | fibres | cathode | MGF ok / n.d. / WRONG (c, p) "
          "| LGF ok / n.d. / WRONG (c, p) | median % off (MGF, LGF) "
          "| site error mm (n) | ms per epoch |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for site_name, (site, pairs) in SITES_M.items():
        for fibre_name, fibres in FIBRES.items():
            for known in (True, False):
                counts = {f: [0, 0, 0, 0, 0] for f in ("mgf", "lgf")}
                site_err: list[float] = []
                speeds: dict[str, list[float]] = {"mgf": [], "lgf": []}
                elapsed: list[float] = []
                for seed in range(args.seeds):
                    scene = Scene(
                        pairs_m=pairs, site_m=site, fibres=fibres, seed=seed,
                        reversed_channels=(1,) if seed % 2 else (),
                        missing_channels=(2,) if seed % 5 == 4 else (),
                    )  # fmt: skip
                    epoch = render(scene)
                    t = time.perf_counter()
                    r = analyse_bidirectional(
                        epoch, fs_hz=scene.fs_hz, onset=scene.onset,
                        duration_s=scene.pulse_s,
                        pair_positions_m=np.array(scene.pairs_m),
                        site_m=site if known else None,
                    )  # fmt: skip
                    elapsed.append(time.perf_counter() - t)
                    seen = set()
                    for v, f in zip(r.response.volleys, r.fits, strict=True):
                        if v.fibre in seen:
                            continue
                        seen.add(v.fibre)
                        truth = 30.0 if v.fibre == "mgf" else 15.0
                        c = counts[v.fibre]
                        if f.determined and (v.clean or precise(f)):
                            speeds[v.fibre].append(f.velocity_m_per_s / truth - 1)
                        if not f.determined:
                            c[1] += 1
                        elif abs(f.velocity_m_per_s / truth - 1) <= 0.03:
                            c[0] += 1
                        else:
                            lo, hi = f.velocity_ci95_m_per_s
                            c[2] += 1
                            c[3] += bool(v.clean)
                            c[4] += (hi - lo) / 2 <= 0.05 * f.velocity_m_per_s
                        if f.site_determined:
                            site_err.append(abs(f.site_m - site) * 1e3)
                    for fibre in ("mgf", "lgf"):
                        if fibre not in seen and (fibre == "mgf" or len(fibres) > 1):
                            counts[fibre][1] += 1

                def cell(c, present):
                    if not present:
                        return "–"
                    return f"{c[0]} / {c[1]} / {c[2]} ({c[3]}, {c[4]})"

                def median(fibre, speeds=speeds):
                    v = speeds[fibre]
                    return f"{np.median(v) * 100:+.1f} ({len(v)})" if v else "–"

                err = (
                    f"{np.median(site_err):.1f} ({len(site_err)})"
                    if site_err
                    else "– (0)"
                )
                print(
                    f"| {site_name} | {fibre_name} | {'known' if known else 'free'} "
                    f"| {cell(counts['mgf'], True)} "
                    f"| {cell(counts['lgf'], len(fibres) > 1)} "
                    f"| {median('mgf')}, {median('lgf')} | {err} "
                    f"| {np.median(elapsed) * 1e3:.0f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
