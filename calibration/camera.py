"""Camera: mm per pixel on the raceway plane and lens distortion, from a checkerboard.

The camera looks straight down on the raceway, so every view of a board lying on
it is fronto-parallel: focal length and distance cannot be told apart. We fix the
focal length at a nominal value and the principal point at the image centre and
fit the radial distortion (k1, k2); the undistortion in pixels is then right
whatever the focal length, and the plane's scale (mm per pixel) is measured after
undistortion by fitting a similarity transform from board to image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from calibration._files import CalibrationError, Rule, now_utc, number


def _camera_matrix(value: Any) -> bool:
    """``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, finite, fx and fy > 0."""
    if not (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(row, list) and len(row) == 3 for row in value)
    ):
        return False
    if not all(number(-1e7, 1e7).ok(v) for row in value for v in row):
        return False
    return value[0][0] > 0 and value[1][1] > 0 and value[2] == [0, 0, 1]


def _image_size(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(type(v) is int and 1 <= v <= 100_000 for v in value)
    )


def _dist_coeffs(value: Any) -> bool:
    # the lengths OpenCV's distortion models take
    return (
        isinstance(value, list)
        and len(value) in (4, 5, 8, 12, 14)
        and all(number(-1e4, 1e4).ok(v) for v in value)
    )


@dataclass(frozen=True, slots=True)
class CameraCalibration:
    """Undistortion and scale of the camera on the raceway plane."""

    KIND = "camera"
    px_per_mm: float
    camera_matrix: list[list[float]]
    dist_coeffs: list[float]
    reprojection_error_px: float | None  # None: not measured (a ruler)
    square_size_mm: float | None  # None: no checkerboard (a ruler)
    image_size_px: list[int]
    fitted_at: str
    rig_id: str
    residual_rms: float | None  # px, scale-fit residual after undistortion
    n_measurements: int

    # What a file may hold (calibration._files.from_dict checks every field).
    RULES: ClassVar[dict[str, Rule]] = {
        "px_per_mm": number(0.01, 1000),  # as the rig file's [camera] px_per_mm
        "camera_matrix": Rule(
            _camera_matrix,
            "[[fx, 0, cx], [0, fy, cy], [0, 0, 1]], finite numbers, fx and fy > 0",
        ),
        "dist_coeffs": Rule(
            _dist_coeffs, "a list of 4, 5, 8, 12 or 14 finite numbers (OpenCV's)"
        ),
        "reprojection_error_px": number(0, 1e4, optional=True),
        "square_size_mm": number(0, 1000, low_open=True, optional=True),
        "image_size_px": Rule(_image_size, "[width, height], whole pixels 1–100000"),
    }

    def undistort_points(self, points_px: np.ndarray) -> np.ndarray:
        """Undistorted pixel coordinates of ``(n, 2)`` image points."""
        import cv2

        k = np.asarray(self.camera_matrix)
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.undistortPoints(pts, k, np.asarray(self.dist_coeffs), P=k).reshape(
            -1, 2
        )

    def px_to_mm(self, length_px: float) -> float:
        """A length on the raceway plane."""
        return length_px / self.px_per_mm


def _board_points(squares: tuple[int, int], square_mm: float) -> np.ndarray:
    cols, rows = squares[0] - 1, squares[1] - 1  # inner corners
    grid = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2).astype(np.float32)
    return np.column_stack([grid * square_mm, np.zeros(len(grid), np.float32)])


def fit_camera(
    frames: list[np.ndarray],
    *,
    squares: tuple[int, int] = (9, 6),
    square_size_mm: float = 10.0,
    nominal_focal_px: float = 900.0,
    rig_id: str,
) -> CameraCalibration:
    """Fit distortion and scale from frames of a checkerboard on the raceway."""
    import cv2

    pattern = (squares[0] - 1, squares[1] - 1)
    object_points, image_points = [], []
    board = _board_points(squares, square_size_mm)
    for frame in frames:
        found, corners = cv2.findChessboardCorners(frame, pattern)
        if not found:
            continue
        corners = cv2.cornerSubPix(
            frame,
            corners,
            (5, 5),
            (-1, -1),
            (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4),
        )
        object_points.append(board)
        image_points.append(corners)
    if len(image_points) < 3:
        raise CalibrationError(
            f"checkerboard {squares[0]}×{squares[1]} found in {len(image_points)} of "
            f"{len(frames)} frames; need ≥ 3 (move the board between frames)"
        )
    h, w = frames[0].shape[:2]
    k0 = np.array(
        [
            [nominal_focal_px, 0, (w - 1) / 2],
            [0, nominal_focal_px, (h - 1) / 2],
            [0, 0, 1],
        ],
        dtype=np.float64,
    )
    flags = (
        cv2.CALIB_USE_INTRINSIC_GUESS
        | cv2.CALIB_FIX_FOCAL_LENGTH
        | cv2.CALIB_FIX_PRINCIPAL_POINT
        | cv2.CALIB_ZERO_TANGENT_DIST
        | cv2.CALIB_FIX_K3
    )
    rms, k, dist, _, _ = cv2.calibrateCamera(
        object_points, image_points, (w, h), k0, np.zeros(5), flags=flags
    )
    scales, residuals = [], []
    for corners in image_points:
        ideal = cv2.undistortPoints(corners.astype(np.float64), k, dist, P=k).reshape(
            -1, 2
        )
        matrix, _ = cv2.estimateAffinePartial2D(
            np.ascontiguousarray(board[:, :2], dtype=np.float64),
            ideal.astype(np.float64),
        )
        scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
        scales.append(scale)
        mapped = board[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        residuals.append(np.sqrt(np.mean(np.sum((mapped - ideal) ** 2, axis=1))))
    return CameraCalibration(
        px_per_mm=float(np.mean(scales)),
        camera_matrix=k.tolist(),
        dist_coeffs=dist.ravel().tolist(),
        reprojection_error_px=float(rms),
        square_size_mm=square_size_mm,
        image_size_px=[int(w), int(h)],
        fitted_at=now_utc(),
        rig_id=rig_id,
        residual_rms=float(np.mean(residuals)),
        n_measurements=len(image_points),
    )


def fit_camera_scale_from_ruler(
    mark_a_px: tuple[float, float],
    mark_b_px: tuple[float, float],
    distance_mm: float,
    *,
    image_size_px: tuple[int, int],
    rig_id: str,
) -> CameraCalibration:
    """Quick scale from two marks a known distance apart (no distortion model).

    >>> ruler = fit_camera_scale_from_ruler(
    ...     (100, 240), (420, 240), 100.0, image_size_px=(640, 480), rig_id="rig-1"
    ... )
    >>> ruler.px_per_mm
    3.2
    """
    length = float(np.hypot(mark_b_px[0] - mark_a_px[0], mark_b_px[1] - mark_a_px[1]))
    if not (length > 0 and math.isfinite(length)) or not 0 < distance_mm < math.inf:
        raise CalibrationError(
            "the two ruler marks must be distinct and the distance > 0"
        )
    w, h = image_size_px
    k = [[1.0, 0.0, (w - 1) / 2], [0.0, 1.0, (h - 1) / 2], [0.0, 0.0, 1.0]]
    return CameraCalibration(
        px_per_mm=length / distance_mm,
        camera_matrix=k,
        dist_coeffs=[0.0] * 5,
        reprojection_error_px=None,  # not measured: no lens model
        square_size_mm=None,
        image_size_px=[int(w), int(h)],
        fitted_at=now_utc(),
        rig_id=rig_id,
        residual_rms=None,
        n_measurements=2,
    )
