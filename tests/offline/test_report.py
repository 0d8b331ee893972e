"""The HTML report of ``neurorig analyze --report DIR`` tells the recording's
story (rig/offline/report.py): its header, the fit tables with their intervals
or the words for why not, the per-fibre sweeps, the maps drawn as the design
was, motion per region and the closed loop's section; every figure there with a
unit on each axis, ``results.json`` and ``stimuli.csv`` beside it, no "nan" in
its text, and nothing printed on the console but the report's path and the
summary. Content is checked, not pixels.

Recordings: one written straight to disk from the simulator's worm model
(``tests/offline/_recordings``: fast, calibrated gains, two durations at one
amplitude), and two real runs on the simulated rig with its camera (a 4 × 2
grid with a subject, and a closed loop)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.fits import fit_recruitment
from rig.cli import main
from rig.recording import schemas
from tests._cli import neurorig
from tests.offline._recordings import worm_recording

GRID = """format_version = 1
[protocol]
name = "grid"
seed = 2
[[block]]
amplitude_vpp = [2.2, 2.9, 3.3, 5.0]
duration_ms = [2.0, 6.0]
order = "random"
inter_stimulus_interval_s = 0.5
"""
CLOSED_LOOP = """format_version = 1
[protocol]
name = "loop"
seed = 3
[closed_loop]
strategy = "bayesian"
n_stimuli = 6
inter_stimulus_interval_s = 0.5
amplitude_vpp = [2.0, 6.0]
duration_ms = [2.0, 6.0]
pairs = [0]
[closed_loop.objective]
measure = "amplitude_uv_mean"
kind = "maximise"
per_charge = true
"""
# What a value that does not exist must never read as: nan or inf in any case,
# Python's None (the English "none of 3 stimuli evoked" is a sentence).
NOT_A_VALUE = r"(?i:\bnan\b|\binf\b)|\bNone\b"
# An axis label names its unit last, in brackets: "duration (ms)".
UNIT = re.compile(r"\((ms|µV|mm|Vpp|m/s|s|0–1|number|µV/µC|µC|name)\)$")


def analyze(*args: str) -> tuple[int, str, str]:
    """``neurorig analyze ARGS --quiet`` in this process with every Python
    warning an error; (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with redirect_stdout(out), redirect_stderr(err):
            status = main(["analyze", *args, "--quiet"])
    return status, out.getvalue(), err.getvalue()


def page_text(index: Path) -> str:
    """The page's visible text (tags out, entities decoded)."""
    raw = index.read_text(encoding="utf-8")
    raw = re.sub(r"<style>.*?</style>", "", raw, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw)))


def figures(index: Path) -> dict[str, list[str]]:
    """Each <img>'s file name -> its axes' labels ("x | y" per axes)."""
    raw = index.read_text(encoding="utf-8")
    found = {}
    for src, axes in re.findall(r"<img src='([^']+)'[^>]*data-axes='([^']*)'", raw):
        found[src] = [a for a in html.unescape(axes).split("; ") if a]
    return found


def check_page(folder: Path) -> str:
    """What every report must hold; returns its text."""
    index = folder / "index.html"
    text = page_text(index)
    assert not re.search(NOT_A_VALUE, text), re.findall(
        r".{40}(?:" + NOT_A_VALUE + r").{20}", text
    )
    for name, axes in figures(index).items():
        assert (folder / name).stat().st_size > 5_000, name
        assert axes, f"{name}: no axes"
        for pair in axes:
            x, y = pair.split(" | ")
            for label in (x, y):
                # a colour bar labels one side only
                assert not label or UNIT.search(label.strip()), (name, label)
            assert x or y, (name, pair)
    raw = index.read_text(encoding="utf-8")
    assert "href='results.json'" in raw and "href='stimuli.csv'" in raw
    results = json.loads((folder / "results.json").read_text())
    assert schemas.problems(results, "analysis") == []
    with open(folder / "stimuli.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(results["stimuli"]) * len(results["fibres"])
    return text


# ---------------------------------------------------------------- recordings


@pytest.fixture(scope="module")
def worm(tmp_path_factory):
    """A recording written to disk (no video): its report, quietly made."""
    folder = tmp_path_factory.mktemp("report-worm")
    rec = worm_recording(folder / "rec", n_stimuli=12, gap=False)
    status, out, err = analyze(
        str(rec.path), "--json", str(folder / "r.json"), "--report",
        str(folder / "report"),
    )  # fmt: skip
    return rec, folder, status, out, err


def _run(folder: Path, protocol: str, *extra: str) -> Path:
    (folder / "p.toml").write_text(protocol)
    run = neurorig(
        "run", str(folder / "p.toml"), "--sim", "--camera", "sim", "--out",
        str(folder), *extra, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return Path(run.stdout.strip().splitlines()[-1].removeprefix("recording: "))


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A 4 × 2 grid on the simulated rig with its camera and a subject."""
    folder = tmp_path_factory.mktemp("report-grid")
    recording = _run(
        folder, GRID, "--subject", "W7", "--species", "Lumbricus terrestris",
        "--length-mm", "140",
    )  # fmt: skip
    meta = json.loads((recording / "metadata.json").read_text())
    px_per_mm = str(meta["geometry"]["camera"]["px_per_mm"])
    # The scale given: a recording without a camera calibration otherwise
    # says so on the console (an uncalibrated scale is worth a line).
    status, out, err = analyze(
        str(recording), "--px-per-mm", px_per_mm, "--report", str(folder / "report")
    )
    assert status == 0, err
    return recording, folder / "report", out, err


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-loop")
    recording = _run(folder, CLOSED_LOOP)
    status, _, err = analyze(
        str(recording), "--accept-unproven-alignment", "--report",
        str(folder / "report"),
    )  # fmt: skip
    assert status == 0, err
    return recording, folder / "report"


# --------------------------------------------------------------------- tests


def test_analyze_with_a_report_prints_no_warnings(worm):
    _, folder, status, out, err = worm
    assert status == 0, err
    assert err == ""  # no Python warning (they are errors here), no line at all
    assert out.splitlines()[0] == f"report: {folder / 'report' / 'index.html'}"


def test_the_report_holds_the_json_and_the_table(worm):
    _, folder, *_ = worm
    report = folder / "report"
    check_page(report)
    assert json.loads((report / "results.json").read_text()) == json.loads(
        (folder / "r.json").read_text()
    )


def test_the_analysis_json_says_what_it_is(worm):
    _, folder, *_ = worm
    results = json.loads((folder / "r.json").read_text())
    assert list(results)[:2] == ["format", "format_version"]
    assert results["format"] == "neurorig-analysis"
    assert results["format_version"] == 1
    assert results["software"]["name"] == "neurorig"


def test_the_header_tells_date_calibrations_software_and_path(worm):
    rec, folder, *_ = worm
    text = page_text(folder / "report" / "index.html")
    meta = json.loads((rec.path / "metadata.json").read_text())
    # written by hand: the close only, and no software named
    assert f"Recorded closed {meta['closed_utc'][:10]}" in text
    assert "Recorded with not stated" in text
    assert str(rec.path) in text
    assert "gain: applied" in text  # the recording's gains were calibrated
    assert "camera: not applied (nominal)" in text
    assert "Subject (worm) not given" in text
    assert re.search(r"Analysed with neurorig \d", text)


def test_fit_tables_and_sections_are_there(worm):
    _, folder, *_ = worm
    text = check_page(folder / "report")
    for heading in (
        "Recording", "Summary", "Conduction velocity", "Channels",
        "Recruitment (per pulse duration)", "Strength–duration", "Habituation",
        "AP against motion", "Sweeps per fibre", "Latency against position",
        "Parameter maps", "Motion per region",
    ):  # fmt: skip
        assert f" {heading} " in text, heading
    # Two durations: the laws cannot be fitted, and the page says so.
    assert "not determinable from this design" in text
    # Every stimulus at 5 Vpp: recruitment is all responses, no threshold.
    assert "not determined" in text
    assert "No motion was measured" in text and "Closed loop" not in text


def test_a_one_amplitude_design_is_drawn_as_curves(worm):
    _, folder, *_ = worm
    text = page_text(folder / "report" / "index.html")
    assert "one amplitude: each measure as a curve over duration" in text


def test_the_sweeps_are_cleaned_and_the_arrivals_marked(worm):
    _, folder, *_ = worm
    raw = (folder / "report" / "index.html").read_text()
    assert "overlays-mgf.png" in raw
    text = page_text(folder / "report" / "index.html")
    assert "band-passed, hum and the stimulus artifact removed" in text
    assert "each fibre's arrival at each pair (MGF ●, LGF ▲" in text


def test_a_grid_run_with_video_tells_the_whole_story(grid):
    recording, report, out, err = grid
    assert err == ""
    text = check_page(report)
    assert "as if delivered at the head end" not in text  # one site, at the head
    assert "id W7, species Lumbricus terrestris, length 140 mm" in text
    meta = json.loads((recording / "metadata.json").read_text())
    assert f"Recorded {meta['created_utc'][:10]}" in text
    assert f"neurorig {meta['software']['version']}" in text
    assert "Rig simulated rig" in text
    assert "camera: not applied (nominal)" in text  # and the warning says so
    assert "warning: no calibration folder" in text
    assert str(recording) in text
    assert "p.toml" in text  # the protocol
    drawn = figures(report / "index.html")
    assert {
        "overlays-mgf.png", "latency.png", "velocity.png", "recruitment.png",
        "strength-duration.png", "maps.png", "motion.png",
    } <= set(drawn)  # fmt: skip
    assert "closed-loop.png" not in drawn
    assert "every amplitude × duration of the design" in text
    # Motion per region, with the regions' positions in mm from the head.
    results = json.loads((report / "results.json").read_text())
    for lo, hi in results["motion"]["regions_mm_from_head"]:
        assert f"{lo:g}–{hi:g}" in text
    assert "Pearson" in text and "lag of motion after the AP" in text
    # Each recruitment row: a threshold with its interval, or where it lies.
    for fit in results["recruitment"]:
        if fit["determined"]:
            assert "(95 % CI" in fit["summary"]
        elif fit["threshold_between_vpp"]:
            assert "threshold between" in text or "threshold above" in text


def test_a_closed_loop_run_gets_its_section_and_points(loop):
    _, report = loop
    text = check_page(report)
    assert " Closed loop " in text
    assert "recommendation" in text and "bayesian" in text
    assert "closed-loop.png" in figures(report / "index.html")
    assert "the points tried, coloured by the measure" in text
    assert "posterior mean" in text


def test_a_wav_report_says_what_a_wav_does_not_tell(tmp_path):
    from tests.rig.test_cli_analyze import spike_recorder_pair

    wav, positions_mm, uv_per_count = spike_recorder_pair(tmp_path)
    status, _, err = analyze(
        str(wav), "--electrode-positions-mm", ",".join(f"{p:g}" for p in positions_mm),
        "--uv-per-count", str(uv_per_count), "--report", str(tmp_path / "report"),
    )  # fmt: skip
    assert status == 0, err
    text = check_page(tmp_path / "report")
    assert "carries no neurorig metadata" in text


def test_separated_responses_give_an_interval_not_a_slope(tmp_path):
    from rig.offline.report import _recruitment_table

    amps = np.array([2.0, 2.5, 3.0, 3.5, 4.0, 4.5] * 3)
    fit = fit_recruitment(amps, amps > 3.2, duration_s=3e-3).to_dict()
    assert fit["separation"] == "complete"
    cells = page_text_of(_recruitment_table({"recruitment": [fit]}))
    assert "threshold between 3 and 3.5 Vpp" in cells
    assert "slope" in cells and "—" in cells  # no slope given
    assert "e-0" not in cells  # no absurd slope


def page_text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def _graded_trials(seed: int = 0):
    """Trials of a worm whose threshold follows Weiss (rheobase 3 Vpp,
    chronaxie 1 ms) with a graded response: the fits are determined."""
    rng = np.random.default_rng(seed)
    durations = np.repeat([0.5e-3, 1e-3, 2e-3, 4e-3], 120)
    amps = rng.uniform(2.0, 9.0, durations.size).round(2)
    threshold = 3.0 * (1 + 1e-3 / durations)
    p = 1 / (1 + np.exp(-(np.log(amps) - np.log(threshold)) / 0.08))
    return amps, durations, rng.random(durations.size) < p


def test_determined_fits_are_drawn_with_their_bands():
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    from analysis.fits import fit_strength_duration_trials
    from analysis.summary import recruitment_curves
    from rig.offline.report import _recruitment_figure, _sd_figure, _sd_table

    amps, durations, fired = _graded_trials()
    stimuli = [
        {"analysed": True, "pulse_index": 0, "amplitude_vpp": float(a),
         "duration_s": float(d), "responded": bool(y), "ap_evoked": bool(y)}
        for a, d, y in zip(amps, durations, fired, strict=True)
    ]  # fmt: skip
    results = {
        "stimuli": stimuli,
        "recruitment": [
            f.to_dict() for f in recruitment_curves(amps, durations, fired)
        ],
        "strength_duration": {
            m: fit_strength_duration_trials(amps, durations, fired, model=m).to_dict()
            for m in ("weiss", "lapicque")
        },
        "habituation": None,
    }
    assert all(f["determined"] for f in results["recruitment"])
    assert results["strength_duration"]["weiss"]["determined"]
    for draw in (_recruitment_figure, _sd_figure):
        fig = Figure()
        draw(fig, results)
        [ax] = fig.axes
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert bands, draw.__name__  # a CI band per determined fit
    table = page_text_of(_sd_table(results))
    assert re.search(r"Weiss .* \d\.\d+ Vpp \(95 % CI [\d.]+–[\d.]+\)", table)
    assert "not determinable" not in table.split("Lapicque")[0]


finite = st.floats(0.01, 100.0)
maybe = st.one_of(st.none(), finite)
interval = st.one_of(st.none(), st.tuples(maybe, maybe).map(list))


@given(
    determined=st.booleans(),
    values=st.tuples(maybe, maybe, maybe, maybe),
    intervals=st.tuples(interval, interval, interval, interval, interval),
)
@settings(max_examples=200, deadline=None)
def test_tables_never_write_nan_or_none(determined, values, intervals):
    """Whatever the fits hold (values missing, intervals open on either side),
    a table cell is a number, an interval, or words."""
    from rig.offline.report import _recruitment_table, _sd_table

    duration, threshold, slope, rheobase = values
    between, t_ci, s_ci, r_ci, c_ci = intervals
    recruitment = {
        "duration_s": duration, "n": 5, "n_responses": 2, "determined": determined,
        "reason": None if determined else "why", "threshold_vpp": threshold,
        "threshold_ci95_vpp": t_ci, "slope_vpp": slope, "slope_ci95_vpp": s_ci,
        "threshold_between_vpp": between,
    }  # fmt: skip
    law = {
        "durations_s": [1e-3, 2e-3], "n": 9, "reason": None,
        "rheobase_vpp": rheobase, "rheobase_ci95_vpp": r_ci,
        "rheobase_determined": determined, "chronaxie_s": rheobase,
        "chronaxie_ci95_s": c_ci, "chronaxie_determined": not determined,
    }  # fmt: skip
    text = page_text_of(
        _recruitment_table({"recruitment": [recruitment]})
        + _sd_table({"strength_duration": {"weiss": law}})
    )
    assert not re.search(NOT_A_VALUE, text), text
