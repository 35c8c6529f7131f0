"""The smoke book builds and every page works in headless Chromium (Debian's, driven by Playwright).

Checks on every page: no console error or uncaught exception from our own pages; every plotly
figure has drawn its SVG; moving a plotly slider changes the figure; math is typeset by MathJax;
no widget area is left empty.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def _chromium() -> str:
    for exe in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium")):
        if exe and Path(exe).exists():
            return exe
    pytest.fail("Chromium not found: run `scripts/ensure_chromium.sh` (make test does) or set CHROMIUM=/path/to/chromium")


def _pages(html: Path) -> list[Path]:
    skip = {"genindex.html", "search.html", "index.html"}
    return sorted(p for p in html.rglob("*.html") if p.name not in skip and "_static" not in p.parts)


@pytest.fixture(scope="module")
def server(smoke_book: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test log readable
            pass

    handler = functools.partial(Quiet, directory=str(smoke_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(server: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


def _open(browser, url: str, server: str, redirect_to: str | None = None):
    """Open ``url``; return the page and the errors our own pages raised while loading it."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []

    def on_console(msg) -> None:
        where = (msg.location or {}).get("url", "")
        if msg.type == "error" and (where.startswith(server) or not where):
            errors.append(f"console: {msg.text} ({where})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    def on_request_failed(req) -> None:
        # a load cut short by the page navigating away (the index redirect) is not a failure
        if req.url.startswith(server) and "ERR_ABORTED" not in (req.failure or ""):
            errors.append(f"request failed: {req.url} ({req.failure})")

    page.on("requestfailed", on_request_failed)
    page.goto(url, wait_until="load")
    if redirect_to:
        page.wait_for_url(redirect_to)
    page.wait_for_load_state("networkidle")
    return page, errors


def test_index_opens_on_the_preface(smoke_book: Path, browser, server: str) -> None:
    page, errors = _open(browser, f"{server}/index.html", server, redirect_to="**/book/preface.html")
    assert "Elasticity Lab" in page.title()
    nav = page.locator("nav.bd-links").inner_text()
    assert "Language modelling is compression" in nav, "chapter 1 is not in the sidebar"
    assert not errors, errors
    page.close()


def test_every_page(smoke_book: Path, browser, server: str) -> None:
    pages = _pages(smoke_book)
    assert any(p.parent.name == "notebooks" for p in pages), "no chapter pages were built"
    problems: list[str] = []
    n_figures = n_sliders = n_math = n_widgets = 0
    for path in pages:
        rel = path.relative_to(smoke_book).as_posix()
        page, errors = _open(browser, f"{server}/{rel}", server)
        problems += [f"{rel}: {e}" for e in errors]

        # math: every math node typeset by MathJax 3
        n_nodes = page.locator("span.math, div.math").count()
        if n_nodes:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
            page.evaluate("() => MathJax.startup.promise")
            typeset = page.locator("span.math mjx-container, div.math mjx-container").count()
            if typeset < n_nodes:
                problems.append(f"{rel}: {n_nodes - typeset} of {n_nodes} math nodes not typeset")
            n_math += n_nodes

        # plotly: every figure drew its SVG
        plots = page.locator("div.js-plotly-plot")
        for i in range(plots.count()):
            if plots.nth(i).locator("svg.main-svg").count() == 0:
                problems.append(f"{rel}: plotly figure {i} did not render")
        n_figures += plots.count()

        # plotly sliders: moving one changes the figure
        for i in range(plots.count()):
            plot = plots.nth(i)
            rail = plot.locator("g.slider-container rect.slider-rail-touch-rect")
            if rail.count() == 0:
                continue
            n_sliders += 1
            plot.scroll_into_view_if_needed()
            before = plot.evaluate("el => JSON.stringify(el.data.map(t => t.visible)) + el.querySelector('g.cartesianlayer').innerHTML.length")
            box = rail.first.bounding_box()
            page.mouse.click(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)
            page.wait_for_timeout(400)
            after = plot.evaluate("el => JSON.stringify(el.data.map(t => t.visible)) + el.querySelector('g.cartesianlayer').innerHTML.length")
            if before == after:
                problems.append(f"{rel}: moving the slider of figure {i} did not change it")

        # widgets: every saved widget view rendered into a non-empty area
        views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]')
        for i in range(views.count()):
            n_widgets += 1
            rendered = views.nth(i).evaluate(
                "el => { const area = el.parentElement; const w = area.querySelector('.jupyter-widgets, .widget-container, .lm-Widget');"
                " return !!w && w.getBoundingClientRect().height > 0 && (w.innerText.trim().length > 0 || w.querySelector('input, svg, canvas') !== null); }"
            )
            if not rendered:
                problems.append(f"{rel}: widget area {i} is empty")
        page.close()
    assert not problems, "\n".join(problems)
    assert n_figures > 0 and n_sliders > 0 and n_math > 0 and n_widgets > 0, (
        f"the book should exercise every check: {n_figures} figures, {n_sliders} sliders, {n_math} math nodes, {n_widgets} widgets"
    )
