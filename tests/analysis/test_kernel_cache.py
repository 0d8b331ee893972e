"""Numba's cache of the analysis kernels is cleared when any kernel file
changed (a caller's cache would otherwise keep a changed callee's old code)."""

from __future__ import annotations

from pathlib import Path

from analysis._kernel_cache import STAMP, ensure_coherent


def _cached(package: Path) -> list[str]:
    return sorted(p.name for p in (package / "__pycache__").glob("*.nb[ic]"))


def test_a_changed_kernel_file_clears_every_cached_kernel(tmp_path):
    (tmp_path / "_a_kernels.py").write_text("def f(): return 1\n")
    (tmp_path / "_b_kernels.py").write_text("def g(): return f()\n")
    (tmp_path / "other.py").write_text("x = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()

    def compile_all() -> None:
        for name in ("_a_kernels.f-1.py311.nbi", "_a_kernels.f-1.py311.1.nbc",
                     "_b_kernels.g-1.py311.nbi", "unrelated.h-1.py311.nbi"):  # fmt: skip
            (cache / name).write_bytes(b"x")

    compile_all()
    assert ensure_coherent(tmp_path)  # no stamp: of unknown origin, cleared
    assert _cached(tmp_path) == ["unrelated.h-1.py311.nbi"]
    compile_all()
    assert not ensure_coherent(tmp_path)  # nothing changed: kept
    (tmp_path / "other.py").write_text("x = 2\n")  # not a kernel file
    assert not ensure_coherent(tmp_path)
    assert len(_cached(tmp_path)) == 4
    (tmp_path / "_a_kernels.py").write_text("def f(): return 2\n")  # a callee
    assert ensure_coherent(tmp_path)
    assert _cached(tmp_path) == ["unrelated.h-1.py311.nbi"]
    assert (cache / STAMP).exists()


def test_the_analysis_package_is_stamped_on_import():
    import analysis

    package = Path(analysis.__file__).parent
    assert not ensure_coherent(package)  # stamped when analysis was imported
