"""Protocol files sweep electrode configurations (issue 18): the
``configuration`` axis, the old ``pairs``, and refusals that name the entry."""

from __future__ import annotations

import pytest

from rig.protocols import ProtocolError, parse_protocol
from rig.safety import SafetyError, SafetyLimits, check_protocol

HEAD = 'format_version = 1\n[protocol]\nname = "t"\n'


def block(**keys) -> str:
    body = "".join(f"{k} = {v}\n" for k, v in keys.items())
    return HEAD + "[[block]]\namplitude_vpp = [3.0, 4.0]\nduration_ms = 1.0\n" + body


def test_the_configuration_axis_multiplies_the_sweep():
    protocol = parse_protocol(
        block(configuration='["C0-R", "C4-A5", "c7-r"]'), source="t"
    )
    plan = protocol.expand()
    assert plan.n_trials == 6
    got = sorted({t.pulse.configuration for t in plan.trials})
    assert got == ["C0-R", "C4-A5", "C7-R"]
    assert {(t.pulse.cathode, t.pulse.anode) for t in plan.trials} == {
        (0, None), (4, 5), (7, None),
    }  # fmt: skip


def test_default_is_the_classic_pair_and_old_pairs_still_read():
    plain = parse_protocol(block(), source="t").expand()
    assert {t.pulse.configuration for t in plain.trials} == {"C0-A1"}
    old = parse_protocol(block(pairs="[0, 2]"), source="t").expand()
    assert {t.pulse.configuration for t in old.trials} == {"C0-A1", "C4-A5"}
    text = HEAD + '[defaults]\nconfiguration = "C3-R"\n' + block().removeprefix(HEAD)
    assert {
        t.pulse.configuration for t in parse_protocol(text, source="t").expand().trials
    } == {"C3-R"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('["C0-A0"]', r"block\[0\].configuration\[0\]: 'C0-A0': the anode must be"),
        ('["X1"]', r"configuration\[0\]: 'X1': allowed \"C<cathode>-A<anode>\""),
        ("[3]", r"configuration\[0\]: 3: allowed text"),
        ("[]", "an empty list"),
        ('["C1-R", "C1-R"]', "each configuration once"),
    ],
)
def test_bad_configurations_are_refused_naming_the_entry(value, message):
    with pytest.raises(ProtocolError, match=message):
        parse_protocol(block(configuration=value), source="t")
    with pytest.raises(ProtocolError, match="not both"):
        parse_protocol(block(configuration='"C0-A1"', pairs="[0]"), source="t")


def test_the_safety_check_refuses_what_the_rig_or_board_does_not_allow():
    protocol = parse_protocol(block(configuration='["C0-A1", "C9-R"]'), source="t")
    with pytest.raises(
        SafetyError, match=r"cathode = 9 .*electrodes 0–7\) — trials 2, 3"
    ):
        check_protocol(protocol, SafetyLimits(), n_electrodes=8)
    only = SafetyLimits(allowed_configurations=("C0-A1",))
    protocol = parse_protocol(block(configuration='["C0-A1", "C3-R"]'), source="t")
    with pytest.raises(SafetyError, match=r"configuration = 'C3-R' .*C0-A1"):
        check_protocol(protocol, only, n_electrodes=8)
    assert (
        check_protocol(
            parse_protocol(block(), source="t"), only, n_electrodes=8
        ).n_trials
        == 2
    )
