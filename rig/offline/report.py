"""The HTML analysis report: static matplotlib figures and a summary table."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from analysis.fits import RecruitmentFit, sd_threshold_vpp


def _figure(path: Path, draw) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8, 4.5), dpi=100)
    try:
        draw(fig)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path.name


def write_report(results: dict[str, Any], source: Any, folder: Path) -> Path:
    """Write ``folder/index.html`` and its figures; return the index path."""
    folder.mkdir(parents=True, exist_ok=True)
    stimuli = results["stimuli"]
    analysed = [s for s in stimuli if s["analysed"]]
    n_ch = results["n_channels"]
    positions_mm = np.array([c["position_mm"] for c in results["channels"]])
    figures: list[tuple[str, str]] = []

    def overlays(fig):
        pre, post = round(2e-3 * source.fs_hz), round(15e-3 * source.fs_hz)
        t_ms = (np.arange(pre + post) - pre) / source.fs_hz * 1000
        axes = fig.subplots(n_ch, 1, sharex=True, squeeze=False)[:, 0]
        for s in analysed[-20:]:
            epoch = source.read_uv(s["sample"] - pre, pre + post)
            if epoch is None:
                continue
            for ch, ax in enumerate(axes):
                ax.plot(t_ms, epoch[:, ch] - epoch[:pre, ch].mean(), lw=0.6, alpha=0.5)
                lat = s["latency_s"][ch]
                if lat is not None:
                    ax.axvline(lat * 1000, color="r", lw=0.5, alpha=0.4)
        for ch, ax in enumerate(axes):
            ax.set_ylabel(f"ch {ch}\nµV")
        axes[-1].set_xlabel("time from stimulus onset (ms)")
        fig.suptitle("Stimulus-locked sweeps (last 20), detected AP marked")

    figures.append(
        ("Stimulus-locked overlays", _figure(folder / "overlays.png", overlays))
    )

    def latency_position(fig):
        ax = fig.subplots()
        for s in analysed:
            if s["responded"]:
                lat = np.array([np.nan if v is None else v for v in s["latency_s"]])
                ax.plot(positions_mm, lat * 1000, "o", color="0.6", ms=3, alpha=0.4)
        med = [c["latency_s_median"] for c in results["channels"]]
        med = np.array([np.nan if v is None else v for v in med])
        ok = np.isfinite(med)
        ax.plot(positions_mm[ok], med[ok] * 1000, "ko", label="median latency")
        if ok.sum() >= 2:
            slope, intercept = np.polyfit(positions_mm[ok], med[ok] * 1000, 1)
            xs = np.array([positions_mm.min(), positions_mm.max()])
            ax.plot(xs, slope * xs + intercept, "r-", label=f"fit: {1 / slope:.1f} m/s")
        ax.set_xlabel("electrode pair position along the body (mm)")
        ax.set_ylabel("latency (ms)")
        ax.legend()

    figures.append(
        ("Latency against position", _figure(folder / "latency.png", latency_position))
    )

    def velocity_time(fig):
        ax = fig.subplots()
        t = [s["time_s"] for s in analysed if s["conduction_velocity_m_per_s"]]
        v = [
            s["conduction_velocity_m_per_s"]
            for s in analysed
            if s["conduction_velocity_m_per_s"]
        ]
        ax.plot(t, v, "o", ms=3)
        ax.set_xlabel("time in session (s)")
        ax.set_ylabel("conduction velocity (m/s)")

    figures.append(
        (
            "Conduction velocity over the session",
            _figure(folder / "velocity.png", velocity_time),
        )
    )

    if results["recruitment"]:

        def recruitment(fig):
            ax1, ax2 = fig.subplots(1, 2)
            for fit in results["recruitment"]:
                d = fit["duration_s"]
                rows = [
                    s
                    for s in analysed
                    if s["duration_s"] is not None and round(s["duration_s"], 6) == d
                ]
                amps = np.array([s["amplitude_vpp"] for s in rows])
                resp = np.array([s["responded"] for s in rows], dtype=float)
                levels = np.unique(amps)
                if not levels.size:
                    continue
                ax1.plot(levels, [resp[amps == a].mean() for a in levels], "o")
                curve = RecruitmentFit.from_dict(fit)
                if curve.determined:
                    xs = np.linspace(levels.min(), levels.max(), 100)
                    ax1.plot(
                        xs,
                        curve.probability(xs),
                        label=f"{d * 1000:.1f} ms: {curve.threshold_vpp:.2f} V",
                    )
                elif curve.threshold_between_vpp is not None:
                    lo, hi = curve.threshold_between_vpp
                    ax1.axvspan(
                        max(lo, levels.min()),
                        min(hi, levels.max()),
                        alpha=0.15,
                        label=f"{d * 1000:.1f} ms: threshold "
                        + (
                            f"{lo:g}–{hi:g} V" if np.isfinite(hi) else f"above {lo:g} V"
                        ),
                    )
            ax1.set_xlabel("amplitude (Vpp)")
            ax1.set_ylabel("response probability")
            ax1.legend(fontsize=7)
            fits = [f for f in results["recruitment"] if f["determined"]]
            d = np.array([f["duration_s"] for f in fits])
            th = np.array([f["threshold_vpp"] for f in fits])
            ax2.plot(d * 1000, th, "ko")
            sd = (results["strength_duration"] or {}).get("weiss")
            if sd and sd["determined"] and d.size:
                xs = np.linspace(d.min(), d.max(), 100)
                ax2.plot(
                    xs * 1000,
                    sd_threshold_vpp(
                        "weiss", sd["rheobase_vpp"], sd["chronaxie_s"], xs
                    ),
                    "r-",
                    label=f"rheobase {sd['rheobase_vpp']:.2f} V, "
                    f"chronaxie {sd['chronaxie_s'] * 1000:.3f} ms",
                )
                ax2.legend(fontsize=7)
            ax2.set_xlabel("pulse duration (ms)")
            ax2.set_ylabel("50 % threshold (Vpp)")

        figures.append(
            (
                "Recruitment and strength–duration",
                _figure(folder / "recruitment.png", recruitment),
            )
        )

    cells = results["parameter_map"]
    if cells:

        def heatmaps(fig):
            measures = [
                ("response_probability", "response probability"),
                ("conduction_velocity_m_per_s", "conduction velocity (m/s)"),
                ("peak_displacement_mm", "peak displacement (mm)"),
            ]
            amps = sorted({c["amplitude_vpp"] for c in cells})
            durs = sorted({c["duration_s"] for c in cells})
            for ax, (key, label) in zip(fig.subplots(1, 3), measures, strict=True):
                grid = np.full((len(durs), len(amps)), np.nan)
                for c in cells:
                    if c[key] is not None:
                        grid[
                            durs.index(c["duration_s"]), amps.index(c["amplitude_vpp"])
                        ] = c[key]
                im = ax.imshow(
                    grid,
                    origin="lower",
                    aspect="auto",
                    extent=(
                        min(amps),
                        max(amps) + 1e-9,
                        min(durs) * 1e3,
                        max(durs) * 1e3 + 1e-9,
                    ),
                )
                fig.colorbar(im, ax=ax)
                ax.set_title(label, fontsize=8)
                ax.set_xlabel("amplitude (Vpp)")
                ax.set_ylabel("duration (ms)")

        figures.append(("Parameter maps", _figure(folder / "maps.png", heatmaps)))

    if source.motion_series is not None:
        t, series = source.motion_series

        def displacement(fig):
            ax1, ax2 = fig.subplots(1, 2)
            for k in range(series.shape[1] - 1):
                ax1.plot(t, series[:, k], lw=0.8, label=f"region {k}")
            for s in analysed:
                ax1.axvline(s["time_s"], color="0.8", lw=0.5)
            ax1.set_xlabel("time (s)")
            ax1.set_ylabel("displacement (mm)")
            ax1.legend(fontsize=7)
            # Responders only: a stimulus without an AP has no AP amplitude.
            rows = [
                s
                for s in analysed
                if s["responded"] and any(v is not None for v in s["amplitude_uv"])
            ]
            amp = [
                np.mean([v for v in s["amplitude_uv"] if v is not None]) for s in rows
            ]
            disp = [
                np.nan
                if s.get("peak_displacement_mm") is None
                else s["peak_displacement_mm"]
                for s in rows
            ]
            ax2.plot(amp, disp, "o", ms=3)
            ax2.set_xlabel("mean AP amplitude (µV)")
            ax2.set_ylabel("peak displacement (mm)")

        figures.append(
            (
                "Segment displacement and AP against displacement",
                _figure(folder / "displacement.png", displacement),
            )
        )

    cv = results["conduction_velocity_m_per_s"]
    banner = _alignment_banner(results)
    rows = "".join(
        f"<tr><td>{c['index']}</td><td>{c['position_mm']:.1f}</td>"
        f"<td>{_fmt(c['latency_s_median'], 1000, 3)}</td>"
        f"<td>{_fmt(c['amplitude_uv_median'], 1, 1)}</td>"
        f"<td>{_fmt(c['response_probability'], 1, 2)}</td></tr>"
        for c in results["channels"]
    )
    body = "".join(
        f"<h2>{html.escape(title)}</h2><img src='{name}'>" for title, name in figures
    )
    ci = cv["ci95"]
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>neurorig analysis: {html.escape(results["source"])}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:auto}}td,th{{padding:2px 10px}}
img{{max-width:100%}}</style></head><body>
<h1>Analysis of {html.escape(results["source"])}</h1>
{banner}<p>{len(stimuli)} stimuli; {cv["n_stimuli"]} with a propagating action potential.
Conduction velocity (first volley) median <b>{_fmt(cv["median"], 1, 2)} m/s</b>
{f"(95 % CI {ci[0]:.2f}–{ci[1]:.2f})" if ci else ""}.
MGF {_fmt(results["fibres"]["mgf"]["median"], 1, 2)} m/s (n = {results["fibres"]["mgf"]["n"]}),
LGF {_fmt(results["fibres"]["lgf"]["median"], 1, 2)} m/s (n = {results["fibres"]["lgf"]["n"]}).</p>
<table><tr><th>channel</th><th>position (mm)</th><th>median latency (ms)</th>
<th>median amplitude (µV)</th><th>response probability</th></tr>{rows}</table>
{body}</body></html>"""
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _alignment_banner(results: dict[str, Any]) -> str:
    """A warning box when motion was refused or is unproven (else nothing)."""
    alignment = (results.get("motion") or {}).get("alignment")
    if not alignment or alignment["proven"]:
        return ""
    what = (
        "Motion below is measured from frames whose alignment to the board's "
        "clock is <b>unproven</b>: displacement times may be whole frames off."
        if alignment["unproven_accepted"]
        else "Motion was <b>not measured</b>: the frames' alignment to the "
        "board's clock is unproven."
    )
    return (
        "<p class='unproven' style='border:2px solid #c00;padding:6px'>"
        f"{what} ({html.escape(str(alignment['reason']))})</p>"
    )


def _fmt(value, scale: float, digits: int) -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f}"
