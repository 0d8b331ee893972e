"""Pure analysis over numpy arrays: electrophysiology, motion, parameter maps."""

from pathlib import Path as _Path

from analysis._kernel_cache import ensure_coherent as _ensure_coherent

_ensure_coherent(_Path(__file__).parent)
