"""Stream decoder: raw bytes from the port -> sample blocks, gaps and messages.

Pure (no I/O): the link's reader thread feeds it whatever ``read()`` returned.
It resynchronises after garbage at the next 0x00 delimiter, drops corrupt frames,
and accounts exactly for samples: every sample the board sent is either delivered
(``samples_received``) or reported in a gap record (``samples_lost``), from the
sample indices themselves. The stream's end is known from the STOP_STREAM ACK,
which carries the index of the first sample not sent; its start from the
START_STREAM ACK. Sample indices are unwrapped from the wire's 32 bits into
host int64 sample numbers, which keep counting across a board reboot.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.protocol import _kernels as k
from firmware_bridge.protocol.codes import MsgType
from firmware_bridge.protocol.framing import MAX_ENCODED_BYTES, FrameError
from firmware_bridge.protocol.messages import Ack, Boot, Message, parse_payload

# Samples are copied byte for byte from the little-endian wire into int16 arrays.
assert sys.byteorder == "little", "the stream decoder assumes a little-endian host"

_EMPTY_BLOCKS = np.zeros((0, 3), dtype=np.int64)
_EMPTY_GAPS = np.zeros((0, 2), dtype=np.int64)


@dataclass(frozen=True, slots=True)
class LinkCounters:
    """Cumulative counts of what the decoder saw (all since construction)."""

    bytes_received: int = 0
    frames_ok: int = 0
    frames_corrupt: int = 0  # bad COBS, bad CRC, too short or too long
    frames_malformed: int = 0  # valid CRC but payload wrong for its type
    frames_lost: int = 0  # missing device seq numbers
    frames_duplicate: int = 0
    frames_out_of_order: int = 0
    frames_wrong_channels: int = 0
    samples_received: int = 0
    samples_lost: int = 0
    samples_duplicate: int = 0
    reboots: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Decoded:
    """What one ``feed()`` produced.

    ``samples`` holds every new sample in arrival order, int16 ``(n, n_channels)``;
    ``blocks`` rows ``(first_sample_number, row_in_samples, n)`` say where each
    run of contiguous samples sits on the device clock; ``gaps`` rows
    ``(first_sample_number, n_lost)`` are samples the board sent that never
    arrived. ``messages`` are the other frames in arrival order, with every
    ``sample_index`` field already unwrapped to a host sample number.
    """

    samples: np.ndarray
    blocks: np.ndarray = field(default_factory=lambda: _EMPTY_BLOCKS)
    gaps: np.ndarray = field(default_factory=lambda: _EMPTY_GAPS)
    messages: list[Message] = field(default_factory=list)


class StreamDecoder:
    """Incremental decoder for the device->host byte stream.

    Parameters
    ----------
    n_channels
        Channels per DATA frame expected (from CONFIGURE). Frames with another
        count are dropped and counted, and their samples show up as a gap.
    """

    def __init__(self, n_channels: int = 1) -> None:
        self.n_channels = n_channels
        self._tail = b""
        self._discarding = False  # inside an over-long run with no delimiter
        self._state = np.zeros(k.STATE_SIZE, dtype=np.int64)
        self._gap_table = np.zeros((64, 2), dtype=np.int64)
        self._ok = 0
        self._corrupt = 0
        self._malformed = 0
        self._bytes = 0
        self._reboots = 0

    # ------------------------------------------------------------------ public

    def set_channels(self, n_channels: int) -> None:
        """Expect ``n_channels`` per DATA frame from now on (after CONFIGURE)."""
        self.n_channels = n_channels

    @property
    def counters(self) -> LinkCounters:
        """A snapshot of the cumulative counters."""
        st = self._state
        return LinkCounters(
            bytes_received=self._bytes,
            frames_ok=self._ok,
            frames_corrupt=self._corrupt,
            frames_malformed=self._malformed + int(st[k.S_MALFORMED]),
            frames_lost=int(st[k.S_FRAMES_LOST]),
            frames_duplicate=int(st[k.S_FRAMES_DUPLICATE]),
            frames_out_of_order=int(st[k.S_FRAMES_OUT_OF_ORDER]),
            frames_wrong_channels=int(st[k.S_WRONG_CHANNELS]),
            samples_received=int(st[k.S_RECEIVED]),
            samples_lost=int(st[k.S_LOST]),
            samples_duplicate=int(st[k.S_DUPLICATE]),
            reboots=self._reboots,
        )

    @property
    def next_sample(self) -> int | None:
        """Host sample number of the next sample expected, if streaming."""
        if self._state[k.S_HAVE_EXPECTED]:
            return int(self._state[k.S_EXPECTED])
        return None

    def unwrap(self, wire_index: int) -> int:
        """Host sample number of a 32-bit wire index, nearest the stream position."""
        return int(k.unwrap_index(np.int64(wire_index), self._state))

    def feed(self, data: bytes) -> Decoded:
        """Decode ``data`` (any split of the stream) and return what it completed."""
        self._bytes += len(data)
        if self._discarding:
            cut = data.find(0)
            if cut < 0:
                return Decoded(samples=self._empty_samples())
            self._discarding = False
            self._corrupt += 1  # the whole over-long run counts as one bad frame
            data = data[cut + 1 :]
        buf = (
            np.frombuffer(self._tail + data, dtype=np.uint8)
            if self._tail
            else (np.frombuffer(data, dtype=np.uint8))
        )
        n = buf.size
        body = np.empty(n, dtype=np.uint8)
        max_pieces = n // 2 + 1
        starts = np.empty(max_pieces, dtype=np.int64)
        lengths = np.empty(max_pieces, dtype=np.int64)
        status = np.empty(max_pieces, dtype=np.int64)
        n_pieces, consumed, n_ok, body_fill = k.split_frames(
            buf, n, body, starts, lengths, status, MAX_ENCODED_BYTES, k.CRC_TABLES
        )
        self._keep_tail(buf, consumed)
        if n_pieces == 0:
            return Decoded(samples=self._empty_samples())
        self._ok += n_ok
        self._corrupt += n_pieces - n_ok
        capacity = body_fill // (2 * self.n_channels) + 1
        return self._extract(body, starts, lengths, status, n_pieces, capacity)

    # ----------------------------------------------------------------- private

    def _empty_samples(self) -> np.ndarray:
        return np.zeros((0, self.n_channels), dtype=np.int16)

    def _keep_tail(self, buf: np.ndarray, consumed: int) -> None:
        tail = buf[consumed:]
        if tail.size > MAX_ENCODED_BYTES:
            # No delimiter for longer than any frame: garbage. Drop it and every
            # byte up to the next delimiter (one corrupt frame in total).
            self._tail = b""
            self._discarding = True
        else:
            self._tail = tail.tobytes()

    def _extract(self, body, starts, lengths, status, n_pieces, capacity) -> Decoded:
        out = np.empty((capacity, self.n_channels), dtype=np.int16)
        out_bytes = out.reshape(-1).view(np.uint8)
        blocks = np.empty((n_pieces, 3), dtype=np.int64)
        if self._gap_table.shape[0] < n_pieces + 2:
            self._gap_table = np.zeros((n_pieces + 2, 2), dtype=np.int64)
        self._state[k.S_N_GAPS] = 0
        messages: list[Message] = []
        fill = n_blocks = 0
        p = 0
        while p < n_pieces:
            p, fill, n_blocks = k.extract_data(
                body, starts, lengths, status, p, n_pieces, self.n_channels,
                self._state, out_bytes, fill, blocks, n_blocks, self._gap_table,
            )  # fmt: skip
            if p >= n_pieces:
                break
            start = int(starts[p])
            frame = body[start : start + int(lengths[p])].tobytes()
            message = self._parse(frame)
            if message is not None:
                messages.append(message)
            p += 1
        n_gaps = int(self._state[k.S_N_GAPS])
        return Decoded(
            samples=out[:fill],
            blocks=blocks[:n_blocks].copy(),
            gaps=self._gap_table[:n_gaps].copy(),
            messages=messages,
        )

    def _parse(self, frame: bytes) -> Message | None:
        try:
            message = parse_payload(frame[0], frame[2:])
        except FrameError:
            self._malformed += 1
            return None
        if isinstance(message, Boot):
            self._on_boot()
            return message
        if hasattr(message, "sample_index"):
            message = dataclasses.replace(
                message, sample_index=self.unwrap(message.sample_index)
            )
            self._state[k.S_REF] = message.sample_index
            self._state[k.S_HAVE_REF] = 1
        if isinstance(message, Ack):
            self._on_ack(message)
        return message

    def _on_ack(self, ack: Ack) -> None:
        st = self._state
        if ack.cmd_type == MsgType.STOP_STREAM:
            # The ACK says which sample would have come next: anything between
            # the last sample we got and that one was sent and lost.
            if st[k.S_HAVE_EXPECTED] and ack.sample_index > st[k.S_EXPECTED]:
                self._add_gap(int(st[k.S_EXPECTED]), ack.sample_index)
            st[k.S_HAVE_EXPECTED] = 0
        elif ack.cmd_type == MsgType.START_STREAM:
            st[k.S_EXPECTED] = ack.sample_index
            st[k.S_HAVE_EXPECTED] = 1

    def _add_gap(self, first: int, stop: int) -> None:
        st = self._state
        g = int(st[k.S_N_GAPS])
        self._gap_table[g] = (first, stop - first)
        st[k.S_N_GAPS] = g + 1
        st[k.S_LOST] += stop - first

    def _on_boot(self) -> None:
        # The board restarted: its counter begins again at 0. Host sample numbers
        # continue from the last one we knew, so recordings stay monotonic; what
        # the board sent between that point and the reset cannot be known.
        st = self._state
        last = st[k.S_EXPECTED] if st[k.S_HAVE_EXPECTED] else st[k.S_REF]
        st[k.S_OFFSET] = last
        st[k.S_REF] = last
        st[k.S_HAVE_REF] = 1
        st[k.S_HAVE_EXPECTED] = 0
        st[k.S_HAVE_SEQ] = 0
        self._reboots += 1


_warmed_up = False


def warm_up() -> None:
    """Compile (or load from cache) the decoder kernels now, not on the first read.

    The first call in a process costs up to seconds (Numba); a link calls this
    before starting its reader so the handshake does not time out on it.
    """
    global _warmed_up
    if _warmed_up:
        return
    from firmware_bridge.protocol.framing import encode_frame
    from firmware_bridge.protocol.messages import Data

    block = Data(0, np.zeros((2, 1), dtype=np.int16))
    StreamDecoder(1).feed(encode_frame(block.TYPE, 0, block.pack()))
    _warmed_up = True
