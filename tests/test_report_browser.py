"""The demo run's report opened in headless Chromium (Debian's `chromium`, driven by Playwright; never a
downloaded browser): no console errors, no request leaves the file, every section is there, every chart
decodes, and each number tagged from the manifest equals the manifest's. The screenshot is saved to
test-artifacts/report.png at the repository root."""

import shutil
from pathlib import Path

import pytest
from test_report_fixtures import demo_run

from tamis.io import run_dir
from tamis.report import html, runs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACT = Path(__file__).resolve().parents[1] / "test-artifacts" / "report.png"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_demo_report_in_headless_chromium(browser, tmp_path_factory, tmp_path):
    run, _ = demo_run(tmp_path_factory)
    m = run_dir.load(str(run))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, requests = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def watch(route):
        requests.append(route.request.url)
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", watch)
    page.goto((run / "report.html").as_uri(), wait_until="load")

    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    ids = page.eval_on_selector_all("section", "els => els.map(e => [e.id, e.querySelector('h2').textContent])")
    assert ids == [list(s) for s in html.SECTIONS]
    broken = page.eval_on_selector_all("img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).length")
    assert broken == 0 and page.eval_on_selector_all("img", "els => els.length") >= 30

    shown = page.eval_on_selector_all("[data-m]", "els => els.map(e => [e.dataset.m, e.textContent])")
    assert len(shown) > 50
    for ptr, text in shown:
        assert float(text.replace(",", "")) == runs.resolve(m, ptr), ptr
    visible = page.inner_text("#funnel")
    assert f"{m['counts']['read']:,}" in visible and f"{m['counts']['kept']:,}" in visible

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACT)
    print(f"screenshot: {ARTIFACT}")
    page.close()
