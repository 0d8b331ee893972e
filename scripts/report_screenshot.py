"""The README's picture of the report page, as headless Chromium draws it.

Usage::

    python scripts/report_screenshot.py [--protocol protocols/mapping.toml]
        [--out docs/images/report-page.png]

Runs the protocol briefly on the simulated rig with its camera (the browser
test's ``brief`` copy: every axis with up to three values, one repeat), analyses
it with ``neurorig analyze --report`` and saves the top of the page (header and
fit tables, the first figures) as Chromium draws it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.offline.test_report_browser import _browser, brief  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--protocol", type=Path, default=ROOT / "protocols/mapping.toml"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs/images/report-page.png"
    )
    parser.add_argument("--height-px", type=int, default=1700)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        short = brief(args.protocol, folder / "protocol")
        cli = [sys.executable, "-m", "rig.cli"]
        run = subprocess.run(
            [*cli, "run", str(short), "--sim", "--camera", "sim", "--subject", "W1",
             "--species", "Lumbricus terrestris", "--out", str(folder / "runs")],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        recording = run.stdout.strip().splitlines()[-1].removeprefix("recording: ")
        report = folder / "report"
        subprocess.run(
            [*cli, "analyze", recording, "--report", str(report), "--quiet"],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        driver = _browser()
        try:
            driver.set_window_size(1100, args.height_px)
            driver.get((report / "index.html").as_uri())
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
