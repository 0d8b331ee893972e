"""Propagation from a stimulation site in ``neurorig analyze`` (issue 18):
recordings over sites get the JSON's ``sites`` section (docs/analysis.md,
"Per site") and the report's per-site table and figures, maps per site, the
search's path per configuration, its recommendation naming its configuration
and the Pareto front. Content is checked, not pixels.

Recordings: two runs on the simulated rig (its four standard pairs; a short
sweep of protocols/sites.toml's kind, and a closed loop over sites with a
Pareto search), and one written straight to disk from the simulator's worm
model on eight pairs (``tests/offline/_recordings.sites_recording``): with
four pairs the pairs next to a mid-body site are ~10 mm away, their arrivals
timed on the pulse's artifact, and each side keeps one pair, too few for its
velocity (the analysis says so); eight pairs leave two or more per side. A
report over hand-made optimiser events checks the closed-loop part on a known
history."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from rig.offline.load import load_recording
from rig.offline.report import write_report
from rig.offline.sites import over_sites
from rig.recording import schemas
from tests.offline._recordings import sites_recording
from tests.offline.test_report import _run, analyze, check_page, figures

# protocols/sites.toml shortened: the head (C0-R, 4 mm: before the first pair)
# and the middle (C4-R, 67 mm: between the second and third pairs, 9.5 and
# 10.5 mm away), 1 ms pulses strong enough for the LGF mid-body and both
# fibres at the head.
SITES = """format_version = 1
[protocol]
name = "sites-short"
seed = 18
[[block]]
kind = "sweep"
configuration = ["C0-R", "C4-R"]
amplitude_vpp = 5.5
duration_ms = 1.0
repeats = 4
order = "random_per_repeat"
inter_stimulus_interval_s = 0.5
"""
LOOP = """format_version = 1
[protocol]
name = "sites-loop"
seed = 5
[closed_loop]
n_stimuli = 8
inter_stimulus_interval_s = 0.5
configurations = ["C0-R", "C4-R"]
amplitude_vpp = [4.5, 6.0]
duration_ms = [1.0, 1.5]
[closed_loop.objective]
measure = "amplitude_uv_mean"
minimise_charge = true
"""
CATHODE_M = {"C0-R": 0.004, "C4-R": 0.067}  # the simulated rig's electrodes 0, 4


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sites-sweep")
    recording = _run(folder, SITES)
    status, _, err = analyze(
        str(recording), "--json", str(folder / "r.json"), "--report",
        str(folder / "report"),
    )  # fmt: skip
    assert status == 0, err
    return recording, folder, json.loads((folder / "r.json").read_text())


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    """The middle (C4-R, 67 mm) and the head (C0-R) alternately, 4 each, on
    eight pairs 30–140 mm from the head."""
    folder = tmp_path_factory.mktemp("sites-eight")
    recording = sites_recording(folder / "rec", [(4, None), (0, None)] * 4)
    status, _, err = analyze(
        str(recording), "--json", str(folder / "r.json"), "--report",
        str(folder / "report"),
    )  # fmt: skip
    assert status == 0, err
    return recording, folder, json.loads((folder / "r.json").read_text())


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sites-loop")
    recording = _run(folder, LOOP)
    status, _, err = analyze(str(recording), "--report", str(folder / "report"))
    assert status == 0, err
    return recording, folder / "report"


def _cell(results, configuration):
    (cell,) = [
        c
        for c in results["sites"]["configurations"]
        if c["configuration"] == configuration
    ]
    return cell


def test_a_recording_over_sites_gets_its_section_and_follows_the_schema(sweep):
    _, _, results = sweep
    assert schemas.problems(results, "analysis") == []
    sites = results["sites"]
    assert [c["configuration"] for c in sites["configurations"]] == ["C0-R", "C4-R"]
    for c in sites["configurations"]:
        assert c["n"] == 4
        assert c["site_m"] == pytest.approx(CATHODE_M[c["configuration"]])
    assert _cell(results, "C4-R")["site_inside_array"] is True
    assert _cell(results, "C0-R")["site_inside_array"] is False
    # each analysed stimulus carries its analysis about its site
    for s in results["stimuli"]:
        assert s["bidirectional"]["site_m"] == pytest.approx(
            CATHODE_M[s["configuration"]]
        )
    # A broken section fails the schema (the schema is not vacuous).
    broken = json.loads(json.dumps(results))
    broken["sites"]["configurations"][0]["site_estimate"]["determined"] = "yes"
    assert schemas.problems(broken, "analysis")


def test_the_head_site_goes_one_way_and_says_why_not_the_other(sweep):
    _, _, results = sweep
    head = _cell(results, "C0-R")
    fit = head["pooled"]["mgf"]["fit"]
    assert fit["determined"], head["pooled"]["mgf"]["reason"]
    assert fit["posterior"]["signed_velocity_m_per_s"] == pytest.approx(30.0, rel=0.05)
    a, b = fit["posterior"]["velocity_ci95_m_per_s"]
    assert a <= 30.0 <= b
    assert fit["anterior"]["determined"] is False
    assert "anterior" in fit["anterior"]["reason"]
    assert head["site_estimate"]["determined"] is False
    assert "head-end pair" in head["site_estimate"]["reason"]
    assert head["pooled"]["lgf"]["n_volleys"] == 4  # both fibres at the head
    assert head["selectivity"]["lgf_without_mgf"] == 0.0


def test_four_pairs_say_why_the_mid_body_site_is_not_determined(sweep):
    _, folder, results = sweep
    middle = _cell(results, "C4-R")
    assert middle["fibre_probability"]["lgf"] >= 0.5  # the LGF, seen mostly
    lgf = middle["pooled"]["lgf"]
    assert lgf["n_arrivals_on_artifact"] > 0
    assert lgf["fit"]["determined"] is False
    assert "before the pulse and its blanking ended" in lgf["reason"]
    # The LGF cannot place the site here; the MGF, when it fires mid-body and
    # reaches three pairs clear of the artifact (2 runs in 25), can: then the
    # interval must hold the cathode (67.1 and 67.3 mm found, ±0.5 mm).
    estimate = middle["site_estimate"]
    if estimate["determined"]:
        assert estimate["fibre"] == "mgf", estimate
        low, high = estimate["site_ci95_m"]
        assert low <= CATHODE_M["C4-R"] <= high, estimate
    else:
        assert estimate["site_m"] is None
    text = check_page(folder / "report")
    assert " Per site " in text and "blanking ended were left out" in text


def test_the_mid_body_site_is_found_near_its_cathode_with_both_signs(eight):
    _, _, results = eight
    assert schemas.problems(results, "analysis") == []
    middle = _cell(results, "C4-R")
    assert middle["site_inside_array"] is True
    # the LGF mid-body, the MGF seldom: P(LGF without MGF) high
    assert middle["fibre_probability"]["lgf"] == 1.0
    assert middle["selectivity"]["lgf_without_mgf"] >= 0.5
    site = middle["site_estimate"]
    assert site["determined"], site["reason"]
    assert site["fibre"] == "lgf"
    assert abs(site["site_m"] - 0.067) < 2e-3
    lo, hi = site["site_ci95_m"]
    assert lo <= 0.067 <= hi and hi - lo < 0.01
    fit = middle["pooled"]["lgf"]["fit"]
    ant, post = fit["anterior"], fit["posterior"]
    assert ant["determined"] and post["determined"], (ant, post)
    assert ant["signed_velocity_m_per_s"] < 0 < post["signed_velocity_m_per_s"]
    for side in (ant, post):
        a, b = side["velocity_ci95_m_per_s"]
        assert a <= 15.0 <= b, side  # the model's LGF, inside each side's interval
        assert side["velocity_m_per_s"] == pytest.approx(15.0, rel=0.03)
    # the head: the MGF and LGF both, going tail-ward only
    head = _cell(results, "C0-R")
    for name, speed in (("mgf", 30.0), ("lgf", 15.0)):
        fit = head["pooled"][name]["fit"]
        assert fit["posterior"]["signed_velocity_m_per_s"] == pytest.approx(
            speed, rel=0.03
        )
        assert fit["anterior"]["determined"] is False


def test_the_summary_is_the_head_ends_and_the_map_measures_mid_body_about_its_site(
    eight,
):
    # The analysis from the head finds nothing in a mid-body stimulus (its
    # spikes start between the pairs and travel both ways); counted as "no
    # AP", they put the map's mid-body cell at 0 and mixed the two sites in
    # one recruitment curve. The worm's fibres fired every time there.
    _, _, results = eight
    mid = _cell(results, "C4-R")
    assert mid["response_probability"] == 1.0  # the analysis about the site
    (cell,) = [c for c in results["parameter_map"] if c["configuration"] == "C4-R"]
    assert cell["response_probability"] == mid["response_probability"]
    assert cell["fibre_probability"] == mid["fibre_probability"]
    # means from the head are not this site's: its speeds are under "sites"
    assert cell["conduction_velocity_m_per_s"] is None
    assert (
        cell["amplitude_uv_mean"] == [] and cell["timed_response_probability"] is None
    )
    for s in results["stimuli"]:
        if s["configuration"] == "C4-R":
            assert s["responded"] is False  # nothing timed from the head
            assert s["ap_evoked"] is True  # but a fibre fired
    # the recording's fits and channel table are the head end's stimuli only
    n_head = sum(s["configuration"] == "C0-R" for s in results["stimuli"])
    assert sum(c["n"] for c in results["recruitment"]) == n_head
    (head_cell,) = [c for c in results["parameter_map"] if c["configuration"] == "C0-R"]
    assert head_cell["timed_response_probability"] == 1.0  # the head's, untouched
    assert all(c["response_probability"] == 1.0 for c in results["channels"][1:])


def test_a_batch_pools_a_recording_over_sites_as_the_recording_takes_it(eight):
    from rig.offline import batch

    _, _, results = eight
    pooled = batch.pool([results], ["w"], ["r"])["pooled"]
    assert [c["n"] for c in pooled["recruitment"]] == [
        c["n"] for c in results["recruitment"]
    ]
    assert pooled["parameter_map"] == results["parameter_map"]


def test_the_table_carries_the_site_columns(eight):
    _, folder, _ = eight
    with open(folder / "report" / "stimuli.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    middle = [r for r in rows if r["configuration"] == "C4-R" and r["fibre"] == "lgf"]
    assert len(middle) == 4
    for r in middle:
        assert float(r["anterior_velocity_m_per_s"]) < 0
        assert float(r["posterior_velocity_m_per_s"]) > 0
        assert float(r["site_m"]) == pytest.approx(0.067)
        assert abs(float(r["site_fit_m"]) - 0.067) < 3e-3
    head = [r for r in rows if r["configuration"] == "C0-R" and r["fibre"] == "mgf"]
    assert all(r["anterior_velocity_m_per_s"] == "" for r in head)  # none: empty


def test_the_report_has_the_per_site_section_and_maps(eight):
    _, folder, results = eight
    report = folder / "report"
    text = check_page(report)
    assert " Per site " in text
    # The head-pair sections say what they assume (mid-body stimuli are
    # analysed as if from the head there).
    assert "Stimulated at 2 configuration(s): C0-R, C4-R." in text
    assert "as if delivered at the head end" in text
    drawn = figures(report / "index.html")
    assert {"sites-latency.png", "maps-per-site.png"} <= set(drawn)
    assert drawn["sites-latency.png"] == ["position (mm) | latency (ms)"] * 2
    # a panel per configuration, and the colour bar
    assert drawn["maps-per-site.png"] == [
        "amplitude (Vpp) | duration (ms)",
        "amplitude (Vpp) | duration (ms)",
        " | response probability (0–1)",
    ]
    raw = (report / "index.html").read_text(encoding="utf-8")
    table = raw[raw.index("<table class='sites'>") :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 1 + 2 * 2  # head + (configuration × fibre)
    site = _cell(results, "C4-R")["site_estimate"]
    assert f"{site['site_m'] * 1e3:.3g} mm (95 % CI" in text
    assert re.search(r"-1[45](\.\d+)? m/s \(95 % CI", text)  # anterior-going LGF
    assert "LGF without MGF" in text


def test_a_closed_loop_over_sites_shows_its_path_front_and_recommendation(loop):
    recording, report = loop
    text = check_page(report)
    drawn = figures(report / "index.html")
    assert {"closed-loop.png", "closed-loop-sites.png", "pareto.png"} <= set(drawn)
    assert drawn["pareto.png"] == ["charge per phase (µC) | amplitude_uv_mean (µV)"]
    lines = (recording / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    (result,) = [e for e in events if e["kind"] == "optimiser_result"]
    config = result["recommended_point"][0]
    assert f"recommendation {config} (configuration)" in text
    raw = (report / "index.html").read_text(encoding="utf-8")
    front = raw[raw.index("<table class='pareto'>") :]
    front = front[: front.index("</table>")]
    assert front.count("<tr>") == 1 + len(result["pareto_front"]) >= 2
    assert " Per site " in text  # two configurations: analysed about each site


def test_first_wave_recordings_are_not_analysed_per_site():
    pairs = [0.0375, 0.0575, 0.0775, 0.0975]
    assert not over_sites(["C0-A1"] * 4, [0.004, 0.012], pairs)
    assert not over_sites(["C0-A1"] * 4, None, pairs)
    assert over_sites(["C0-A1", "C2-A3"], None, pairs)
    assert over_sites(["C4-R"], [0.004, 0.012, 0.025, 0.047, 0.067], pairs)


# --------------------------------------------- the report on a known history


def _decision(trial, point, front=None):
    by = {
        "C2-R": {"best_point": ["C2-R", 4.0, 0.002, 1, 1.0, 0], "mean": 0.4, "std": 0.1},
        "C5-R": {"best_point": ["C5-R", 3.0, 0.001, 1, 1.0, 0], "mean": 0.9, "std": 0.05},
    }  # fmt: skip
    event = {
        "kind": "optimiser", "trial": trial, "strategy": "bayesian",
        "point": point, "reason": "max hypervolume gain", "n_observations": trial,
        "objective": {"measure": "lgf_responded", "kind": "maximise",
                      "per_charge": False},
        "observed": {"trial": trial - 1, "point": point, "score": 0.1 * trial}
        if trial else None,
        "best_point": ["C5-R", 3.0, 0.001, 1, 1.0, 0], "best_score": 0.9,
        "recommended_point": point, "by_configuration": by,
    }  # fmt: skip
    if front is not None:
        event["pareto_front"] = front
    return event


FRONT = [
    {"point": ["C5-R", 2.0, 0.001, 1, 1.0, 0], "charge_uc": 0.318, "response": 0.5},
    {"point": ["C2-R", 3.0, 0.001, 1, 1.0, 0], "charge_uc": 0.477, "response": 0.7},
    {"point": ["C5-R", 3.0, 0.002, 1, 1.0, 0], "charge_uc": 0.955, "response": 1.0},
]


def test_the_report_draws_a_known_search_over_sites(eight, tmp_path):
    recording, _, results = eight
    source = load_recording(recording)
    points = [
        ["C2-R", 2.0, 0.001, 1, 1.0, 0], ["C5-R", 2.0, 0.001, 1, 1.0, 0],
        ["C2-R", 3.0, 0.001, 1, 1.0, 0], ["C5-R", 3.0, 0.002, 1, 1.0, 0],
        ["C7-R", 4.0, 0.002, 1, 1.0, 0],
    ]  # fmt: skip
    source.optimiser = [
        _decision(k, p, FRONT[: 1 + k // 2] if k else None)
        for k, p in enumerate(points)
    ]
    source.optimiser_result = {
        "kind": "optimiser_result", "strategy": "bayesian", "n_observations": 5,
        "recommended_point": ["C5-R", 3.0, 0.002, 1.0, 1.0, 0.0],
        "recommended": "C5-R 3 Vpp × 2 ms", "pareto_front": FRONT,
    }  # fmt: skip
    write_report(results, source, tmp_path / "report")
    text = check_page(tmp_path / "report")
    assert "recommendation C5-R (configuration), 3 Vpp, 2 ms" in text
    assert "best observed 0.9 at C5-R 3 Vpp × 1 ms" in text
    drawn = figures(tmp_path / "report" / "index.html")
    # the strip of configurations, then one panel per configuration tried
    assert drawn["closed-loop-sites.png"] == [
        "trial (number) | configuration (name)",
        *["amplitude (Vpp) | duration (ms)"] * 3,
    ]
    assert drawn["pareto.png"] == ["charge per phase (µC) | lgf_responded (0–1)"]
    # the run's front (not the last decision's shorter one), cheapest first
    for f in FRONT:
        p = f["point"]
        row = (
            f"{p[0]} {p[1]:.3g} Vpp × {p[2] * 1e3:.3g} ms "
            f"{f['charge_uc']:.3g} {f['response']:.3g}"
        )
        assert row in text, row
    # the map over sites at the last decision, per configuration
    assert "C2-R C2-R 4 Vpp × 2 ms 0.4 0.1" in text
    assert "C5-R C5-R 3 Vpp × 1 ms 0.9 0.05" in text


def test_without_a_front_there_is_no_pareto_figure(eight, tmp_path):
    recording, _, results = eight
    source = load_recording(recording)
    source.optimiser = [
        _decision(0, ["C2-R", 2.0, 0.001, 1, 1.0, 0]),
        _decision(1, ["C5-R", 2.0, 0.001, 1, 1.0, 0]),
    ]
    write_report(results, source, tmp_path / "report")
    check_page(tmp_path / "report")
    drawn = figures(tmp_path / "report" / "index.html")
    assert "closed-loop-sites.png" in drawn and "pareto.png" not in drawn
    assert not Path(tmp_path / "report" / "pareto.png").exists()


def test_the_documented_per_site_json_is_what_analyze_writes(eight):
    """docs/analysis.md's per-site JSON block (skipped by the docs test: the
    shortened sites protocol keeps one configuration) against a real one."""
    from tests.test_docs_examples import _json_documents, _missing_keys

    _, _, results = eight
    text = (Path(__file__).resolve().parents[2] / "docs" / "analysis.md").read_text(
        encoding="utf-8"
    )
    start = text.index('```json\n{"sites"') + len("```json\n")
    (documented,) = _json_documents(text[start : text.index("```", start)])
    real = json.loads(json.dumps(results))
    # the documented configuration is the middle one
    real["sites"]["configurations"] = [_cell(results, "C4-R")]
    assert _missing_keys(documented, real) == []
    middle = documented["sites"]["configurations"][0]
    assert middle["configuration"] == "C4-R"
    fit = _cell(results, "C4-R")["pooled"]["lgf"]["fit"]
    assert fit["anterior"]["signed_velocity_m_per_s"] == pytest.approx(
        middle["pooled"]["lgf"]["fit"]["anterior"]["signed_velocity_m_per_s"], abs=0.01
    )
