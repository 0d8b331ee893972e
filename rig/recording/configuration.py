"""The electrode configuration of a recorded stimulus, from its event.

A ``stim_delivered`` (or ``stim_requested``, ``trial``) event written since
protocol version 3 carries ``cathode`` and ``anode`` (None: the common return);
one written before carries ``pair`` (a version-2 board's only pair, 0, is the
classic cathode 0, anode 1). Old recordings keep loading.
"""

from __future__ import annotations

from typing import Any

from firmware_bridge.stimulus import format_configuration, legacy_pair_configuration


def stim_configuration(event: dict[str, Any]) -> str:
    """``"C0-A1"``, ``"C3-R"``, … for a recorded stimulus event.

    >>> stim_configuration({"cathode": 3, "anode": None})
    'C3-R'
    >>> stim_configuration({"pair": 0})  # a version-2 recording
    'C0-A1'
    """
    if "cathode" in event:
        return format_configuration(int(event["cathode"]), event.get("anode"))
    return legacy_pair_configuration(int(event.get("pair", 0)))
