"""The live-kernel path: a chapter opened in a real JupyterLab, its widget moved, its output changes.

JupyterLab is served headless on 127.0.0.1 with a token (its own config, runtime and workspace
folders under tmp; no update checks, no news feed), Debian's Chromium opens chapter 1 there, the
notebook runs all cells at the smoke scale in a live kernel, and dragging the code-length
explorer's slider must change the printed code length. About 30 s on 2 cores.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from test_book import CHROMIUM_FLAGS, _chromium

pytestmark = pytest.mark.browser
CHAPTER = "01_compression.ipynb"
WIDGET_TEXT = "ideal code length"  # what chapter 1's code_length_explorer prints for the slider's value


# the notebook's code-cell models, in JupyterLab 4's API
_CELLS = ("const m = window.jupyterapp.shell.currentWidget.content.model.cells; const cells = [];"
          " for (let i = 0; i < m.length; i++) { if (m.get(i).type === 'code') cells.push(m.get(i)); }")


def _p(text: str) -> float:
    """The probability the explorer printed: 'p = 0.251: ideal code length ...'."""
    match = re.search(r"p = ([0-9.]+):", text or "")
    assert match, f"no 'p = ...' in the widget's output {text!r}"
    return float(match.group(1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def jupyterlab(tmp_path: Path):
    exe = Path(sys.executable).parent / "jupyter-lab"
    if not exe.exists():
        pytest.fail(f"{exe} not found: JupyterLab comes with the `book` extra (`pip install -e '.[book,test]'`)")
    root = tmp_path / "work"
    root.mkdir()
    shutil.copy2(ROOT / "notebooks" / CHAPTER, root / CHAPTER)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "ELASTICITY_SCALE": "smoke", "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    log = (tmp_path / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [str(exe), "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_chapter_widget_runs_in_jupyterlab(jupyterlab) -> None:
    from playwright.sync_api import sync_playwright

    base, token = jupyterlab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}", wait_until="load")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=60_000)
        # the kernel starts, then every cell runs (the parameters cell says "reader"; ELASTICITY_SCALE=smoke wins)
        page.evaluate("""async () => {
            const panel = window.jupyterapp.shell.currentWidget;
            await panel.context.ready;
            await panel.sessionContext.ready;
            await window.jupyterapp.commands.execute('notebook:run-all-cells');
        }""")
        # the explorer: a VBox of the slider and an Output widget that prints the code length
        output = page.locator(".widget-output", has_text=WIDGET_TEXT).first
        output.wait_for(state="attached", timeout=90_000)
        output.scroll_into_view_if_needed()
        slider = page.locator(".widget-slider .noUi-handle, .widget-hslider .noUi-handle").first
        slider.wait_for(timeout=30_000)
        before = output.text_content()
        p_before = _p(before)  # 0.251: the log slider rounds 0.25 to its step of 0.01 in log10 p
        assert abs(p_before - 0.25) < 0.01, before

        slider.scroll_into_view_if_needed()
        box = slider.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        page.wait_for_function(
            "([text, before]) => [...document.querySelectorAll('.widget-output')]"
            ".some(el => el.textContent.includes(text) && el.textContent !== before)",
            arg=[WIDGET_TEXT, before], timeout=30_000,
        )
        after = page.locator(".widget-output", has_text=WIDGET_TEXT).first.text_content()
        assert _p(after) > p_before + 0.01, f"dragging the slider right should raise p: {before!r} -> {after!r}"
        # every cell ran, at smoke, and none raised
        page.wait_for_function(f"() => {{ {_CELLS} return cells.every(c => c.executionCount !== null)"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'; }",
                               timeout=90_000)
        failed = page.evaluate(f"() => {{ {_CELLS} return cells.filter(c => c.outputs.toJSON().some(o => o.output_type === 'error'))"
                               ".map(c => c.outputs.toJSON().find(o => o.output_type === 'error').ename); }")
        assert not failed, f"cells raised {failed}"
        printed = page.evaluate(f"() => {{ {_CELLS} return JSON.stringify(cells.map(c => c.outputs.toJSON())); }}")
        assert "scale = 'smoke'" in printed, "the chapter did not run at the smoke scale"
        assert not errors, errors
        browser.close()
