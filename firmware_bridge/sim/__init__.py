"""The simulated rig: worm model, firmware emulator on a pty, synthetic camera."""

from firmware_bridge.sim._optics import CameraOptics
from firmware_bridge.sim.board import BoardLimits, SimBoard, delivered_vpp
from firmware_bridge.sim.camera import SimCamera, render_worm_frame, write_sim_video
from firmware_bridge.sim.cli import cli_main
from firmware_bridge.sim.fault_plan import FaultInjector, FaultPlan
from firmware_bridge.sim.simulated_rig import SimulatedRig
from firmware_bridge.sim.worm import (
    RacewayGeometry,
    StimOutcome,
    WormModel,
    WormParams,
    anterior_field_weight,
    response_probability,
    site_threshold_ratio,
    threshold_vpp,
    to_adc_counts,
)

__all__ = [
    "BoardLimits",
    "CameraOptics",
    "FaultInjector",
    "FaultPlan",
    "RacewayGeometry",
    "SimBoard",
    "SimCamera",
    "SimulatedRig",
    "StimOutcome",
    "WormModel",
    "WormParams",
    "anterior_field_weight",
    "cli_main",
    "delivered_vpp",
    "render_worm_frame",
    "response_probability",
    "site_threshold_ratio",
    "threshold_vpp",
    "to_adc_counts",
    "write_sim_video",
]
