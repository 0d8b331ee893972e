"""LED region: where the timing LED is in the camera image, found from frames.

The board flashes the LED while the camera records; the host knows from the
board's LED_FLASHED events which frames saw it lit. Every pixel's intensity is
correlated with that on/off state over the frames, after dividing each frame
by its median (a gain change or lamp drift moves every pixel together and must
not look like the LED). The LED is the connected blob of high correlation
around the best pixel; a worm moving near it, or a light blinking on its own,
correlates with the LED's state only by chance and falls away with enough
frames. The fit then reads the LED back through the region (mean inside over
frame median, split midway between the on and off medians) and reports how
many frames it misreads. (The sync code reads it with
``analysis.sync_code.led_brightness``; calibration and analysis are sibling
layers, so this check is written out here.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from calibration._files import (
    CalibrationError,
    Rule,
    from_dict,
    now_utc,
    number,
    read_json,
    whole,
)


@dataclass(frozen=True, slots=True)
class LedRegionCalibration:
    """The LED's bounding box in the image (pixels, half-open) and how well it reads."""

    KIND = "led_region"
    top_px: int
    bottom_px: int
    left_px: int
    right_px: int
    correlation: float  # peak pixel correlation with the LED state
    separation: float  # on/off brightness gap in robust SDs of the region's mean
    image_size_px: list[int]  # [width, height]
    fitted_at: str
    rig_id: str
    residual_rms: float  # √(fraction of frames misread or ambiguous through the region)
    n_measurements: int  # frames

    # What a file may hold (calibration._files.from_dict checks every field).
    RULES: ClassVar[dict[str, Rule]] = {
        "top_px": whole(0, 100_000),
        "bottom_px": whole(1, 100_000),
        "left_px": whole(0, 100_000),
        "right_px": whole(1, 100_000),
        "correlation": number(-1, 1),
        "separation": number(-1e12, 1e12),
        "image_size_px": Rule(
            lambda v: (
                isinstance(v, list)
                and len(v) == 2
                and all(type(x) is int and 1 <= x <= 100_000 for x in v)
            ),
            "[width, height], whole pixels 1–100000",
        ),
    }

    def inconsistency(self) -> str | None:
        """What disagrees between fields, or None: a region is not empty."""
        if not (self.top_px < self.bottom_px and self.left_px < self.right_px):
            return (
                f"region (top, bottom, left, right) = {self.region}: allowed "
                "top_px < bottom_px and left_px < right_px"
            )
        return None

    @property
    def region(self) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` for ``analysis.sync_code.led_brightness``."""
        return (self.top_px, self.bottom_px, self.left_px, self.right_px)


def pixel_correlation(frames: np.ndarray, led_on: np.ndarray) -> np.ndarray:
    """Each pixel's correlation with the LED state over the frames, ``(h, w)``.

    Frames are divided by their median first (gain invariance). Accumulated
    frame by frame, so memory stays at a few images whatever the frame count.
    """
    state = np.asarray(led_on, dtype=np.float64)
    n = state.size
    s_mean = state.mean()
    s_dev = state - s_mean
    shape = np.asarray(frames[0]).shape
    sum_x = np.zeros(shape)
    sum_xx = np.zeros(shape)
    sum_xs = np.zeros(shape)
    for frame, ds in zip(frames, s_dev, strict=True):
        x = np.asarray(frame, dtype=np.float64)
        x = x / max(float(np.median(x)), 1.0)
        sum_x += x
        sum_xx += x * x
        sum_xs += x * ds
    var_x = sum_xx / n - (sum_x / n) ** 2
    cov = sum_xs / n  # Σ(x − x̄)(s − s̄)/n = Σ x (s − s̄)/n
    sd = np.sqrt(np.clip(var_x, 0.0, None)) * float(np.sqrt(np.mean(s_dev**2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(sd > 0, cov / sd, 0.0)
    # A pixel that follows the LED exactly comes out a few ulp over 1 (the
    # one-pass sums round): a correlation is within ±1 by definition.
    return np.clip(np.asarray(r), -1.0, 1.0)


def fit_led_region(
    frames: np.ndarray,
    led_on: np.ndarray,
    *,
    rig_id: str,
    min_correlation: float = 0.6,
    max_area_fraction: float = 0.05,
    max_misread: float = 0.1,
) -> LedRegionCalibration:
    """Find the LED from frames whose LED state is known (1 on, 0 off, -1 unknown).

    Raises ``CalibrationError`` if no pixel follows the LED (best correlation
    below ``min_correlation``), if the blob is implausibly large, or if the LED
    read back through the region misreads more than ``max_misread`` of frames.
    """
    from scipy import ndimage

    stack = np.asarray(frames)
    state = np.asarray(led_on).astype(np.int8)
    if stack.ndim != 3 or stack.shape[0] != state.size:
        raise CalibrationError(
            f"need frames (n, height, width) and one LED state per frame; got "
            f"{stack.shape} and {state.size} states"
        )
    known = state >= 0
    n_on, n_off = int((state == 1).sum()), int((state == 0).sum())
    if n_on < 3 or n_off < 3:
        raise CalibrationError(
            f"LED region fit needs ≥ 3 frames with the LED on and ≥ 3 off; "
            f"got {n_on} on, {n_off} off"
        )
    r = pixel_correlation(stack[known], state[known])
    peak = np.unravel_index(int(np.argmax(r)), r.shape)
    best = float(r[peak])
    if best < min_correlation:
        raise CalibrationError(
            f"no pixel follows the LED: best correlation {best:.2f} < "
            f"{min_correlation} (is the LED in view? were the flashes recorded?)"
        )
    labels, _ = ndimage.label(r >= max(0.5 * best, 0.3))
    blob = labels == labels[peak]
    h, w = r.shape
    if blob.sum() > max_area_fraction * h * w:
        raise CalibrationError(
            f"the pixels following the LED cover {blob.sum() / (h * w):.0%} of the "
            f"image (limit {max_area_fraction:.0%}): lighting follows the LED, "
            "not one small light"
        )
    rows, cols = np.flatnonzero(blob.any(axis=1)), np.flatnonzero(blob.any(axis=0))
    region = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    misread, separation = _read_back(stack[known], state[known], region)
    if misread > max_misread:
        raise CalibrationError(
            f"read through region {region}, the LED is misread or ambiguous in "
            f"{misread:.0%} of frames (limit {max_misread:.0%})"
        )
    return LedRegionCalibration(
        top_px=region[0],
        bottom_px=region[1],
        left_px=region[2],
        right_px=region[3],
        correlation=best,
        separation=separation,
        image_size_px=[w, h],
        fitted_at=now_utc(),
        rig_id=rig_id,
        residual_rms=float(np.sqrt(misread)),
        n_measurements=int(known.sum()),
    )


def _read_back(
    frames: np.ndarray, state: np.ndarray, region: tuple[int, int, int, int]
) -> tuple[float, float]:
    """Fraction of frames misread through the region, and the on/off separation."""
    top, bottom, left, right = region
    inside = frames[:, top:bottom, left:right].reshape(len(frames), -1).mean(axis=1)
    level = inside / np.maximum(np.median(frames.reshape(len(frames), -1), axis=1), 1)
    on, off = level[state == 1], level[state == 0]
    on_mid, off_mid = float(np.median(on)), float(np.median(off))
    misread = float(np.mean((level >= (on_mid + off_mid) / 2) != (state == 1)))
    spread = np.concatenate([on - on_mid, off - off_mid])
    # The SD's floor, a millionth of the level: noise-free frames (a digital
    # source, a test image) give a large separation the file can hold, not 1e13.
    floor = 1e-6 * max(abs(on_mid), abs(off_mid), 1.0)
    sd = max(1.4826 * float(np.median(np.abs(spread))), floor)
    return misread, (on_mid - off_mid) / sd


def load_led_region(path: str | Path) -> LedRegionCalibration:
    """Read ``led_region.json`` (written by ``calibration.save_calibration``)."""
    path = Path(path)
    cal: LedRegionCalibration = from_dict(
        LedRegionCalibration, read_json(path), str(path)
    )
    return cal
