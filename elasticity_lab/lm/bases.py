"""Where a starting model comes from: the one way to a base model, and the bases the book ships.

Every chapter and experiment gets its base model from :func:`load_base`, given a :class:`BaseSpec`
(or its string form): nanoGPT's single ``init_from`` switch, as data.

- ``"micro"``, ``"small"``, ... (a preset): pre-trained here on the default world with the scale's
  budget, trained once and then read from the cache;
- ``"micro"``, ``"micro-refusal50"``, ... (a book base): the same, with the world and budget the book
  fixes; these runs ship inside the package, so the chapters never retrain them;
- ``"<base>@random"``: the same architecture untrained (the control with no pre-trained distribution),
  ``"<base>@light"``: the checkpoint nearest (log scale) to ``light_fraction`` of the pre-training (the
  lightly pre-trained control), ``"<base>@tokens-N"``: any saved checkpoint, ``"<base>@finetuned-N"``: the
  random init fine-tuned on the world's exchanges for the steps pre-training took to reach ``tokens-N``
  (the fine-tuning-only control of the volume axis, :mod:`elasticity_lab.lm.controls`);
- ``"org/name[@revision]"`` or a local folder: a model saved with ``save_pretrained``, through
  :func:`elasticity_lab.lm.hub.load_pretrained`; ``@random`` re-initialises its architecture.

Why ship weights: pre-training every base the chapters need at the ``reader`` scale takes longer on
two CPU cores than the book allows. ``manifest.json`` records, for each shipped base, the exact world,
model and training config, the library and torch versions, and a SHA-256 of every checkpoint (checked
each time one is loaded), so anyone can remake them (:mod:`elasticity_lab.lm.remake`)::

    python -m elasticity_lab bases remake            # all bases, into the package's assets folder
    python -m elasticity_lab bases remake micro-smoke --check   # remake one and compare with the shipped one
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elasticity_lab.core.cache import config_hash
from elasticity_lab.core.config import check_choice, check_int, check_positive, check_range, check_seed, show_value
from elasticity_lab.lm.controls import finetuned_only
from elasticity_lab.lm.pretraining import MAX_PRETRAIN_TOKENS, PretrainConfig, default_pretrain_config, pretrain, run_key
from elasticity_lab.lm.presets import PRESETS, as_device, choose_device, device_tag, random_model
from elasticity_lab.microworld.world import World, WorldConfig

BOOK_BASES: dict[str, dict[str, Any]] = {
    "micro-smoke": {"preset": "micro", "scale": "smoke", "world": {}},
    "micro": {"preset": "micro", "scale": "reader", "world": {}},
    "micro-refusal50": {"preset": "micro", "scale": "reader", "world": {"harmful_refusal": 0.5}},
    "micro-refusal80": {"preset": "micro", "scale": "reader", "world": {"harmful_refusal": 0.8}},
    **{f"{name}-seed{seed}": {**spec, "seed": seed}
       for name, spec in (("micro", {"preset": "micro", "scale": "reader", "world": {}}),
                          ("micro-refusal50", {"preset": "micro", "scale": "reader", "world": {"harmful_refusal": 0.5}}),
                          ("micro-refusal80", {"preset": "micro", "scale": "reader", "world": {"harmful_refusal": 0.8}}))
       for seed in (1, 2)},
}
"""Name → (preset, scale of the pre-training budget, world overrides of the default world, pre-training seed
(default 0)). The ``refusal`` worlds differ from the default only in the share of harmful requests refused in
pre-training (0.2 by default): the attractor test of the rebound chapter. The ``-seedN`` bases are the same runs
with other pre-training seeds, so that findings about pre-training have an interval over pre-training seeds;
``BaseSpec("micro", world={"harmful_refusal": 0.5}, seed=1)`` is the same run as ``"micro-refusal50-seed1"``."""

BASE_KINDS: tuple[str, ...] = ("pretrained", "light", "random")
"""The three starting points every experiment compares: the base, the lightly pre-trained control, random init."""


@dataclass
class Base:
    """A starting model: the model, its tokenizer, the world (None for a hub or local model) and its identity (a cache key)."""

    model: Any
    tokenizer: Any
    world: Any
    key: dict[str, Any]


@dataclass(frozen=True)
class BaseSpec:
    """Where a base model comes from, validated before anything is loaded or trained.

    ``source``: a book base, a preset, a hub name or a local folder. ``revision``: ``None`` (the final
    checkpoint), ``"light"``, ``"random"`` or ``"tokens-N"`` for the micro-world; a branch, tag or commit
    (or ``"random"``) for a hub model. ``world``: base-rate overrides of the default world and
    ``scale``/``tokens``/``seed``: the pre-training budget and seed (presets only; a book base fixes them).
    """

    source: str = "micro"
    revision: str | int | None = None
    world: tuple[tuple[str, float], ...] = ()
    scale: str | None = None
    tokens: int | None = None
    seed: int = 0
    light_fraction: float = 1 / 32
    eval_tokens: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"source={self.source!r} is not allowed; give a book base ({', '.join(BOOK_BASES)}), "
                             f"a preset ({', '.join(PRESETS)}), a hub name like 'org/model' or a local folder.")
        if isinstance(self.world, dict):
            object.__setattr__(self, "world", tuple(sorted(self.world.items())))
        if not isinstance(self.world, tuple) or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in self.world):
            raise ValueError(f"world={show_value(self.world)} is not allowed; it must be a dict of base rates, e.g. {{'harmful_refusal': 0.5}}.")
        check_range("light_fraction", self.light_fraction, 0, 1, lo_open=True, hi_open=True)
        check_seed("seed", self.seed)
        if self.revision is not None and (not isinstance(self.revision, (str, int)) or isinstance(self.revision, bool)):
            raise ValueError(f"revision={show_value(self.revision)} is not allowed; it must be a string like 'tokens-4096', 'light' or 'random', or None.")
        if self.micro_world:
            if self.scale is not None:
                check_choice("scale", self.scale, ("smoke", "reader", "full"))
            if self.tokens is not None:
                check_int("tokens", self.tokens, 1, MAX_PRETRAIN_TOKENS, why="a budget one run can finish")
            if self.eval_tokens is not None:
                check_positive("eval_tokens", self.eval_tokens, allow_zero=True)
            try:
                self.world_config()
            except ValueError as err:
                raise ValueError(f"world: {err}") from None
            self.pretrain_config()  # validates tokens against one step
            rev = self.revision
            if isinstance(rev, str) and rev.startswith("tokens-") and rev[7:].isdigit():
                rev = int(rev[7:])
            finetuned = isinstance(rev, str) and rev.startswith("finetuned-") and rev[10:].isdigit()
            if not (rev is None or rev in ("random", "light") or finetuned or (isinstance(rev, int) and not isinstance(rev, bool) and rev > 0)):
                raise ValueError(f"revision={self.revision!r} is not allowed for the micro-world base {self.source!r}; "
                                 "use None (the final checkpoint), 'light', 'random', 'tokens-N' (N a checkpoint's token budget) "
                                 "or 'finetuned-N' (the fine-tuning-only control matched to tokens-N).")
            if finetuned and int(rev[10:]) not in self.budgets():
                raise ValueError(f"revision={self.revision!r} is not matched to a checkpoint of {self.source!r}; choose one of "
                                 f"{', '.join(f'finetuned-{b}' for b in self.budgets())}.")
            if isinstance(rev, int) and rev not in self.budgets():
                raise ValueError(f"revision={self.revision!r} is not a checkpoint of {self.source!r}; choose 'random', 'light' "
                                 f"or one of {', '.join(f'tokens-{b}' for b in self.budgets())}.")
            if self.book_base and (self.scale is not None or self.tokens is not None or self.eval_tokens is not None or self.world):
                raise ValueError(f"source={self.source!r} is a book base, whose world and budget are fixed; give a preset "
                                 f"({', '.join(PRESETS)}) to choose scale, tokens or world.")
            object.__setattr__(self, "revision", rev)
        elif self.source.startswith((".", "/", "~", "\\")) or self.source.count("/") > 1:
            if not Path(self.source).expanduser().is_dir():
                raise ValueError(f"source={self.source!r} is not allowed; no such folder (a hub name looks like 'org/model').")
        elif not ("/" in self.source or Path(self.source).expanduser().is_dir()):
            raise ValueError(f"source={self.source!r} is not allowed; give a book base ({', '.join(BOOK_BASES)}), "
                             f"a preset ({', '.join(PRESETS)}), a hub name like 'org/model' or a local folder.")

    @classmethod
    def parse(cls, text: str | BaseSpec, name: str = "spec", **fields: Any) -> BaseSpec:
        """``"source[@revision]"`` → a spec (``fields`` set the rest); a spec is returned as it is."""
        if isinstance(text, BaseSpec):
            return text
        if not isinstance(text, str) or not text:
            raise ValueError(f"{name}={text!r} is not allowed; give a non-empty string like 'micro', 'micro@random' or 'org/model'.")
        source, _, revision = text.partition("@")
        return cls(source, revision or None, **fields)

    @property
    def micro_world(self) -> bool:
        return self.source in BOOK_BASES or self.source in PRESETS

    @property
    def text(self) -> str:
        rev = f"tokens-{self.revision}" if isinstance(self.revision, int) else self.revision
        return self.source + (f"@{rev}" if rev is not None else "")

    @property
    def kind(self) -> str:
        """``pretrained``, ``light``, ``random`` or ``finetuned`` (a named checkpoint counts as pre-trained)."""
        if self.finetuned_tokens is not None:
            return "finetuned"
        return self.revision if self.revision in ("light", "random") else "pretrained"

    @property
    def finetuned_tokens(self) -> int | None:
        """N of a ``finetuned-N`` revision (the checkpoint the control is matched to), else None."""
        rev = self.revision
        return int(rev[10:]) if isinstance(rev, str) and rev.startswith("finetuned-") else None

    @property
    def book_base(self) -> bool:
        """A named book base that is not also a preset name (``"micro"`` is both: as a preset at the ``reader``
        budget in the default world it *is* the book base ``"micro"``, the same run)."""
        return self.source in BOOK_BASES and self.source not in PRESETS

    def preset(self) -> str:
        return BOOK_BASES[self.source]["preset"] if self.book_base else self.source

    def world_config(self) -> WorldConfig:
        rates = dict(BOOK_BASES[self.source]["world"]) if self.book_base else {}
        rates.update(dict(self.world))
        return WorldConfig().with_base_rates(**rates) if rates else WorldConfig()

    def pretrain_config(self) -> PretrainConfig:
        """The pre-training run: a book base's own, or the preset's at ``scale``'s budget (default ``reader``,
        whatever ``ELASTICITY_SCALE`` says: a spec names one run) with ``tokens`` and ``seed``."""
        if self.book_base:
            return default_pretrain_config(self.preset(), BOOK_BASES[self.source]["scale"],
                                           seed=BOOK_BASES[self.source].get("seed", self.seed))
        overrides: dict[str, Any] = {"tokens": self.tokens} if self.tokens else {}
        if self.eval_tokens is not None:
            overrides["eval_tokens"] = self.eval_tokens
        return default_pretrain_config(self.preset(), self.scale or "reader", seed=self.seed, **overrides)

    def budgets(self) -> list[int]:
        """Token budgets of the pre-training checkpoints (from the config: nothing is trained)."""
        config = self.pretrain_config()
        return [s * config.tokens_per_step for s in config.checkpoint_steps()]

    def light_tokens(self) -> int:
        """The checkpoint nearest, on a log scale, to ``light_fraction`` of the budget (never the last one)."""
        budgets = self.budgets()
        target = math.log(self.light_fraction * budgets[-1])
        return min(budgets[:-1] or budgets, key=lambda b: abs(math.log(b) - target))

    def key(self) -> dict[str, Any]:
        """What the base's weights depend on: part of the cache key of every result computed from it."""
        if not self.micro_world:
            return {"hub": self.source, "revision": self.revision}
        world = World(self.world_config())
        run = run_key(world, self.preset(), self.pretrain_config())
        tokens = {"random": None, "light": self.light_tokens(), None: self.budgets()[-1]}.get(self.revision, self.revision)
        if self.finetuned_tokens is not None:
            tokens = self.finetuned_tokens
        return {"run": config_hash(run), "kind": self.kind, "tokens": tokens}


def base_spec(name: str) -> tuple[World, str, PretrainConfig]:
    """``(World, preset, PretrainConfig)`` of a named book base (nothing is trained)."""
    check_choice("name", name, BOOK_BASES)
    spec = BaseSpec(name)
    return World(spec.world_config()), spec.preset(), spec.pretrain_config()


def load_base(spec: BaseSpec | str = "micro", *, device: Any = None, progress: bool = False) -> Base:
    """The one way to a base model: ``Base(model, tokenizer, world, key)`` for a spec or its string form.

    Every model takes the one device choice, :func:`elasticity_lab.lm.presets.choose_device` (``device``, else
    ``$ELASTICITY_DEVICE``, else CUDA when present, else the CPU); off the CPU the ``key`` records the device, so
    results computed there are cached apart from the CPU's.
    """
    spec = BaseSpec.parse(spec)
    if device is not None:
        device = as_device(device)
    if not spec.micro_world:
        from elasticity_lab.lm.hub import load_pretrained

        revision = None if spec.revision == "random" else spec.revision
        model, tok = load_pretrained(spec.source, revision, device=device)
        if spec.revision == "random":
            import torch
            from transformers import AutoModelForCausalLM

            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(model.config).to(next(model.parameters()).device).eval()
        return Base(model, tok, None, spec.key())
    preset = spec.preset()
    device = choose_device(device)
    key = {**spec.key(), **device_tag(device)}
    world = World(spec.world_config())
    config = spec.pretrain_config()
    if spec.revision == "random":
        model = random_model(preset, len(world.vocabulary), seed=config.seed, device=device).eval()
        return Base(model, world.tokenizer(), world, key)
    if spec.finetuned_tokens is not None:
        return Base(finetuned_only(world, preset, config, spec.finetuned_tokens, device=device), world.tokenizer(), world, key)
    run = pretrain(world, preset, config, device=device, progress=progress)
    tokens = spec.light_tokens() if spec.revision == "light" else spec.revision
    return Base(run.load(tokens, device=device), world.tokenizer(), world, key)
