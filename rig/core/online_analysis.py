"""Per-stimulus analysis during acquisition, on the relay thread.

Samples are converted to µV and fed to ``analysis.online.OnlineStimulusAnalyzer``;
each STIM_DELIVERED registers a stimulus; as soon as its epoch is complete the
response is analysed (the same function as the offline pipeline, on the same
samples) and published as ``events.response_measured(trial, result)``.

A stimulus is analysed about its site: the cathode its STIM_DELIVERED names, at
its position along the body (the rig's ``stim_electrodes_m``). From the head end
(``analysis.bidirectional.at_head_end``: the classic head pair) the analysis
and its result are the first wave's; from elsewhere the pairs on each side are
timed by their distance from the site, as the offline per-site analysis does
(``analysis.bidirectional.analyse_bidirectional``, ``site_record``), and the
result keeps its keys (docs/analysis.md, "Online, over sites").
"""

from __future__ import annotations

from collections import deque
from typing import Any, cast

import numpy as np

from analysis.bidirectional import (
    BidirectionalResponse,
    counted,
    site_record,
    without_artifact_volleys,
)
from analysis.online import OnlineStimulusAnalyzer
from firmware_bridge.protocol import Decoded, StimDelivered
from firmware_bridge.protocol.messages import si_anode
from firmware_bridge.stimulus import format_configuration

RESULTS_KEPT = 1000
SWEEPS_KEPT = 50  # cleaned epochs kept for the live view (~50 kB each)
INT16_RAIL = 32767  # the largest count of the board's 16-bit samples


class OnlineResponses:
    """Turns the sample stream and stimulus events into per-stimulus results."""

    def __init__(
        self,
        *,
        fs_hz: float,
        n_channels: int,
        positions_m: np.ndarray,
        uv_per_count: float,
        emit,
        requested_vpp=None,
        stim_electrodes_m=None,
    ) -> None:
        self.positions_m = np.asarray(positions_m, dtype=float)
        # each stimulation electrode's position (m from the head end), or
        # None when not known: every stimulus is then analysed from the head end
        self.stim_electrodes_m = (
            None if stim_electrodes_m is None else [float(x) for x in stim_electrodes_m]
        )
        # commanded mVpp -> the amplitude the user asked for (differs from the
        # command when a stimulator calibration corrects it)
        self.requested_vpp = requested_vpp or commanded_vpp
        self.uv_per_count = uv_per_count
        # The ADC's rail, as `neurorig analyze` takes it: clipped samples are
        # blanked the same way online and offline.
        self.analyzer = OnlineStimulusAnalyzer(
            fs_hz=fs_hz,
            n_channels=n_channels,
            positions_m=self.positions_m,
            clip_uv=INT16_RAIL * abs(uv_per_count),
            keep_cleaned=True,  # the live view draws what was analysed
            sites_m=self.stim_electrodes_m,  # epochs as offline takes them
        )
        self.emit = emit
        # The newest results, for scripts (bounded: a rig runs all day).
        self.results: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)
        # stimulus sample -> (rows before the onset, cleaned epoch µV): the
        # epochs as the detector saw them, for the stimulus-locked view
        self.sweeps: dict[int, tuple[int, np.ndarray]] = {}
        self._n_stimuli = 0

    def consume(self, decoded: Decoded, host_time: float) -> None:
        """Relay-thread consumer: register stimuli, feed samples, publish results."""
        for message in decoded.messages:
            if isinstance(message, StimDelivered):
                key = stimulus_key(message, self._n_stimuli, self.requested_vpp)
                self._n_stimuli += 1
                self.analyzer.add_stimulus(
                    message.sample_index,
                    key["duration_s"],
                    key,
                    site_m=self.site_of(message.cathode),
                )
        for first, block in decoded.sample_blocks():
            chunk = block.astype(np.float64) * self.uv_per_count
            for stim_key, analysed in self.analyzer.process(first, chunk):
                key = cast("dict[str, Any]", stim_key)  # the stimulus_key added above
                if isinstance(analysed, BidirectionalResponse):
                    self._keep_sweep(
                        key["stimulus_sample"],
                        analysed.response.cleaned_uv,
                        analysed.analysed_about_m,
                    )
                    result = {**key, **about_site(analysed, self.positions_m)}
                else:
                    self._keep_sweep(key["stimulus_sample"], analysed.cleaned_uv, None)
                    result = {**key, **analysed.to_dict()}
                amps = [a for a in result["amplitude_uv"] if a is not None]
                result["amplitude_uv_mean"] = float(np.mean(amps)) if amps else 0.0
                result["positions_m"] = self.positions_m.tolist()
                # Motion comes later, when the twitch has been filmed:
                # events.motion_measured (rig.core.online_motion).
                result["peak_displacement_mm"] = None
                # When the batch that completed the response window arrived: the
                # start of the host's part of a closed loop.
                result["window_received_s"] = host_time
                self.results.append(result)
                self.emit(result["trial"], result)

    def site_of(self, cathode: int) -> float | None:
        """The cathode's position (m from the head end), or None if not known."""
        electrodes = self.stim_electrodes_m
        if electrodes is None or not 0 <= cathode < len(electrodes):
            return None
        return electrodes[cathode]

    def warm_up(self) -> None:
        """Every kernel the online analysis runs, compiled or loaded now
        (``OnlineStimulusAnalyzer.warm_up``), its results as ``consume``
        turns them into results too: call it before the board is armed."""
        for _, analysed in self.analyzer.warm_up():
            if isinstance(analysed, BidirectionalResponse):
                about_site(analysed, self.positions_m)
            else:
                analysed.to_dict()

    def _keep_sweep(
        self, onset_sample: int, cleaned_uv: np.ndarray | None, site_m: float | None
    ) -> None:
        if cleaned_uv is None:
            return
        # the epoch's rows before onset
        pre = cleaned_uv.shape[0] - self.analyzer.post_rows(site_m)
        self.sweeps[int(onset_sample)] = (pre, cleaned_uv)
        while len(self.sweeps) > SWEEPS_KEPT:
            del self.sweeps[next(iter(self.sweeps))]


def about_site(about: BidirectionalResponse, positions_m: np.ndarray) -> dict[str, Any]:
    """The result of a stimulus analysed about its site: the first wave's keys
    and what the site adds.

    The volleys are the offline record's (``site_record``): named as offline
    names them for a site, without those on the artifact's remains (moved to
    ``suspect_volleys``). ``conduction_velocity_m_per_s`` is the first
    volley's speed away from the site: its V with the site given over the
    pairs on both sides (``latency = t0 + |x − site| / v``), its arrivals
    before the pulse and blanking ended left out — unsigned, as from the
    head; None when that V is not determined (the record's fit says why:
    with the simulated rig's four pairs a mid-body site's two nearest pairs
    are timed on the artifact, and the line through them all would be a
    confident wrong speed). The direction is in the new keys:
    ``anterior_velocity_m_per_s`` (< 0, toward the head) and
    ``posterior_velocity_m_per_s`` (> 0), each side's own velocity, None
    where not determined, and ``direction`` ("anterior", "posterior", "both"
    or None). ``bidirectional`` is the offline record.
    """
    record = site_record(about, about.analysed_about_m, positions_m)
    response = without_artifact_volleys(about.response, record)
    fits = [
        f for f, v in zip(record["fits"], record["volleys"], strict=True) if counted(v)
    ]
    first = fits[0] if fits else None
    return {
        **response.to_dict(),
        "conduction_velocity_m_per_s": None
        if first is None
        else first["velocity_m_per_s"],
        "site_m": float(about.analysed_about_m),
        "fibres_separable": bool(about.fibres_separable),
        "anterior_velocity_m_per_s": None
        if first is None
        else first["anterior"]["signed_velocity_m_per_s"],
        "posterior_velocity_m_per_s": None
        if first is None
        else first["posterior"]["signed_velocity_m_per_s"],
        "direction": None if first is None else first["direction"],
        "bidirectional": record,
    }


def commanded_vpp(commanded_mvpp: int) -> float:
    """The amplitude as commanded (no stimulator correction in force)."""
    return commanded_mvpp / 1000.0


def stimulus_key(message: StimDelivered, trial: int, requested_vpp) -> dict[str, Any]:
    """What every online result says about its stimulus (SI units)."""
    return {
        "trial": trial,
        "stimulus_sample": message.sample_index,
        "amplitude_vpp": requested_vpp(message.commanded_mvpp),
        "delivered_vpp": message.delivered_mvpp / 1000.0,
        "duration_s": message.duration_us / 1e6,
        "configuration": format_configuration(message.cathode, si_anode(message.anode)),
        "polarity": message.polarity,
    }
