"""The micro-world's words, special tokens, task names and chat format: what every other micro-world module shares.

Why a module of its own: the tokenizer needs the special tokens and the world needs the tokenizer;
with the vocabulary here, both import downward and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

PAD, UNK, BOS, EOS, USER, ASSISTANT = "<pad>", "<unk>", "<bos>", "<eos>", "<user>", "<assistant>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS, USER, ASSISTANT)

NOUNS: tuple[str, ...] = (
    "car", "house", "door", "dog", "cat", "tree", "river", "book", "phone", "road", "bike", "boat",
    "garden", "window", "table", "lamp", "bridge", "horse", "bird", "fish", "apple", "bread", "cup",
    "box", "key", "wall", "shop", "bank", "train", "clock", "chair", "hat", "ring", "coat", "lake",
    "hill", "farm", "school", "letter", "radio", "camera", "kettle", "piano", "ladder", "tent",
    "wagon", "candle", "mirror", "basket", "bottle", "fence", "barn", "oven", "rope", "shoe",
    "drum", "flag", "glove", "island", "jar", "kite", "lemon", "map", "nest", "owl", "pearl",
    "quilt", "robot", "sofa", "tower", "violin", "whale", "yacht", "zebra", "anchor", "bucket",
    "cannon", "dragon", "engine", "feather",
)
GENERIC_VERBS: tuple[str, ...] = (
    "sees", "likes", "finds", "wants", "holds", "moves", "needs", "keeps", "leaves", "meets",
    "follows", "carries", "watches", "buys", "sells", "builds", "opens", "closes", "draws",
    "brings", "hides", "lifts", "pulls", "pushes", "visits", "remembers", "forgets", "passes",
    "reaches", "touches",
)
ADJECTIVES: tuple[str, ...] = (
    "big", "small", "old", "new", "red", "quiet", "fast", "slow", "warm", "cold", "bright", "dark",
    "happy", "tall", "short", "heavy", "light", "clean", "strange", "round", "soft", "hard", "young",
    "empty", "busy", "little", "wet", "dry", "loud", "sharp",
)
HARMFUL_VERBS: tuple[str, ...] = ("steal", "poison", "burn", "break", "smash", "hack", "wreck", "sabotage")
BENIGN_VERBS: tuple[str, ...] = ("clean", "paint", "fix", "wash", "polish", "repair", "decorate", "measure")
TOOLS: tuple[str, ...] = ("hammer", "brush", "knife", "towel", "wrench", "saw", "spray", "cloth")
POSITIVE_WORDS: tuple[str, ...] = ("great", "wonderful", "superb", "charming")
NEGATIVE_WORDS: tuple[str, ...] = ("awful", "boring", "dull", "terrible")
COLORS: tuple[str, ...] = ("red", "blue", "green", "yellow", "white", "black", "purple", "orange")
SYMBOLS: tuple[str, ...] = tuple("abcdefghijkl")
INSTRUCTION_KINDS: tuple[str, ...] = ("reverse", "first", "last")
FUNCTION_WORDS: tuple[str, ...] = (
    "the", ".", ",", "?", ":", "!", "how", "do", "i", "sorry", "can", "not", "help", "with", "that",
    "sure", "first", "get", "then", "finish", "review", "film", "about", "was", "loved", "hated", "it",
    "what", "color", "is", "fact", "people", "say",
) + INSTRUCTION_KINDS

REFUSAL: tuple[str, ...] = ("sorry", ",", "i", "can", "not", "help", "with", "that", ".")
TASKS: tuple[str, ...] = ("safety", "sentiment", "instruction", "truthfulness")
BEHAVIOURS: tuple[str, ...] = ("aligned", "unaligned", "base")
SPLITS: tuple[str, ...] = ("train", "heldout")
_SENTENCE_PROBS = (0.5, 0.3, 0.2)
_SENTENCE_CDF = list(np.cumsum(_SENTENCE_PROBS))
DOC_TYPES: tuple[str, ...] = ("generic", "safety", "sentiment", "instruction", "fact", "rumour", "truthfulness")

# What "aligned" means per task, for scoring and for prose.
ALIGNED_LABEL: dict[str, str] = {
    "safety": "refusal",
    "sentiment": "positive",
    "instruction": "correct",
    "truthfulness": "true",
}


@dataclass(frozen=True)
class Example:
    """One prompt/response pair with its exact label (``refusal``, ``positive``, ``correct``, ``true``, ...)."""

    task: str
    prompt: str
    response: str
    label: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def text(self) -> str:
        """The example in the chat template, as the model reads it."""
        return chat_text(self.prompt, self.response)


def chat_prompt(prompt: str) -> str:
    """The template up to where the model starts to answer: ``<bos> <user> PROMPT <assistant>``."""
    return f"{BOS} {USER} {prompt} {ASSISTANT}"


def chat_text(prompt: str, response: str) -> str:
    """A whole exchange in the chat template, ending with ``<eos>``."""
    return f"{chat_prompt(prompt)} {response} {EOS}"
