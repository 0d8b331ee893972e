"""Acquisition: device batches -> ring (reader thread) -> relay thread -> consumers.

On the serial reader thread we do only cheap work: copy samples into the ring and
append the batch to the relay queue. The relay thread calls the slow consumers
(recorder, online analysis, events, frame clock) so that a stalled disk or a slow
listener never delays reading the port. Counters: samples received and lost,
corrupt frames (from the link), and the relay queue's high-water mark.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.device import Device
from firmware_bridge.protocol import Decoded, LinkCounters
from rig.core.ring import SampleRing

log = logging.getLogger(__name__)

BatchConsumer = Callable[[Decoded, float], None]


@dataclass(frozen=True, slots=True)
class AcquisitionCounters:
    """Health of the acquisition path."""

    samples_received: int
    samples_lost: int
    frames_corrupt: int  # bad CRC, malformed, or impossible sample numbers
    frames_lost: int
    relay_queue_high_water: int  # most batches ever waiting for the relay thread
    ring_overwritten: int
    consumer_errors: int


class Acquisition:
    """Feeds a SampleRing from a Device and relays batches to slow consumers."""

    def __init__(self, device: Device, n_channels: int, *, ring_seconds: float = 60.0):
        rate = device.sample_rate_hz or 30_000
        self.device = device
        self.ring = SampleRing(int(rate * ring_seconds), n_channels)
        self._queue: deque[tuple[Decoded, float]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._consumers: list[BatchConsumer] = []
        self._high_water = 0
        self._consumer_errors = 0
        # Batches handed to the relay, and batches its consumers have finished
        # (each counted by one thread only): drain() waits for the difference.
        self._batches_queued = 0
        self._batches_consumed = 0
        self._relay = threading.Thread(target=self._relay_loop, name="acq-relay")
        self._relay.daemon = True
        self._relay.start()
        device.add_listener(self._on_batch)

    def add_consumer(self, consumer: BatchConsumer) -> None:
        """Call ``consumer(decoded, host_time_s)`` on the relay thread per batch."""
        self._consumers.append(consumer)

    def remove_consumer(self, consumer: BatchConsumer) -> None:
        """Stop calling ``consumer``."""
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    @property
    def counters(self) -> AcquisitionCounters:
        """A snapshot of the counters."""
        link: LinkCounters = self.device.counters
        return AcquisitionCounters(
            samples_received=link.samples_received,
            samples_lost=link.samples_lost,
            frames_corrupt=link.frames_corrupt
            + link.frames_malformed
            + link.frames_implausible,
            frames_lost=link.frames_lost,
            relay_queue_high_water=self._high_water,
            ring_overwritten=self.ring.overwritten,
            consumer_errors=self._consumer_errors,
        )

    def drain(self, timeout_s: float = 2.0) -> bool:
        """Wait until every batch received so far has been through the consumers
        (True), including one they are in the middle of, or the timeout passes."""
        target = self._batches_queued
        deadline = time.monotonic() + timeout_s
        while self._batches_consumed < target and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._batches_consumed >= target

    def close(self) -> None:
        """Detach from the device and stop the relay thread after it drains."""
        self.device.remove_listener(self._on_batch)
        self.drain()
        self._stop.set()
        self._wake.set()
        self._relay.join(timeout=2.0)

    # ------------------------------------------------------------ threads

    def _on_batch(self, decoded: Decoded) -> None:
        # Reader thread: copy into the ring and hand over; nothing slow here.
        for first, block in decoded.sample_blocks():
            self.ring.write(first, block)
        if decoded.blocks.size or decoded.gaps.size or decoded.messages:
            self._queue.append((decoded, time.monotonic()))
            self._batches_queued += 1
            self._high_water = max(self._high_water, len(self._queue))
            self._wake.set()

    def _relay_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
            while self._queue:
                decoded, host_time = self._queue.popleft()
                for consumer in list(self._consumers):
                    try:
                        consumer(decoded, host_time)
                    except Exception:
                        self._consumer_errors += 1
                        log.exception("acquisition consumer %r failed", consumer)
                self._batches_consumed += 1
