"""Language modelling is compression: code lengths, an exact arithmetic coder, and baselines.

A model that assigns probability p to the next token can encode it in -log2 p bits, and an
arithmetic coder achieves that total to within 2 bits for a whole sequence. So the model's
training loss (cross-entropy, in bits) *is* its compressed size per token. This module makes that
concrete with code you can run: Shannon code lengths, a lossless arithmetic coder driven by any
next-token model, adaptive n-gram models, a Markov source whose entropy rate is known exactly,
and general-purpose compressors for comparison.
"""

from __future__ import annotations

import bz2
import lzma
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from elasticity_lab.core.config import check_int, check_positive, check_seed, show_value
from elasticity_lab.info.measures import check_distribution, cross_entropy, entropy

ProbFn = Callable[[Sequence[int]], np.ndarray]
"""A next-token model: given the tokens so far, the probabilities of every token id."""

__all__ = [
    "AdaptiveNGram",
    "ArithmeticCode",
    "MarkovSource",
    "arithmetic_decode",
    "arithmetic_encode",
    "baseline_compressed_bits",
    "cross_entropy_bits",
    "entropy_bits",
    "model_code_length_bits",
    "per_token_code_lengths",
    "compression_table",
    "zen_of_python",
    "shannon_code_lengths",
]


def shannon_code_lengths(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ideal code length -log2 p_i in bits for every symbol (inf where p_i = 0)."""
    arr = check_distribution("p", p)
    with np.errstate(divide="ignore"):
        return -np.log2(arr)


def entropy_bits(p: Sequence[float] | np.ndarray) -> float:
    """Shannon entropy H(p) in bits, after checking ``p`` is a distribution: the shortest expected code length any code can reach."""
    return entropy(check_distribution("p", p))


def cross_entropy_bits(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Expected code length in bits when data from ``p`` is coded with a code built for ``q``, after checking both.

    Equals H(p) + KL(p||q): a wrong model costs exactly its KL divergence in extra bits. Infinite
    if q gives probability 0 to a symbol that p can emit.
    """
    return cross_entropy(check_distribution("p", p), check_distribution("q", q))


def per_token_code_lengths(tokens: Sequence[int], model: ProbFn) -> np.ndarray:
    """-log2 p(token_i | tokens before i) for every position: what each token costs under ``model``."""
    tokens = [int(t) for t in tokens]
    out = np.empty(len(tokens))
    for i, tok in enumerate(tokens):
        p = np.asarray(model(tokens[:i]), dtype=np.float64)
        _check_token(tok, p, i)
        out[i] = -math.log2(p[tok])
    return out


def model_code_length_bits(tokens: Sequence[int], model: ProbFn) -> float:
    """Total -log2 p(token | prefix) over a sequence: the ideal compressed size under ``model``."""
    return float(per_token_code_lengths(tokens, model).sum())


# --------------------------------------------------------------------------- arithmetic coding


@dataclass(frozen=True)
class ArithmeticCode:
    """An arithmetic code: the bit string and the number of tokens it decodes to."""

    bits: str
    n_tokens: int

    @property
    def n_bits(self) -> int:
        return len(self.bits)


def _quantize(p: np.ndarray, precision: int, position: int) -> np.ndarray:
    """Integer frequencies summing to 2**precision, every symbol with p > 0 getting at least 1.

    With 48 bits of precision the quantized probabilities differ from the model's by ~1e-14
    relative, far below a thousandth of a bit per token.
    """
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"model returned an invalid distribution at position {position}; "
                         "it must return finite, non-negative probabilities with a positive sum.")
    total = 1 << precision
    if total < p.size:  # each symbol needs a frequency of at least 1 out of 2**precision
        need = max(1, (p.size - 1).bit_length())
        raise ValueError(f"precision={precision} is not allowed for a vocabulary of {p.size}; "
                         f"2**precision must be at least the vocabulary, so precision >= {need}.")
    p = p / p.sum()
    freq = np.floor(p * (total - p.size)).astype(np.int64)
    freq[p > 0] = np.maximum(freq[p > 0], 1)
    # give the rounding remainder to the most likely symbol so the total is exact
    freq[int(np.argmax(p))] += total - int(freq.sum())
    return freq


MAX_PRECISION = 62
"""Frequencies are int64: 2**precision must fit."""


def _check_coder(model: ProbFn, precision: int) -> None:
    if not callable(model):
        raise ValueError(f"model={model!r} is not allowed; it must be a function from a prefix (list of ids) to probabilities.")
    check_int("precision", precision, 1, MAX_PRECISION, why="bits of the coder's integer frequencies")


def _token_list(tokens: Sequence[int]) -> list[int]:
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, (Sequence, np.ndarray)):
        raise ValueError(f"tokens={show_value(tokens)} is not allowed; it must be a sequence of token ids (integers >= 0).")
    for i, t in enumerate(tokens):
        check_int(f"tokens[{i}]", t, 0, why="a token id")
    return [int(t) for t in tokens]


def _check_token(tok: int, p: np.ndarray, position: int) -> None:
    if not 0 <= tok < p.size:
        raise ValueError(f"tokens[{position}]={tok} is not allowed; it must be a token id from 0 to {p.size - 1} (the model's vocabulary).")
    if p[tok] <= 0:
        raise ValueError(
            f"token {tok} at position {position} has probability 0 under the model; "
            "an arithmetic coder cannot encode it (smooth the model, e.g. add-alpha counts)."
        )


def arithmetic_encode(tokens: Sequence[int], model: ProbFn, *, precision: int = 48) -> ArithmeticCode:
    """Encode ``tokens`` losslessly with the next-token probabilities of ``model``.

    Exact big-integer arithmetic: the final interval has width prod(q_i), so the shortest binary
    fraction inside it has at most -log2 prod(q_i) + 2 bits. Decoding needs the same model and
    the number of tokens.
    """
    _check_coder(model, precision)
    tokens = _token_list(tokens)
    low, width, scale_bits = 0, 1, 0  # the interval [low, low + width) / 2**scale_bits
    for i, tok in enumerate(tokens):
        p = np.asarray(model(tokens[:i]), dtype=np.float64)
        _check_token(tok, p, i)
        freq = _quantize(p, precision, i)
        cum = int(freq[:tok].sum())
        low = (low << precision) + width * cum
        width = width * int(freq[tok])
        scale_bits += precision
    if not tokens:
        return ArithmeticCode("", 0)
    # shortest n-bit number c with low <= c * 2**(scale - n) < low + width
    n = max(scale_bits - width.bit_length(), 0)
    while True:
        shift = scale_bits - n
        c = -((-low) >> shift) if shift >= 0 else low << -shift  # ceil(low / 2**shift)
        if (c << shift if shift >= 0 else c >> -shift) < low + width:
            break
        n += 1
    bits = format(c, f"0{n}b") if n > 0 else ""
    return ArithmeticCode(bits, len(tokens))


def arithmetic_decode(code: ArithmeticCode, model: ProbFn, *, precision: int = 48) -> list[int]:
    """Invert :func:`arithmetic_encode`, given the same ``model`` and ``precision``."""
    if not isinstance(code, ArithmeticCode):
        raise ValueError(f"code={show_value(code)} is not allowed; it must be the ArithmeticCode that arithmetic_encode returned.")
    if not isinstance(code.bits, str) or set(code.bits) - {"0", "1"}:
        raise ValueError(f"code.bits={show_value(code.bits)} is not allowed; it must be a string of '0' and '1'.")
    check_int("code.n_tokens", code.n_tokens, 0)
    _check_coder(model, precision)
    n = code.n_bits
    value = int(code.bits, 2) if n else 0
    tokens: list[int] = []
    low, width, scale_bits = 0, 1, 0
    for i in range(code.n_tokens):
        p = np.asarray(model(tokens), dtype=np.float64)
        freq = _quantize(p, precision, i)
        cum = np.concatenate([[0], np.cumsum(freq)])
        low <<= precision
        scale_bits += precision
        # the code point, on the current scale: value * 2**(scale - n)
        point = value << (scale_bits - n) if scale_bits >= n else value >> (n - scale_bits)
        target = (point - low) // width
        tok = int(np.searchsorted(cum, target, side="right") - 1)
        tokens.append(tok)
        low += width * int(cum[tok])
        width *= int(freq[tok])
    return tokens


# --------------------------------------------------------------------------- models and sources


class AdaptiveNGram:
    """An order-k n-gram model with add-alpha counts, learnt from the prefix it is asked about.

    Because it only ever uses tokens already seen, an encoder and a decoder that share it stay in
    step: this is a real adaptive compressor (like PPM's simplest form), not a model fitted on
    the answer. Calls with a prefix one token longer than the last update incrementally.
    """

    def __init__(self, vocab_size: int, order: int = 1, alpha: float = 0.5) -> None:
        check_int("vocab_size", vocab_size, 1)
        check_int("order", order, 0)
        check_positive("alpha", alpha)
        self.vocab_size, self.order, self.alpha = int(vocab_size), int(order), float(alpha)
        self._reset()

    def _reset(self) -> None:
        self._counts: dict[tuple[int, ...], np.ndarray] = {}
        self._seen: list[int] = []

    def _context(self, prefix: Sequence[int]) -> tuple[int, ...]:
        return tuple(prefix[len(prefix) - self.order :]) if self.order else ()

    def __call__(self, prefix: Sequence[int]) -> np.ndarray:
        prefix = list(prefix)
        if prefix[: len(self._seen)] != self._seen:
            self._reset()
        for i in range(len(self._seen), len(prefix)):
            ctx = self._context(prefix[:i])
            self._counts.setdefault(ctx, np.zeros(self.vocab_size))[prefix[i]] += 1
            self._seen.append(prefix[i])
        counts = self._counts.get(self._context(prefix))
        smoothed = (counts if counts is not None else 0) + np.full(self.vocab_size, self.alpha)
        return smoothed / smoothed.sum()


MAX_SOURCE_VOCAB = 4096
MAX_SAMPLE = 10**6


class MarkovSource:
    """A first-order Markov chain over ``vocab_size`` tokens with a known entropy rate.

    Rows are drawn from a Dirichlet with the given concentration (smaller: more predictable), so
    the exact entropy rate H = sum_i pi_i H(P_i) is the floor any compressor can approach.
    """

    def __init__(self, vocab_size: int = 16, concentration: float = 0.3, seed: int = 0) -> None:
        check_int("vocab_size", vocab_size, 1, MAX_SOURCE_VOCAB, why="its transition matrix is vocab_size²")
        check_positive("concentration", concentration)
        check_seed("seed", seed)
        rng = np.random.default_rng(seed)
        self.vocab_size = int(vocab_size)
        self.transition = rng.dirichlet(np.full(self.vocab_size, concentration), size=self.vocab_size)
        # smooth away exact zeros so every model here can code every sequence
        self.transition = (self.transition + 1e-12) / (self.transition + 1e-12).sum(axis=1, keepdims=True)
        evals, evecs = np.linalg.eig(self.transition.T)
        pi = np.real(evecs[:, np.argmin(np.abs(evals - 1))])
        self.stationary = pi / pi.sum()

    def __call__(self, prefix: Sequence[int]) -> np.ndarray:
        """The true next-token distribution (stationary at the start)."""
        return self.transition[prefix[-1]] if len(prefix) else self.stationary

    def sample(self, n: int, seed: int = 0) -> list[int]:
        """``n`` tokens from the chain, started from its stationary distribution."""
        check_int("n", n, 0, MAX_SAMPLE, why="a sample drawn token by token")
        check_seed("seed", seed)
        rng = np.random.default_rng(seed)
        out: list[int] = []
        for _ in range(n):
            out.append(int(rng.choice(self.vocab_size, p=self(out))))
        return out

    def entropy_rate_bits(self) -> float:
        """Bits per token of the source: no lossless code can average fewer on long samples."""
        row_h = [entropy_bits(row) for row in self.transition]
        return float(np.dot(self.stationary, row_h))


def zen_of_python() -> str:
    """*The Zen of Python*, a short real English text that ships with every Python (offline)."""
    import codecs
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import this  # importing it prints the Zen once; we only want the text
    return codecs.decode(this.s, "rot13")


def baseline_compressed_bits(data: bytes) -> dict[str, int]:
    """Compressed sizes in bits from general-purpose compressors at their strongest settings."""
    return {
        "zlib": 8 * len(zlib.compress(data, 9)),
        "bz2": 8 * len(bz2.compress(data, 9)),
        "lzma": 8 * len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
    }


def compression_table(
    concentrations: Sequence[float] = (0.1, 0.3, 1.0),
    *,
    n_tokens: int = 2000,
    vocab_size: int = 16,
    orders: Sequence[int] = (0, 1, 2),
    seed: int = 0,
) -> "pd.DataFrame":
    """Bits per token of every compressor on samples of Markov sources of varying predictability.

    One row per (source concentration, compressor, position) holding the running mean code length
    up to that position, so that the learning curve of each adaptive model can be drawn, plus the
    source's exact entropy rate. General-purpose compressors appear once per source at the last
    position (they are not incremental).
    """
    import pandas as pd

    check_int("n_tokens", n_tokens, 1, MAX_SAMPLE)
    for c in concentrations:
        check_positive("concentrations", c)
    rows = []
    positions = np.arange(1, n_tokens + 1)
    for ci, conc in enumerate(concentrations):
        source = MarkovSource(vocab_size, conc, seed=seed + ci)
        tokens = source.sample(n_tokens, seed=seed + 1000 + ci)
        h = source.entropy_rate_bits()
        models: dict[str, ProbFn] = {"true source": source}
        models.update({f"adaptive order {k}": AdaptiveNGram(vocab_size, order=k) for k in orders})
        for name, model in models.items():
            running = np.cumsum(per_token_code_lengths(tokens, model)) / positions
            rows += [
                {"concentration": conc, "compressor": name, "position": int(i), "bits_per_token": float(b), "entropy_rate": h}
                for i, b in zip(positions, running)
            ]
        for name, bits in baseline_compressed_bits(bytes(tokens)).items():
            rows.append({"concentration": conc, "compressor": name, "position": n_tokens, "bits_per_token": bits / n_tokens, "entropy_rate": h})
    return pd.DataFrame(rows)
