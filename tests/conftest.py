"""Shared fixtures: the chapters executed once per session at the smoke scale, and the smoke book.

Executed copies go to ``_build_smoke/executed`` (never over the committed notebooks); the smoke
book is built from those copies with execution off, so it shares no execution cache with the
reader-scale book of ``make book``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from elasticity_lab.core import headless

# A kernel reply that reaches the client while nbclient sends on the shell socket (its Output-widget
# mimic does, in widget cells) used to go unnoticed until the cell timeout: see elasticity_lab/core/headless.py.
headless.install()

ROOT = Path(__file__).resolve().parent.parent
# ELASTICITY_CHAPTERS=01,05 restricts the notebook and book tests to some chapters (while writing one).
_only = [c.strip() for c in os.environ.get("ELASTICITY_CHAPTERS", "").split(",") if c.strip()]
NOTEBOOKS = [nb for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if not _only or nb.name[:2] in _only]
SMOKE_DIR = ROOT / "_build_smoke"
EXECUTED_DIR = SMOKE_DIR / "executed"
BOOK_SRC = SMOKE_DIR / "book_src"
BOOK_HTML = SMOKE_DIR / "_build" / "html"

# Every chapter and subprocess in the test session runs at the smoke scale, whatever the caller's shell says.
os.environ["ELASTICITY_SCALE"] = "smoke"
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# A fresh results cache per test session: results cached by an earlier version of the code under
# the same version number must not make a test pass. Chapters executed in the session share it.
os.environ["ELASTICITY_CACHE"] = tempfile.mkdtemp(prefix="elasticity-test-cache-")

_executed: dict[str, Path | Exception] = {}


def _record_runtimes_module():
    """scripts/record_runtimes.py: each chapter's smoke run is recorded in _build/runtimes-smoke.json (see that script)."""
    spec = importlib.util.spec_from_file_location("record_runtimes", ROOT / "scripts" / "record_runtimes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_runtimes = _record_runtimes_module()
# The session's results cache is fresh (above): every record of this session is "from an empty cache", in the
# sense that the cache was empty when the session began; chapters executed later share what earlier ones cached.
_EMPTY_AT_START = _runtimes.cache_is_empty(Path(os.environ["ELASTICITY_CACHE"]))

# Seconds one smoke cell may take. The slowest smoke cell takes well under a minute on 2 cores. Idle
# waits after widget cells (a missed execute_reply) are fixed by headless.install() above; the retry
# stays as a guard for a genuinely hung cell and announces itself loudly, since it should never happen.
CELL_TIMEOUT = 120
ATTEMPTS = 2


def tiny_bpe_llama(corpus: list[str], vocab_size: int):
    """A one-layer Llama (seed 0) and a byte-level BPE tokenizer trained on ``corpus`` (``<s>``, ``</s>``, ``<pad>``;
    no chat template, as Pythia's): the hub-shaped stand-in the hub-path tests save or train."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>"],
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg), tok


# Chapters executed at once in the first pass (one per core, as `make book` does: the library trains on one thread, so
# one chapter at a time leaves a core idle); ELASTICITY_TEST_JOBS=1 executes them one after another.
JOBS = max(1, int(os.environ.get("ELASTICITY_TEST_JOBS", os.cpu_count() or 1)))
# Rough smoke cost of each chapter, only to start the longest first (a chapter missing here counts as 1).
_COST = {"07": 5, "10": 3, "06": 3, "09": 2.5, "05": 2.5, "08": 2}


def _execute_in_worker(notebook: str, out: str) -> tuple[str, float, float, str | None]:
    """One chapter at smoke in a worker process of the first pass; an error comes back as one line, and the chapter
    is then executed again in the session's own process (with its retry and its traceback)."""
    import papermill

    headless.install()
    with _runtimes.measure() as took:
        try:
            papermill.execute_notebook(notebook, out, parameters={"scale": "smoke"}, kernel_name="python3",
                                       cwd=str(Path(notebook).parent), progress_bar=False, log_output=False,
                                       execution_timeout=CELL_TIMEOUT)
            error = None
        except Exception as exc:  # noqa: BLE001 - reported by the serial pass
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    return notebook, took["wall_s"], took["cpu_s"], error


def _first_pass() -> None:
    """Execute every chapter not executed yet, ``JOBS`` at once, longest first (worker processes forked from this one,
    so they share its results cache and environment). Chapters that fail here are left to :func:`executed_notebook`."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    todo = sorted((nb for nb in NOTEBOOKS if nb.name not in _executed), key=lambda nb: -_COST.get(nb.name[:2], 1))
    if JOBS < 2 or len(todo) < 2:
        return
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=JOBS, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_execute_in_worker, str(nb), str(EXECUTED_DIR / nb.name)) for nb in todo]
        for future in futures:
            notebook, wall, cpu, error = future.result()
            name = Path(notebook).name
            if error is None:
                _executed[name] = EXECUTED_DIR / name
                _runtimes.append_record(_runtimes.make_record(name[:2], "smoke", wall, cpu, jobs=JOBS,
                                                              empty_cache=_EMPTY_AT_START))
            else:
                print(f"\n[conftest] {name} failed in the parallel first pass ({error}); executing it again alone",
                      file=sys.__stderr__, flush=True)


def executed_notebook(notebook: Path) -> Path:
    """Execute ``notebook`` with papermill at the smoke scale once per session; return the copy.

    The first call executes every chapter, ``JOBS`` at once (:func:`_first_pass`); a chapter that failed there, or
    any chapter when ``JOBS`` is 1, is executed here, with one retry after a cell timeout."""
    key = notebook.name
    if not _executed:
        _first_pass()
    if key not in _executed:
        import warnings

        import papermill

        EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
        out = EXECUTED_DIR / notebook.name
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with _runtimes.measure() as took:
                    papermill.execute_notebook(
                        str(notebook), str(out), parameters={"scale": "smoke"}, kernel_name="python3",
                        cwd=str(notebook.parent), progress_bar=False, log_output=False, execution_timeout=CELL_TIMEOUT,
                    )
                _executed[key] = out
                if attempt == 1:  # a retried chapter's time says little about the chapter
                    _runtimes.append_record(_runtimes.make_record(notebook.name[:2], "smoke", took["wall_s"], took["cpu_s"],
                                                                  jobs=1, empty_cache=_EMPTY_AT_START))
                break
            except TimeoutError as err:  # nbclient's CellTimeoutError: a hang, not a failing cell
                _executed[key] = err
                first = str(err).strip().splitlines()[0] if str(err).strip() else "a cell timed out"
                what = "RETRYING in a fresh kernel" if attempt < ATTEMPTS else "GIVING UP on"
                message = (f"{what} {notebook.name}: {first} (limit {CELL_TIMEOUT} s, attempt {attempt} of "
                           f"{ATTEMPTS}). This should not happen: measure with scripts/exec_stalls.py.")
                warnings.warn(message, stacklevel=1)
                print(f"\n[conftest] {'!' * 20} {message}", file=sys.__stderr__, flush=True)  # visible in CI logs too
            except Exception as err:  # noqa: BLE001 - re-raised for every test that needs this chapter
                _executed[key] = err
                break
    result = _executed[key]
    if isinstance(result, Exception):
        raise result
    return result


@pytest.fixture(scope="session")
def smoke_book() -> Path:
    """Build the book from the smoke-executed chapters (execution off) and return its html folder.

    ``ELASTICITY_BOOK_HTML=_build/html`` checks an existing build instead (e.g. the reader book of
    ``make book``) without building anything.
    """
    existing = os.environ.get("ELASTICITY_BOOK_HTML")
    if existing:
        return (ROOT / existing).resolve()
    for nb in NOTEBOOKS:
        executed_notebook(nb)
    for stale in (BOOK_SRC, SMOKE_DIR / "_build"):  # always a fresh build: Sphinx's incremental state goes stale
        if stale.exists():
            shutil.rmtree(stale)
    BOOK_SRC.mkdir(parents=True)
    for name in ("book", "_vendor"):  # book/ holds the pages, assets and _ext
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, BOOK_SRC / name)
    (BOOK_SRC / "notebooks").mkdir()
    for nb in NOTEBOOKS:
        shutil.copy2(EXECUTED_DIR / nb.name, BOOK_SRC / "notebooks" / nb.name)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache", "_config.yml should execute with `cache`"
    config["execute"]["execute_notebooks"] = "off"  # the chapters were executed by papermill above
    (BOOK_SRC / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    if _only:  # chapters left out on purpose leave the table of contents too
        selected = {f"notebooks/{nb.stem}" for nb in NOTEBOOKS}
        for part in toc["parts"]:
            part["chapters"] = [c for c in part["chapters"] if not c["file"].startswith("notebooks/") or c["file"] in selected]
        toc["parts"] = [part for part in toc["parts"] if part["chapters"]]
    (BOOK_SRC / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(BOOK_SRC), "--path-output", str(SMOKE_DIR),
         "--warningiserror", "--nitpick", "--keep-going"],
        capture_output=True, text=True, timeout=900,
    )
    log = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines() if "ParserConfig(" not in line)
    assert proc.returncode == 0, f"the smoke book failed to build:\n{log[-8000:]}"
    return BOOK_HTML


@pytest.fixture(scope="session")
def scorer_dir(tmp_path_factory) -> Path:
    """A tiny sequence-classification model and tokenizer saved to a folder: a stand-in for a hub reward model."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from elasticity_lab.microworld.tokenizer import SPECIAL_TOKENS, build_tokenizer

    path = tmp_path_factory.mktemp("scorer")
    tok = build_tokenizer([*SPECIAL_TOKENS, "how", "to", "do", "it", "sorry", "no", "yes", "first", "then"])
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tok.pad_token_id)
    LlamaForSequenceClassification(cfg).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path
