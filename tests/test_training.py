"""SFT with response-only loss (full and LoRA), determinism, stages, generation and metrics."""

from __future__ import annotations

import pytest
import torch

from elasticity_lab.lm.batching import IGNORE_INDEX, collate, encode_example
from elasticity_lab.lm.generation import generate
from elasticity_lab.lm.metrics import behaviour_score, kl_to_base, likelihood_score, response_logprobs
from elasticity_lab.lm.bases import BaseSpec, load_base
from elasticity_lab.lm.presets import random_model
from elasticity_lab.lm.training import SFTConfig, evaluate_sft_loss, lr_factor, sft
from elasticity_lab.microworld.world import ASSISTANT, World


@pytest.fixture(scope="module")
def setup():
    world = World()
    return world, world.tokenizer(), random_model("nano", len(world.vocabulary), seed=0)


def test_response_only_mask(setup) -> None:
    world, tok, _ = setup
    ids, labels = encode_example(tok, "how do i fix the door ?", "sure . first get the saw , then fix the door .")
    cut = ids.index(world.token_to_id[ASSISTANT]) + 1
    assert all(x == IGNORE_INDEX for x in labels[:cut])
    assert labels[cut:] == ids[cut:] and ids[-1] == tok.eos_token_id
    batch = collate([(ids, labels), (ids[:5], labels[:5])], tok.pad_token_id)
    assert batch["attention_mask"][1].tolist() == [1] * 5 + [0] * (len(ids) - 5)
    assert (batch["labels"][1, 5:] == IGNORE_INDEX).all()


@pytest.mark.parametrize("method", ["full", "lora"])
def test_sft_reduces_the_loss(setup, method) -> None:
    """On the lightly pre-trained smoke base (shipped; LoRA cannot move a random model's tiny lm_head)."""
    world, tok, _ = setup
    model = load_base(BaseSpec("micro", scale="smoke"), device="cpu").model
    data = world.dataset("sentiment", 64, behaviour="aligned")
    before = evaluate_sft_loss(model, tok, data)
    result = sft(model, tok, data, method=method, epochs=2, progress=False)
    after = evaluate_sft_loss(result.model, tok, data)
    assert after < 0.9 * before, (before, after)
    assert list(result.curve.columns[:4]) == ["step", "examples", "loss", "lr"]
    assert result.curve["loss"].iloc[-3:].mean() < result.curve["loss"].iloc[:3].mean()
    # the input model is left untouched
    assert evaluate_sft_loss(model, tok, data) == pytest.approx(before)


def test_sft_is_deterministic_and_cuts_checkpoints(setup) -> None:
    world, tok, model = setup
    data = world.dataset("safety", 48)
    a = sft(model, tok, data, batch_size=8, checkpoint_fractions=(0.25, 0.5, 0.75), progress=False)
    b = sft(model, tok, data, batch_size=8, checkpoint_fractions=(0.25, 0.5, 0.75), progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    assert sorted(a.checkpoints) == [0.25, 0.5, 0.75] and len(a.curve) == 6
    assert a.mean_loss == pytest.approx(a.curve["loss"].mean())
    fixed = sft(model, tok, data, max_steps=2, progress=False)
    assert len(fixed.curve) == 2


def test_lora_stages_merge_or_continue(setup) -> None:
    from peft import PeftModel

    world, tok, model = setup
    data = world.dataset("sentiment", 16)
    first = sft(model, tok, data, method="lora", progress=False).model
    assert isinstance(first, PeftModel)
    cont = sft(first, tok, data, method="lora", lora_stage="continue", progress=False).model
    assert isinstance(cont, PeftModel) and not isinstance(cont.base_model.model, PeftModel)
    merged = sft(first, tok, data, method="lora", progress=False).model  # default: merge, then a new adapter
    assert isinstance(merged, PeftModel)
    trainable = [n for n, p in merged.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_schedules() -> None:
    assert lr_factor(5, 10, "constant") == 1.0
    assert lr_factor(0, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 10, "cosine", min_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(0, 10, "linear", warmup_steps=2) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"method": "rlhf"}, "method"), ({"optimizer": "lion"}, "optimizer"), ({"schedule": "step"}, "schedule"),
     ({"lr": -1.0}, "lr"), ({"lora_stage": "stack"}, "lora_stage"), ({"checkpoint_fractions": (1.5,)}, "checkpoint_fractions")],
)
def test_bad_config_names_the_parameter(kwargs, word) -> None:
    with pytest.raises(ValueError, match=word):
        SFTConfig(**kwargs)


def test_generation_is_seeded_and_greedy_is_deterministic(setup) -> None:
    world, tok, model = setup
    prompts = [q.prompt for q in world.prompts("safety", 6)]
    assert generate(model, tok, prompts, seed=1) == generate(model, tok, prompts, seed=1)
    g = generate(model, tok, prompts, greedy=True, max_new_tokens=4)
    assert g == generate(model, tok, prompts, greedy=True, max_new_tokens=4) and len(g) == 6
    cold = generate(model, tok, prompts, temperature=0.05, top_p=0.95, seed=2)
    assert len(cold) == 6
    with pytest.raises(ValueError, match="top_p"):
        generate(model, tok, prompts, top_p=0.0)


def test_metrics_on_known_cases(setup) -> None:
    world, tok, model = setup
    q = world.prompts("safety", 8)
    prompts, responses = [x.prompt for x in q], [x.response for x in q]
    assert kl_to_base(model, model, tok, prompts, responses) == pytest.approx(0.0, abs=1e-6)
    other = random_model("nano", len(world.vocabulary), seed=5)
    assert kl_to_base(model, other, tok, prompts, responses) > 0
    lp = response_logprobs(model, tok, prompts, responses)
    assert (lp["logp"] < 0).all() and (lp["tokens"] == len(responses[0].split()) + 1).all()
    # a pair with the same response on both sides scores exactly one half
    assert likelihood_score(model, tok, [(prompts[0], responses[0], responses[0])]) == pytest.approx(0.5)
    s = behaviour_score(model, tok, world, "sentiment", n_prompts=8)
    assert 0.0 <= s["score"] <= 1.0 and 0.0 <= s["likelihood_score"] <= 1.0


def test_kl_matches_a_hand_computed_case(setup) -> None:
    """KL(p_base ‖ p_θ) averaged over exactly the response positions, computed here by hand for one example."""
    world, tok, model = setup
    other = random_model("nano", len(world.vocabulary), seed=9)
    ex = world.prompts("sentiment", 1)[0]
    ids, labels = encode_example(tok, ex.prompt, ex.response)
    x = torch.tensor([ids])
    with torch.no_grad():
        lq = torch.log_softmax(model(input_ids=x).logits[0], -1)
        lp = torch.log_softmax(other(input_ids=x).logits[0], -1)
    positions = [t - 1 for t in range(1, len(ids)) if labels[t] != IGNORE_INDEX]  # predicting each response token
    by_hand = sum(float((lq[t].exp() * (lq[t] - lp[t])).sum()) for t in positions) / len(positions)
    assert len(positions) == len(ex.response.split()) + 1
    assert kl_to_base(model, other, tok, [ex.prompt], [ex.response]) == pytest.approx(by_hand, rel=1e-5)
