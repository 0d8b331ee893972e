"""The samples as NWB ecephys: the board, the electrodes table (one row per
differential pair, positions along the body, the bipolar reference said) and
one ``ElectricalSeries`` of the raw int16 counts per contiguous run."""

from __future__ import annotations

from typing import Any

import numpy as np
from hdmf.data_utils import GenericDataChunkIterator
from pynwb import NWBFile
from pynwb.ecephys import ElectricalSeries

from rig.export._common import Runs, scale_of
from rig.recording import Recording

# HDF5 chunks of 2**16 rows (512 KiB for 4 channels of int16): large enough to
# compress well and read fast, small enough to read a stimulus's epoch cheaply.
CHUNK_ROWS = 2**16
# Rows handed to HDF5 at a time: the memory-mapped samples are never all loaded.
BUFFER_ROWS = 2**20
GZIP_LEVEL = 4  # gzip is what every HDF5 reader has (DANDI's advice)


class _Rows(GenericDataChunkIterator):  # type: ignore[misc]
    """A block of rows of the memory-mapped samples handed to HDF5 at a time
    (hdmf's DataChunkIterator would take them one row at a time: 20× slower)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array
        n_rows, n_ch = array.shape
        super().__init__(
            chunk_shape=(min(CHUNK_ROWS, n_rows), n_ch),
            buffer_shape=(min(BUFFER_ROWS, n_rows), n_ch),
            display_progress=False,
        )

    def _get_data(self, selection: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self._array[selection])

    def _get_maxshape(self) -> tuple[int, ...]:
        return tuple(self._array.shape)

    def _get_dtype(self) -> np.dtype:
        return self._array.dtype


def add_board(nwbfile: NWBFile, rec: Recording) -> Any:
    """The board as the recording's device."""
    board = rec.metadata.get("board") or {}
    simulated = bool(rec.metadata.get("simulated"))
    parts = [
        "neurorig stimulation and recording board"
        + (" (the simulated rig: firmware_bridge.sim)" if simulated else ""),
        f"board id {board.get('board_id', 'unknown')}",
        f"firmware {board.get('firmware_version', 'unknown')}",
        f"protocol version {board.get('protocol_version', 'unknown')}",
    ]
    if board.get("adc_bits"):
        parts.append(
            f"{board['adc_bits']}-bit ADC, {board.get('adc_range_vpp', '?')} Vpp range"
        )
    return nwbfile.create_device(name="board", description="; ".join(parts))


def add_electrodes(nwbfile: NWBFile, rec: Recording, device: Any) -> None:
    """One row per differential channel: its centre along the body (``x`` and
    ``rel_x`` in µm from the head, as NWB asks; ``position_along_body_m`` in
    metres) and the bipolar reference in words."""
    geometry = rec.metadata.get("geometry") or {}
    centres = geometry.get("pair_centres_m")
    pins = geometry.get("recording_pairs_m")  # the simulated rig's pin positions
    group = nwbfile.create_electrode_group(
        name="raceway_pairs",
        description="differential recording pairs on the raceway, under the "
        "worm's ventral side, one per channel, from head to tail",
        location="body wall over the ventral nerve cord (giant fibres)",
        device=device,
    )
    nwbfile.add_electrode_column(
        name="position_along_body_m",
        description="centre of the recording pair along the body, metres from "
        "the head (NaN: not given; docs/rig-file.md)",
    )
    nwbfile.add_electrode_column(
        name="channel", description="channel number in the recording (0-based)"
    )
    offset_v = scale_of(rec).offset_v
    if offset_v is not None:  # NWB's series offset is one number for all
        nwbfile.add_electrode_column(
            name="offset",
            description="volts added after conversion: the gain calibration's "
            "offset, −offset_counts × its volts per count (SpikeInterface reads "
            "this column)",
        )
    for ch in range(rec.n_channels):
        centre = float(centres[ch]) if centres is not None else float("nan")
        where = (
            f"pair {ch}, centred {centre * 1e3:g} mm from the head"
            if centres is not None
            else f"pair {ch}, position not given"
        )
        reference = (
            "bipolar: the channel is the difference between the two pins of its "
            "own pair (no common reference)"
        )
        if pins is not None and ch < len(pins):
            a, b = (float(p) * 1e3 for p in pins[ch])
            reference += f"; pins at {a:g} and {b:g} mm from the head"
        nwbfile.add_electrode(
            group=group,
            location=f"body, {where}",
            x=centre * 1e6,
            rel_x=centre * 1e6,
            rel_y=0.0,
            reference=reference,
            position_along_body_m=centre,
            channel=ch,
            **({} if offset_v is None else {"offset": float(offset_v[ch])}),
        )


def add_samples(
    nwbfile: NWBFile, rec: Recording, runs: Runs, first_sample: int
) -> list[ElectricalSeries]:
    """The int16 counts as they were recorded, one series per contiguous run
    (a gap is never closed up); volts = data × channel_conversion × conversion
    (+ the electrodes' offset with a gain calibration)."""
    from pynwb import H5DataIO

    scale = scale_of(rec)
    fs = rec.sample_rate_hz
    region = nwbfile.create_electrode_table_region(
        region=list(range(rec.n_channels)), description="every recording pair"
    )
    calibrated = (
        "channel_conversion: the gain calibration's µV per count over the "
        "nominal; its offset per channel: the electrodes table's offset column"
        if scale.channel_conversion is not None
        else "no gain calibration: nominal volts per count"
    )
    single = len(runs.starts) == 1
    out = []
    for k, (start, stop, first) in enumerate(
        zip(runs.starts, runs.stops, runs.firsts, strict=True)
    ):
        data = rec.samples[start:stop]
        wrapped = H5DataIO(
            _Rows(data), compression="gzip", compression_opts=GZIP_LEVEL, shuffle=True
        )
        series = ElectricalSeries(
            name="ElectricalSeries" if single else f"ElectricalSeries_run{k}",
            description=(
                f"raw ADC counts of the differential pairs, board samples "
                f"{int(first)}–{int(first) + len(data) - 1} (run {k + 1} of "
                f"{len(runs.starts)}; time 0 = board sample {first_sample}); "
                f"{calibrated}"
            ),
            data=wrapped,
            electrodes=region,
            starting_time=float(int(first) - first_sample) / fs,
            rate=fs,
            conversion=scale.conversion,
            resolution=scale.conversion,
            channel_conversion=scale.channel_conversion,
            filtering="the board's anti-alias filter only; no digital filtering",
        )
        nwbfile.add_acquisition(series)
        out.append(series)
    return out


def gap_text(rec: Recording) -> str:
    """The recording's gaps in words, for the file's notes."""
    if not len(rec.gaps):
        return "no samples were lost"
    lost = int(np.sum(rec.gaps[:, 1]))
    return (
        f"{len(rec.gaps)} gaps, {lost} samples lost in all (each contiguous run "
        "is its own ElectricalSeries)"
    )
