"""Every chapter's run-time table is measured, not typed: rendered from elasticity_lab/assets/runtimes.json,
which scripts/record_runtimes.py writes from the build's records (see CONTRIBUTING.md)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from elasticity_lab.notebook import load_runtimes, runtime_markdown

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _script(name: str):
    sys.path.insert(0, str(ROOT / "scripts"))  # warm_cache imports record_runtimes as a sibling
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def _source(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[nb.stem for nb in CHAPTERS])
def test_chapter_shows_its_measured_runtime_table(notebook: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    chapter = notebook.name[:2]
    calls = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and "runtime_table(" in _source(c)]
    assert len(calls) == 1, f"{notebook.name}: one code cell must call runtime_table({chapter!r}, ...), found {len(calls)}"
    cell = cells[calls[0]]
    assert f'runtime_table("{chapter}"' in _source(cell), f"{notebook.name} shows another chapter's run times"
    assert "remove-input" in cell.get("metadata", {}).get("tags", []), f"{notebook.name}: tag the run-time cell `remove-input`"
    install = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    assert calls[0] == install + 1, f"{notebook.name}: the run-time cell belongs right under the opening text (after the install cell)"
    typed = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "**Run time**" in _source(c)]
    assert not typed, f"{notebook.name}: cells {typed} type a run-time table by hand; runtime_table renders the measured one"


def test_runtimes_file_holds_both_scales_for_every_chapter() -> None:
    held = load_runtimes()["chapters"]
    for nb in CHAPTERS:
        for scale in ("smoke", "reader"):
            r = held.get(nb.name[:2], {}).get(scale)
            assert r, f"runtimes.json has no {scale} time for chapter {nb.name[:2]}: run scripts/record_runtimes.py (CONTRIBUTING.md)"
            assert r["wall_s"] > 0 and r["cpus"] >= 1 and r["commit"] and len(r["date"]) == 10 and r["empty_cache"], r
    assert _script("record_runtimes").missing(load_runtimes(), [nb.name[:2] for nb in CHAPTERS]) == []


def test_runtime_markdown_says_not_measured_where_there_is_no_number() -> None:
    runtimes = {"chapters": {"07": {"reader": {"wall_s": 223.0, "cpu_s": 190.4, "cpus": 2, "jobs": 2, "date": "2026-12-01",
                                               "commit": "abc1234", "empty_cache": True, "runner": "make book",
                                               "load": 7.25}}}}
    text = runtime_markdown("07", {"smoke": "tiny", "reader": "the book", "full": "a GPU"}, runtimes)
    assert "| `reader` | the book | 3 min 43 s (3 min 10 s of CPU) |" in text
    assert "| `smoke` | tiny | not measured |" in text and "| `full` | a GPU | not measured |" in text
    assert "2026-12-01" in text and "abc1234" in text and "2 cores" in text and "empty" in text and "load average 7.2" in text
    with pytest.raises(ValueError, match="what"):
        runtime_markdown("07", {"huge": "x"}, runtimes)


def test_record_runtimes_merges_and_refuses_warm_records(tmp_path: Path) -> None:
    rr = _script("record_runtimes")
    with rr.measure() as took:
        sum(range(10_000))
    assert took["wall_s"] >= 0 and took["cpu_s"] >= 0
    cold = rr.make_record("05", "smoke", 12.34, 10.0, jobs=1, empty_cache=True, commit_id="abc", date="2026-12-01", cpus=2)
    path = rr.append_record(cold, tmp_path)
    assert path == tmp_path / "runtimes-smoke.json" and json.loads(path.read_text())["05"]["wall_s"] == 12.3
    merged = rr.merge([cold], {"chapters": {"05": {"reader": {"wall_s": 29.0}}, "06": {"smoke": {"wall_s": 1.0}}}})
    assert merged["chapters"]["05"]["smoke"]["wall_s"] == 12.3 and merged["chapters"]["05"]["reader"] == {"wall_s": 29.0}
    assert rr.missing(merged, ["05", "06"]) == ["06/reader"]
    warm = {**cold, "empty_cache": False}
    with pytest.raises(ValueError, match="warm cache"):
        rr.merge([warm], {})
    assert rr.merge([warm], {}, allow_warm_cache=True)["chapters"]["05"]["smoke"]["empty_cache"] is False
    with pytest.raises(ValueError, match="scale"):
        rr.make_record("05", "huge", 1.0, None, jobs=1, empty_cache=True, commit_id="abc")


def test_record_runtimes_reads_a_warm_cache_log(tmp_path: Path) -> None:
    rr = _script("record_runtimes")
    log = tmp_path / "book.log"
    log.write_text("warm_cache: computing 2 chapter(s) on 2 cores: 07, 05\nwarm_cache: 07_rebound.ipynb done in 223 s\n"
                   "warm_cache: 05_microworld.ipynb done in 29 s (25 s of CPU)\nwarm_cache: 250 s in all\n")
    records = rr.records_from_log(log, "reader", commit_id="9d21727", date="2026-12-01", cpus=2, jobs=2)
    assert [(r["chapter"], r["wall_s"], r["cpu_s"], r["load"]) for r in records] == [("05", 29.0, None, None), ("07", 223.0, None, None)]
    (tmp_path / "empty.log").write_text("nothing here\n")
    with pytest.raises(ValueError, match="holds no line"):
        rr.records_from_log(tmp_path / "empty.log", "reader", commit_id="x", date="2026-12-01", cpus=2, jobs=2)


def test_warm_cache_loads_with_its_recorder() -> None:
    warm = _script("warm_cache")
    assert warm.record_runtimes.records_path("reader").name == "runtimes-reader.json"


def test_runtime_markdown_notes_a_smaller_scale_that_took_longer() -> None:
    def record(wall: float, runner: str, load: float | None) -> dict:
        return {"wall_s": wall, "cpu_s": None, "cpus": 2, "jobs": 1, "date": "2026-12-01", "commit": "abc1234",
                "empty_cache": True, "runner": runner, "load": load}

    what = {"smoke": "tiny", "reader": "the book"}
    slower = {"chapters": {"01": {"smoke": record(38.8, "make test", 8.5), "reader": record(15.0, "make book", None)}}}
    text = runtime_markdown("01", what, slower)
    assert ("`smoke` runs less than `reader` but took longer here: the two were measured in different builds "
            "(`smoke` under load average 8.5, `reader` under an unrecorded load), so these two times do not compare.") in text
    faster = {"chapters": {"01": {"smoke": record(10.0, "make test", 8.5), "reader": record(15.0, "make book", None)}}}
    assert "took longer here" not in runtime_markdown("01", what, faster)
