"""The report opened in a real browser (issue 17, item 8): every shipped
protocol, briefly run on the simulated rig with its camera, analysed by
``neurorig analyze --report``, and the page loaded in headless Chromium (Debian's
``chromium`` and ``chromium-driver``, installed by scripts/install-system-deps.sh)
through Selenium. On every page: each figure loads (the browser decoded it), each
axes names its unit and draws data, every local link opens a file that is there,
the browser logs no error, and no cell reads "nan".

``report_screenshot`` is also how the README's picture of the report is made
(scripts/report_screenshot.py)."""

from __future__ import annotations

import re
import shutil
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tests._cli import ROOT, neurorig
from tests.test_docs_examples import _toml

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# An axis label names its unit last, in brackets: "duration (ms)"; a
# categorical axis (the configuration) says "(name)".
UNIT = re.compile(r"\((ms|µV|mm|Vpp|m/s|s|0–1|number|µV/µC|µC|mm/µC|name)\)$")
PROTOCOLS = sorted(p.name for p in (ROOT / "protocols").glob("*.toml"))


def _fewer(values):
    """First, middle and last of an axis (a range table made a list)."""
    if isinstance(values, dict):
        start, stop, step = values["start"], values["stop"], values["step"]
        n = round((stop - start) / step) + 1
        values = [round(start + k * step, 9) for k in range(n)]
    if not isinstance(values, list) or len(values) <= 3:
        return values
    return [values[0], values[len(values) // 2], values[-1]]


def brief(protocol: Path, folder: Path) -> Path:
    """A copy of a shipped protocol that keeps its design (every axis with up
    to three of its values, every block, the closed loop's space) and runs in
    seconds: one repeat, no rests, at most 1 s between stimuli."""
    data = tomllib.loads(protocol.read_text(encoding="utf-8"))
    if "closed_loop" in data:
        loop = data["closed_loop"]
        loop["n_stimuli"] = 6
    for table in [data.get("defaults", {}), *data.get("block", [])]:
        for key in ("amplitude_vpp", "duration_ms", "configuration", "pairs"):
            if key in table:
                table[key] = _fewer(table[key])
        if "repeats" in table:
            table["repeats"] = 1
        for key in ("pause_between_repeats_s", "pause_before_s"):
            if key in table:
                table[key] = 0
        if table.get("inter_stimulus_interval_s", 0) > 1.0:
            table["inter_stimulus_interval_s"] = 1.0
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / protocol.name
    copy.write_text(_toml(data), encoding="utf-8")
    return copy


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert Path(path).exists(), (
            f"{path} missing: scripts/install-system-deps.sh installs Debian's "
            "chromium and chromium-driver (make setup)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1280,1600",
                "--allow-file-access-from-files"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


def _record_and_report(name: str, folder: Path) -> Path:
    short = brief(ROOT / "protocols" / name, folder / "protocols" / name)
    run = neurorig(
        "run", str(short), "--sim", "--camera", "sim", "--out",
        str(folder / "runs" / name), timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, f"{name}: {run.stderr}"
    recording = run.stdout.strip().splitlines()[-1].removeprefix("recording: ")
    report = folder / "reports" / name.removesuffix(".toml")
    done = neurorig(
        "analyze", recording, "--accept-unproven-alignment", "--report",
        str(report), "--quiet", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"{name}: {done.stderr}"
    return report


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """Every shipped protocol, briefly run and analysed, two at a time (each
    run is its own processes): {file name: report folder}."""
    folder = tmp_path_factory.mktemp("shipped")
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = {n: pool.submit(_record_and_report, n, folder) for n in PROTOCOLS}
        return {name: future.result() for name, future in done.items()}


def page(driver, index: Path) -> dict:
    """Load ``index`` and read back what the browser made of it."""
    driver.get(index.as_uri())
    return driver.execute_script(
        """
        const imgs = [...document.images].map(i => ({
            src: i.getAttribute('src'), complete: i.complete,
            width: i.naturalWidth, height: i.naturalHeight,
            axes: i.dataset.axes || '', drawn: i.dataset.drawn || ''}));
        const links = [...document.querySelectorAll('a[href]')]
            .map(a => a.href).filter(h => h.startsWith('file:'));
        const cells = [...document.querySelectorAll('td, th')]
            .map(c => c.textContent);
        return {title: document.title, imgs: imgs, links: links, cells: cells,
                text: document.body.innerText};
        """
    )


def problems(driver, index: Path) -> list[str]:
    """Everything broken on the page, one line each (empty: nothing)."""
    seen = page(driver, index)
    found = []
    if not seen["imgs"]:
        found.append("no figures")
    for img in seen["imgs"]:
        name = img["src"]
        if not img["complete"] or img["width"] == 0 or img["height"] == 0:
            found.append(f"{name}: did not load in the browser")
        labels = [a for a in img["axes"].split("; ") if a]
        drawn = img["drawn"].split()
        if not labels:
            found.append(f"{name}: no axes")
        if len(drawn) != len(labels):
            found.append(f"{name}: {len(labels)} axes but {len(drawn)} counts drawn")
        for label_pair, n in zip(labels, drawn, strict=False):
            if int(n) == 0:
                found.append(f"{name}: an axes draws no data ({label_pair})")
            for label in label_pair.split(" | "):
                if label.strip() and not UNIT.search(label.strip()):
                    found.append(f"{name}: axis '{label}' names no unit")
    for href in seen["links"]:
        path = Path(unquote(urlparse(href).path))
        if not path.exists():
            found.append(f"link to {path.name}: no such file")
    for cell in seen["cells"]:
        if re.search(r"\b(nan|None|undefined)\b", cell):
            found.append(f"a table cell reads {cell!r}")
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            found.append(f"browser console: {entry.get('message')}")
    return found


@pytest.mark.parametrize("name", PROTOCOLS)
def test_the_report_of_every_shipped_protocol_opens_whole(browser, reports, name):
    assert problems(browser, reports[name] / "index.html") == []


def test_a_broken_report_is_caught(browser, reports, tmp_path):
    """The checks can fail: a figure removed, a unit dropped, an empty
    panel, a link to nothing, a nan in a table."""
    broken = tmp_path / "broken"
    shutil.copytree(reports["mapping.toml"], broken)
    index = broken / "index.html"
    text = index.read_text(encoding="utf-8")
    first = re.search(r"<img src='([^']+)'", text).group(1)
    (broken / first).unlink()
    text = re.sub(r"\(Vpp\)", "", text, count=1)
    text = re.sub(r"data-drawn='(\d+)", "data-drawn='0", text, count=1)
    text = text.replace("</body>", "<a href='gone.csv'>x</a><table><tr><td>nan"
                        "</td></tr></table></body>")  # fmt: skip
    index.write_text(text, encoding="utf-8")
    found = "\n".join(problems(browser, index))
    assert f"{first}: did not load" in found
    assert "names no unit" in found
    assert "draws no data" in found
    assert "gone.csv: no such file" in found
    assert "reads 'nan'" in found


def report_screenshot(index: Path, out: Path, width: int = 1100) -> Path:
    """A PNG of the whole page as Chromium draws it (the README's picture)."""
    driver = _browser()
    try:
        driver.set_window_size(width, 1000)
        driver.get(index.as_uri())
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(width, min(int(height) + 40, 6000))
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    return out
