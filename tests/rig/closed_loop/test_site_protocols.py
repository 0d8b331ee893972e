"""Closed-loop protocols over electrode configurations: keys, refusals, search."""

from __future__ import annotations

import pytest

from rig.closed_loop.loop import make_search, space_of
from rig.closed_loop.measures import response_value
from rig.closed_loop.mixed_search import MixedBayesianSearch
from rig.protocols import parse_protocol
from rig.protocols._errors import ProtocolError

SITES = """
format_version = 1
[protocol]
name = "LGF without MGF"
seed = 3
[closed_loop]
n_stimuli = 50
configurations = ["C0-R", "C3-A4", "c7-r"]
n_pulses = [1, 3]
rate_hz = [20.0, 50.0]
polarity = ["positive_first", "negative_first"]
safe_radius = 0.3
[closed_loop.objective]
measure = "lgf_responded"
constraint = { measure = "mgf_responded", max = 0.1 }
"""
POSITIONS_M = [0.004, 0.012, 0.025, 0.047, 0.067, 0.087, 0.115, 0.140]


def test_a_protocol_over_sites_makes_a_constrained_mixed_search():
    spec = parse_protocol(SITES).closed_loop
    assert spec.configurations == ("C0-R", "C3-A4", "C7-R")
    assert spec.n_pulses == (1, 3) and spec.polarities == (0, 1)
    assert spec.objective.constraint.measure == "mgf_responded"
    search = make_search(spec, seed=3, electrode_positions_m=POSITIONS_M)
    assert isinstance(search, MixedBayesianSearch)
    assert search.constraint_max == 0.1 and search.safe_radius == 0.3
    assert search.propose()[:3] == ("C0-R", 2.0, 2e-3)
    assert space_of(spec, POSITIONS_M).site_m("C7-R") == 0.140


def test_a_protocol_over_sites_without_positions_is_refused_in_one_line():
    spec = parse_protocol(SITES).closed_loop
    with pytest.raises(ValueError, match=r"\[stimulator\] electrode_positions_mm"):
        make_search(spec)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('["C0-R", "C3-A4", "c7-r"]', '["C0-R", "C3-X"]'),
         r"closed_loop.configurations\[1\].*allowed \"C<cathode>-A<anode>\""),
        (('["C0-R", "C3-A4", "c7-r"]', '["C0-R", "C0-R"]'), "twice"),
        (("n_pulses = [1, 3]", "n_pulses = [3, 1]"), "closed_loop.n_pulses"),
        (('"negative_first"]', '"both"]'), "closed_loop.polarity"),
        ((", max = 0.1 }", " }"), r"constraint.max.*missing"),
        (('"mgf_responded"', '"mgf"'), r"constraint.measure.*'mgf' is not one of"),
    ],
)  # fmt: skip
def test_bad_site_keys_name_the_field(change, message):
    with pytest.raises(ProtocolError, match=message):
        parse_protocol(SITES.replace(*change))


def test_pareto_and_constraint_need_sites():
    text = SITES.replace('configurations = ["C0-R", "C3-A4", "c7-r"]\n', "")
    with pytest.raises(ProtocolError, match="need a search over sites"):
        text = text.replace("n_pulses = [1, 3]\n", "")
        text = text.replace("rate_hz = [20.0, 50.0]\n", "")
        parse_protocol(
            text.replace('polarity = ["positive_first", "negative_first"]\n', "")
        )
    pareto = SITES.replace(
        'constraint = { measure = "mgf_responded", max = 0.1 }',
        "minimise_charge = true",
    ).replace('"lgf_responded"', '"amplitude_uv_mean"')
    spec = parse_protocol(pareto).closed_loop
    assert make_search(spec, electrode_positions_m=POSITIONS_M).minimise_charge


def test_fibre_measures_read_the_named_volleys():
    result = {"volleys": [{"fibre": "lgf"}, {"fibre": None}]}
    assert response_value(result, "lgf_responded") == 1.0
    assert response_value(result, "mgf_responded") == 0.0
    assert response_value({"volleys": []}, "lgf_responded") == 0.0
