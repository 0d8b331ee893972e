"""Fixtures of the core's tests: a real tiny filesystem to fill."""

from tests.rig.recording.conftest import tiny_fs

__all__ = ["tiny_fs"]
