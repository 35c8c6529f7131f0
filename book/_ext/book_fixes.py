"""Small Sphinx fixes for the book build, each for a console error a reader's browser would show.

- sphinx-thebe registers its inline configuration script at every read of the environment; with
  Sphinx 7 it ends up twice in each page and the second ``const THEBE_JS_URL`` is a SyntaxError.
  We drop duplicates (same file or same inline body) from each page's script list.
- myst-nb executes the chapters with nbclient inside this process: ``elasticity_lab.core.headless``
  keeps a widget cell's reply from going unnoticed until the cell timeout, and names a timed-out cell.
"""

from __future__ import annotations

from typing import Any


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for js in scripts:
        # an inline script is registered once with filename None and once with "": the same script
        key = (getattr(js, "filename", js) or "", tuple(sorted((getattr(js, "attributes", None) or {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app: Any) -> dict:
    from elasticity_lab.core import headless

    headless.install()
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
