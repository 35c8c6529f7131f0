"""The micro-world's word-level tokenizer, as a ``transformers`` fast tokenizer.

Why word level: every word of the world is one token, so a token tree of the data is a tree of
words, a behaviour is decided at a known position (the first response token), and entropies per
token mean the same thing for the source and for the model. Wrapping it as a
``PreTrainedTokenizerFast`` gives the micro-world the same interface (``save_pretrained``,
``from_pretrained``, ``apply_chat_template``) as a hub model, so experiments have one code path.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from elasticity_lab.microworld.vocab import ASSISTANT, BOS, EOS, PAD, SPECIAL_TOKENS, UNK, USER

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %} <user> {{ message['content'] }} <assistant>"
    "{% elif message['role'] == 'assistant' %} {{ message['content'] }} {{ eos_token }}{% endif %}"
    "{% endfor %}"
)
"""``<bos> <user> PROMPT <assistant> RESPONSE <eos>``: the same text as :func:`elasticity_lab.microworld.world.chat_text`."""


def build_tokenizer(vocabulary: Sequence[str], model_max_length: int = 128) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over ``vocabulary`` (ids in its order; specials first)."""
    if tuple(vocabulary[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise ValueError(f"vocabulary must start with the special tokens {SPECIAL_TOKENS}.")
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError("vocabulary is not allowed to contain duplicates.")
    core = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(vocabulary)}, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[USER, ASSISTANT],
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok
