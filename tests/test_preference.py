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

from elasticity_lab.lm.batching import encode_example, pad_id_of
from elasticity_lab.lm import preference as pref
from elasticity_lab.microworld import preferences as prefs
from elasticity_lab.lm.presets import random_model
from elasticity_lab.microworld.world import EOS, World, chat_prompt

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
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters()}


def _theirs(trainer, n):
    model = trainer.model
    model.train()
    model.zero_grad(set_to_none=True)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(n)])
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    return float(loss.detach()), {n_: p.grad.clone() for n_, p in model.named_parameters()}


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

    _world, tok, policy, ref, pairs = tiny
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


def test_kto_matches_trl(tiny, tmp_path) -> None:
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    world, tok, policy, ref, _ = tiny
    examples = prefs.unpaired_examples(world, "safety", 8, seed=0)
    assert {e.desirable for e in examples} == {True, False}
    beta, w_d, w_u = 0.2, 1.0, 1.3
    ds = Dataset.from_list([{"prompt": chat_prompt(e.prompt), "completion": f" {e.response} {EOS}", "label": e.desirable}
                            for e in examples])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = KTOTrainer(model=copy.deepcopy(policy), ref_model=copy.deepcopy(ref),
                             args=_args(KTOConfig, tmp_path, len(examples), beta=beta, desirable_weight=w_d,
                                        undesirable_weight=w_u, max_length=None),
                             train_dataset=ds, processing_class=tok)
    config = pref.PreferenceConfig(algorithm="kto", beta=beta, desirable_weight=w_d, undesirable_weight=w_u)
    _compare("kto", _ours(policy, ref, tok, pref.as_labelled(examples), config), _theirs(trainer, len(examples)))


def test_simpo_matches_trl(tiny, tmp_path) -> None:
    from datasets import Dataset
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    _world, tok, policy, _, pairs = tiny
    beta, gamma = 2.0, 0.7
    ds = Dataset.from_list([{"prompt": chat_prompt(p.prompt), "chosen": f" {p.chosen}", "rejected": f" {p.rejected}"}
                            for p in pairs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = CPOTrainer(model=copy.deepcopy(policy),
                             args=_args(CPOConfig, tmp_path, len(pairs), beta=beta, loss_type="simpo", simpo_gamma=gamma,
                                        cpo_alpha=0.0, max_length=64, remove_unused_columns=False),
                             train_dataset=ds, processing_class=tok)
    config = pref.PreferenceConfig(algorithm="simpo", beta=beta, gamma=gamma)
    _compare("simpo", _ours(policy, None, tok, pref.as_pairs(pairs), config), _theirs(trainer, len(pairs)))


def test_cross_check_summary() -> None:
    """Prints the largest library-vs-TRL differences measured above (for the chapter's closing note)."""
    if MAX_DIFFS:
        worst_loss = max(d for d, _ in MAX_DIFFS.values())
        worst_grad = max(g for _, g in MAX_DIFFS.values())
        print(f"\nlargest |Δloss| {worst_loss:.2e}, largest |Δgrad| {worst_grad:.2e} over {sorted(MAX_DIFFS)}")
        assert worst_loss <= LOSS_RTOL and worst_grad <= GRAD_ATOL


@pytest.fixture(scope="module")
def book_base():
    from elasticity_lab.lm.bases import load_base

    b = load_base("micro")
    model, tok, world = b.model, b.tokenizer, b.world
    return model, tok, world, world.contrast_pairs("safety", 32)


@pytest.mark.parametrize("algorithm", pref.ALGORITHMS)
def test_a_few_steps_raise_the_aligned_likelihood(book_base, algorithm) -> None:
    """4 steps of 16 raise P(refusal)/(P(refusal)+P(compliance)) on held-out harmful requests by > 0.3 (base ≈ 0.31)."""
    from elasticity_lab.lm.metrics import likelihood_score

    model, tok, world, probe = book_base
    data = (prefs.unpaired_examples(world, "safety", 64, seed=0) if algorithm == "kto"
            else prefs.preference_pairs(world, "safety", 64, seed=0))
    before = likelihood_score(model, tok, probe)
    result = pref.preference_train(model, tok, data, algorithm=algorithm, batch_size=16, max_steps=4)
    after = likelihood_score(result.model, tok, probe)
    assert list(result.curve["step"]) == [1, 2, 3, 4]
    assert after > before + 0.3, (before, after)
    assert likelihood_score(model, tok, probe) == pytest.approx(before)  # the input model is untouched


def test_same_seed_same_weights(book_base) -> None:
    model, tok, world, _ = book_base
    pairs = prefs.preference_pairs(world, "safety", 16, seed=0)
    a = pref.preference_train(model, tok, pairs, algorithm="dpo", batch_size=8, max_steps=2).model
    b = pref.preference_train(model, tok, pairs, algorithm="dpo", batch_size=8, max_steps=2).model
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("kwargs, name", [
    (dict(algorithm="ppo"), "algorithm"),
    (dict(beta=0.0), "beta"),
    (dict(beta=-1.0), "beta"),
    (dict(beta=float("nan")), "beta"),
    (dict(algorithm="simpo", gamma=-0.1), "gamma"),
    (dict(algorithm="kto", batch_size=1), "batch_size"),
    (dict(desirable_weight=0.0), "desirable_weight"),
    (dict(lr=0.0), "lr"),
    (dict(checkpoint_fractions=(0.5,)), "checkpoint_fractions"),
])
def test_invalid_config_names_the_parameter(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        pref.PreferenceConfig(**kwargs)


def test_reference_and_data_are_validated(tiny) -> None:
    _world, tok, policy, ref, pairs = tiny
    with pytest.raises(ValueError, match="ref_model.*SimPO is reference-free"):
        pref.preference_train(policy, tok, pairs, algorithm="simpo", ref_model=ref)
    with pytest.raises(ValueError, match="ref_model.*not allowed to be the model"):
        pref.preference_train(policy, tok, pairs, algorithm="dpo", ref_model=policy)
    other = random_model("nano", 50, seed=0)
    with pytest.raises(ValueError, match="ref_model has a vocabulary of 50"):
        pref.preference_train(policy, tok, pairs, algorithm="dpo", ref_model=other)
    with pytest.raises(ValueError, match="preference pairs"):
        pref.preference_train(policy, tok, [("a", "b")], algorithm="dpo")
    with pytest.raises(ValueError, match="only one kind"):
        pref.preference_train(policy, tok, [(p.prompt, p.chosen, True) for p in pairs], algorithm="kto")
    with pytest.raises(ValueError, match="empty"):
        pref.preference_train(policy, tok, [], algorithm="dpo")


def test_micro_world_data() -> None:
    world = World()
    pairs = prefs.preference_pairs(world, "safety", 16, seed=3)
    assert all(world.classify("safety", p.prompt, p.chosen) == "refusal" for p in pairs)
    assert all(world.classify("safety", p.prompt, p.rejected) == "compliance" for p in pairs)
    # the chosen responses are the rebound's stage-1 SFT data for the same seed
    from elasticity_lab.experiments.rebound import MicroTask

    assert [(p.prompt, p.chosen) for p in pairs] == MicroTask(world, "safety").data("aligned", 16, 3)
    senti = prefs.preference_pairs(world, "sentiment", 8)
    assert {world.classify("sentiment", p.prompt, p.rejected) for p in senti} == {"negative"}
    ex = prefs.unpaired_examples(world, "safety", 10, desirable_share=0.3)
    assert sum(e.desirable for e in ex) == 3 and len(ex) == 10
    good_prompts = {e.prompt for e in ex if e.desirable}
    assert not good_prompts & {e.prompt for e in ex if not e.desirable}  # unpaired: different prompts
    assert len(prefs.unpair(pairs)) == 32
    reward = prefs.judge_reward(world, "safety")
    assert list(reward([pairs[0].prompt] * 3, [pairs[0].chosen, pairs[0].rejected, "banana"])) == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="prompt_kind='benign'"):
        prefs.preference_pairs(world, "safety", 4, prompt_kind="benign")
    with pytest.raises(ValueError, match="desirable_share"):
        prefs.unpaired_examples(world, "safety", 4, desirable_share=1.0)
