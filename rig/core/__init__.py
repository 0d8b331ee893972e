"""Headless core of the live system: events, buffers, clocks, session. No Qt."""
