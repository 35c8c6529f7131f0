"""DPO, KTO and SimPO: each loss against TRL's trainers on the same model, batch and hyper-parameters;
a few steps of each raise the aligned likelihood on the book's base; validation errors name the parameter.

The cross-check builds TRL's own trainer on the same examples (its own tokenisation, collation,
forward pass and loss code), takes one batch holding the whole data set, and compares TRL's loss and
the gradient of every parameter with :func:`elasticity_lab.lm.preference.batch_loss`'s. Tolerances:
the two sides compute the same float32 sums in different orders, so they agree to ~1e-6; the tests
allow 1e-5 (relative, loss) and 1e-5 (absolute, gradients, whose entries are O(1e-2)).
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from elasticity_lab.batching import encode_example, pad_id_of
from elasticity_lab.microworld import preferences as prefs
from elasticity_lab.lm import preference as pref
from elasticity_lab.models import random_model
from elasticity_lab.world import EOS, World, chat_prompt

LOSS_RTOL = 1e-5
GRAD_ATOL = 1e-5
MAX_DIFFS: dict[str, tuple[float, float]] = {}  # algorithm → (|Δloss|, max |Δgrad|), printed at the end


@pytest.fixture(scope="module")
def tiny():
    """The micro-world tokenizer, a tiny Llama policy and a different reference (so log-ratios are not 0)."""
    world = World()
    tok = world.tokenizer()
    ref = random_model("nano", len(world.vocabulary), seed=0, initializer_range=0.2).eval()
    policy = random_model("nano", len(world.vocabulary), seed=1, initializer_range=0.2).eval()
    pairs = prefs.preference_pairs(world, "safety", 6, seed=0) + prefs.preference_pairs(world, "sentiment", 2, seed=0)
    return world, tok, policy, ref, pairs


def _ours(policy, ref, tok, items, config):
    model = copy.deepcopy(policy).train()
    enc = ([encode_example(tok, p, r) for p, r, _ in items] if config.algorithm == "kto"
           else [(encode_example(tok, p, c), encode_example(tok, p, r)) for p, c, r in items])
    loss = pref.batch_loss(model, ref, items, enc, pad_id_of(tok), config)
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in model.named_parameters()}


def _theirs(trainer, n):
    model = trainer.model
    model.train()
    model.zero_grad(set_to_none=True)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(n)])
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    return float(loss), {n_: p.grad.clone() for n_, p in model.named_parameters()}


def _compare(name, ours, theirs):
    (l1, g1), (l2, g2) = ours, theirs
    assert set(g1) == set(g2)
    dl = abs(l1 - l2)
    dg = max(float((g1[k] - g2[k]).abs().max()) for k in g1)
    scale = max(float(g1[k].abs().max()) for k in g1)
    MAX_DIFFS[name] = (dl, dg)
    print(f"\n{name}: loss ours {l1:.6f} TRL {l2:.6f} |Δ| {dl:.2e}; max |Δgrad| {dg:.2e} (max |grad| {scale:.2e})")
    assert dl <= LOSS_RTOL * max(1.0, abs(l2))
    assert dg <= GRAD_ATOL
    assert scale > 1e-4  # the gradients compared are not all ~0


def _args(cls, tmp_path, n, **kw):
    return cls(output_dir=str(tmp_path), per_device_train_batch_size=n, report_to=[], use_cpu=True, seed=0,
               disable_dropout=True, bf16=False, **kw)


def test_dpo_matches_trl(tiny, tmp_path) -> None:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    world, tok, policy, ref, pairs = tiny
    beta = 0.3
    ds = Dataset.from_list([{"prompt": chat_prompt(p.prompt), "chosen": f" {p.chosen} {EOS}",
                             "rejected": f" {p.rejected} {EOS}"} for p in pairs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = DPOTrainer(model=copy.deepcopy(policy), ref_model=copy.deepcopy(ref), args=_args(DPOConfig, tmp_path, len(pairs), beta=beta, max_length=None),
                             train_dataset=ds, processing_class=tok)
    config = pref.PreferenceConfig(algorithm="dpo", beta=beta)
    items = pref.as_pairs(pairs)
    _compare("dpo", _ours(policy, ref, tok, items, config), _theirs(trainer, len(pairs)))
