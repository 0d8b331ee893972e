"""The wire to the board: pure protocol codec, serial transport, device, simulator."""

from firmware_bridge.stimulus import Polarity, StimPulse

__all__ = ["Polarity", "StimPulse"]
