"""A real, tiny filesystem to fill: a size-limited tmpfs mounted for one test."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest


@pytest.fixture
def tiny_fs(tmp_path):
    """``make(size_bytes) -> Path``: mount a tmpfs of that size (root only)."""
    mounts = []

    def make(size_bytes: int):
        if os.geteuid() != 0:
            pytest.skip(
                "mounting a tiny tmpfs needs root (a real full disk is the test)"
            )
        mount = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
        mount.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounts.append(mount)
        return mount

    yield make
    for mount in mounts:
        subprocess.run(["umount", "-l", str(mount)], check=False)
