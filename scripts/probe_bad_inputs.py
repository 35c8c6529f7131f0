"""Probe every public entry point with bad values and classify what happens.

    PYTHONPATH=. python scripts/probe_bad_inputs.py [--timeout 8] [--only WORD] [--verbose]

Each probe calls one entry point (a config, ``sft``, ``pretrain``, the arithmetic coder, the token tree,
a ``World`` method, ``load_base``, a command of the CLI) with one bad value of one kind (negative, zero,
nan, inf, wrong type, bool for int, empty, huge, wrong shape, missing file) under a per-call timeout,
and sorts the outcome into:

- ``clear``: a ``ValueError`` (or the CLI's exit 2) in one line that names the parameter, before any work;
- ``unclear``: another exception, or a message that does not name the parameter;
- ``silent``: the value was accepted (the call returned, or work started: pre-training, a CLI run);
- ``hang``: the call did not finish within the timeout.

Work is stubbed out where it would start (pre-training's loop, an experiment's ``cli_result``), so a
probe never trains for long. Prints one line per probe that is not clear, and the counts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("ELASTICITY_CACHE", tempfile.mkdtemp(prefix="probe-cache-"))

NAN, INF = float("nan"), float("inf")


class WorkStarted(Exception):
    """Raised by the stubs where real work (training, an experiment) would begin."""


class Correct(Exception):
    """Raised by a probe whose input was handled as it should be (e.g. the CLI flag won over the env var)."""


class Timeout(Exception):
    pass


PROBES: list[tuple[str, str, str, Callable[[], Any]]] = []


def probe(entry: str, param: str, kind: str, fn: Callable[[], Any]) -> None:
    PROBES.append((entry, param, kind, fn))


# --------------------------------------------------------------------------- fixtures (built lazily)

_cache: dict[str, Any] = {}


def world() -> Any:
    if "world" not in _cache:
        from elasticity_lab.microworld.world import World

        _cache["world"] = World()
    return _cache["world"]


def tiny() -> tuple[Any, Any]:
    if "tiny" not in _cache:
        from elasticity_lab.lm.presets import random_model

        w = world()
        _cache["tiny"] = (random_model("nano", len(w.vocabulary)), w.tokenizer())
    return _cache["tiny"]


def examples(n: int = 4) -> list[Any]:
    return world().dataset("safety", n)


# --------------------------------------------------------------------------- configs: bad values from each field's rule

BAD_FLOAT = {  # kind -> value, for a float field that must be finite
    "nan": NAN, "inf": INF, "wrong type": "0.1", "bool for number": True,
}
BAD_INT = {"nan": NAN, "inf": INF, "wrong type": "8", "bool for int": True, "float for int": 2.5}


def field_probes(entry: str, make: Callable[..., Any], fields: dict[str, tuple]) -> None:
    """``fields``: name -> (int|float, lo, lo_open, hi, hi_open); bad values: below/at/above the bounds and every kind."""
    for name, (typ, lo, lo_open, hi, hi_open) in fields.items():
        bad = dict(BAD_INT if typ is int else BAD_FLOAT)
        if lo is not None:
            bad["negative" if lo >= 0 else "below range"] = (lo - 1) if typ is int else (-1.0 if lo >= 0 else lo - 1.0)
            if lo_open:
                bad["zero" if lo == 0 else "at open bound"] = lo
        if hi is not None:
            bad["huge" if hi > 1000 else "above range"] = (hi + 1) if typ is int else (hi + 1.0 if hi >= 1 else hi + 0.5)
            if hi_open:
                bad["at open bound (high)"] = hi
        for kind, value in bad.items():
            probe(entry, name, kind, lambda n=name, v=value: make(**{n: v}))


def config_probes() -> None:
    from elasticity_lab.experiments.rebound.config import ReboundConfig
    from elasticity_lab.experiments.resistance.config import ResistanceConfig
    from elasticity_lab.lm.bases import BaseSpec
    from elasticity_lab.lm.preference import PreferenceConfig
    from elasticity_lab.lm.pretraining import PretrainConfig
    from elasticity_lab.lm.rl import RLConfig
    from elasticity_lab.lm.training import SFTConfig
    from elasticity_lab.microworld.world import WorldConfig

    f, i = float, int
    sft_fields = {
        "lr": (f, 0, True, None, False), "epochs": (f, 0, True, None, False), "max_steps": (i, 1, False, None, False),
        "batch_size": (i, 1, False, None, False), "weight_decay": (f, 0, False, None, False),
        "warmup_fraction": (f, 0, False, 1, True), "grad_clip": (f, 0, True, None, False),
        "lora_r": (i, 1, False, None, False), "lora_alpha": (f, 0, True, None, False), "lora_dropout": (f, 0, False, 1, True),
        "seed": (i, 0, False, None, False), "threads": (i, 1, False, None, False),
    }
    field_probes("SFTConfig", SFTConfig, sft_fields)
    probe("SFTConfig", "betas", "wrong shape", lambda: SFTConfig(betas=(0.9,)))
    probe("SFTConfig", "betas", "above range", lambda: SFTConfig(betas=(0.9, 1.5)))
    probe("SFTConfig", "betas", "nan", lambda: SFTConfig(betas=(NAN, 0.9)))
    probe("SFTConfig", "checkpoint_fractions", "nan", lambda: SFTConfig(checkpoint_fractions=(NAN,)))
    probe("SFTConfig", "lora_targets", "wrong type", lambda: SFTConfig(lora_targets="q_proj"))
    probe("SFTConfig", "method", "wrong type", lambda: SFTConfig(method=1))
    field_probes("PretrainConfig", PretrainConfig, {
        "tokens": (i, 4096, False, None, False), "batch_size": (i, 1, False, None, False), "seq_len": (i, 8, False, 512, False),
        "lr": (f, 0, True, None, False), "min_lr_ratio": (f, 0, False, 1, False), "warmup_fraction": (f, 0, False, 1, True),
        "weight_decay": (f, 0, False, None, False), "grad_clip": (f, 0, True, None, False),
        "n_checkpoints": (i, 1, False, None, False), "eval_tokens": (i, 0, False, None, False),
        "seed": (i, 0, False, None, False), "threads": (i, 1, False, None, False),
    })
    probe("PretrainConfig", "betas", "above range", lambda: PretrainConfig(betas=(0.9, 1.0)))
    probe("PretrainConfig", "checkpoints", "wrong type", lambda: PretrainConfig(checkpoints=("a",)))
    probe("PretrainConfig", "tokens", "huge", lambda: PretrainConfig(tokens=10**16))
    field_probes("WorldConfig", WorldConfig, {
        "seed": (i, 0, False, None, False), "zipf_exponent": (f, 0, False, None, False),
        "harmful_refusal": (f, 0, False, 1, False), "heldout_share": (f, 0, True, 1, True), "n_objects": (i, 4, False, 60, False),
    })
    probe("WorldConfig", "mix", "nan", lambda: WorldConfig(mix=(("generic", NAN),)))
    probe("WorldConfig", "mix", "wrong shape", lambda: WorldConfig(mix=("generic",)))
    field_probes("PreferenceConfig", PreferenceConfig, {
        "beta": (f, 0, True, None, False), "gamma": (f, 0, False, None, False),
        "desirable_weight": (f, 0, True, None, False), "undesirable_weight": (f, 0, True, None, False),
    })
    probe("PreferenceConfig", "grad_clip", "negative", lambda: PreferenceConfig(grad_clip=-1.0))
    field_probes("RLConfig", RLConfig, {
        "k": (i, 2, False, None, False), "beta": (f, 0, False, None, False), "epsilon": (f, 0, True, 1, True),
        "max_new_tokens": (i, 1, False, None, False), "temperature": (f, 0, True, None, False),
    })
    probe("RLConfig", "grad_clip", "negative", lambda: RLConfig(grad_clip=-1.0))
    field_probes("BaseSpec", lambda **kw: BaseSpec("nano", **kw), {
        "tokens": (i, 4096, False, None, False), "seed": (i, 0, False, None, False), "light_fraction": (f, 0, True, 1, True),
    })
    probe("BaseSpec", "revision", "missing checkpoint", lambda: BaseSpec("nano", "tokens-123"))
    probe("BaseSpec", "revision", "wrong type", lambda: BaseSpec("nano", 2.5))
    probe("BaseSpec", "source", "empty", lambda: BaseSpec(""))
    probe("BaseSpec", "source", "wrong type", lambda: BaseSpec(3))
    probe("BaseSpec", "world", "wrong type", lambda: BaseSpec("nano", world={"harmful_refusal": "high"}))
    probe("BaseSpec", "world", "above range", lambda: BaseSpec("nano", world={"harmful_refusal": 1.5}))
    probe("BaseSpec", "tokens", "huge", lambda: BaseSpec("nano", tokens=10**15))
    field_probes("ReboundConfig", lambda **kw: ReboundConfig(scale="smoke", **kw), {
        "lr": (f, 0, True, None, False), "align_batch_size": (i, 1, False, None, False), "n_prompts": (i, 1, False, None, False),
        "epsilon": (f, 0, True, None, False), "light_fraction": (f, 0, True, 1, True),
    })
    probe("ReboundConfig", "seeds", "wrong type", lambda: ReboundConfig(seeds=("a",)))
    probe("ReboundConfig", "n_align", "negative", lambda: ReboundConfig(n_align=(-5,)))
    field_probes("ResistanceConfig", ResistanceConfig, {
        "n_train": (i, 1, False, None, False), "n_queries": (i, 1, False, None, False), "lr": (f, 0, True, None, False),
        "batch_size": (i, 1, False, None, False), "epochs": (f, 0, True, None, False), "max_new_tokens": (i, 1, False, None, False),
    })
    from elasticity_lab.experiments.algorithms.config import AlgorithmsConfig

    field_probes("AlgorithmsConfig", lambda **kw: AlgorithmsConfig(scale="smoke", **kw), {
        "align_batch_size": (i, 1, False, None, False), "n_prompts": (i, 1, False, None, False), "n_kl": (i, 1, False, None, False),
        "perturb_lr": (f, 0, True, None, False), "target": (f, 0, True, 1, True),
    })
    probe("AlgorithmsConfig", "algorithms", "wrong name", lambda: AlgorithmsConfig(algorithms=("sft", "ppo")))
    probe("AlgorithmsConfig", "seeds", "negative", lambda: AlgorithmsConfig(seeds=(-1, 0)))
    probe("ResistanceConfig", "fractions", "nan", lambda: ResistanceConfig(fractions=(NAN, 0.5, 0.75)))
    probe("ResistanceConfig", "seeds", "wrong type", lambda: ResistanceConfig(seeds=(0.5,)))


# --------------------------------------------------------------------------- functions


def function_probes() -> None:
    from elasticity_lab.info import compression as C
    from elasticity_lab.info.tokentree import build_token_tree
    from elasticity_lab.lm import pretraining
    from elasticity_lab.lm.bases import load_base
    from elasticity_lab.lm.preference import preference_train
    from elasticity_lab.lm.training import sft

    def run_sft(data: Any = None, **kw: Any) -> Any:
        m, tok = tiny()
        return sft(m, tok, examples() if data is None else data, progress=False, max_steps=1, **kw)

    probe("sft", "grad_clip", "negative", lambda: run_sft(grad_clip=-1.0))
    probe("sft", "lr", "inf", lambda: run_sft(lr=INF))
    probe("sft", "lr", "nan", lambda: run_sft(lr=NAN))
    probe("sft", "examples", "empty", lambda: run_sft([]))
    probe("sft", "examples", "None response", lambda: run_sft([("hello", None)]))
    probe("sft", "examples", "wrong type", lambda: run_sft([("hello", 3)]))
    probe("sft", "examples", "wrong shape", lambda: run_sft([("a", "b", "c")]))
    probe("sft", "examples", "wrong type (str)", lambda: run_sft("hello"))
    probe("sft", "examples", "dict None", lambda: run_sft([{"prompt": None, "response": "x"}]))
    probe("sft", "config", "wrong type", lambda: sft(*tiny(), examples(), config="fast", progress=False))
    probe("sft", "learning_rate", "wrong name", lambda: run_sft(learning_rate=1e-3))
    probe("preference_train", "data", "None in pair", lambda: preference_train(*tiny(), [("p", None, "r")], max_steps=1))
    probe("preference_train", "data", "None chosen (dict)",
          lambda: preference_train(*tiny(), [{"prompt": "p", "chosen": None, "rejected": "r"}], max_steps=1))
    probe("preference_train", "data", "kto None response",
          lambda: preference_train(*tiny(), [("p", None, True), ("p", "x", False)], algorithm="kto", max_steps=1))

    from elasticity_lab.lm.generation import generate

    def run_generate(prompts: Any = ("hello",), **kw: Any) -> Any:
        return generate(*tiny(), prompts, **kw)

    probe("generate", "max_new_tokens", "zero", lambda: run_generate(max_new_tokens=0))
    probe("generate", "max_new_tokens", "float for int", lambda: run_generate(max_new_tokens=2.5))
    probe("generate", "max_new_tokens", "huge", lambda: run_generate(max_new_tokens=10**9))
    probe("generate", "temperature", "nan", lambda: run_generate(temperature=NAN))
    probe("generate", "top_p", "above range", lambda: run_generate(top_p=1.5))
    probe("generate", "top_p", "nan", lambda: run_generate(top_p=NAN))
    probe("generate", "batch_size", "zero", lambda: run_generate(batch_size=0))
    probe("generate", "seed", "negative", lambda: run_generate(seed=-1))
    probe("generate", "greedy", "wrong type", lambda: run_generate(greedy="yes"))
    probe("generate", "prompts", "wrong type (str)", lambda: run_generate("hello"))
    probe("generate", "prompts", "None prompt", lambda: run_generate([None]))

    def run_pretrain(*a: Any, **kw: Any) -> Any:
        return pretraining.pretrain(*a, progress=False, use_shipped=False, **kw)

    probe("pretrain", "preset", "wrong name", lambda: run_pretrain(world(), "gigantic"))
    probe("pretrain", "config", "wrong type", lambda: run_pretrain(world(), "nano", {"tokens": 4096}))
    probe("pretrain", "world", "wrong type", lambda: run_pretrain("default", "nano"))
    probe("pretrain", "resume_every", "negative",
          lambda: run_pretrain(world(), "nano", pretraining.PretrainConfig(tokens=8192, seed=7), resume_every=-1))
    probe("pretrain", "stop_after_steps", "zero",
          lambda: run_pretrain(world(), "nano", pretraining.PretrainConfig(tokens=8192, seed=7), stop_after_steps=0))
    probe("pretrain", "device", "wrong name", lambda: run_pretrain(world(), "nano", device="gpu9"))
    probe("default_pretrain_config", "scale", "wrong name", lambda: pretraining.default_pretrain_config("micro", "huge"))

    unif = lambda prefix: [0.01] * 100  # noqa: E731  vocabulary of 100
    probe("arithmetic_encode", "precision", "too small for vocab", lambda: C.arithmetic_encode([1, 2, 3], unif, precision=4))
    probe("arithmetic_encode", "precision", "zero", lambda: C.arithmetic_encode([1], unif, precision=0))
    probe("arithmetic_encode", "precision", "float for int", lambda: C.arithmetic_encode([1], unif, precision=12.5))
    probe("arithmetic_encode", "precision", "bool for int", lambda: C.arithmetic_encode([1], unif, precision=True))
    probe("arithmetic_encode", "precision", "huge", lambda: C.arithmetic_encode([1, 2], unif, precision=10**7))
    probe("arithmetic_encode", "precision", "above int64", lambda: C.arithmetic_encode([1, 2], unif, precision=70))
    probe("arithmetic_encode", "tokens", "wrong type", lambda: C.arithmetic_encode("abc", unif))
    probe("arithmetic_encode", "tokens", "negative", lambda: C.arithmetic_encode([-1], unif))
    probe("arithmetic_encode", "model", "wrong type", lambda: C.arithmetic_encode([1], "uniform"))
    probe("arithmetic_encode", "model", "nan", lambda: C.arithmetic_encode([1], lambda p: [NAN] * 4))
    probe("arithmetic_decode", "precision", "too small for vocab",
          lambda: C.arithmetic_decode(C.ArithmeticCode("0101", 3), unif, precision=4))
    probe("arithmetic_decode", "code", "wrong type", lambda: C.arithmetic_decode("0101", unif))
    probe("arithmetic_decode", "code.bits", "not binary", lambda: C.arithmetic_decode(C.ArithmeticCode("01x", 2), unif))
    probe("arithmetic_decode", "code.n_tokens", "negative", lambda: C.arithmetic_decode(C.ArithmeticCode("01", -2), unif))
    probe("AdaptiveNGram", "vocab_size", "float for int", lambda: C.AdaptiveNGram(2.5))
    probe("AdaptiveNGram", "alpha", "inf", lambda: C.AdaptiveNGram(4, alpha=INF))
    probe("MarkovSource", "vocab_size", "huge", lambda: C.MarkovSource(10**6))
    probe("MarkovSource.sample", "n", "huge", lambda: C.MarkovSource(4).sample(10**9))
    probe("compression_table", "n_tokens", "float for int", lambda: C.compression_table(n_tokens=2.5))
    probe("entropy_bits", "p", "nan", lambda: C.entropy_bits([NAN, 1.0]))

    probe("build_token_tree", "datasets", "ragged", lambda: build_token_tree([[1, 2], [3]]))
    probe("build_token_tree", "datasets", "empty", lambda: build_token_tree([]))
    probe("build_token_tree", "datasets", "negative", lambda: build_token_tree([[[1, -5]]]))
    probe("build_token_tree", "datasets", "wrong type", lambda: build_token_tree([[["a", "b"]]]))
    probe("build_token_tree", "datasets", "float tokens", lambda: build_token_tree([[[1.5, 2.0]]]))
    # a 3-D array is a stack of equal-sized data sets (valid); 1-D and 4-D arrays are not data sets
    probe("build_token_tree", "datasets", "wrong shape (1-D)", lambda: build_token_tree(__import__("numpy").arange(3)))
    probe("build_token_tree", "datasets", "wrong shape (4-D)", lambda: build_token_tree(__import__("numpy").zeros((2, 2, 2, 2), int)))
    probe("build_token_tree", "datasets", "wrong type (str)", lambda: build_token_tree("abc"))
    probe("build_token_tree", "vocab_size", "zero", lambda: build_token_tree([[[1, 2]]], vocab_size=0))
    probe("build_token_tree", "vocab_size", "float for int", lambda: build_token_tree([[[1, 2]]], vocab_size=4.5))
    probe("build_token_tree", "max_depth", "zero", lambda: build_token_tree([[[1, 2]]], max_depth=0))
    probe("build_token_tree", "max_depth", "negative", lambda: build_token_tree([[[1, 2]]], max_depth=-1))
    probe("build_token_tree", "weights", "nan", lambda: build_token_tree([[[1, 2]]], weights=[[NAN]]))
    probe("build_token_tree", "weights", "negative", lambda: build_token_tree([[[1, 2]]], weights=[[-1.0]]))
    probe("build_token_tree", "weights", "wrong shape", lambda: build_token_tree([[[1, 2]]], weights=[[1.0, 2.0]]))
    probe("build_token_tree", "names", "wrong shape", lambda: build_token_tree([[[1, 2]]], names=["a", "b"]))

    W = world
    probe("World.corpus", "n_tokens", "huge", lambda: W().corpus(10**10))
    probe("World.corpus", "n_tokens", "negative", lambda: W().corpus(-1))
    probe("World.corpus", "n_tokens", "nan", lambda: W().corpus(NAN))
    probe("World.corpus", "n_tokens", "float for int", lambda: W().corpus(2.5))
    probe("World.corpus", "n_tokens", "bool for int", lambda: W().corpus(True))
    probe("World.corpus", "stream", "negative", lambda: W().corpus(10, stream=-1))
    probe("World.corpus", "stream", "wrong type", lambda: W().corpus(10, stream="a"))
    probe("World.dataset", "n", "huge", lambda: W().dataset("safety", 10**9))
    probe("World.dataset", "n", "negative", lambda: W().dataset("safety", -1))
    probe("World.dataset", "n", "float for int", lambda: W().dataset("safety", 2.5))
    probe("World.dataset", "n", "inf", lambda: W().dataset("safety", INF))
    probe("World.dataset", "seed", "negative", lambda: W().dataset("safety", 2, seed=-1))
    probe("World.dataset", "seed", "wrong type", lambda: W().dataset("safety", 2, seed="a"))
    probe("World.dataset", "task", "wrong name", lambda: W().dataset("poetry", 2))
    probe("World.documents", "n", "negative", lambda: W().documents(-1))
    probe("World.documents", "n", "huge", lambda: W().documents(10**9))
    probe("World.documents", "n", "float for int", lambda: W().documents(2.5))
    probe("World.prompts", "n", "huge", lambda: W().prompts("safety", 10**9))
    probe("World.contrast_pairs", "n", "negative", lambda: W().contrast_pairs("safety", -3))
    probe("World.score", "responses", "wrong shape", lambda: W().score("safety", ["a"], ["b", "c"]))
    probe("World.score", "responses", "wrong type", lambda: W().score("safety", ["a"], [None]))
    probe("World.classify", "response", "wrong type", lambda: W().classify("safety", "a", None))
    probe("World.base_rate", "task", "wrong name", lambda: W().base_rate("poetry"))
    probe("World", "colour", "wrong name", lambda: __import__("elasticity_lab.microworld.world", fromlist=["World"]).World(colour=3))
    probe("World.encode", "text", "wrong type", lambda: W().encode(None))

    probe("load_base", "revision", "missing checkpoint", lambda: load_base("nano@tokens-123"))
    probe("load_base", "revision", "bad revision", lambda: load_base("micro@tokens-abc"))
    probe("load_base", "source", "missing file", lambda: load_base("./no/such/folder"))
    probe("load_base", "source", "missing file (abs)", lambda: load_base("/no/such/folder"))
    probe("load_base", "spec", "empty", lambda: load_base(""))
    probe("load_base", "spec", "wrong type", lambda: load_base(123))
    probe("load_base", "revision", "book base with tokens", lambda: load_base("micro-refusal50@tokens-99"))
    probe("load_base", "device", "wrong name", lambda: load_base("micro@random", device="gpu9"))


# --------------------------------------------------------------------------- the command line


def cli(*argv: str, env: dict[str, str] | None = None, expect_scale: str | None = None) -> Callable[[], Any]:
    def call() -> Any:
        from elasticity_lab import cli as C
        from elasticity_lab import experiments

        seen: dict[str, Any] = {}

        def stub(scale: str, n_seeds: Any = None) -> Any:
            seen["scale"] = scale
            if expect_scale is not None:
                if scale == expect_scale:
                    raise Correct(f"scale={scale}")
                raise WorkStarted(f"ran at scale={scale!r}, not {expect_scale!r}")
            raise WorkStarted(f"cli_result(scale={scale!r}, n_seeds={n_seeds!r})")

        import importlib

        mods = [importlib.import_module(f"elasticity_lab.experiments.{e}") for e in experiments.EXPERIMENTS]
        saved = [m.cli_result for m in mods]
        old_env = {k: os.environ.get(k) for k in (env or {})}
        try:
            for m in mods:
                m.cli_result = stub
            os.environ.update(env or {})
            return C.main(list(argv))
        finally:
            for m, s in zip(mods, saved):
                m.cli_result = s
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return call


def cli_probes() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="probe-"))
    (tmp / "afile").write_text("x")
    probe("cli theory", "--k", "huge", cli("theory", "--k", "1e200", "--json"))
    probe("cli theory", "--k", "negative", cli("theory", "--k", "-1"))
    probe("cli theory", "--k", "nan", cli("theory", "--k", "nan"))
    probe("cli theory", "--k", "inf", cli("theory", "--k", "inf"))
    probe("cli theory", "--k", "wrong type", cli("theory", "--k", "abc"))
    probe("cli theory", "--l", "negative", cli("theory", "--l", "-1"))
    probe("cli theory", "--l", "huge", cli("theory", "--l", "1e300", "--json"))
    probe("cli theory", "--depth", "zero", cli("theory", "--depth", "0"))
    probe("cli theory", "--depth", "huge", cli("theory", "--depth", "100"))
    probe("cli theory", "--seed", "negative", cli("theory", "--seed", "-1"))
    probe("cli run", "experiment", "wrong name", cli("run", "nothing"))
    probe("cli run", "--seeds", "zero", cli("run", "resistance", "--scale", "smoke", "--seeds", "0"))
    probe("cli run", "--seeds", "negative", cli("run", "resistance", "--scale", "smoke", "--seeds", "-2"))
    probe("cli run", "--seeds", "huge", cli("run", "resistance", "--scale", "smoke", "--seeds", "1000000"))
    probe("cli run", "--scale", "wrong name", cli("run", "resistance", "--scale", "huge"))
    probe("cli run", "ELASTICITY_SCALE", "wrong name", cli("run", "resistance", env={"ELASTICITY_SCALE": "tiny"}))
    probe("cli run", "--scale", "env overrides flag", cli("run", "rebound", "--scale", "smoke", env={"ELASTICITY_SCALE": "full"},
                                                         expect_scale="smoke"))
    probe("cli run", "--json", "missing folder", cli("run", "resistance", "--scale", "smoke", "--json", str(tmp / "no" / "out.json")))
    probe("cli run", "--json", "path under a file", cli("run", "resistance", "--scale", "smoke", "--json", str(tmp / "afile" / "o.json")))
    probe("cli run", "--json", "a folder", cli("run", "resistance", "--scale", "smoke", "--json", str(tmp)))
    probe("cli cache", "action", "wrong name", cli("cache", "explode"))
    probe("cli cache", "kinds", "wrong name", cli("cache", "clear", "nonsense-kind"))
    probe("cli bases", "name", "wrong name", cli("bases", "remake", "nothing"))
    probe("cli bases", "--threads", "zero", cli("bases", "remake", "micro-smoke", "--check", "--threads", "0"))
    probe("cli teach", "--timeout", "negative", cli("teach", "grade", str(tmp), "--timeout", "-5"))
    probe("cli teach", "--scale", "wrong name", cli("teach", "grade", str(tmp), "--scale", "huge"))
    probe("cli teach", "folder", "missing file", cli("teach", "grade", str(tmp / "none")))
    probe("cli teach", "notebooks", "missing file", cli("teach", "student", str(tmp / "none.ipynb"), "--out", str(tmp / "o")))
    probe("cli teach", "--csv", "path under a file", cli("teach", "grade", str(tmp), "--csv", str(tmp / "afile" / "g.csv")))


# --------------------------------------------------------------------------- running and classifying


def _alarm(signum: int, frame: Any) -> None:
    raise Timeout()


def classify(param: str, fn: Callable[[], Any], timeout: float) -> tuple[str, str]:
    err = io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            fn()
        outcome, msg = "silent", "accepted (returned)"
    except Timeout:
        outcome, msg = "hang", f"no answer within {timeout:g} s"
    except Correct as e:
        outcome, msg = "clear", f"handled: {e}"
    except WorkStarted as e:
        outcome, msg = "silent", f"work started: {e}"
    except SystemExit as e:
        text = err.getvalue().strip().splitlines()
        last = text[-1] if text else ""
        if e.code in (0, None):
            outcome, msg = "silent", f"exit {e.code}"
        else:
            outcome = "clear" if _names(param, last) else "unclear"
            msg = last
    except ValueError as e:
        text = str(e)
        outcome = "clear" if _names(param, text) and "\n" not in text.strip() else "unclear"
        msg = f"{type(e).__name__}: {text}"
    except BaseException as e:  # noqa: BLE001 - classifying is the point
        outcome, msg = "unclear", f"{type(e).__name__}: {e}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return outcome, msg.replace("\n", " | ")[:300]


def _names(param: str, text: str) -> bool:
    text = text.lower()
    names = {param.lower(), param.lower().lstrip("-"), param.split(".")[-1].lower()}
    return any(n and n in text for n in names)


def collect() -> list[tuple[str, str, str, Callable[[], Any]]]:
    """Every probe as ``(entry, parameter, kind, call)`` (registered once; fixtures are built lazily)."""
    if not PROBES:
        config_probes()
        function_probes()
        cli_probes()
    return PROBES


def stop_training() -> Callable[[], None]:
    """Make pre-training raise :class:`WorkStarted` where its loop would begin; returns the undo."""
    from elasticity_lab.lm import pretraining

    saved = pretraining._train

    def no_training(*a: Any, **kw: Any) -> Any:
        raise WorkStarted("pre-training began")

    pretraining._train = no_training

    def undo() -> None:
        pretraining._train = saved

    return undo


OUTCOMES = ("clear", "unclear", "silent", "hang")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=8.0, help="seconds per call")
    ap.add_argument("--only", default=None, help="only probes whose entry contains this")
    ap.add_argument("--verbose", action="store_true", help="print the clear ones too")
    args = ap.parse_args()
    stop_training()  # every probe must fail before this
    counts: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {}
    t0 = time.perf_counter()
    for entry, param, kind, fn in collect():
        if args.only and args.only not in entry:
            continue
        outcome, msg = classify(param, fn, args.timeout)
        counts[outcome] += 1
        by_kind.setdefault(kind, Counter())[outcome] += 1
        if outcome != "clear" or args.verbose:
            print(f"{outcome:8} {entry} {param} [{kind}]: {msg}", flush=True)
    total = sum(counts.values())
    print(f"\n{'kind of input':28} " + " ".join(f"{o:>7}" for o in OUTCOMES))
    for kind in sorted(by_kind):
        print(f"{kind:28} " + " ".join(f"{by_kind[kind][o]:7d}" for o in OUTCOMES))
    print(f"\n{total} probes in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{counts[k]} {k}" for k in OUTCOMES))
    return 0 if counts["clear"] == total else 1


if __name__ == "__main__":
    sys.exit(main())
