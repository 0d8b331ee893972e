"""Closed loop: choose the next stimulus from the responses so far."""

from rig.closed_loop.search import (
    BayesianSearch,
    Decision,
    GridSearch,
    RandomSearch,
    replay,
    replay_recorded,
)
from rig.closed_loop.space import Objective, ParameterSpace

__all__ = [
    "BayesianSearch",
    "Decision",
    "GridSearch",
    "Objective",
    "ParameterSpace",
    "RandomSearch",
    "replay",
    "replay_recorded",
]
