"""Calibration fits: measurements in, versioned calibration files out. Pure maths."""
