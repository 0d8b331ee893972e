"""Fault injection for the simulated rig, deterministic by seed.

Byte- and frame-level faults act on what the board sends, as a bad USB cable,
a noisy ground or a busy hub would; stalls, unplug and reboot act on the board
and its port. Targeted faults hit one named frame: damage the n-th board frame
of a kind, lose the n-th host command of a type on its way in, stall the
board's output right after it answers a command. Every fault is an option of
``neurorig sim`` too.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from firmware_bridge.protocol import FrameError, MsgType, decode_frame

HOST_COMMANDS = frozenset(t.name for t in MsgType if t < 0x80)
BOARD_FRAMES = frozenset(t.name for t in MsgType if t >= 0x80)


def frame_label(encoded: bytes) -> str | None:
    """``"STATUS"``, ``"ACK:STIMULATE"`` (an ACK/NAK names its command), or None
    for a frame that does not decode. ``encoded`` is one COBS frame, with or
    without its 0x00 delimiter."""
    try:
        msg_type, _, payload = decode_frame(encoded.rstrip(b"\x00"))
        name = MsgType(msg_type).name
        if msg_type in (MsgType.ACK, MsgType.NAK) and payload:
            name += ":" + MsgType(payload[0]).name
    except (FrameError, ValueError):
        return None
    return name


def _check_label(label: str, *, host: bool) -> None:
    kind, _, command = label.partition(":")
    if host:
        ok = not command and kind in HOST_COMMANDS
        allowed = ", ".join(sorted(HOST_COMMANDS))
    else:
        ok = kind in BOARD_FRAMES and (
            not command or (kind in ("ACK", "NAK") and command in HOST_COMMANDS)
        )
        allowed = f"{', '.join(sorted(BOARD_FRAMES))}, or ACK:<command>"
    if not ok:
        raise ValueError(f"unknown frame kind {label!r}: allowed {allowed}")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What goes wrong, and when. Rates are per byte or per frame; times in s."""

    seed: int = 0
    bit_flip_rate: float = 0.0  # probability that a byte sent has one bit flipped
    byte_drop_rate: float = 0.0  # probability that a byte sent is lost
    byte_duplicate_rate: float = 0.0  # probability that a byte sent arrives twice
    frame_truncate_rate: float = 0.0  # probability that a frame loses its tail
    frame_duplicate_rate: float = 0.0  # probability that a whole frame is repeated
    garbage_burst_rate_hz: float = 0.0  # random-byte bursts per second
    garbage_burst_bytes: int = 4096
    stalls: tuple[tuple[float, float], ...] = ()  # (start_s, duration_s): no output
    unplug_at_s: float | None = None  # the port vanishes (host gets EIO)
    reboot_at_s: float | None = None  # board resets: counter to 0, BOOT banner
    camera_drop_rate: float = 0.0  # probability that a triggered frame is lost
    # Targeted, one frame each; n counts from 0 per kind, whatever ``enabled``:
    # (board frame kind, n): one bit flipped, e.g. ("HELLO_REPLY", 0), ("ACK:ARM", 1)
    damage_frames: tuple[tuple[str, int], ...] = ()
    # (command, n): the n-th such host frame never reaches the board
    lose_commands: tuple[tuple[str, int], ...] = ()
    # (command, duration_s): no output for that long once the board has
    # answered the first such command (its answer included)
    stall_after: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "bit_flip_rate", "byte_drop_rate", "byte_duplicate_rate",
            "frame_truncate_rate", "frame_duplicate_rate", "camera_drop_rate",
        ):  # fmt: skip
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} is not a probability (allowed 0–1)")
        for start, duration in self.stalls:
            if not 0.05 <= duration <= 5.0:
                raise ValueError(
                    f"stall of {duration} s at {start} s: allowed durations 0.05–5 s"
                )
        for label, _ in self.damage_frames:
            _check_label(label, host=False)
        for label, _ in self.lose_commands:
            _check_label(label, host=True)
        for label, duration in self.stall_after:
            _check_label(label, host=True)
            if not 0.05 <= duration <= 5.0:
                raise ValueError(
                    f"stall of {duration} s after {label}: allowed durations 0.05–5 s"
                )

    @property
    def corrupts_bytes(self) -> bool:
        """True when any byte- or frame-level fault is active."""
        return any(
            (
                self.bit_flip_rate,
                self.byte_drop_rate,
                self.byte_duplicate_rate,
                self.frame_truncate_rate,
                self.frame_duplicate_rate,
                self.garbage_burst_rate_hz,
            )
        )

    def to_dict(self) -> dict:
        """Plain dict for ground truth."""
        return asdict(self)


class FaultInjector:
    """Applies a FaultPlan's byte/frame faults to outgoing frames."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.rng = np.random.default_rng(np.random.SeedSequence([plan.seed, 99]))
        self.frames_damaged = 0
        self.garbage_bytes = 0
        # Tests switch faults off around START/STOP so the ACKs that bound the
        # stream arrive; the plan itself applies whenever this is True.
        self.enabled = True
        self._bursts_due = 0
        self.commands_lost = 0
        self.stall_until = 0.0  # monotonic time a stall_after stall ends
        self._damage = set(plan.damage_frames)
        self._lose = set(plan.lose_commands)
        self._stall_after = dict(plan.stall_after)
        self._seen_out: Counter[str] = Counter()
        self._seen_in: Counter[str] = Counter()
        self._rx = b""

    @property
    def targeted(self) -> bool:
        """True when the plan names frames to damage, lose or stall after."""
        return bool(self._damage or self._lose or self._stall_after)

    def from_host(self, data: bytes) -> bytes:
        """What of the host's bytes reaches the board (lose_commands)."""
        if not self._lose:
            return data
        self._rx += data
        *frames, self._rx = self._rx.split(b"\x00")
        out = bytearray()
        for raw in frames:
            label = frame_label(raw) if raw else None
            if label is not None:
                n = self._seen_in[label]
                self._seen_in[label] += 1
                if (label, n) in self._lose:
                    self.commands_lost += 1
                    continue
            out += raw + b"\x00"
        return bytes(out)

    def _targeted(self, frame: bytes) -> tuple[bytes, bool]:
        """Apply damage_frames and stall_after to one outgoing frame."""
        label = frame_label(frame)
        if label is None:
            return frame, False
        damaged = False
        labels = [label, label.partition(":")[0]] if ":" in label else [label]
        for name in labels:
            n = self._seen_out[name]
            self._seen_out[name] += 1
            if (name, n) in self._damage:
                damaged = True
        kind, _, command = label.partition(":")
        answered = command or {"HELLO_REPLY": "HELLO", "STATUS": "GET_STATUS"}.get(kind)
        if answered in self._stall_after:
            self.stall_until = time.monotonic() + self._stall_after.pop(answered)
        if not damaged:
            return frame, False
        data = bytearray(frame)
        i = len(data) // 2  # not the delimiter; stays non-zero: one bad frame
        data[i] ^= 0x02 if data[i] == 0x01 else 0x01
        return bytes(data), True

    def tick(self, dt_s: float) -> None:
        """Let ``dt_s`` of time pass: garbage bursts fall due at their rate."""
        if self.enabled and self.plan.garbage_burst_rate_hz:
            self._bursts_due += int(
                self.rng.poisson(self.plan.garbage_burst_rate_hz * dt_s)
            )

    def apply(self, frame: bytes) -> tuple[bytes, bool]:
        """Return (bytes to send, damaged?) for one frame."""
        p = self.plan
        hit = False
        if self.targeted:
            frame, hit = self._targeted(frame)
            self.frames_damaged += hit
        if not p.corrupts_bytes or not self.enabled:
            return frame, hit
        rng = self.rng
        data = bytearray(frame)
        damaged = False
        if self._bursts_due:
            self._bursts_due -= 1
            burst = rng.integers(
                0, 256, p.garbage_burst_bytes, dtype=np.uint8
            ).tobytes()
            cut = int(rng.integers(0, len(data)))
            data[cut:cut] = burst  # inside the frame: it is lost, the next one is not
            self.garbage_bytes += len(burst)
            damaged = True
        if p.frame_truncate_rate and rng.random() < p.frame_truncate_rate:
            cut = int(rng.integers(1, max(2, len(data) - 1)))
            data = data[:cut] + b"\x00"
            damaged = True
        n = len(data)
        if p.bit_flip_rate:
            hits = np.flatnonzero(rng.random(n) < p.bit_flip_rate)
            for i in hits:
                data[i] ^= 1 << int(rng.integers(0, 8))
            damaged |= hits.size > 0
        if p.byte_drop_rate or p.byte_duplicate_rate:
            u = rng.random(n)
            keep = u >= p.byte_drop_rate
            dup = (u >= p.byte_drop_rate) & (rng.random(n) < p.byte_duplicate_rate)
            if (~keep).any() or dup.any():
                arr = np.frombuffer(bytes(data), dtype=np.uint8)
                repeats = keep.astype(int) + dup.astype(int)
                data = bytearray(np.repeat(arr, repeats).tobytes())
                damaged = True
        out = bytes(data)
        if p.frame_duplicate_rate and rng.random() < p.frame_duplicate_rate:
            out = out + out
        if damaged and not hit:
            self.frames_damaged += 1
        return out, damaged or hit

    def drop_camera_frame(self) -> bool:
        """True when the camera should miss this trigger."""
        return bool(self.plan.camera_drop_rate) and (
            self.rng.random() < self.plan.camera_drop_rate
        )
