"""Bad input fails in one sentence naming the parameter, the value and what is allowed, before any work.

The inputs come from ``scripts/probe_bad_inputs.py`` (the same probes the closing note counts): one
test per kind of input (negative, zero, nan, inf, wrong type, bool for int, float for int, huge, wrong
shape, ragged, empty, None in data, missing checkpoint or file, a bad output path, a wrong name, ...),
each asserting that every probe of that kind is ``clear``. The cases named in issue 9 follow, each
checked for its exact sentence and for no work done (no pre-training, no experiment run, nothing written).
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("probe_bad_inputs", ROOT / "scripts" / "probe_bad_inputs.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)

KINDS = sorted({kind for _, _, kind, _ in probe.collect()})


def test_the_probe_covers_at_least_the_issues_inputs() -> None:
    assert len(probe.collect()) >= 141 and len(KINDS) >= 20


@pytest.mark.parametrize("kind", KINDS)
def test_every_bad_input_of_this_kind_fails_clearly_before_any_work(kind: str) -> None:
    undo = probe.stop_training()
    try:
        bad = []
        for entry, param, k, call in probe.collect():
            if k == kind:
                outcome, message = probe.classify(param, call, 30.0)
                if outcome != "clear":
                    bad.append(f"{entry} {param}: {outcome}: {message}")
        assert not bad, "\n".join(bad)
    finally:
        undo()


# --------------------------------------------------------------------------- the issue's cases, one by one


@pytest.fixture
def no_pretraining(monkeypatch):
    from elasticity_lab.lm import pretraining

    def fail(*a, **k):
        raise AssertionError("pre-training started")

    monkeypatch.setattr(pretraining, "_train", fail)


@pytest.mark.parametrize("make", ["SFTConfig", "PretrainConfig"])
def test_a_negative_grad_clip_is_refused(make: str) -> None:
    from elasticity_lab.lm.pretraining import PretrainConfig
    from elasticity_lab.lm.training import SFTConfig

    cls = {"SFTConfig": SFTConfig, "PretrainConfig": PretrainConfig}[make]
    with pytest.raises(ValueError, match=r"^grad_clip=-1 is not allowed; it must be a finite number > 0 \(or None for no clipping\)\.$"):
        cls(grad_clip=-1)
    assert cls(grad_clip=None).grad_clip is None


@pytest.mark.parametrize("lr", [math.inf, math.nan])
def test_an_infinite_or_nan_learning_rate_is_refused_before_training(lr: float) -> None:
    from elasticity_lab.lm.presets import random_model
    from elasticity_lab.lm.training import sft
    from elasticity_lab.microworld.world import World

    world = World()
    model = random_model("nano", len(world.vocabulary))
    with pytest.raises(ValueError, match=r"^lr=(inf|nan) is not allowed; it must be a finite number > 0\.$"):
        sft(model, world.tokenizer(), world.dataset("safety", 4), lr=lr, progress=False)


def test_a_coder_precision_below_the_vocabulary_fails_at_once() -> None:
    from elasticity_lab.info.compression import arithmetic_decode, arithmetic_encode, ArithmeticCode

    uniform = lambda prefix: [0.01] * 100  # noqa: E731
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"^precision=4 is not allowed for a vocabulary of 100; .* precision >= 7\.$"):
        arithmetic_encode([1, 2, 3], uniform, precision=4)
    with pytest.raises(ValueError, match=r"^precision=4 "):
        arithmetic_decode(ArithmeticCode("0101", 3), uniform, precision=4)
    assert time.perf_counter() - t0 < 2
    code = arithmetic_encode([1, 2, 3], uniform, precision=7)  # the smallest precision allowed still round-trips
    assert arithmetic_decode(code, uniform, precision=7) == [1, 2, 3]


@pytest.mark.parametrize("call, sentence", [
    (lambda w: w.corpus(10**10), r"^n_tokens=10000000000 is not allowed; it must be an integer >= 1 and <= 100,000,000"),
    (lambda w: w.dataset("safety", 10**9), r"^n=1000000000 is not allowed; it must be an integer >= 0 and <= 1,000,000\.$"),
    (lambda w: w.documents(10**9), r"^n=1000000000 is not allowed"),
])
def test_unbounded_sizes_are_refused_at_once(call, sentence: str) -> None:
    from elasticity_lab.microworld.world import World

    world = World()
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=sentence):
        call(world)
    assert time.perf_counter() - t0 < 1


@pytest.mark.parametrize("pair, part", [(("a prompt", None), "response"), ((None, "a response"), "prompt")])
def test_a_none_in_a_pair_is_refused_not_trained_on_as_the_string_none(pair, part: str) -> None:
    from elasticity_lab.lm.training import _examples_as_pairs

    with pytest.raises(ValueError, match=rf"^examples\[0\] has {part}=None, which is not allowed; it must be a string\.$"):
        _examples_as_pairs([pair])


def test_ragged_token_tree_input_is_refused_not_read_as_several_data_sets() -> None:
    from elasticity_lab.info.tokentree import build_token_tree

    with pytest.raises(ValueError, match=r"^datasets\[0\]\[0\]=1 is not allowed; .* wrap it in a list: \[\[\[1, 2\], \[3\]\]\]\)\.$"):
        build_token_tree([[1, 2], [3]])
    tree = build_token_tree([[[1, 2], [3]]])  # the wrapped form is one data set of two sequences
    assert tree.n_datasets == 1 and list(tree.dataset_sizes) == [2]


def test_a_missing_revision_fails_before_any_pre_training(no_pretraining, tmp_path, monkeypatch) -> None:
    from elasticity_lab.lm.bases import load_base

    monkeypatch.setenv("ELASTICITY_CACHE", str(tmp_path))
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"^revision='tokens-123' is not a checkpoint of 'nano'; choose 'random', 'light' or one of tokens-"):
        load_base("nano@tokens-123")
    assert time.perf_counter() - t0 < 2 and not any(tmp_path.rglob("*.safetensors"))


# --------------------------------------------------------------------------- the command line


def _run_cli(monkeypatch, capsys, *argv: str, env: dict[str, str] | None = None):
    """``cli.main(argv)`` with every experiment's ``cli_result`` recorded instead of run."""
    from elasticity_lab import cli, experiments

    calls = []
    for name in experiments.EXPERIMENTS:
        module = importlib.import_module(f"elasticity_lab.experiments.{name}")
        monkeypatch.setattr(module, "cli_result", lambda scale, n_seeds=None: calls.append(scale) or {"scale": scale})
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    try:
        code = cli.main(list(argv))
    except SystemExit as stop:
        code = stop.code
    out = capsys.readouterr()
    return code, out.out, out.err, calls


def test_theory_with_a_huge_k_refuses_instead_of_writing_infinity(monkeypatch, capsys) -> None:
    code, out, err, _ = _run_cli(monkeypatch, capsys, "theory", "--k", "1e200", "--json")
    assert code == 2 and out == ""
    assert err.strip() == ("error: k=1e+200 is not allowed; it must be a finite number > 0 and <= 1e+12 "
                           "(|D_p| / |D_a|; larger overflows the slopes).")
    code, out, _, _ = _run_cli(monkeypatch, capsys, "theory", "--k", "1e12", "--json")

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    assert code == 0 and json.loads(out, parse_constant=no_constants)["k"] == 1e12


def test_json_output_never_holds_nan_or_infinity() -> None:
    from elasticity_lab.cli import _json_text

    assert json.loads(_json_text({"a": math.nan, "b": [math.inf, 1.0]})) == {"a": None, "b": [None, 1.0]}


def test_json_into_a_path_under_a_file_is_refused_before_the_run(monkeypatch, capsys, tmp_path) -> None:
    (tmp_path / "afile").write_text("x")
    out_path = tmp_path / "afile" / "out.json"
    code, _, err, calls = _run_cli(monkeypatch, capsys, "run", "rebound", "--scale", "smoke", "--json", str(out_path))
    assert code == 2 and calls == []
    assert err.strip() == f"error: --json={str(out_path)!r} is not allowed; {str(tmp_path / 'afile')!r} is a file, not a folder."


def test_json_into_a_missing_folder_is_refused_up_front(monkeypatch, capsys, tmp_path) -> None:
    out_path = tmp_path / "missing" / "out.json"
    code, _, err, calls = _run_cli(monkeypatch, capsys, "run", "rebound", "--scale", "smoke", "--json", str(out_path))
    assert code == 2 and calls == [] and not out_path.parent.exists()
    assert "does not exist (create it first)" in err and "--json=" in err
    out_path.parent.mkdir()
    code, _, _, calls = _run_cli(monkeypatch, capsys, "run", "rebound", "--scale", "smoke", "--json", str(out_path))
    assert code == 0 and calls == ["smoke"] and json.loads(out_path.read_text()) == {"scale": "smoke"}


def test_an_explicit_scale_flag_wins_over_the_environment(monkeypatch, capsys) -> None:
    _, _, _, calls = _run_cli(monkeypatch, capsys, "run", "rebound", "--scale", "smoke", env={"ELASTICITY_SCALE": "full"})
    assert calls == ["smoke"]
    _, _, _, calls = _run_cli(monkeypatch, capsys, "run", "rebound", env={"ELASTICITY_SCALE": "full"})
    assert calls == ["full"]  # without the flag the variable is the default
    from elasticity_lab.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    assert "wins over $ELASTICITY_SCALE" in " ".join(run.format_help().split())


# --------------------------------------------------------------------------- the helpers' own sentences


def test_the_check_helpers_say_yes_and_no() -> None:
    from elasticity_lab.core import config as C

    assert C.check_int("n", 3, 1) == 3 and C.check_range("p", 0.5, 0, 1) == 0.5 and C.check_seed("seed", 0) == 0
    for call, sentence in [
        (lambda: C.check_int("n", True, 1), r"^n=True is not allowed; it must be an integer >= 1\.$"),
        (lambda: C.check_int("n", 2.0, 1), r"^n=2\.0 is not allowed; it must be an integer >= 1\.$"),
        (lambda: C.check_range("p", math.nan, 0, 1), r"^p=nan is not allowed; it must be a finite number >= 0 and <= 1\.$"),
        (lambda: C.check_positive("lr", "0.1"), r"^lr='0\.1' is not allowed; it must be a finite number > 0\.$"),
        (lambda: C.check_choice("scale", [1, 2], ("smoke",)), r"^scale=\[1, 2\] is not allowed; choose one of 'smoke'\.$"),
        (lambda: C.check_betas("betas", (0.9,)), r"^betas=\(0\.9,\) is not allowed; it must be a pair"),
    ]:
        with pytest.raises(ValueError, match=sentence):
            call()


# --------------------------------------------------------------------------- progress bars


def test_progress_bars_go_through_core_progress_only() -> None:
    """Every bar obeys TQDM_DISABLE only if it is made by core.progress.progress_bar (tqdm ignores the variable
    when ``disable`` is passed); so no other module imports tqdm."""
    import re

    lib = ROOT / "elasticity_lab"
    direct = {str(p.relative_to(lib)) for p in lib.rglob("*.py")
              if re.search(r"^\s*(from tqdm|import tqdm)", p.read_text(), re.M)}
    assert direct <= {"core/progress.py"}, sorted(direct)


def test_a_run_that_resolves_the_scale_again_still_gets_the_flag(monkeypatch, capsys) -> None:
    """Every experiment, even one whose ``cli_result`` calls ``resolve_scale`` itself, runs at the flag's scale."""
    from elasticity_lab import cli, experiments
    from elasticity_lab.core.config import resolve_scale

    seen = []
    for name in experiments.EXPERIMENTS:
        module = importlib.import_module(f"elasticity_lab.experiments.{name}")
        monkeypatch.setattr(module, "cli_result", lambda scale, n_seeds=None: seen.append(resolve_scale(scale)) or {})
    monkeypatch.setenv("ELASTICITY_SCALE", "full")
    for name in experiments.EXPERIMENTS:
        assert cli.main(["run", name, "--scale", "smoke"]) == 0
    assert seen == ["smoke"] * len(experiments.EXPERIMENTS)
    assert resolve_scale(None) == "full"  # the environment is as it was after the run
    capsys.readouterr()


def test_the_experiments_keep_the_scale_the_cli_resolved(monkeypatch) -> None:
    """``cli_result(scale)`` must not resolve the environment again (that would undo the flag)."""
    from elasticity_lab.experiments.rebound import runs as rebound_runs
    from elasticity_lab.experiments.resistance import runs as resistance_runs

    monkeypatch.setenv("ELASTICITY_SCALE", "full")

    class Seen(Exception):
        pass

    def seen(config, *a, **k):
        raise Seen(config.scale)

    monkeypatch.setattr(rebound_runs, "run_rebound", seen)
    with pytest.raises(Seen, match="^smoke$"):
        rebound_runs.cli_result("smoke", 1)
    monkeypatch.setattr(resistance_runs, "default_configs", lambda scale, n_seeds=None: (_ for _ in ()).throw(Seen(scale)))
    with pytest.raises(Seen, match="^smoke$"):
        resistance_runs.cli_result("smoke", 1)
    import elasticity_lab.experiments.algorithms as algorithms

    monkeypatch.setattr(algorithms, "run_algorithms", seen)
    with pytest.raises(Seen, match="^smoke$"):
        algorithms.cli_result("smoke", 2)
    import elasticity_lab.experiments.realmodels as realmodels

    monkeypatch.setattr(realmodels, "run_study", seen)
    with pytest.raises(Seen, match="^smoke$"):
        realmodels.cli_result("smoke", 1)
