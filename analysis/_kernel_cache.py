"""Keeps Numba's on-disk cache of the analysis kernels coherent.

Numba checks a cached kernel only against the file that defines it, not the
files of the kernels it calls ("cache invalidation does not recognise changes
in symbols defined in another file", Numba's notes on caching). The kernels
here call across files (``_volley_kernels`` calls ``_kernels._pairwise_sum``
and ``_artifact_kernels.spike_windows``), so after an edit or a ``git pull``
that changed only a callee, a caller's cached machine code would run the old
callee: silently old numbers. So the cache is stamped with a digest of every
kernel file's source, and a different digest clears it (first use after the
change compiles again).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

STAMP = "kernels.sha256"


def ensure_coherent(package: Path) -> bool:
    """Clear ``package``'s cached kernels (``__pycache__/_*kernels.*.nbi/nbc``)
    unless they were compiled from the kernel files as they are now; True when
    cleared. An unwritable cache is left alone (Numba then caches elsewhere,
    keyed by each file's own stamp: an install's files all change together)."""
    sources = sorted(package.glob("_*kernels.py"))
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    cache = package / "__pycache__"
    stamp = cache / STAMP
    try:
        if stamp.read_text(encoding="ascii") == digest.hexdigest():
            return False
    except OSError:
        pass  # no stamp yet: what is there is of unknown origin
    try:
        for cached in cache.glob("_*kernels.*.nb[ic]"):
            cached.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest(), encoding="ascii")
    except OSError:
        return False
    return True
