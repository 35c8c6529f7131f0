"""RLOO with the world's exact judge as the reward: loss, advantages and gradients against TRL's
``RLOOTrainer`` on the same prompts, responses, model and hyper-parameters; a few steps raise the reward
on the book's base; validation errors name the parameter.

The cross-check replaces TRL's sampling by the responses our side uses (both then score, weigh by the
KL penalty, take leave-one-out advantages and the clipped-ratio loss with their own code). With one
update per batch of samples the loss *value* is −mean(A) = 0 on both sides (leave-one-out advantages
sum to zero in each group), so the advantages and the gradients are what is compared. Tolerance 1e-5.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

from elasticity_lab.lm.batching import collate, encode_example, encode_response, pad_id_of
from elasticity_lab.lm import rl
from elasticity_lab.lm.preference import sequence_logps
from elasticity_lab.microworld import preferences as prefs
from elasticity_lab.lm.presets import random_model
from elasticity_lab.microworld.world import World, chat_prompt

ATOL = 1e-5


def test_rloo_advantages_by_hand() -> None:
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    a = rl.rloo_advantages(r, 3)
    assert torch.allclose(a, torch.tensor([1.0, -0.5, -0.5, 1.0, -0.5, -0.5]))
    assert torch.allclose(a.view(-1, 3).sum(1), torch.zeros(2))


def test_rloo_matches_trl(tmp_path) -> None:
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    world = World()
    tok = world.tokenizer()
    ref = random_model("nano", len(world.vocabulary), seed=0, initializer_range=0.2).eval()
    policy = random_model("nano", len(world.vocabulary), seed=1, initializer_range=0.2).eval()
    pairs = prefs.preference_pairs(world, "safety", 3, seed=0)
    k, beta, epsilon = 4, 0.1, 0.2
    prompts = [p.prompt for p in pairs for _ in range(k)]
    responses = [r for p in pairs for r in (p.chosen, p.rejected, "sure .", p.chosen if p is pairs[0] else "sorry")]
    judge = prefs.judge_reward(world, "safety")
    config = rl.RLConfig(k=k, beta=beta, epsilon=epsilon, batch_size=len(pairs))

    # ours
    model = copy.deepcopy(policy).train()
    loss, _ = rl.rloo_step_loss(model, ref, tok, prompts, responses, judge, config)
    loss.backward()
    ours_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    batch = collate([encode_example(tok, p, r) for p, r in zip(prompts, responses)], pad_id_of(tok))
    with torch.no_grad():
        kl = sequence_logps(policy, batch)[0] - sequence_logps(ref, batch)[0]
    ours_adv = rl.rloo_advantages(torch.tensor(judge(prompts, responses), dtype=torch.float32) - beta * kl, k)

    # TRL: the reference is loaded from the policy config's path, the samples are ours
    ref.save_pretrained(tmp_path / "ref")
    trl_policy = copy.deepcopy(policy)
    trl_policy.config._name_or_path = str(tmp_path / "ref")
    raw = {chat_prompt(p.prompt): p.prompt for p in pairs}

    def reward(prompts, completions, **_):
        return judge([raw[p] for p in prompts], completions).tolist()

    ds = Dataset.from_list([{"prompt": chat_prompt(p.prompt)} for p in pairs])
    args = RLOOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=len(prompts), num_generations=k,
                      beta=beta, epsilon=epsilon, max_completion_length=16, report_to=[], use_cpu=True, bf16=False,
                      seed=0, disable_dropout=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = RLOOTrainer(model=trl_policy, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok)
    completion_ids = [encode_response(tok, r) for r in responses]
    trainer._generate_single_turn = lambda prompt_ids, images, fields: completion_ids
    trainer.model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = trainer._generate_and_score_completions([{"prompt": chat_prompt(p)} for p in prompts])
        trainer.model.zero_grad(set_to_none=True)
        trl_loss = trainer.compute_loss(trainer.model, inputs)
    trl_loss.backward()
    trl_grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters()}

    d_adv = float((ours_adv - inputs["advantages"].cpu()).abs().max())
    d_loss = abs(float(loss.detach()) - float(trl_loss.detach()))
    d_grad = max(float((ours_grads[n] - trl_grads[n]).abs().max()) for n in ours_grads)
    scale = max(float(g.abs().max()) for g in ours_grads.values())
    print(f"\nrloo: loss ours {float(loss.detach()):.2e} TRL {float(trl_loss.detach()):.2e} |Δ| {d_loss:.2e}; max |Δadvantage| {d_adv:.2e}; "
          f"max |Δgrad| {d_grad:.2e} (max |grad| {scale:.2e})")
    assert float(ours_adv.abs().max()) > 0.1 and scale > 1e-3  # not a trivial comparison
    assert d_adv <= ATOL and d_loss <= ATOL and d_grad <= ATOL


def test_a_few_steps_raise_the_reward() -> None:
    """12 steps (8 prompts × 4 samples) on the book's base: the held-out refusal rate rises from ≈ 0.14 to > 0.5."""
    from elasticity_lab.lm.bases import load_base
    from elasticity_lab.lm.generation import generate

    b = load_base("micro")
    model, tok, world = b.model, b.tokenizer, b.world
    held = [e.prompt for e in world.prompts("safety", 64)]

    def refusals(m):
        return world.score("safety", held, generate(m, tok, held, max_new_tokens=16, seed=1))

    before = refusals(model)
    result = rl.rl_train(model, tok, prefs.rl_prompts(world, "safety", 96), prefs.judge_reward(world, "safety"), max_steps=12)
    after = refusals(result.model)
    curve = result.curve
    assert list(curve.columns[:3]) == ["step", "prompts", "loss"] and len(curve) == 12
    assert curve["reward"].tail(3).mean() > curve["reward"].head(3).mean()
    assert after > max(0.5, before + 0.3), (before, after)
    assert np.isfinite(curve["kl"]).all()


@pytest.mark.parametrize("kwargs, name", [
    (dict(k=1), "k"),
    (dict(beta=-0.1), "beta"),
    (dict(epsilon=0.0), "epsilon"),
    (dict(temperature=0.0), "temperature"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(batch_size=0), "batch_size"),
])
def test_invalid_config_names_the_parameter(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        rl.RLConfig(**kwargs)


def test_inputs_are_validated() -> None:
    world = World()
    tok = world.tokenizer()
    policy = random_model("nano", len(world.vocabulary), seed=0)
    judge = prefs.judge_reward(world, "safety")
    with pytest.raises(ValueError, match="prompts"):
        rl.rl_train(policy, tok, [], judge)
    with pytest.raises(ValueError, match="reward"):
        rl.rl_train(policy, tok, ["how do i fix the car ?"], "judge")
    with pytest.raises(ValueError, match="ref_model.*beta=0"):
        rl.rl_train(policy, tok, ["how do i fix the car ?"], judge, beta=0.0, ref_model=copy.deepcopy(policy))
    with pytest.raises(ValueError, match="one per response"):
        rl.rl_train(policy, tok, ["how do i fix the car ?"], lambda p, r: [1.0], max_steps=1, k=2, batch_size=1)
