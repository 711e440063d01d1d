"""report.html in a real browser: headless Chromium (the system one, driven by Playwright) opens
it with no console errors and no broken images, and its first screen holds a verdict sentence
and a figure.

Chromium is a test requirement, not an option: CI installs it (.ci/run), so a missing binary
fails here with the fix in one line instead of skipping the only check a reader's view gets.
"""

from __future__ import annotations

import shutil

import pytest

try:  # the fake results writer lives beside the plot tests
    from test_plots import FAKE_TASK, write_fake_results
except ImportError:  # tests/ imported as a package
    from tests.test_plots import FAKE_TASK, write_fake_results

VIEWPORT = {"width": 1280, "height": 800}  # a laptop's first screen


@pytest.fixture(scope="module")
def browser():
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium not found on PATH: install it (apt-get install -y chromium); "
                    ".ci/run does", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright not installed: pip install -e '.[dev]'", pytrace=False)
    with sync_playwright() as p:
        # --no-sandbox: CI and containers run as root, where Chromium's sandbox will not start
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """(html path, the lead sentences of the fake task) for a small fake results folder."""
    from evalharness.analysis import analyze
    from evalharness.report import make_report, sections
    from evalharness.scoring import load_scores

    root = write_fake_results(tmp_path_factory.mktemp("results"), problems=12)
    an = analyze(load_scores(root), n_boot=50)
    html_path, _ = make_report(root, analysis=an, drill_problems=3)
    lead = [s for sec in sections() if sec.lead for s in sec.lead(an, FAKE_TASK)]
    return html_path, lead


@pytest.fixture(scope="module")
def opened(browser, small_report):
    """(page, console errors, failed requests) after the report's load event."""
    html_path, _ = small_report
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url[:120]))
    page.goto(html_path.as_uri(), wait_until="load")
    yield page, errors, failed
    page.close()


def test_report_opens_without_console_errors_or_failed_requests(opened):
    _, errors, failed = opened
    assert errors == [] and failed == []


def test_every_image_decodes(opened):
    page, _, _ = opened
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.alt)"
    )
    assert page.locator("img").count() > 0 and broken == []


def _on_first_screen(locator) -> list:
    """The elements of `locator` whose box starts inside the first screen, at least 40 px tall
    (a sliver at the bottom edge does not count as seen)."""
    out = []
    for i in range(locator.count()):
        box = locator.nth(i).bounding_box()
        if box and box["y"] < VIEWPORT["height"] - 40 and box["height"] >= 40:
            out.append(locator.nth(i))
    return out


def test_first_screen_holds_a_verdict_sentence_and_a_figure(opened, small_report):
    page, _, _ = opened
    _, lead = small_report
    page.evaluate("window.scrollTo(0, 0)")
    verdicts = [el.inner_text().strip() for el in _on_first_screen(page.locator("ul.headline li"))]
    assert verdicts and verdicts[0] in lead
    figures = _on_first_screen(page.locator("figure img"))
    assert figures, "no figure on the first screen"
    assert figures[0].evaluate("i => i.naturalWidth") > 0
    assert not _on_first_screen(page.locator("table"))  # tables come after the answer
