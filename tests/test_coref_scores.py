"""The coreference metrics against a published implementation (scorch, which follows the
CoNLL reference scorer) on random clusterings, and LEA against its paper's worked example."""

import random

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_jmt.converters.coref import GAP_KEY, set_clusters
from spacy_jmt.coref_scores import cluster_counts, prf, score_clusters, score_gap

scorch = pytest.importorskip("scorch.scores")


def random_clustering(rng, mentions):
    chosen = [m for m in mentions if rng.random() < 0.8]
    rng.shuffle(chosen)
    clusters, i = [], 0
    while i < len(chosen):
        size = rng.choice([1, 1, 2, 3, 5])
        clusters.append(chosen[i : i + size])
        i += size
    return clusters


@pytest.mark.parametrize("seed", range(40))
def test_muc_b3_ceafe_match_scorch_on_random_clusterings(seed):
    rng = random.Random(seed)
    mentions = [(i, i + rng.randint(1, 3)) for i in range(rng.randint(2, 30))]
    key, response = random_clustering(rng, mentions), random_clustering(rng, mentions)
    if not key or not response:
        return
    counts = cluster_counts(key, response)
    key_sets, response_sets = [set(c) for c in key], [set(c) for c in response]
    for metric, reference in (
        ("muc", scorch.muc),
        ("b3", scorch.b_cubed),
        ("ceafe", scorch.ceaf_e),
    ):
        r, p, f = reference(key_sets, response_sets)
        ours_p, ours_r, ours_f = prf(counts[metric])
        if metric == "muc" and (
            all(len(k) == 1 for k in key) or all(len(c) == 1 for c in response)
        ):
            continue  # scorch defines all-singleton MUC as 0; the counts give 0/0 or 0/n
        assert (ours_p, ours_r, ours_f) == pytest.approx((p, r, f), abs=1e-9), metric


def test_lea_matches_the_papers_worked_example():
    """Moosavi and Strube (2016), section 4: key {a b c}, {d e f g}; response {a b}, {c d},
    {f g h i}: recall (3*1/3 + 4*1/6) / 7 = 0.24, precision (2*1 + 2*0 + 4*1/6) / 8 = 0.33."""
    key = [["a", "b", "c"], ["d", "e", "f", "g"]]
    response = [["a", "b"], ["c", "d"], ["f", "g", "h", "i"]]
    p, r, _ = prf(cluster_counts(key, response)["lea"])
    assert r == pytest.approx((3 * 1 / 3 + 4 * 1 / 6) / 7)
    assert p == pytest.approx((2 * 1 + 2 * 0 + 4 * 1 / 6) / 8)
    # a singleton is one self-link: resolved only if the response has it alone too
    assert prf(cluster_counts([["x"]], [["x"]])["lea"])[:2] == (1.0, 1.0)
    assert prf(cluster_counts([["x"]], [["x", "y"]])["lea"])[1] == 0.0


def test_corpus_scores_sum_counts_over_documents():
    perfect = [[(0, 1), (3, 4)], [(5, 6)]]
    one = score_clusters([(perfect, perfect)])
    assert one["coref_f"] == 1.0 and one["coref_lea_f"] == 1.0 and one["coref_mentions_f"] == 1.0
    two = score_clusters([(perfect, perfect), (perfect, [[(0, 1)], [(3, 4)], [(5, 6)]])])
    assert two["coref_muc_r"] == pytest.approx(1 / 2)  # 1 link found of 2 over both documents
    assert two["coref_mentions_f"] == 1.0
    empty = score_clusters([([], [])])
    assert empty["coref_f"] == 0.0


def test_gap_scores_by_gender():
    nlp = spacy.blank("en")

    def example(words, pronoun, a, b, gold_links, predicted_clusters):
        ref = Doc(nlp.vocab, words=words)
        ref.spans[GAP_KEY] = [ref[pronoun[0] : pronoun[1]], ref[a[0] : a[1]], ref[b[0] : b[1]]]
        set_clusters(ref, [[pronoun] + gold_links])
        pred = Doc(nlp.vocab, words=words)
        set_clusters(pred, predicted_clusters)
        return Example(pred, ref)

    words = ["Anna", "met", "Bob", "and", "she", "left"]
    she, anna, bob = (4, 5), (0, 1), (2, 3)
    he_words = ["Anna", "met", "Bob", "and", "he", "left"]
    examples = [
        example(words, she, anna, bob, [anna], [[anna, she]]),  # F: A right, B right
        example(he_words, she, anna, bob, [bob], [[anna, she]]),  # M: A wrong, B missed
    ]
    scores = score_gap(examples)
    assert scores["gap_f_f"] == 1.0
    assert scores["gap_m_f"] == 0.0
    assert scores["gap_f"] == pytest.approx(0.5)  # tp 1, gold 2, predicted 2
    assert scores["gap_bias"] == 0.0
