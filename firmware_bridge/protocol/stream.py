"""Stream decoder: raw bytes from the port -> sample blocks, gaps and messages.

Pure (no I/O): the link's reader thread feeds it whatever ``read()`` returned.
It resynchronises after garbage at the next 0x00 delimiter, drops corrupt frames,
and accounts exactly for samples: every sample the board sent is either delivered
(``samples_received``) or reported in a gap record (``samples_lost``), from the
sample indices themselves. The stream's end is known from the STOP_STREAM ACK,
which carries the index of the first sample not sent; its start from the
START_STREAM ACK. Sample indices are unwrapped from the wire's 32 bits into
host int64 sample numbers, which keep counting across a board reboot.

Sample numbers the board cannot have sent are corruption, even in a frame with a
good CRC: a DATA block behind the samples already received, or more than
``max_jump`` samples ahead of the next one expected, is dropped, counted
(``frames_implausible``) and reported as a ``StreamAnomaly`` among the messages,
so later real data is never mistaken for duplicates. A block that does not follow
on from the expected sample is held back rather than trusted: if the next DATA
frame continues it, two frames agree and the stream resumes there
(``stream_resyncs``; e.g. a real loss of more than ``max_jump`` samples, or a
START_STREAM ACK that was wrong); otherwise it is dropped. Delivered sample
numbers therefore only ever increase. With ``check_acks`` (the link's setting),
START_STREAM and STOP_STREAM ACKs move the stream's bounds only when they answer a
command the host sent (``expect_ack``).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_bridge.protocol import _kernels as k
from firmware_bridge.protocol.codes import MsgType
from firmware_bridge.protocol.framing import MAX_ENCODED_BYTES, FrameError
from firmware_bridge.protocol.messages import (
    Ack,
    Boot,
    Data,
    Message,
    parse_payload,
)

# Samples are copied byte for byte from the little-endian wire into int16 arrays.
assert sys.byteorder == "little", "the stream decoder assumes a little-endian host"

_EMPTY_BLOCKS = np.zeros((0, 3), dtype=np.int64)
_EMPTY_GAPS = np.zeros((0, 2), dtype=np.int64)
# Largest forward jump of the sample numbers accepted at once as frames lost:
# 35 s at 30 kS/s. A longer jump needs a second frame to agree with it; a forged
# jump shorter than this can cost at most this many real samples.
MAX_JUMP_SAMPLES = 1 << 20
_STREAM_BOUNDS = (MsgType.START_STREAM, MsgType.STOP_STREAM)


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
    samples_duplicate: int = 0  # in DATA frames behind the samples already received
    reboots: int = 0
    frames_implausible: int = 0  # good CRC, impossible sample numbers or ACK: dropped
    stream_resyncs: int = 0  # two frames contradicted the expected sample: followed


@dataclass(frozen=True, slots=True)
class StreamAnomaly:
    """Host-side report, among ``Decoded.messages``, of an impossible frame.

    Not a wire message: the decoder makes one when a frame with a good CRC claims
    sample numbers the board cannot have sent. ``kind`` is ``"behind"`` (a DATA
    block before samples already received, or before the expected sample and not
    confirmed), ``"ahead"`` (a DATA block more than ``max_jump`` ahead, not
    confirmed), ``"ack"`` (a START_STREAM/STOP_STREAM ACK the host did not ask
    for, or with an impossible index: ignored) or ``"resync"`` (two consecutive
    DATA frames agreed on a position the decoder did not expect: the stream
    continues there). ``sample_index`` is where the stream was (the next sample
    expected), ``claimed_index`` what the frame said, ``n_samples`` its samples.
    """

    sample_index: int
    kind: str
    claimed_index: int
    n_samples: int
    message: str


class _Batch:
    """Output buffers of one ``feed()``, shared by the kernel and the slow path."""

    __slots__ = ("blocks", "fill", "messages", "n_blocks", "out")

    def __init__(self, out: np.ndarray, blocks: np.ndarray) -> None:
        self.out = out
        self.blocks = blocks
        self.fill = 0
        self.n_blocks = 0
        self.messages: list = []


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

    def sample_blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """Each run of contiguous samples as ``(first_sample_number, samples)``."""
        for first, row, n in self.blocks:
            yield int(first), self.samples[row : row + n]


class StreamDecoder:
    """Incremental decoder for the device->host byte stream.

    Parameters
    ----------
    n_channels
        Channels per DATA frame expected (from CONFIGURE). Frames with another
        count are dropped and counted, and their samples show up as a gap.
    max_jump
        Largest forward jump of the sample numbers taken at once as lost frames.
    check_acks
        Let START_STREAM/STOP_STREAM ACKs set the stream's bounds only when the
        host announced the command with ``expect_ack`` (the link does).

    Bytes in, sample blocks and gaps out, whatever the reads' split:

    >>> from firmware_bridge.protocol import Data, encode_message
    >>> two = np.array([[1, -1], [2, -2], [3, -3]], dtype=np.int16)
    >>> wire = encode_message(Data(100, two), seq=0)  # samples 100-102
    >>> wire += encode_message(Data(105, two[:1] * 4), seq=1)  # 103, 104 lost
    >>> decoder = StreamDecoder(n_channels=2)
    >>> decoder.feed(wire[:7]).samples.shape  # half a frame: nothing yet
    (0, 2)
    >>> out = decoder.feed(wire[7:])
    >>> out.samples.tolist()
    [[1, -1], [2, -2], [3, -3], [4, -4]]
    >>> out.blocks.tolist()  # (first sample number, row in samples, n)
    [[100, 0, 3], [105, 3, 1]]
    >>> out.gaps.tolist()  # (first sample number, n lost)
    [[103, 2]]
    """

    def __init__(
        self,
        n_channels: int = 1,
        *,
        max_jump: int = MAX_JUMP_SAMPLES,
        check_acks: bool = False,
    ) -> None:
        self.n_channels = n_channels
        self.check_acks = check_acks
        self._tail = b""
        self._discarding = False  # inside an over-long run with no delimiter
        self._state = np.zeros(k.STATE_SIZE, dtype=np.int64)
        self._state[k.S_MAX_JUMP] = max_jump
        self._gap_table = np.zeros((64, 2), dtype=np.int64)
        self._ok = 0
        self._corrupt = 0
        self._malformed = 0
        self._bytes = 0
        self._reboots = 0
        self._implausible = 0
        self._resyncs = 0
        # A DATA block that did not follow on, held until the next one says
        # whether it was real: (first sample number, samples).
        self._suspect: tuple[int, np.ndarray] | None = None
        # (cmd_seq, cmd_type) of START/STOP_STREAM commands sent and not yet
        # ACKed; set by the writer thread, read by the reader (GIL-atomic ops).
        self._solicited: set[tuple[int, int]] = set()
        self._batch: _Batch | None = None

    # ------------------------------------------------------------------ public

    def set_channels(self, n_channels: int) -> None:
        """Expect ``n_channels`` per DATA frame from now on (after CONFIGURE)."""
        self.n_channels = n_channels

    def expect_ack(self, cmd_seq: int, cmd_type: int) -> None:
        """The host sent ``cmd_type`` with ``cmd_seq``: its ACK may move the bounds."""
        if cmd_type in _STREAM_BOUNDS:
            self._solicited.add((cmd_seq, int(cmd_type)))

    def forget_ack(self, cmd_seq: int, cmd_type: int) -> None:
        """The command was answered otherwise or timed out: stop expecting it."""
        self._solicited.discard((cmd_seq, int(cmd_type)))

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
            frames_implausible=self._implausible,
            stream_resyncs=self._resyncs,
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
        if self._suspect is not None:  # delivered from this batch if confirmed
            capacity += len(self._suspect[1])
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
        # A held block confirmed here adds one block, and one gap, to a batch.
        blocks = np.empty((n_pieces + 1, 3), dtype=np.int64)
        if self._gap_table.shape[0] < n_pieces + 4:
            self._gap_table = np.zeros((n_pieces + 4, 2), dtype=np.int64)
        self._state[k.S_N_GAPS] = 0
        self._batch = batch = _Batch(out, blocks)
        p = 0
        try:
            while p < n_pieces:
                p, batch.fill, batch.n_blocks = k.extract_data(
                    body, starts, lengths, status, p, n_pieces, self.n_channels,
                    self._state, out_bytes, batch.fill, blocks, batch.n_blocks,
                    self._gap_table,
                )  # fmt: skip
                if p >= n_pieces:
                    break
                start = int(starts[p])
                frame = body[start : start + int(lengths[p])].tobytes()
                if frame[0] == k.MSG_DATA:
                    self._data(frame)  # not plausible, or a block is held
                else:
                    message = self._parse(frame)
                    if message is not None:
                        batch.messages.append(message)
                p += 1
        finally:
            self._batch = None
        n_gaps = int(self._state[k.S_N_GAPS])
        return Decoded(
            samples=out[: batch.fill],
            blocks=blocks[: batch.n_blocks].copy(),
            gaps=self._gap_table[:n_gaps].copy(),
            messages=batch.messages,
        )

    # ------------------------------------------------- implausible sample numbers

    def _data(self, frame: bytes) -> None:
        """A DATA frame the kernel did not take (seq, length and channels are
        checked): deliver it, hold it as a suspect or drop it as implausible."""
        wire, n_ch, ns = Data.LAYOUT.unpack_from(frame, 2)
        samples = np.frombuffer(
            frame, dtype="<i2", count=ns * n_ch, offset=2 + Data.LAYOUT.size
        ).reshape(ns, n_ch)
        first = self.unwrap(wire)
        st = self._state
        if self._suspect is not None:
            held_first, held = self._take_suspect()
            if first == held_first + len(held):  # two frames agree: follow them
                self._resync(held_first, held)
                self._deliver(first, samples)
                return
            self._drop(held_first, len(held))
        if k.plausible_first(np.int64(first), st):
            self._deliver(first, samples)
        elif st[k.S_HAVE_HIGH] and first < st[k.S_HIGH]:
            st[k.S_DUPLICATE] += ns
            self._drop(first, ns)  # samples with these numbers were received
        else:
            self._suspect = (first, samples.copy())
            st[k.S_DIVERT] = 1

    def _take_suspect(self) -> tuple[int, np.ndarray]:
        assert self._suspect is not None
        held, self._suspect = self._suspect, None
        self._state[k.S_DIVERT] = 0
        return held

    def _position(self) -> int:
        """Where the stream is: the next sample expected, else after the newest."""
        st = self._state
        if st[k.S_HAVE_EXPECTED]:
            return int(st[k.S_EXPECTED])
        if st[k.S_HAVE_HIGH]:
            return int(st[k.S_HIGH])
        return int(st[k.S_REF])

    def _report(self, kind: str, claimed: int, n: int, message: str) -> None:
        assert self._batch is not None
        anomaly = StreamAnomaly(self._position(), kind, claimed, n, message)
        self._batch.messages.append(anomaly)

    def _drop(self, first: int, n: int) -> None:
        """Drop a DATA block with impossible sample numbers; count and report it."""
        self._implausible += 1
        position = self._position()
        if first < position:
            kind, where = "behind", f"{position - first} samples behind"
        else:
            kind, where = "ahead", f"{first - position} samples ahead of"
        self._report(
            kind,
            first,
            n,
            f"dropped a DATA frame (good CRC) claiming samples {first}…"
            f"{first + n - 1}, {where} the stream at {position}",
        )

    def _resync(self, first: int, samples: np.ndarray) -> None:
        """Deliver a held block that the next frame confirmed, and follow it."""
        st = self._state
        position = self._position()
        if st[k.S_HAVE_EXPECTED] and first < st[k.S_EXPECTED]:
            st[k.S_EXPECTED] = first  # the expected sample was wrong, not the data
        self._resyncs += 1
        self._report(
            "resync",
            first,
            len(samples),
            f"the stream continues at sample {first}, not at {position}: two "
            "consecutive DATA frames agree",
        )
        self._deliver(first, samples)

    def _deliver(self, first: int, samples: np.ndarray) -> None:
        """What the kernel does with a plausible block, for the rare slow path."""
        st = self._state
        batch = self._batch
        assert batch is not None
        n = len(samples)
        if st[k.S_HAVE_EXPECTED] and first > st[k.S_EXPECTED]:
            self._add_gap(int(st[k.S_EXPECTED]), first)
        batch.out[batch.fill : batch.fill + n] = samples
        batch.blocks[batch.n_blocks] = (first, batch.fill, n)
        batch.n_blocks += 1
        batch.fill += n
        st[k.S_RECEIVED] += n
        st[k.S_EXPECTED] = st[k.S_REF] = st[k.S_HIGH] = first + n
        st[k.S_HAVE_EXPECTED] = st[k.S_HAVE_REF] = st[k.S_HAVE_HIGH] = 1

    def _bad_ack(self, ack: Ack, why: str) -> None:
        self._implausible += 1
        name = MsgType(ack.cmd_type).name
        self._report(
            "ack",
            ack.sample_index,
            0,
            f"ignored the {name} ACK at {ack.sample_index}: {why}",
        )

    # ------------------------------------------------------------ other frames

    def _parse(self, frame: bytes) -> Message | None:
        try:
            message = parse_payload(frame[0], frame[2:])
        except FrameError:
            self._malformed += 1
            return None
        if isinstance(message, Boot):
            self._on_boot()
            return message
        if not hasattr(message, "sample_index"):
            return message
        stamped: Any = message  # a message dataclass with a sample_index
        message = dataclasses.replace(
            stamped, sample_index=self.unwrap(stamped.sample_index)
        )
        if isinstance(message, Ack) and not self._on_ack(message):
            return message  # an ignored ACK does not move the unwrap reference
        self._state[k.S_REF] = message.sample_index
        self._state[k.S_HAVE_REF] = 1
        return message

    def _on_ack(self, ack: Ack) -> bool:
        """Apply a stream-bounding ACK; False if it was ignored as implausible."""
        if ack.cmd_type not in _STREAM_BOUNDS:
            return True
        key = (ack.cmd_seq, ack.cmd_type)
        if self.check_acks:
            if key not in self._solicited:
                self._bad_ack(ack, f"the host sent no such command (seq {ack.cmd_seq})")
                return False
            self._solicited.discard(key)
        st = self._state
        index = ack.sample_index
        if ack.cmd_type == MsgType.STOP_STREAM:
            if self._suspect is not None:
                held_first, held = self._take_suspect()
                if index == held_first + len(held):  # the board's last block
                    self._resync(held_first, held)
                else:
                    self._drop(held_first, len(held))
            if st[k.S_HAVE_EXPECTED]:
                expected = int(st[k.S_EXPECTED])
                if not expected <= index <= expected + st[k.S_MAX_JUMP]:
                    self._bad_ack(ack, f"the stream is at {expected}")
                    return False
                # The ACK says which sample would have come next: anything
                # between the last sample we got and that one was sent and lost.
                if index > expected:
                    self._add_gap(expected, index)
            st[k.S_HAVE_EXPECTED] = 0
        else:  # START_STREAM
            if st[k.S_HAVE_HIGH] and index < st[k.S_HIGH]:
                self._bad_ack(ack, f"samples up to {int(st[k.S_HIGH])} were received")
                return False
            if self._suspect is not None:
                self._drop(*self._held_span())
            st[k.S_EXPECTED] = index
            st[k.S_HAVE_EXPECTED] = 1
        return True

    def _held_span(self) -> tuple[int, int]:
        first, samples = self._take_suspect()
        return first, len(samples)

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
        if self._suspect is not None:
            self._drop(*self._held_span())
        known = [st[k.S_REF]]
        if st[k.S_HAVE_EXPECTED]:
            known.append(st[k.S_EXPECTED])
        if st[k.S_HAVE_HIGH]:
            known.append(st[k.S_HIGH])
        last = max(known)
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
