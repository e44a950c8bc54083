import itertools
import time
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spacy_jmt.decoding import bio_to_spans, bio_viterbi, eisner_decode, is_tree, mst_decode


def tree_score(scores, heads):
    scores = np.where(np.isnan(scores), -np.inf, scores)
    return scores[np.arange(len(heads)), heads].sum()


def is_projective(heads):
    arcs = [tuple(sorted((dep + 1, int(head)))) for dep, head in enumerate(heads)]
    return not any(a < c < b < d for (a, b), (c, d) in itertools.product(arcs, arcs))


@lru_cache(maxsize=None)
def all_trees(n):
    """Every head assignment of n tokens that forms a tree with one ROOT child."""
    heads = np.array(list(itertools.product(range(n + 1), repeat=n)))
    reach = np.concatenate([np.zeros((len(heads), 1), dtype=int), heads], axis=1)
    rows = np.arange(len(heads))[:, None]
    for _ in range(n.bit_length()):
        reach = reach[rows, reach]
    one_root = (heads == 0).sum(axis=1) == 1
    return heads[one_root & (reach == 0).all(axis=1)]


@lru_cache(maxsize=None)
def projective_trees(n):
    trees = all_trees(n)
    return trees[[is_projective(heads) for heads in trees]]


def best_score(scores, trees):
    scores = np.where(np.isnan(scores), -np.inf, scores)
    return scores[np.arange(len(scores)), trees].sum(axis=1).max()


def greedy_tree(scores):
    """Best ROOT child first, then repeatedly attach the best free token to the tree so far."""
    scores = np.where(np.isnan(scores), -np.inf, scores)
    n = len(scores)
    heads = np.zeros(n, dtype=np.int64)
    attached = [int(scores[:, 0].argmax())]
    free = [i for i in range(n) if i != attached[0]]
    while free:
        options = scores[np.ix_(free, np.array(attached) + 1)]
        dep, head = np.unravel_index(options.argmax(), options.shape)
        heads[free[dep]] = attached[head] + 1
        attached.append(free.pop(dep))
    return heads


@st.composite
def score_matrices(draw, max_n=30):
    """Random (n, n + 1) scores: continuous or with many ties, some share of them -inf."""
    n = draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        scores = rng.normal(scale=5.0, size=(n, n + 1))
    else:
        scores = rng.integers(-2, 3, size=(n, n + 1)).astype(float)
    scores[rng.random(scores.shape) < draw(st.sampled_from([0.0, 0.2, 0.6, 1.0]))] = -np.inf
    return scores


small_elements = st.one_of(st.sampled_from([-np.inf, 0.0, 1.0]), st.floats(-100, 100))
small_matrices = st.one_of(
    score_matrices(max_n=6),
    st.integers(1, 6).flatmap(lambda n: arrays(np.float64, (n, n + 1), elements=small_elements)),
)


def check_heads(heads, n):
    assert heads.dtype == np.int64
    assert heads.shape == (n,)
    assert is_tree(heads)
    assert np.count_nonzero(heads == 0) == 1
    assert not (heads == np.arange(1, n + 1)).any()


@given(score_matrices())
def test_mst_is_tree_and_beats_eisner_and_greedy(scores):
    heads = mst_decode(scores)
    check_heads(heads, len(scores))
    assert tree_score(scores, heads) >= tree_score(scores, eisner_decode(scores)) - 1e-9
    assert tree_score(scores, heads) >= tree_score(scores, greedy_tree(scores)) - 1e-9


@given(small_matrices)
def test_mst_matches_brute_force(scores):
    heads = mst_decode(scores)
    check_heads(heads, len(scores))
    expected = best_score(scores, all_trees(len(scores)))
    assert np.isclose(tree_score(scores, heads), expected, rtol=0, atol=1e-6)


@given(score_matrices())
def test_eisner_is_projective_tree(scores):
    heads = eisner_decode(scores)
    check_heads(heads, len(scores))
    assert is_projective(heads)


@given(small_matrices)
def test_eisner_matches_brute_force(scores):
    heads = eisner_decode(scores)
    check_heads(heads, len(scores))
    assert is_projective(heads)
    expected = best_score(scores, projective_trees(len(scores)))
    assert np.isclose(tree_score(scores, heads), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("decode", [mst_decode, eisner_decode])
def test_all_minus_inf_row_keeps_rest_optimal(decode):
    rng = np.random.default_rng(0)
    for n in range(2, 7):
        scores = rng.normal(size=(n, n + 1))
        scores[n // 2] = -np.inf
        trees = all_trees(n) if decode is mst_decode else projective_trees(n)
        others = np.delete(scores, n // 2, axis=0)
        heads = decode(scores)
        check_heads(heads, n)
        expected = best_score(others, np.delete(trees, n // 2, axis=1))
        assert np.isclose(tree_score(others, np.delete(heads, n // 2)), expected)


@pytest.mark.parametrize("decode", [mst_decode, eisner_decode])
def test_minus_inf_avoided_when_possible(decode):
    # Only a chain of poor arcs avoids -inf; good arcs elsewhere tempt a tree with -inf arcs.
    rng = np.random.default_rng(4)
    for _ in range(100):
        n = int(rng.integers(2, 12))
        scores = rng.uniform(-100, 100, size=(n, n + 1))
        scores[rng.random(scores.shape) < 0.7] = -np.inf
        scores[np.arange(n), np.arange(n)] = rng.uniform(-100, -50, size=n)
        assert np.isfinite(tree_score(scores, decode(scores)))


@pytest.mark.parametrize("decode", [mst_decode, eisner_decode])
def test_tree_edge_cases(decode):
    assert decode(np.zeros((0, 1))).dtype == np.int64
    assert decode(np.zeros((0, 1))).shape == (0,)
    for value in [0.0, -np.inf, np.inf, np.nan, 1e308]:
        assert decode(np.full((1, 2), value)).tolist() == [0]
        check_heads(decode(np.full((7, 8), value)), 7)
    with pytest.raises(ValueError):
        decode(np.zeros((3, 3)))


@pytest.mark.parametrize("decode", [mst_decode, eisner_decode])
def test_nan_counts_as_minus_inf(decode):
    rng = np.random.default_rng(1)
    for n in range(1, 20):
        scores = rng.normal(size=(n, n + 1))
        scores[rng.random(scores.shape) < 0.3] = np.nan
        heads = decode(scores)
        check_heads(heads, n)
        assert heads.tolist() == decode(np.nan_to_num(scores, nan=-np.inf)).tolist()


@pytest.mark.parametrize("decode", [mst_decode, eisner_decode])
def test_single_root_and_no_self_loops(decode):
    # Unconstrained, tokens 0 and 1 both attach to ROOT; self loops score highest of all.
    scores = np.array(
        [
            [10.0, 100.0, 1.0, 0.0],
            [9.0, 2.0, 100.0, 0.0],
            [0.0, 5.0, 0.0, 100.0],
        ]
    )
    assert decode(scores).tolist() == [0, 1, 1]
    # Every token prefers ROOT; only self loops are finite otherwise.
    scores = np.full((6, 7), -np.inf)
    scores[:, 0] = np.arange(6)
    scores[np.arange(6), np.arange(1, 7)] = 50.0
    check_heads(decode(scores), 6)


def test_mst_recovers_planted_tree():
    rng = np.random.default_rng(2)
    for n in [1, 2, 10, 40]:
        order = rng.permutation(n)
        planted = np.zeros(n, dtype=np.int64)
        for i in range(1, n):
            planted[order[i]] = order[rng.integers(i)] + 1
        scores = rng.normal(size=(n, n + 1))
        scores[np.arange(n), planted] += 10.0
        assert mst_decode(scores).tolist() == planted.tolist()


@pytest.mark.parametrize(
    "make", [lambda n, rng: rng.normal(size=(n, n + 1)), lambda n, rng: np.zeros((n, n + 1))]
)
def test_mst_long_sentence_is_fast(make):
    scores = make(250, np.random.default_rng(3))
    start = time.perf_counter()
    heads = mst_decode(scores)
    assert time.perf_counter() - start < 1.0
    check_heads(heads, 250)


def test_is_tree():
    assert is_tree(np.array([], dtype=np.int64))
    assert is_tree(np.array([0]))
    assert is_tree(np.array([2, 0, 2]))
    assert not is_tree(np.array([1]))  # self loop
    assert not is_tree(np.array([0, 0]))  # two ROOT children
    assert not is_tree(np.array([0, 3, 2]))  # cycle
    assert not is_tree(np.array([0, 4, 1]))  # out of range


TYPES = ["PER", "LOC", "X"]


@st.composite
def bio_problems(draw, max_n=12):
    """Random label sets with at least one non-I tag, and scores with some -inf and NaN."""
    candidates = ["O", "MISC"] + [f"{p}-{t}" for t in TYPES for p in "BI"]
    labels = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=6, unique=True))
    if all(label.startswith("I-") for label in labels):
        labels.append(draw(st.sampled_from(["O", "B-PER"])))
    n = draw(st.integers(0, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    log_probs = np.log(rng.dirichlet(np.ones(len(labels)), size=n))
    share = draw(st.sampled_from([0.0, 0.3, 1.0]))
    log_probs[rng.random(log_probs.shape) < share] = draw(st.sampled_from([-np.inf, np.nan]))
    return log_probs, labels


def is_valid_bio(tags):
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous[:2] not in ("B-", "I-") or previous[2:] != tag[2:]):
            return False
        previous = tag
    return True


def sequence_score(log_probs, tag_ids):
    log_probs = np.where(np.isnan(log_probs), -np.inf, log_probs)
    return log_probs[np.arange(len(tag_ids)), tag_ids].sum()


@given(bio_problems())
def test_bio_viterbi_is_valid(problem):
    log_probs, labels = problem
    tag_ids = bio_viterbi(log_probs, labels)
    assert tag_ids.dtype == np.int64
    assert tag_ids.shape == (len(log_probs),)
    assert is_valid_bio([labels[i] for i in tag_ids])


@given(bio_problems(max_n=4))
def test_bio_viterbi_matches_brute_force(problem):
    log_probs, labels = problem
    tag_ids = bio_viterbi(log_probs, labels)
    valid = [
        seq
        for seq in itertools.product(range(len(labels)), repeat=len(log_probs))
        if is_valid_bio([labels[i] for i in seq])
    ]
    expected = max(sequence_score(log_probs, np.array(seq, dtype=int)) for seq in valid)
    assert np.isclose(sequence_score(log_probs, tag_ids), expected, rtol=0, atol=1e-6)


@given(bio_problems(max_n=4), st.integers(0, 2**32 - 1))
def test_bio_viterbi_with_transitions_matches_brute_force(problem, seed):
    log_probs, labels = problem
    log_probs = np.nan_to_num(log_probs, nan=-5.0, neginf=-5.0)  # a CRF's scores are finite
    transitions = np.random.default_rng(seed).normal(size=(len(labels), len(labels)))
    tag_ids = bio_viterbi(log_probs, labels, transitions)
    assert is_valid_bio([labels[i] for i in tag_ids])

    def score(seq):
        seq = np.array(seq, dtype=int)
        return sequence_score(log_probs, seq) + transitions[seq[:-1], seq[1:]].sum()

    valid = [
        seq
        for seq in itertools.product(range(len(labels)), repeat=len(log_probs))
        if is_valid_bio([labels[i] for i in seq])
    ]
    if valid and len(log_probs):
        expected = max(score(seq) for seq in valid)
        assert np.isclose(score(tag_ids), expected, rtol=0, atol=1e-6)


def test_bio_viterbi_edge_cases():
    labels = ["O", "B-X", "I-X"]
    assert bio_viterbi(np.zeros((0, 3)), labels).tolist() == []
    assert bio_viterbi(np.zeros((0, 3)), labels).dtype == np.int64
    # I-X scores best everywhere, but may not start the sequence.
    assert bio_viterbi(np.log([[0.1, 0.2, 0.7]] * 3), labels).tolist() == [1, 2, 2]
    assert bio_viterbi(np.full((3, 3), np.nan), labels)[0] != 2
    assert bio_viterbi(np.full((3, 3), -np.inf), labels)[0] != 2
    with pytest.raises(ValueError):
        bio_viterbi(np.zeros((2, 1)), ["I-X"])
    with pytest.raises(ValueError):
        bio_viterbi(np.zeros((2, 2)), labels)
    with pytest.raises(ValueError, match="transitions"):
        bio_viterbi(np.zeros((2, 3)), labels, np.zeros((2, 2)))
    # A learned transition can outweigh the emissions: O -> B-X costs less than O -> O here.
    transitions = np.zeros((3, 3))
    transitions[0, 0] = -10.0
    log_probs = np.log([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1]])
    assert bio_viterbi(log_probs, labels, transitions).tolist() == [0, 1]


def spans_to_tags(spans, n):
    tags = ["O"] * n
    for start, end, label in spans:
        tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
    return tags


@given(st.lists(st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B", "MISC"]), max_size=15))
def test_bio_to_spans_round_trips(tags):
    spans = bio_to_spans(tags)
    assert all(0 <= start < end <= len(tags) for start, end, _ in spans)
    assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:]))
    assert bio_to_spans(spans_to_tags(spans, len(tags))) == spans
    if is_valid_bio(tags):
        normalised = ["O" if tag == "MISC" else tag for tag in tags]
        assert spans_to_tags(spans, len(tags)) == normalised


def test_bio_to_spans_examples():
    tags = ["B-X", "I-X", "O", "I-Y", "I-Y", "B-Y", "I-X"]
    assert bio_to_spans(tags) == [(0, 2, "X"), (3, 5, "Y"), (5, 6, "Y"), (6, 7, "X")]
    assert bio_to_spans([]) == []
