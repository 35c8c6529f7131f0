"""Token trees as arrays: node weights, joint weighting by size, pruning, Huffman codes, mass distributions.

The paper (Ji et al., 2025, section 3) reads a data set of responses as a *token tree*: every response
is a root-to-leaf path, an end-of-sequence (EOS) leaf carries the probability of that response, and an
inner node carries the sum of its children. A model that can represent the tree down to depth ``d``
compresses the data by Huffman-coding the leaves of the tree pruned to ``d`` levels.

Why arrays: a tree of 10^6 sequences of 32 tokens has ~10^7 nodes; one Python object per node would
take minutes and gigabytes. Here the sequences are sorted lexicographically once (packed into
``uint64`` keys) and the nodes of depth ``l`` are the runs of rows that share their first ``l`` tokens:
a node starts wherever the first differing position between two neighbouring sorted rows is below
``l``. Every level is then a handful of vectorised numpy passes over the rows.

Units: code lengths, entropies and rates are in **bits** (log base 2); rates are bits per token.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from elasticity_lab.core.config import check_int, check_positive, show_value
from elasticity_lab.info.measures import check_distribution
from elasticity_lab.info.measures import cross_entropy as cross_entropy_bits  # bits is its default unit
from elasticity_lab.info.measures import entropy as entropy_bits

PAD = -1
"""Token id marking 'no token here' in a padded 2-D array: the sequence has ended (its EOS)."""

__all__ = [
    "PAD",
    "TokenTree",
    "PrunedTree",
    "build_token_tree",
    "pad_sequences",
    "joint_weights",
    "entropy_bits",
    "cross_entropy_bits",
    "huffman_code_lengths",
    "canonical_codes",
    "expected_code_length",
    "compression_rate",
    "normalized_compression_rate",
    "chunked_rate",
    "code_table",
    "excess_under_joint_code",
]


# ----------------------------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------------------------


def pad_sequences(sequences: Sequence[Sequence[int]] | np.ndarray, length: int | None = None) -> np.ndarray:
    """A 2-D int array from ragged token-id sequences, padded with ``PAD`` (the end of a response).

    Sequences longer than ``length`` are cut: the tree then simply stops at that depth.
    """
    return _padded(sequences, length, "sequences")


def _integer_ids(name: str, arr: np.ndarray) -> np.ndarray:
    """``arr`` as int64 if its values are whole numbers; otherwise one sentence naming ``name``."""
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise ValueError(f"{name} holds {show_value(arr.ravel()[:6].tolist())}..., which is not allowed; token ids must be integers.")


def _padded(sequences: Sequence[Sequence[int]] | np.ndarray, length: int | None, name: str) -> np.ndarray:
    if length is not None:
        check_int("max_depth", length, 1)
    if isinstance(sequences, np.ndarray) and sequences.ndim == 2:
        arr = sequences if np.issubdtype(sequences.dtype, np.signedinteger) else _integer_ids(name, sequences)
        return arr[:, :length] if length is not None else arr
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, (Sequence, np.ndarray)) \
            or isinstance(sequences, np.ndarray) and sequences.ndim != 2:
        raise ValueError(f"{name}={show_value(sequences)} is not allowed; it must be a 2-D array or a list of token-id sequences.")
    seqs = []
    for i, seq in enumerate(sequences):
        arr = np.asarray(seq) if isinstance(seq, (Sequence, np.ndarray)) and not isinstance(seq, (str, bytes)) else None
        if arr is None or arr.ndim != 1:
            raise ValueError(f"{name}[{i}]={show_value(seq)} is not allowed; each sequence must be a list of token ids "
                             "(for one data set of ragged sequences, wrap it in a list: [[[1, 2], [3]]]).")
        seqs.append(_integer_ids(f"{name}[{i}]", arr) if arr.size else arr.astype(np.int64))
    width = length if length is not None else max((len(s) for s in seqs), default=0)
    out = np.full((len(seqs), width), PAD, dtype=np.int64)
    for i, s in enumerate(seqs):
        n = min(len(s), width)
        out[i, :n] = s[:n]
    return out


def _smallest_int_dtype(max_value: int) -> np.dtype:
    for dt in (np.int8, np.int16, np.int32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _lexsort_rows(tokens: np.ndarray, n_symbols: int) -> np.ndarray:
    """Row order that sorts ``tokens`` (values in ``0..n_symbols-1``) lexicographically.

    Several tokens are packed into one ``uint64`` key (``bits`` bits each), so that 32 binary tokens
    sort as a single key and a 50k vocabulary needs 11 keys instead of 32.
    """
    n, width = tokens.shape
    bits = max(1, int(math.ceil(math.log2(max(n_symbols, 2)))))
    per_key = max(1, 64 // bits)
    keys = []
    for start in range(0, width, per_key):
        key = np.zeros(n, dtype=np.uint64)
        for c in range(start, min(start + per_key, width)):
            key <<= np.uint64(bits)
            key |= tokens[:, c].astype(np.uint64)
        # left-align the last, shorter key so that comparisons stay lexicographic
        key <<= np.uint64(bits * (start + per_key - min(start + per_key, width)))
        keys.append(key)
    if len(keys) == 1:
        return np.argsort(keys[0])  # ties are identical sequences: their order does not matter
    return np.lexsort(keys[::-1])


# ----------------------------------------------------------------------------------------------
# The tree
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrunedTree:
    """The leaves of a token tree cut at ``depth``: nodes of that depth plus EOS leaves above it.

    ``probs[i]`` is data set ``i``'s distribution over the ``M`` leaves (rows sum to 1), the symbols
    that the compression protocol Huffman-codes.
    """

    depth: int
    vocab_size: int
    probs: np.ndarray  # (n_datasets, M)
    leaf_depth: np.ndarray  # (M,) depth of each leaf (< depth only for EOS leaves)
    leaf_node: np.ndarray  # (M,) index of the leaf's node within its level
    dataset_names: tuple[str, ...]
    dataset_sizes: np.ndarray
    tree: "TokenTree" = field(repr=False)

    def leaf_path(self, leaf: int) -> tuple[int, ...]:
        """The tokens from the root to leaf ``leaf`` (an EOS leaf ends early)."""
        return self.tree.path(int(self.leaf_depth[leaf]), int(self.leaf_node[leaf]))

    @property
    def n_leaves(self) -> int:
        """M, the number of leaves after pruning (the paper's normaliser ``log M``)."""
        return int(self.probs.shape[1])

    def joint(self, sizes: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """The leaf distribution of the union of the data sets, each pulling with its size."""
        return joint_weights(self.probs, self.dataset_sizes if sizes is None else sizes)


@dataclass(frozen=True)
class TokenTree:
    """A token tree of one or several data sets, stored level by level as flat arrays.

    Level ``l`` (1..``max_depth``) holds one entry per node of depth ``l``: ``parents[l-1]`` (index of
    the parent node at level ``l-1``; level 0 is the root), ``counts[l-1]`` (``(n_datasets, n_nodes)``
    weighted number of sequences passing through the node) and ``eos[l-1]`` (those ending there).
    ``first_row[l-1]`` points into ``sorted_tokens`` at a row carrying the node's path.
    """

    vocab_size: int
    max_depth: int
    dataset_names: tuple[str, ...]
    dataset_sizes: np.ndarray  # (n_datasets,) total weight of each data set
    parents: list[np.ndarray]
    counts: list[np.ndarray]
    eos: list[np.ndarray]
    first_row: list[np.ndarray]
    sorted_tokens: np.ndarray = field(repr=False)  # (n, width) view; PAD = -1
    root_eos: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def n_datasets(self) -> int:
        return len(self.dataset_names)

    def n_nodes(self, level: int) -> int:
        """Number of nodes at depth ``level`` (1 for the root, level 0)."""
        return 1 if level == 0 else int(self.parents[level - 1].size)

    def node_weights(self, level: int, dataset: int | None = None) -> np.ndarray:
        """p^{D_i}_{lj}: the probability that a response of data set ``i`` passes through node j of depth l.

        Returns ``(n_datasets, n_nodes)``, or one row when ``dataset`` is given.
        """
        self._check_level(level)
        if level == 0:
            w = np.ones((self.n_datasets, 1))
        else:
            w = self.counts[level - 1] / self.dataset_sizes[:, None]
        return w if dataset is None else w[dataset]

    def joint_node_weights(self, level: int, sizes: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """p^D_{lj} = Σ_i p^{D_i}_{lj} |D_i| / Σ_i |D_i|; ``sizes`` defaults to each data set's own size."""
        return joint_weights(self.node_weights(level), self.dataset_sizes if sizes is None else sizes)

    def path(self, level: int, node: int) -> tuple[int, ...]:
        """The tokens on the path from the root to node ``node`` of depth ``level``."""
        self._check_level(level)
        if level == 0:
            return ()
        return tuple(int(t) for t in self.sorted_tokens[self.first_row[level - 1][node], :level])

    def prune(self, depth: int) -> PrunedTree:
        """Cut the tree to its top ``depth`` levels: the leaves are the depth-``depth`` nodes (carrying all
        the mass below them) and the EOS leaves of responses that end higher up."""
        check_positive("depth", depth)
        depth = int(depth)
        if depth > self.max_depth:
            raise ValueError(f"depth={depth} is not allowed; this tree has max_depth={self.max_depth}.")
        blocks, depths, nodes = [], [], []
        if self.root_eos.size and self.root_eos.sum() > 0:
            blocks.append(self.root_eos[:, None])
            depths.append(np.zeros(1, dtype=np.int64))
            nodes.append(np.zeros(1, dtype=np.int64))
        for level in range(1, depth):
            e = self.eos[level - 1]
            keep = np.flatnonzero(e.sum(axis=0) > 0)
            if keep.size:
                blocks.append(e[:, keep])
                depths.append(np.full(keep.size, level))
                nodes.append(keep)
        c = self.counts[depth - 1]
        blocks.append(c)
        depths.append(np.full(c.shape[1], depth))
        nodes.append(np.arange(c.shape[1]))
        probs = np.concatenate(blocks, axis=1) / self.dataset_sizes[:, None]
        return PrunedTree(
            depth=depth,
            vocab_size=self.vocab_size,
            probs=probs,
            leaf_depth=np.concatenate(depths).astype(np.int64),
            leaf_node=np.concatenate(nodes).astype(np.int64),
            dataset_names=self.dataset_names,
            dataset_sizes=self.dataset_sizes,
            tree=self,
        )

    def _check_level(self, level: int) -> None:
        if not 0 <= level <= self.max_depth:
            raise ValueError(f"level={level} is not allowed; it must be in 0..{self.max_depth}.")


def build_token_tree(
    datasets: np.ndarray | Sequence[np.ndarray | Sequence[Sequence[int]]],
    *,
    weights: Sequence[np.ndarray | None] | np.ndarray | None = None,
    names: Sequence[str] | None = None,
    vocab_size: int | None = None,
    max_depth: int | None = None,
) -> TokenTree:
    """Build the token tree of one data set (a 2-D array, ``PAD`` = ended) or of several (a list of them).

    ``weights`` optionally gives each sequence a weight (e.g. a word's frequency), per data set.
    A data set's size |D_i| is its total weight (its number of sequences when unweighted).
    """
    if isinstance(datasets, np.ndarray) and datasets.ndim == 2:
        datasets = [datasets]
        weights = [weights] if weights is not None and not isinstance(weights, list) else weights
    if isinstance(datasets, (str, bytes)) or not isinstance(datasets, (Sequence, np.ndarray)) \
            or isinstance(datasets, np.ndarray) and datasets.ndim != 3:
        raise ValueError(f"datasets={show_value(datasets)} is not allowed; it must be a 2-D array (one data set) "
                         "or a list of data sets, each a list of token-id sequences.")
    if vocab_size is not None:
        check_int("vocab_size", vocab_size, 1)
    arrays = [_padded(d, max_depth, f"datasets[{i}]") for i, d in enumerate(datasets)]
    if not arrays:
        raise ValueError("datasets=[] is not allowed; give at least one data set.")
    width = max(a.shape[1] for a in arrays)
    if width == 0:
        raise ValueError("datasets hold no tokens; every sequence is empty.")
    arrays = [a if a.shape[1] == width else np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=PAD)
              for a in arrays]
    if weights is None:
        weights = [None] * len(arrays)
    if len(weights) != len(arrays):
        raise ValueError(f"weights has {len(weights)} entries but there are {len(arrays)} data sets.")
    n_ds = len(arrays)
    names = tuple(names) if names is not None else tuple(f"D{i}" for i in range(n_ds))
    if len(names) != n_ds:
        raise ValueError(f"names has {len(names)} entries but there are {n_ds} data sets.")

    tokens = np.concatenate(arrays) if n_ds > 1 else arrays[0]
    if tokens.size and tokens.min() < PAD:
        raise ValueError(f"datasets holds token id {int(tokens.min())}, which is not allowed; ids must be >= 0 (or {PAD} for padding).")
    top = int(tokens.max()) if tokens.size else 0
    vocab = int(vocab_size) if vocab_size is not None else top + 1
    if top >= vocab:
        raise ValueError(f"vocab_size={vocab} is too small; found token id {top}.")
    ds_id = np.concatenate([np.full(a.shape[0], i, dtype=np.int64) for i, a in enumerate(arrays)])
    w = np.concatenate(
        [np.ones(a.shape[0]) if wt is None else np.asarray(wt, dtype=float).ravel() for a, wt in zip(arrays, weights)]
    )
    if w.size != tokens.shape[0]:
        raise ValueError(f"weights has {w.size} values for {tokens.shape[0]} sequences, which is not allowed; "
                         "each data set needs one weight per sequence.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights holds {show_value(w[~np.isfinite(w) | (w < 0)][:3].tolist())}, which is not allowed; "
                         "each weight must be a finite number >= 0.")
    # a PAD must only follow other PADs: validity is a prefix
    valid_all = tokens != PAD
    if np.any(valid_all[:, 1:] & ~valid_all[:, :-1]):
        raise ValueError("a token follows a PAD: padding must come at the end of a sequence.")

    small = tokens.astype(_smallest_int_dtype(vocab))
    small += 1  # PAD -> 0 sorts first
    order = _lexsort_rows(small, vocab + 1)
    s = np.ascontiguousarray(small[order].T)  # (width, n): one contiguous row per depth
    ds_sorted = ds_id[order]
    w_sorted = w[order]
    del small

    n = s.shape[1]
    first_diff = np.full(n, width, dtype=np.int64)  # first position where row r differs from row r-1
    if n:
        first_diff[0] = -1
    for c in range(width - 1, -1, -1):
        first_diff[1:][s[c, 1:] != s[c, :-1]] = c

    sizes = np.bincount(ds_id, weights=w, minlength=n_ds).astype(float)
    if np.any(sizes <= 0):
        bad = [names[i] for i in np.flatnonzero(sizes <= 0)]
        raise ValueError(f"data sets {bad} are empty (total weight 0).")
    lengths = (s != 0).sum(axis=0)
    root_eos = np.bincount(ds_sorted[lengths == 0], weights=w_sorted[lengths == 0], minlength=n_ds).astype(float)

    parents, counts, eos, first_row = [], [], [], []
    unweighted = bool(np.all(w_sorted == 1.0))
    prev_node = np.zeros(n, dtype=np.int64)  # node id of every row at the previous level (root = 0)
    all_rows = np.arange(n, dtype=np.int64)

    def tally(node_ids: np.ndarray, mask: np.ndarray | None, n_nodes: int) -> np.ndarray:
        """(n_ds, n_nodes) total weight per data set and node of the rows in ``mask`` (None = all)."""
        ids = node_ids if mask is None else node_ids[mask]
        if n_ds > 1:
            ids = ids * n_ds + (ds_sorted if mask is None else ds_sorted[mask])
        wts = None if unweighted else (w_sorted if mask is None else w_sorted[mask])
        out = np.bincount(ids, weights=wts, minlength=n_nodes * n_ds).astype(float, copy=False)
        return np.ascontiguousarray(out.reshape(n_nodes, n_ds).T)

    for level in range(1, width + 1):
        valid = s[level - 1] != 0
        all_valid = bool(valid.all())
        start = (first_diff < level) if all_valid else valid & (first_diff < level)
        rows = np.flatnonzero(start)
        n_nodes = rows.size
        if all_valid and n_nodes == n:  # every row is its own node: no run-length work needed
            node = all_rows
        else:
            node = np.cumsum(start, dtype=np.int64) - 1
        cnt = tally(node, None if all_valid else valid, n_nodes)
        ends = valid & (lengths == level)
        e = tally(node, ends, n_nodes)
        parents.append(prev_node[rows].astype(np.int32 if n_nodes < 2**31 else np.int64))
        counts.append(cnt)
        eos.append(e)
        first_row.append(rows.astype(np.int32 if n < 2**31 else np.int64))
        prev_node = node
        if n_nodes == 0:
            break

    sorted_tokens = _LazyTokens(s)
    return TokenTree(
        vocab_size=vocab,
        max_depth=len(parents),
        dataset_names=names,
        dataset_sizes=sizes,
        parents=parents,
        counts=counts,
        eos=eos,
        first_row=first_row,
        sorted_tokens=sorted_tokens,  # type: ignore[arg-type]
        root_eos=root_eos,
    )


class _LazyTokens:
    """The sorted sequences as a read-only ``(n, width)`` view of the compact, depth-major array kept
    by the tree; token ids are shifted back (``PAD`` = -1) only for the rows asked for."""

    def __init__(self, by_depth: np.ndarray) -> None:
        self._t = by_depth.T  # (n, width) view, no copy
        self.shape = self._t.shape

    def __getitem__(self, key: object) -> np.ndarray:
        return self._t[key].astype(np.int64) - 1  # type: ignore[index]


# ----------------------------------------------------------------------------------------------
# Joint weights, entropies, Huffman codes, rates
# ----------------------------------------------------------------------------------------------


def joint_weights(weights: np.ndarray, sizes: Sequence[float] | np.ndarray) -> np.ndarray:
    """p^D = Σ_i p^{D_i}|D_i| / Σ_i|D_i|: the node (or leaf) weights of the union of the data sets.

    ``weights`` is ``(n_datasets, n_nodes)``. Each data set pulls with its size: this one line is why
    a small alignment set loses to a large pre-training set.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    s = np.asarray(sizes, dtype=float).ravel()
    if s.size != w.shape[0]:
        raise ValueError(f"sizes has {s.size} entries but weights has {w.shape[0]} data sets.")
    for i, v in enumerate(s):
        check_positive(f"sizes[{i}]", float(v), allow_zero=True)
    if s.sum() <= 0:
        raise ValueError(f"sizes={s.tolist()} is not allowed; at least one size must be > 0.")
    return (s[:, None] * w).sum(axis=0) / s.sum()


def huffman_code_lengths(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Code length (bits) of each symbol in a binary Huffman code for weights ``p``.

    Zero-weight symbols get (long) codes too, so that a code built for one data set can still
    encode another. Expected length lies in [H(p), H(p)+1).
    """
    w = np.asarray(p, dtype=float).ravel()
    m = w.size
    if m == 0:
        raise ValueError("p is empty; a code needs at least one symbol.")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("p must hold finite weights >= 0.")
    if m == 1:
        return np.zeros(1, dtype=np.int64)
    parent = np.empty(2 * m - 1, dtype=np.int64)
    heap = [(float(x), i) for i, x in enumerate(w)]
    heapq.heapify(heap)
    nxt = m
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = nxt
        heapq.heappush(heap, (w1 + w2, nxt))
        nxt += 1
    depth = np.zeros(2 * m - 1, dtype=np.int64)
    for node in range(2 * m - 3, -1, -1):  # parents are created after their children
        depth[node] = depth[parent[node]] + 1
    return depth[:m]


def canonical_codes(lengths: Sequence[int] | np.ndarray) -> list[str]:
    """The canonical prefix code (bit strings) with the given code lengths, for a readable code table."""
    ln = np.asarray(lengths, dtype=np.int64)
    order = np.lexsort((np.arange(ln.size), ln))
    codes = [""] * ln.size
    code, prev = 0, 0
    for rank, i in enumerate(order):
        L = int(ln[i])
        if rank:
            code = (code + 1) << (L - prev)
        else:
            code = 0
        codes[i] = format(code, f"0{L}b") if L else ""
        prev = L
    return codes


def expected_code_length(lengths: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray) -> float:
    """Σ p·length: the mean number of bits per symbol when data distributed as ``p`` is coded."""
    return float(np.dot(np.asarray(p, dtype=float), np.asarray(lengths, dtype=float)))


def compression_rate(p_data: np.ndarray, p_code: np.ndarray, depth: int, *, ideal: bool = False) -> float:
    """Bits per token when data ``p_data`` (leaves of a depth-``depth`` tree) is coded with a code built
    for ``p_code``: Huffman lengths, or the ideal lengths -log2 p_code when ``ideal``."""
    check_positive("depth", depth)
    check_distribution("p_data", p_data, atol=1e-6 * max(1, np.size(p_data)))
    check_distribution("p_code", p_code, atol=1e-6 * max(1, np.size(p_code)))
    if ideal:
        return cross_entropy_bits(p_data, p_code) / depth
    return expected_code_length(huffman_code_lengths(p_code), p_data) / depth


def normalized_compression_rate(p_data: np.ndarray, p_code: np.ndarray, depth: int, *, ideal: bool = False) -> float:
    """γ^{D_i/D} = γ^{D_i} - log M, with both terms per token (log2 M / depth) so that a uniform code
    scores 0 and data sets with different numbers of leaves M compare."""
    m = np.asarray(p_data).size
    return compression_rate(p_data, p_code, depth, ideal=ideal) - math.log2(m) / depth


def chunked_rate(tokens: np.ndarray, depth: int) -> float:
    """Bits per token of the paper's protocol at model depth ``depth``: each sequence is cut into
    ⌈L/d⌉ chunks of ``depth`` tokens, and the chunks (pooled over positions) are Huffman-coded.

    With finite data a deep chunk is almost always unique, so the rate keeps falling with depth: the
    code memorises the sample. That is the price of an unlimited-capacity model on a finite data set.
    """
    check_positive("depth", depth)
    arr = pad_sequences(tokens)
    n, width = arr.shape
    n_chunks = -(-width // depth)
    arr = np.pad(arr, ((0, 0), (0, n_chunks * depth - width)), constant_values=PAD)
    chunks = arr.reshape(n * n_chunks, depth)
    real = chunks[:, 0] != PAD
    chunks = chunks[real]
    _, counts = np.unique(chunks, axis=0, return_counts=True)
    p = counts / counts.sum()
    bits = expected_code_length(huffman_code_lengths(p), p) * chunks.shape[0]
    n_tokens = int((arr != PAD).sum())
    return float(bits / n_tokens)


def code_table(pruned: PrunedTree, dataset: int | None = None, *, sizes: Sequence[float] | None = None,
               token_names: Sequence[str] | None = None, top: int | None = None):
    """A pandas table of the Huffman code of a pruned tree: leaf path, probability, ideal length,
    Huffman length and code word, most probable leaf first. ``dataset=None`` codes the joint tree."""
    import pandas as pd

    p = pruned.joint(sizes) if dataset is None else pruned.probs[dataset]
    lengths = huffman_code_lengths(p)
    codes = canonical_codes(lengths)
    order = np.argsort(-p, kind="stable")[: top if top is not None else None]
    names = token_names

    def spell(path: tuple[int, ...], leaf: int) -> str:
        body = "".join(str(t) for t in path) if names is None else "".join(names[t] for t in path)
        return body + ("⏎" if pruned.leaf_depth[leaf] < pruned.depth else "")

    return pd.DataFrame({
        "leaf": [spell(pruned.leaf_path(int(i)), int(i)) for i in order],
        "p": p[order],
        "-log2 p": [(-math.log2(x) if x > 0 else math.inf) for x in p[order]],
        "Huffman bits": lengths[order],
        "code word": [codes[i] for i in order],
    })


def excess_under_joint_code(pruned: PrunedTree, sizes: Sequence[Sequence[float]], *, ideal: bool = False) -> np.ndarray:
    """For each size vector in ``sizes``: every data set's extra bits per token when coded with the
    Huffman (or ideal) code of the size-weighted union instead of its own code. Shape ``(len(sizes), n_datasets)``.

    This is who "wins" the shared code: the data set with the near-zero excess.
    """
    d = pruned.depth
    own = []
    for p in pruned.probs:
        own.append(cross_entropy_bits(p, p) if ideal else expected_code_length(huffman_code_lengths(p), p))
    out = np.empty((len(sizes), pruned.probs.shape[0]))
    for r, s in enumerate(sizes):
        q = pruned.joint(s)
        for i, p in enumerate(pruned.probs):
            cost = cross_entropy_bits(p, q) if ideal else expected_code_length(huffman_code_lengths(q), p)
            out[r, i] = (cost - own[i]) / d
    return out
