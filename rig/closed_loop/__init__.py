"""Closed loop: choose the next stimulus from the responses so far."""

from rig.closed_loop.mixed_search import MixedBayesianSearch
from rig.closed_loop.search import (
    BayesianSearch,
    Decision,
    GridSearch,
    RandomSearch,
    replay,
    replay_recorded,
)
from rig.closed_loop.space import (
    Configuration,
    MixedSpace,
    Objective,
    ParameterSpace,
    SitePoint,
)

__all__ = [
    "BayesianSearch",
    "Configuration",
    "Decision",
    "GridSearch",
    "MixedBayesianSearch",
    "MixedSpace",
    "Objective",
    "ParameterSpace",
    "RandomSearch",
    "SitePoint",
    "replay",
    "replay_recorded",
]
