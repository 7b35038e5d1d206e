"""The web UI in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``) via Selenium.

Needs ``apt-get install -y chromium chromium-driver``; without them these tests FAIL (they do
not skip), so a CI image that lost the browser is noticed. No driver or browser is ever
downloaded: the binary and the driver paths are given explicitly.

Screenshots go to the test's ``tmp_path`` and are copied to ``benchmarks/out/screenshots/``.
"""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import pick_ports
from ui_fixtures import (
    ARTIFACT_TYPES,
    IMAGE_COUNT,
    JOB_TYPES,
    PROJECT,
    Tutorial,
    fill_sweep,
    fill_tutorial_store,
    module_store,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "benchmarks" / "out" / "screenshots"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
WIDTH, HEIGHT = 1400, 1000


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        pytest.fail(f"headless Chromium is needed for the browser tests but {', '.join(missing)} is missing: "
                    f"install chromium chromium-driver ({INSTALL})", pytrace=False)
    import importlib.util

    if importlib.util.find_spec("selenium") is None:
        pytest.fail("selenium is needed for the browser tests: pip install 'selenium>=4.20'", pytrace=False)


def test_chromium_and_its_driver_are_installed() -> None:
    """Fails (never skips) where the browser is missing, naming the packages to install."""
    _require_browser()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Tutorial, int]]:
    """The tutorial store, served by the UI on a free loopback port in a background thread."""
    from werkzeug.serving import make_server

    from registry.ui import create_app

    with module_store(tmp_path_factory.mktemp("ui-browser")) as (url, work):
        tutorial = fill_tutorial_store(url, workdir=work)
        sweep_nodes = fill_sweep(url)
        server = make_server("127.0.0.1", pick_ports(1, grpc=False)[0], create_app(url), threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="registry-ui", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.port}", tutorial, sweep_nodes
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                 f"--window-size={WIDTH},{HEIGHT}", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver, url: str) -> None:
    driver.get(url)
    problems = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not problems, f"browser console errors on {url}: {problems}"


def _shoot(driver, tmp_path: Path, name: str, capsys) -> Path:
    """A full-page screenshot (the window grows to the page's height, up to 5000px)."""
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(WIDTH, min(max(HEIGHT, int(height) + 140), 5000))
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    driver.set_window_size(WIDTH, HEIGHT)
    SHOTS.mkdir(parents=True, exist_ok=True)
    copy = SHOTS / path.name
    shutil.copyfile(path, copy)
    with capsys.disabled():
        print(f"\nscreenshot: {path}\nscreenshot: {copy}")
    return copy


def _node_labels(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    nodes = driver.find_elements(By.CSS_SELECTOR, "svg.graph a.node")
    for node in nodes:
        box = node.find_element(By.TAG_NAME, "rect").rect
        assert box["width"] > 20 and box["height"] > 10, f"node {node.get_attribute('data-label')} is not drawn: {box}"
    return [n.get_attribute("data-label") for n in nodes]


def test_artifact_page_shows_metadata(served, browser, tmp_path, capsys) -> None:
    from selenium.webdriver.common.by import By

    base, tutorial, _ = served
    _open(browser, f"{base}/projects/{PROJECT}/artifacts/mnist-raw/v0")
    overview = browser.find_element(By.ID, "overview").text
    assert "Raw handwritten digits" in overview and tutorial.run_name("load-data") in overview
    assert tutorial.run_name("preprocess-data") in overview  # used by
    _shoot(browser, tmp_path, "artifact-overview", capsys)

    browser.find_element(By.LINK_TEXT, "Metadata").click()
    metadata = browser.find_element(By.CSS_SELECTOR, "#metadata pre.json").text
    assert '"source": "synthetic-digits"' in metadata and '"sizes"' in metadata
    _shoot(browser, tmp_path, "artifact-metadata", capsys)

    browser.find_element(By.LINK_TEXT, "Files").click()
    files = browser.find_element(By.ID, "files").text
    assert "training.pt" in files and "samples/" in files
    _shoot(browser, tmp_path, "artifact-files", capsys)


def test_graph_view_types_and_explode(served, browser, tmp_path, capsys) -> None:
    from selenium.webdriver.common.by import By

    base, tutorial, _ = served
    _open(browser, f"{base}/projects/{PROJECT}/artifacts/trained-model/v0?tab=lineage")
    labels = _node_labels(browser)
    for expected in ARTIFACT_TYPES + JOB_TYPES:
        assert expected in labels, f"type-level graph lacks {expected}: {labels}"
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.graph path.edge")) >= 7
    _shoot(browser, tmp_path, "graph-types", capsys)

    browser.find_element(By.ID, "explode").click()
    labels = _node_labels(browser)
    assert "dataset:mnist-raw:v0" in labels and "model:trained-model:v0" in labels, labels
    for job in JOB_TYPES:
        assert f"{job}:{tutorial.run_name(job)}" in labels, f"exploded graph lacks run {job}:{tutorial.run_name(job)}: {labels}"
    _shoot(browser, tmp_path, "graph-exploded", capsys)

    # a node links to its page: the load-data run
    browser.find_element(By.CSS_SELECTOR, f'svg.graph a.node[data-label="load-data:{tutorial.run_name("load-data")}"]').click()
    assert tutorial.run_name("load-data") in browser.find_element(By.TAG_NAME, "h1").text


def test_run_pages_draw_chart_and_images(served, browser, tmp_path, capsys) -> None:
    from selenium.webdriver.common.by import By

    base, tutorial, _ = served
    _open(browser, f"{base}/projects/{PROJECT}/runs/{tutorial.run_id('train')}")
    chart = browser.find_element(By.CSS_SELECTOR, 'figure.chart[data-key="train/loss"]')
    line = chart.find_element(By.CSS_SELECTOR, "polyline.line")
    assert len(line.get_attribute("points").split()) == 40
    box = browser.execute_script("const b = arguments[0].getBBox(); return [b.width, b.height];", line)
    assert box[0] > 200 and box[1] > 50, f"the loss line is not drawn across the chart: {box}"
    assert tutorial.artifacts["trained-model"].name in browser.find_element(By.ID, "artifacts").text
    _shoot(browser, tmp_path, "run-train", capsys)

    _open(browser, f"{base}/projects/{PROJECT}/runs/{tutorial.run_id('report')}")
    images = browser.find_elements(By.CSS_SELECTOR, '.panel[data-key="high-loss-examples"] img.media-img')
    assert len(images) == IMAGE_COUNT
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def loaded(driver) -> int:
        driver.execute_script("document.querySelectorAll('img.media-img').forEach(i => i.scrollIntoView())")
        return driver.execute_script(
            "return Array.from(document.querySelectorAll('img.media-img')).filter(i => i.complete && i.naturalWidth === 28).length")

    try:
        WebDriverWait(browser, 20, poll_frequency=0.2).until(lambda d: loaded(d) == IMAGE_COUNT)
    except TimeoutException:
        pytest.fail(f"only {loaded(browser)} of {IMAGE_COUNT} images loaded")
    browser.execute_script("window.scrollTo(0, 0)")
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".panel .image figcaption")]
    assert captions[:2] == ["0,3", "1,4"]
    _shoot(browser, tmp_path, "run-report", capsys)

    _open(browser, f"{base}/projects/{PROJECT}")
    assert {"mnist-raw", "mnist-preprocess", "convnet", "trained-model"} <= {
        a.text for a in browser.find_elements(By.CSS_SELECTOR, "#artifacts td a")}
    _shoot(browser, tmp_path, "project", capsys)


def test_graph_of_forty_nodes_stays_readable(served, browser, tmp_path, capsys) -> None:
    base, _, expected = served
    _open(browser, f"{base}/projects/sweep/artifacts/mnist-preprocess/v0?tab=lineage&explode=1")
    labels = _node_labels(browser)
    assert len(labels) == expected >= 40
    boxes = browser.execute_script("""
        return Array.from(document.querySelectorAll('svg.graph a.node rect')).map(r => {
            const b = r.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; });""")
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], f"nodes overlap: {a} {b}"
    font = browser.execute_script("""
        const t = document.querySelector('svg.graph a.node text.name');
        return t.getBoundingClientRect().height;""")
    assert font >= 10, f"node labels are drawn too small to read ({font}px)"
    _shoot(browser, tmp_path, "graph-sweep-exploded", capsys)
