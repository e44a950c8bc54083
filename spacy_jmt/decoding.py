"""Structured decoders: dependency trees (Chu-Liu-Edmonds, Eisner) and IOB2 tag sequences.

Pure numpy. Head scores use the layout of `mst_decode`: scores[i, j] is the score of token i
taking head j, where j == 0 is the artificial ROOT and j == k + 1 is token k.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np


def is_tree(heads: np.ndarray) -> bool:
    """Check that heads form one tree with exactly one child of ROOT.

    heads (np.ndarray): shape (n,), heads in 0..n (0 = ROOT, k + 1 = token k).
    RETURNS (bool): Whether exactly one token has head 0 and every token reaches ROOT without
        cycles or self loops. An empty sentence counts as a tree.
    """
    heads = np.asarray(heads)
    n = len(heads)
    if n == 0:
        return True
    if heads.min() < 0 or heads.max() > n or np.count_nonzero(heads == 0) != 1:
        return False
    reach = np.concatenate([[0], heads])
    for _ in range(n.bit_length()):
        reach = reach[reach]
    return bool((reach == 0).all())


def mst_decode(scores: np.ndarray) -> np.ndarray:
    """Maximum spanning arborescence (Chu-Liu-Edmonds) with exactly one child of ROOT.

    scores (np.ndarray): shape (n, n + 1), float. scores[i, j] = score of token i (0-based)
        taking head j, where j == 0 is the artificial ROOT and j == k + 1 is token k.
        Self loops are never chosen; NaN counts as -inf.
    RETURNS (np.ndarray): int64 shape (n,), heads in 0..n (0 = ROOT), forming one tree.
    """
    greedy = _greedy_tree(scores)
    if greedy is not None:
        return greedy
    square = _square(scores)
    # CLE returns the greedy heads untouched when they already form a tree.
    heads = _chu_liu_edmonds(square)[1:]
    if np.count_nonzero(heads == 0) <= 1:
        return heads
    # A ROOT arc penalty larger than any score difference between two trees leaves exactly one
    # ROOT child in the maximum arborescence, and the best such tree wins (Stanojevic & Cohen,
    # 2021): one more CLE run instead of one per candidate ROOT child.
    finite = square[np.isfinite(square)]
    square[1:, 0] -= len(square) * (finite.max() - finite.min() + 1.0)
    return _chu_liu_edmonds(square)[1:]


def eisner_decode(scores: np.ndarray) -> np.ndarray:
    """Best projective tree (first-order Eisner, O(n^3)) with exactly one child of ROOT.

    scores (np.ndarray): shape (n, n + 1), same layout as for `mst_decode`. NaN counts as -inf.
    RETURNS (np.ndarray): int64 shape (n,), heads in 0..n (0 = ROOT), forming one projective tree.
    """
    square = _square(scores)
    size = len(square)
    # Span tables over positions 0..n (0 = ROOT). complete_r[s, t]: headed by s, covering s..t;
    # complete_l[s, t]: headed by t; incomplete_*: the same with the arc s -> t / t -> s made.
    complete_r = np.full((size, size), -np.inf)
    complete_l = np.full((size, size), -np.inf)
    incomplete_r = np.full((size, size), -np.inf)
    incomplete_l = np.full((size, size), -np.inf)
    np.fill_diagonal(complete_r, 0.0)
    np.fill_diagonal(complete_l, 0.0)
    split_i = np.zeros((size, size), dtype=np.int64)
    split_r = np.zeros((size, size), dtype=np.int64)
    split_l = np.zeros((size, size), dtype=np.int64)
    for width in range(1, size):
        s = np.arange(size - width)
        t = s + width
        r = s[:, None] + np.arange(width)  # split points s..t-1
        joined = complete_r[s[:, None], r] + complete_l[r + 1, t[:, None]]
        joined[0, 1:] = -np.inf  # ROOT takes its single child before any other dependent
        split_i[s, t] = s + joined.argmax(axis=1)
        best = joined.max(axis=1)
        incomplete_r[s, t] = best + square[t, s]
        incomplete_l[s, t] = best + square[s, t]
        right = incomplete_r[s[:, None], r + 1] + complete_r[r + 1, t[:, None]]
        split_r[s, t] = s + 1 + right.argmax(axis=1)
        complete_r[s, t] = right.max(axis=1)
        left = complete_l[s[:, None], r] + incomplete_l[r, t[:, None]]
        split_l[s, t] = s + left.argmax(axis=1)
        complete_l[s, t] = left.max(axis=1)
    heads = np.zeros(size, dtype=np.int64)
    stack: List[Tuple[str, int, int]] = [("complete_r", 0, size - 1)]
    while stack:
        kind, i, j = stack.pop()
        if i == j:
            continue
        if kind == "complete_r":
            k = int(split_r[i, j])
            stack += [("incomplete_r", i, k), ("complete_r", k, j)]
        elif kind == "complete_l":
            k = int(split_l[i, j])
            stack += [("complete_l", i, k), ("incomplete_l", k, j)]
        else:
            if kind == "incomplete_r":
                heads[j] = i
            else:
                heads[i] = j
            k = int(split_i[i, j])
            stack += [("complete_r", i, k), ("complete_l", k + 1, j)]
    return heads[1:]


def bio_viterbi(
    log_probs: np.ndarray, labels: Sequence[str], transitions: Optional[np.ndarray] = None
) -> np.ndarray:
    """Best tag sequence under IOB2 constraints.

    log_probs (np.ndarray): shape (n, L) log-probabilities (or any scores) per token and tag.
        NaN counts as -inf.
    labels (Sequence[str]): the L tag names: "O", "B-X", "I-X" for any types X. Tags that are none
        of these forms are treated like "O".
    transitions (Optional[np.ndarray]): shape (L, L) finite scores added for tag i followed by
        tag j (a linear-chain CRF's); None for none.
    RETURNS (np.ndarray): int64 shape (n,) tag indices. Valid: an "I-X" only directly after "B-X" or
        "I-X" of the same type X (so never first). n == 0 returns an empty array.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    n = len(log_probs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if log_probs.shape != (n, len(labels)):
        raise ValueError(f"log_probs has shape {log_probs.shape}, expected ({n}, {len(labels)})")
    first, allowed = bio_transitions(labels)
    inside = ~first
    if inside.all():
        raise ValueError("bio_viterbi needs at least one tag that is not I-X")
    if transitions is None:
        emissions = _finite(log_probs)
        # The best tag per token is the best sequence of all; if it is valid, it is the answer.
        greedy = emissions.argmax(axis=1)
        if not inside[greedy[0]] and allowed[greedy[:-1], greedy[1:]].all():
            return greedy.astype(np.int64)
        transitions = np.where(allowed, 0.0, -np.inf)
    else:
        transitions = np.asarray(transitions, dtype=np.float64)
        if transitions.shape != (len(labels), len(labels)):
            raise ValueError(f"transitions has shape {transitions.shape}, expected (L, L)")
        # Learned scores are finite; NaN and infinities become stand-ins far beyond them.
        emissions = np.where(np.isnan(log_probs), -np.inf, log_probs).clip(-1e9, 1e9)
        transitions = np.where(allowed, transitions, -np.inf)
    best = np.where(inside, -np.inf, emissions[0])
    backpointers = np.zeros((n, len(labels)), dtype=np.int64)
    for i in range(1, n):
        candidates = best[:, None] + transitions
        backpointers[i] = candidates.argmax(axis=0)
        best = candidates.max(axis=0) + emissions[i]
    tags = np.zeros(n, dtype=np.int64)
    tags[-1] = best.argmax()
    for i in range(n - 1, 0, -1):
        tags[i - 1] = backpointers[i, tags[i]]
    return tags


def bio_transitions(labels: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Which IOB2 tags may start a sequence and which may follow which.

    labels (Sequence[str]): the L tag names, as for `bio_viterbi`.
    RETURNS (Tuple[np.ndarray, np.ndarray]): bool shape (L,), the tags that may come first (all
        but "I-X"), and bool shape (L, L), [i, j] whether tag j may follow tag i ("I-X" only
        after "B-X" or "I-X").
    """
    prefixes = np.array([_split_tag(label)[0] for label in labels], dtype=str)
    kinds = np.array([_split_tag(label)[1] for label in labels], dtype=str)
    inside = prefixes == "I"
    continues = (prefixes[:, None] != "O") & (kinds[:, None] == kinds)
    return ~inside, ~inside | continues


def bio_to_spans(tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """Read the chunks of an IOB2 tag sequence.

    tags (Sequence[str]): tag names; a stray "I-X" starts a chunk like "B-X" would.
    RETURNS (List[Tuple[int, int, str]]): (start, end_exclusive, label) per chunk, in order.
    """
    spans: List[Tuple[int, int, str]] = []
    start = 0
    label: Optional[str] = None
    for i, tag in enumerate([*tags, "O"]):
        prefix, kind = _split_tag(tag)
        if label is not None and (prefix != "I" or kind != label):
            spans.append((start, i, label))
            label = None
        if prefix == "B" or (prefix == "I" and label is None):
            start, label = i, kind
    return spans


def _split_tag(tag: str) -> Tuple[str, str]:
    """Split an IOB2 tag into its prefix ("B", "I" or "O") and type ("" for "O")."""
    if tag[:2] in ("B-", "I-"):
        return tag[0], tag[2:]
    return "O", ""


def _greedy_tree(scores: np.ndarray) -> Optional[np.ndarray]:
    """The best head of every token, when these form a tree with one ROOT child: that tree is
    then the best one, and most trained parsers' sentences take this path (no copies, no CLE).

    scores (np.ndarray): shape (n, n + 1), as for `mst_decode`.
    RETURNS (Optional[np.ndarray]): The heads, or None (NaN scores, a self loop, a -inf
        arc, a cycle or several ROOT children: the full decoder decides).
    """
    n = len(scores)
    if scores.ndim != 2 or scores.shape[1] != n + 1 or np.isnan(scores).any():
        return None
    heads = scores.argmax(axis=1)
    rows = np.arange(n)
    if (heads == rows + 1).any() or not np.isfinite(scores[rows, heads]).all():
        return None
    return heads.astype(np.int64) if is_tree(heads) else None


def _finite(scores: np.ndarray) -> np.ndarray:
    """Replace NaN and infinities by finite stand-ins that keep structures ordered.

    scores (np.ndarray): shape (n, ...), n being the most scores a single structure sums.
    RETURNS (np.ndarray): float64 copy, scaled by a power of two into [-1, 1] (which keeps every
        comparison of sums exact), where -inf (and NaN) is below and +inf above any finite score
        by more than n times the finite range, so a structure with fewer -inf parts always
        outscores one with more, and ties among them are broken by the finite parts.
    """
    scores = np.where(np.isnan(scores), -np.inf, scores)
    finite = np.isfinite(scores)
    if not finite.any():
        return np.zeros(scores.shape)
    _, exponent = np.frexp(max(np.abs(scores[finite]).max(), 1.0))
    scores = np.ldexp(scores, -exponent)
    low, high = scores[finite].min(), scores[finite].max()
    margin = (len(scores) + 1) * (high - low + 1.0)
    return np.clip(scores, low - margin, high + margin)


def _square(scores: np.ndarray) -> np.ndarray:
    """Build the (n + 1, n + 1) dependent x head matrix with ROOT as node 0.

    scores (np.ndarray): shape (n, n + 1), as for `mst_decode`.
    RETURNS (np.ndarray): finite scores in rows 1..n; row 0 (ROOT has no head) and the diagonal
        (self loops) are -inf.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if scores.shape != (n, n + 1):
        raise ValueError(f"scores has shape {scores.shape}, expected ({n}, {n + 1})")
    square = np.full((n + 1, n + 1), -np.inf)
    square[1:] = _finite(scores)
    np.fill_diagonal(square, -np.inf)
    return square


def _chu_liu_edmonds(scores: np.ndarray) -> np.ndarray:
    """Maximum spanning arborescence rooted at node 0 (any number of ROOT children).

    scores (np.ndarray): shape (m, m), scores[d, h] for head h of dependent d; every row but 0 has
        a finite entry.
    RETURNS (np.ndarray): int64 shape (m,), the head of each node (0 for node 0 itself).
    """
    contractions = []
    while True:
        heads = scores.argmax(axis=1)
        heads[0] = 0
        cycle = _find_cycle(heads)
        if cycle is None:
            break
        in_cycle = np.zeros(len(heads), dtype=bool)
        in_cycle[cycle] = True
        rest = np.flatnonzero(~in_cycle)
        # Entering the cycle at node d from head h replaces the cycle arc into d.
        enter = scores[cycle[:, None], rest] - scores[cycle, heads[cycle]][:, None]
        enter_dep = enter.argmax(axis=0)
        leave = scores[rest[:, None], cycle]
        leave_head = leave.argmax(axis=1)
        k = len(rest)
        contracted = np.full((k + 1, k + 1), -np.inf)
        contracted[:k, :k] = scores[rest[:, None], rest]
        contracted[:k, k] = leave[np.arange(k), leave_head]
        contracted[k, :k] = enter[enter_dep, np.arange(k)]
        contractions.append((heads, cycle, rest, enter_dep, leave_head))
        scores = contracted
    for outer, cycle, rest, enter_dep, leave_head in reversed(contractions):
        k = len(rest)
        entry = heads[k]
        outer[cycle[enter_dep[entry]]] = rest[entry]
        from_cycle = heads[:k] == k
        outer[rest] = np.append(rest, -1)[heads[:k]]  # -1: the cycle, resolved next
        outer[rest[from_cycle]] = cycle[leave_head[from_cycle]]
        heads = outer
    return heads


def _find_cycle(heads: np.ndarray) -> Optional[np.ndarray]:
    """Find one cycle in a head assignment where node 0 is its own head.

    heads (np.ndarray): shape (m,), heads[0] == 0.
    RETURNS (Optional[np.ndarray]): the nodes of one cycle, or None if every node reaches 0.
    """
    reach = heads
    for _ in range(len(heads).bit_length()):
        reach = reach[reach]
    # After >= m steps every node sits on a cycle, so `reach` holds exactly the cycle nodes.
    on_cycle = np.zeros(len(heads), dtype=bool)
    on_cycle[reach] = True
    on_cycle[0] = False
    if not on_cycle.any():
        return None
    cycle = [on_cycle.argmax()]
    node = heads[cycle[0]]
    while node != cycle[0]:
        cycle.append(node)
        node = heads[node]
    return np.array(cycle)
