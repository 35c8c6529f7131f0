"""Beyond one GPU: chapter 10's runners under ``accelerate launch``.

The end-to-end test starts the shipped 2-process config (``elasticity_lab/assets/accelerate/cpu_2proc.yaml``: two ranks over gloo on
the CPU) on the stand-ins at smoke, then runs the same study in one process, and holds the two to each other. The
no-op path (one process: nothing wrapped, nothing broadcast) is tested on its own, so that the book's single-process
numbers cannot move.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from elasticity_lab.core import ranks
from elasticity_lab.lm import distributed

ROOT = Path(__file__).resolve().parents[1]
CPU_CONFIG = ROOT / "elasticity_lab" / "assets" / "accelerate" / "cpu_2proc.yaml"
TOLERANCE = 1e-4
"""How far a score of the 2-process run may sit from the 1-process one. Each rank trains on half of every batch, and
:meth:`elasticity_lab.lm.distributed.DataParallel.loss` scales its summed token losses by the whole batch's token
count, so the all-reduced gradient is the whole batch's gradient: the runs differ only in the order of floating-point
sums (the measured gap on the stand-ins at smoke was below 1e-6). 1e-4 leaves room for other CPUs' summation orders
while still catching a wrong split (half a batch per rank, or a mean of rank means, moves scores by 1e-3 and more)."""


# --------------------------------------------------------------------------- one process: a no-op


def test_one_process_changes_nothing(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not ranks.launched() and not ranks.setup() and not ranks.distributed()
    assert (ranks.world_size(), ranks.rank(), ranks.is_main()) == (1, 0, True)
    thing = {"a": [1, 2]}
    assert ranks.broadcast(thing) is thing
    ranks.barrier()
    with ranks.main_first():
        pass
    ranks.shutdown()
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    par = distributed.data_parallel(model, opt)
    assert distributed.accelerator() is None
    assert par.model is model and par.optimizer is opt and not par.active
    assert par.share([3, 1, 2]) == ([3, 1, 2], 1.0)
    assert par.unwrap() is model and par.close() is model
    with pytest.raises(RuntimeError, match="several ranks"):
        par.loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long))


@pytest.mark.parametrize("value", ["1", "", "0", "two"])
def test_a_world_of_one_is_not_launched(monkeypatch, value) -> None:
    monkeypatch.setenv("WORLD_SIZE", value)
    assert not ranks.launched() and ranks.world_size() == 1


def test_each_rank_takes_every_worlds_example() -> None:
    par = lambda r: distributed.DataParallel(None, None, world=2, rank=r)  # noqa: E731
    assert par(0).share([5, 6, 7]) == ([5, 7], 1.0)
    assert par(1).share([5, 6, 7]) == ([6], 1.0)
    assert par(1).share([5]) == ([5], 0.0), "a rank left without examples runs one at weight 0 (the all-reduce needs it)"


def test_shipped_configs_name_what_they_run() -> None:
    import yaml

    configs = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "elasticity_lab" / "assets" / "accelerate").glob("*.yaml")}
    assert {"cpu_2proc", "ddp_multi_gpu", "fsdp_llama_7b_13b"} <= set(configs)
    for c in configs.values():
        assert c["mixed_precision"] == "no", "the library's own precision decides (lm.precision)"
    assert configs["cpu_2proc"]["num_processes"] == 2
    fsdp = configs["fsdp_llama_7b_13b"]
    assert fsdp["distributed_type"] == "FSDP" and fsdp["fsdp_config"]["fsdp_version"] == 2
    assert fsdp["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"


def test_launch_commands_and_memory_arithmetic() -> None:
    from elasticity_lab.experiments import realmodels as rm

    cmd = rm.launch_command("ddp_multi_gpu", "paper", processes=8)
    assert cmd.startswith("accelerate launch --config_file ") and "--num_processes 8" in cmd and "--scale paper" in cmd
    assert str(rm.launch_config_path("ddp_multi_gpu")) in cmd and rm.launch_config_path("ddp_multi_gpu").is_file()
    with pytest.raises(ValueError, match="name="):
        rm.launch_command("tpu_pod")
    assert rm.memory_per_card(1e9, 8, sharded=False) == pytest.approx(16.0)
    assert rm.memory_per_card(1e9, 8, sharded=True) == pytest.approx(2.0)
    script = rm.study_script()
    compile(script, "study.py", "exec")
    assert "Llama-2-13b-hf" in script and "ranks.is_main()" in script
    assert all(m in rm.PARAMS for m in rm.PAPER_SIZE_MODELS), "the size axis needs their parameter counts"


def test_paper_scale_is_realmodels_only(capsys) -> None:
    from elasticity_lab.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["run", "rebound", "--scale", "paper"])
    assert exit_.value.code == 2 and "--scale='paper' is not allowed" in capsys.readouterr().err


# --------------------------------------------------------------------------- two processes, end to end


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.distributed
def test_two_processes_run_the_standins_like_one(tmp_path, monkeypatch) -> None:
    pytest.importorskip("accelerate")
    from elasticity_lab.cli import _json_text
    from elasticity_lab.experiments import realmodels as rm

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "two.json"
    env = {**os.environ, "ELASTICITY_CACHE": str(tmp_path / "two"), "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_CONFIG),
           "--main_process_port", str(_free_port()), "-m", "elasticity_lab", "run", "realmodels", "--scale", "smoke",
           "--seeds", "1", "--json", str(out)]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    seconds = time.perf_counter() - t0
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote") == 1, "the main rank writes the JSON, the other rank does not"
    assert [p.name for p in out_dir.iterdir()] == ["two.json"], "no temporary files left beside it"
    two = json.loads(out.read_text())
    assert two["processes"] == 2, "both ranks joined the process group"
    print(f"2 processes: {seconds:.0f} s")

    # the same study in this one process, on the stand-ins the launched run built (same files, no second build)
    one_cache = tmp_path / "one"
    one_cache.mkdir()
    (one_cache / "standins").symlink_to(tmp_path / "two" / "standins", target_is_directory=True)
    monkeypatch.setenv("ELASTICITY_CACHE", str(one_cache))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    one = json.loads(_json_text(rm.cli_result("smoke", 1)))
    assert one["processes"] == 1

    assert set(one) == set(two) and one["config"] == two["config"] and one["sources"] == two["sources"] == "standins"
    for name in ("curves", "drops"):
        a, b = pd.DataFrame(one["tables"][name]), pd.DataFrame(two["tables"][name])
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
        numeric = [c for c in a.columns if pd.api.types.is_float_dtype(a[c]) and c != "seconds"]
        text = [c for c in a.columns if c not in numeric and c != "seconds"]
        pd.testing.assert_frame_equal(a[text], b[text])
        for c in numeric:
            gap = (a[c] - b[c]).abs().max()
            assert math.isnan(gap) or gap <= TOLERANCE, f"{name}.{c} differs by {gap:.2g} between 1 and 2 processes"
    assert one["verdicts"] == two["verdicts"]
    assert one.get("resistance_verdicts") == two.get("resistance_verdicts")
