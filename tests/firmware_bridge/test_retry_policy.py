"""The retry table: every command classified (docs/protocol.md §9)."""

from __future__ import annotations

import pytest

from firmware_bridge.link import COMMAND_RETRY, Retry, retry_kind
from firmware_bridge.protocol import (
    CameraTrigger,
    LedPulse,
    StartStream,
    Stimulate,
    StopStream,
)
from firmware_bridge.protocol.codes import HOST_TO_DEVICE


def test_every_command_is_classified():
    assert set(COMMAND_RETRY) == set(HOST_TO_DEVICE)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (Stimulate(3000, 3000, 0, 1, 0, 1, 0), Retry.RECONCILE),
        (LedPulse(1000), Retry.RECONCILE),
        (StartStream(), Retry.RECONCILE),
        (CameraTrigger(33_333), Retry.RECONCILE),  # restarts the trigger count
        (CameraTrigger(0), Retry.RESEND),  # off stays off
        (StopStream(), Retry.RESEND),
    ],
)
def test_commands_with_an_effect_of_their_own_are_never_resent_blindly(message, kind):
    assert retry_kind(message) is kind
