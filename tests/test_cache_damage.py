"""The cache follows the code, survives damage, and lets one process compute an entry while another waits.

Damage cases, each reported in one line (path and what is wrong) and computed again: a truncated
or changed file, a missing file, a missing checksum, a damaged resume state, a checkpoint damaged
after its run was read. Locks: two processes asking for one entry compute it once; a lock left
by a killed process does not block.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from elasticity_lab import cli
from elasticity_lab.core import cache, fingerprint
from elasticity_lab.lm import pretraining
from elasticity_lab.lm.pretraining import PretrainConfig, pretrain
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.microworld.world import World

TINY = PretrainConfig(tokens=16 * 32 * 12, batch_size=16, seq_len=32, checkpoints=(16 * 32 * 3, 16 * 32 * 6), eval_tokens=1024)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _one_damage_line(capsys, path: Path, problem: str) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if "damaged entry" in line]
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and problem in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- keys follow the code


def _write(pkg: Path, rel: str, text: str) -> None:
    (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
    (pkg / rel).write_text(textwrap.dedent(text))


def test_fingerprint_follows_imports_into_sub_packages(tmp_path) -> None:
    pkg = tmp_path / "toy"
    _write(pkg, "__init__.py", "")
    _write(pkg, "core/__init__.py", "")
    _write(pkg, "core/maths.py", "def f(x):\n    return x + 1\n")
    _write(pkg, "lm/__init__.py", "")
    _write(pkg, "lm/train.py", "from ..core import maths\n\ndef g():\n    from toy.lm import helper\n    return maths.f(1)\n")
    _write(pkg, "lm/helper.py", "K = 1\n")
    _write(pkg, "plots/__init__.py", "")
    _write(pkg, "plots/fig.py", "import toy.lm.train\n")

    def fp() -> tuple[str, list[str]]:
        return fingerprint.package_fingerprint("toy.lm.train", "toy", pkg)

    digest, modules = fp()
    assert modules == ["toy", "toy.core", "toy.core.maths", "toy.lm", "toy.lm.helper", "toy.lm.train"]
    _write(pkg, "plots/fig.py", "import toy.lm.train\nX = 2\n")  # not imported by train: same key
    _write(pkg, "core/maths.py", '"""A docstring."""\n\n# a comment\ndef f(x):\n    return x + 1  # same code\n')
    assert fp()[0] == digest
    _write(pkg, "core/maths.py", "def f(x):\n    return x + 2\n")  # a dependency two levels down changed
    assert fp()[0] != digest
    changed = fp()[0]
    _write(pkg, "lm/helper.py", "K = 2\n")  # imported inside a function
    assert fp()[0] != changed


def test_library_fingerprints_cover_what_each_computation_imports() -> None:
    pre = fingerprint.code_modules("elasticity_lab.lm.pretraining")
    assert {"elasticity_lab.lm.training", "elasticity_lab.lm.presets", "elasticity_lab.microworld.world", "elasticity_lab.core.cache"} <= set(pre)
    assert not any(m.startswith("elasticity_lab.plots") for m in pre)
    assert len(fingerprint.code_fingerprint("elasticity_lab.lm.pretraining")) == 64


def test_a_result_of_other_code_is_not_reused(tmp_cache, monkeypatch) -> None:
    calls = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    assert cache.cached_json("demo", {"k": 1}, compute) == {"n": 1}
    assert cache.cached_json("demo", {"k": 1}, compute) == {"n": 1}
    monkeypatch.setattr(cache, "code_fingerprint", lambda module: "0" * 64)  # as if the library had been edited
    assert cache.cached_json("demo", {"k": 1}, compute) == {"n": 2}
    folders = sorted((tmp_cache / "demo").iterdir())
    assert len(folders) == 2
    assert {json.loads((f / "config.json").read_text())["code"]["module"] for f in folders} == {__name__}


def test_cache_info_and_clear(tmp_cache, capsys) -> None:
    cache.cached_table("demo", {"k": 1}, lambda: pd.DataFrame({"a": [1]}))
    cache.cached_json("other", {"k": 2}, lambda: {"b": 2})
    (tmp_cache / "notes.txt").write_text("not an entry")
    assert cli.main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_cache) in out and "entries: 2" in out and "demo: 1" in out and "other: 1" in out
    info = cache.cache_info()
    assert info["entries"] == 2 and info["bytes"] > 0 and info["kinds"]["demo"]["stale"] == 0
    assert cli.main(["cache", "clear", "demo"]) == 0
    assert "removed 1 demo" in capsys.readouterr().out
    assert cache.cache_info()["kinds"].keys() == {"other"}
    assert cli.main(["cache", "clear"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 other" in out and "left 1 files" in out
    assert cache.cache_info()["entries"] == 0 and (tmp_cache / "notes.txt").exists()


# --------------------------------------------------------------------------- damage to a result


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flipped":
        i = len(data) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    elif how == "missing":
        path.unlink()
    elif how == "no checksum":
        cache.checksum_path(path).unlink()
    else:
        raise AssertionError(how)


PROBLEMS = {"truncated": "truncated", "flipped": "content changed", "missing": "missing", "no checksum": "no checksum"}


@pytest.mark.parametrize("how", list(PROBLEMS))
@pytest.mark.parametrize("kind", ["table", "json"])
def test_a_damaged_result_is_reported_and_computed_again(tmp_cache, capsys, kind, how) -> None:
    calls = []
    table = pd.DataFrame({"n": [1, 2, 3], "score": [0.5, 0.25, 0.125]})

    def compute():
        calls.append(1)
        return table if kind == "table" else {"score": [0.5, 0.25]}

    fn, name = (cache.cached_table, "table.json") if kind == "table" else (cache.cached_json, "result.json")
    first = fn("demo", {"k": 1}, compute)
    path = next((tmp_cache / "demo").iterdir()) / name
    _damage(path, how)
    again = fn("demo", {"k": 1}, compute)
    assert len(calls) == 2
    _one_damage_line(capsys, path, PROBLEMS[how])
    if kind == "table":
        pd.testing.assert_frame_equal(again, first)
    else:
        assert again == first
    fn("demo", {"k": 1}, compute)  # the new copy is sound
    assert len(calls) == 2 and "damaged" not in capsys.readouterr().err


def test_unreadable_file_with_a_matching_checksum_is_damage_too(tmp_cache) -> None:
    path = tmp_cache / "x.json"
    cache.atomic_write_text(path, '{"a": ', checksum=True)  # written so by a bug, not by the disk
    with pytest.raises(cache.CacheDamage, match="not valid JSON"):
        cache.load_json(path)
    cache.atomic_write_text(tmp_cache / "t.safetensors", "not tensors", checksum=True)
    with pytest.raises(cache.CacheDamage, match="not a readable safetensors file") as err:
        cache.load_tensors(tmp_cache / "t.safetensors")
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- damage to a pre-training run


def _trainings(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = pretraining.token_batches

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pretraining, "token_batches", counting)
    return calls


RUN_FILES = {
    "checkpoint truncated": ("tokens-1536/model.safetensors", "truncated", "truncated"),
    "checkpoint flipped": ("tokens-6144/model.safetensors", "flipped", "content changed"),
    "checkpoint missing": ("tokens-3072/model.safetensors", "missing", "missing"),
    "curve truncated": ("curve.json", "truncated", "truncated"),
    "done truncated": ("done.json", "truncated", "truncated"),
}


@pytest.mark.parametrize("case", list(RUN_FILES))
def test_a_damaged_run_is_reported_and_trained_again(tmp_cache, monkeypatch, capsys, case) -> None:
    world = World()
    whole = pretrain(world, "nano", TINY, progress=False)
    weights = whole.load().state_dict()
    rel, how, problem = RUN_FILES[case]
    _damage(whole.path / rel, how)
    trainings = _trainings(monkeypatch)
    again = pretrain(world, "nano", TINY, progress=False)
    assert len(trainings) == 1
    _one_damage_line(capsys, whole.path / rel, problem)
    pd.testing.assert_frame_equal(again.curve.drop(columns="seconds"), whole.curve.drop(columns="seconds"))
    remade = again.load().state_dict()
    assert all(torch.equal(weights[k], remade[k]) for k in weights)  # same process: bit for bit
    pretrain(world, "nano", TINY, progress=False)
    assert len(trainings) == 1


def test_a_checkpoint_damaged_after_the_run_was_read_is_trained_again_on_load(tmp_cache, monkeypatch, capsys) -> None:
    world = World()
    run = pretrain(world, "nano", TINY, progress=False)
    expected = run.load(1536).state_dict()
    path = run.checkpoint_path(1536)
    _damage(path, "flipped")
    trainings = _trainings(monkeypatch)
    got = run.load(1536).state_dict()
    assert len(trainings) == 1 and all(torch.equal(expected[k], got[k]) for k in expected)
    _one_damage_line(capsys, path, "content changed")


def test_a_damaged_shipped_file_names_the_file_and_the_remedy(monkeypatch) -> None:
    from elasticity_lab.lm import bases

    world, preset, config = bases.base_spec("micro-smoke")
    run = pretrain(world, preset, config, progress=False)
    run.shipped_checksums = {k: "0" * 64 for k in run.shipped_checksums}
    with pytest.raises(cache.CacheDamage, match="reinstall") as err:
        run.load()
    assert str(run.checkpoint_path(run.budgets[-1])) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("how", ["truncated", "flipped", "inconsistent"])
def test_a_damaged_resume_state_starts_over_and_ends_the_same(tmp_path, monkeypatch, capsys, how) -> None:
    world = World()
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "a"))
    whole = pretrain(world, "nano", TINY, progress=False)
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "b"))
    with pytest.raises(InterruptedError):
        pretrain(world, "nano", TINY, progress=False, stop_after_steps=8, resume_every=4)
    resume = pretraining.run_dir(world, "nano", TINY) / pretraining.RESUME_FILE
    if how == "inconsistent":  # a sound file whose parts disagree (model and optimizer of step 8, curve of step 4)
        state = cache.load_torch_state(resume)
        state["curve"] = state["curve"][:4]
        cache.save_torch_state(resume, state)
        problem = "inconsistent: step 8 of 12 with 4 curve rows"
    else:
        _damage(resume, how)
        problem = PROBLEMS[how]
    resumed = pretrain(world, "nano", TINY, progress=False)
    _one_damage_line(capsys, resume, problem)
    assert resumed.curve["step"].tolist() == list(range(1, 13)) and not resume.exists()
    a, b = whole.load().state_dict(), resumed.load().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- two processes


_WORKER = """
import json, os, sys, time
from elasticity_lab.core import cache

def compute():
    with open(sys.argv[1], "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    time.sleep(float(sys.argv[2]))
    return {"value": 42}

print(json.dumps(cache.cached_json("race", {"k": 1}, compute, code="elasticity_lab.core.cache")))
"""


def _python(tmp_path: Path, script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    file = tmp_path / "worker.py"
    file.write_text(script)
    return subprocess.Popen([sys.executable, str(file), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_compute_an_entry_once(tmp_cache, tmp_path) -> None:
    log = tmp_path / "computed.txt"
    first = _python(tmp_path, _WORKER, str(log), "3")
    deadline = time.monotonic() + 60
    while not log.exists():  # the first one holds the lock and computes
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = _python(tmp_path, _WORKER, str(log), "0")
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert json.loads(out1) == json.loads(out2) == {"value": 42}
    assert len(log.read_text().split()) == 1  # computed once
    assert "being computed by another process" in err2 and "waiting" in err2


_HOLDER = """
import sys, time
from elasticity_lab.core import cache

with cache.entry_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_cache, tmp_path) -> None:
    folder = tmp_cache / "ns" / "entry"
    holder = _python(tmp_path, _HOLDER, str(folder))
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()  # SIGKILL: no cleanup runs, the lock file stays
    holder.wait(timeout=30)
    assert (folder / cache.LOCK_NAME).exists()
    t0 = time.monotonic()
    with cache.entry_lock(folder):
        pass
    assert time.monotonic() - t0 < 30


# --------------------------------------------------------------------------- progress bars


def test_progress_bars_obey_tqdm_disable(tmp_cache, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_bar(range(3), enabled=True).disable
    pretrain(World(), "nano", TINY, progress=True)
    assert "pre-training" not in capsys.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not progress_bar(range(3), enabled=True).disable
    assert progress_bar(range(3), enabled=False).disable
