"""Fault injection for the simulated rig, deterministic by seed.

Byte- and frame-level faults act on what the board sends, as a bad USB cable,
a noisy ground or a busy hub would; stalls, unplug and reboot act on the board
and its port. Every fault is an option of ``neurorig sim`` too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


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

    def tick(self, dt_s: float) -> None:
        """Let ``dt_s`` of time pass: garbage bursts fall due at their rate."""
        if self.enabled and self.plan.garbage_burst_rate_hz:
            self._bursts_due += int(
                self.rng.poisson(self.plan.garbage_burst_rate_hz * dt_s)
            )

    def apply(self, frame: bytes) -> tuple[bytes, bool]:
        """Return (bytes to send, damaged?) for one frame."""
        p = self.plan
        if not p.corrupts_bytes or not self.enabled:
            return frame, False
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
        if damaged:
            self.frames_damaged += 1
        return out, damaged

    def drop_camera_frame(self) -> bool:
        """True when the camera should miss this trigger."""
        return bool(self.plan.camera_drop_rate) and (
            self.rng.random() < self.plan.camera_drop_rate
        )
