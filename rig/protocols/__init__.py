"""Stimulation protocol files: parse, validate, expand (docs/protocols.md)."""

from rig.protocols._closed_loop import ClosedLoopSpec, ObjectiveSpec
from rig.protocols._design import CONFOUND_RHO, design_notes, rank_correlation
from rig.protocols._errors import ProtocolError
from rig.protocols._format import format_closed_loop, format_plan
from rig.protocols._parse import (
    FORMAT_VERSION,
    Block,
    Protocol,
    load_protocol,
    parse_protocol,
)
from rig.protocols._plan import Plan, Trial

__all__ = [
    "CONFOUND_RHO",
    "FORMAT_VERSION",
    "Block",
    "ClosedLoopSpec",
    "ObjectiveSpec",
    "Plan",
    "Protocol",
    "ProtocolError",
    "Trial",
    "design_notes",
    "format_closed_loop",
    "format_plan",
    "load_protocol",
    "parse_protocol",
    "rank_correlation",
]
