"""Coreference scores: MUC, B-cubed, CEAF-e, their mean (the CoNLL F1), LEA, mention P/R/F,
and GAP's F1 by gender.

Clusters are lists of mentions; a mention is anything hashable (here `(start, end)` token
offsets). Each metric returns the numerators and denominators of its recall and precision,
so that a corpus score sums them over documents, as the CoNLL reference scorer does (Pradhan
et al. 2014). Mentions of the key that the response lacks (and the reverse) count as missed,
singletons included: LitBank annotates singletons.

- MUC (Vilain et al. 1995): the links a partition needs to rebuild each cluster.
- B-cubed (Bagga and Baldwin 1998): per mention, the overlap of its key and response clusters.
- CEAF-e (Luo 2005): the best one-to-one alignment of clusters under the Dice similarity phi4.
- LEA (Moosavi and Strube 2016): links resolved, weighted by cluster size; a singleton is
  one self-link, resolved when the other side has it as a singleton too.
"""

from collections import Counter
from typing import Dict, Hashable, Iterable, List, Sequence, Tuple

import numpy

from .converters.coref import GAP_FEMININE, GAP_KEY, GAP_MASCULINE, get_clusters

Cluster = Sequence[Hashable]
Counts = Tuple[float, float, float, float]  # recall num, recall den, precision num, precision den
METRICS = ("muc", "b3", "ceafe", "lea")


def _index(clusters: Sequence[Cluster]) -> Dict[Hashable, int]:
    return {m: i for i, cluster in enumerate(clusters) for m in cluster}


def _muc_recall(key: Sequence[Cluster], response: Sequence[Cluster]) -> Tuple[float, float]:
    where = _index(response)
    num = den = 0.0
    for cluster in key:
        parts = {where[m] for m in cluster if m in where}
        missing = sum(1 for m in cluster if m not in where)
        num += len(cluster) - len(parts) - missing
        den += len(cluster) - 1
    return num, den


def _b3_recall(key: Sequence[Cluster], response: Sequence[Cluster]) -> Tuple[float, float]:
    where = _index(response)
    num = den = 0.0
    for cluster in key:
        overlaps = Counter(where[m] for m in cluster if m in where)
        num += sum(n * n for n in overlaps.values()) / len(cluster)
        den += len(cluster)
    return num, den


def _lea_recall(key: Sequence[Cluster], response: Sequence[Cluster]) -> Tuple[float, float]:
    where = _index(response)
    num = den = 0.0
    for cluster in key:
        size = len(cluster)
        if size == 1:
            m = cluster[0]
            resolved = float(m in where and len(response[where[m]]) == 1)
            links = 1.0
        else:
            overlaps = Counter(where[m] for m in cluster if m in where)
            resolved = sum(n * (n - 1) / 2 for n in overlaps.values())
            links = size * (size - 1) / 2
        num += size * resolved / links
        den += size
    return num, den


def _symmetric(recall_fn, key: Sequence[Cluster], response: Sequence[Cluster]) -> Counts:
    r_num, r_den = recall_fn(key, response)
    p_num, p_den = recall_fn(response, key)
    return r_num, r_den, p_num, p_den


def ceafe_counts(key: Sequence[Cluster], response: Sequence[Cluster]) -> Counts:
    """RETURNS (Counts): CEAF-e: the best alignment's total phi4 over the key's and the
    response's number of clusters. Only clusters that share a mention enter the assignment
    (the others align with nothing at no cost), so a long document stays cheap."""
    from scipy.optimize import linear_sum_assignment

    key_sets = [set(c) for c in key]
    where = _index(response)
    rows = sorted({i for i, c in enumerate(key_sets) if any(m in where for m in c)})
    cols = sorted({where[m] for i in rows for m in key_sets[i] if m in where})
    total = 0.0
    if rows and cols:
        col_of = {j: n for n, j in enumerate(cols)}
        phi = numpy.zeros((len(rows), len(cols)))
        for r, i in enumerate(rows):
            for j, n in Counter(where[m] for m in key_sets[i] if m in where).items():
                phi[r, col_of[j]] = 2 * n / (len(key_sets[i]) + len(response[j]))
        r_ind, c_ind = linear_sum_assignment(phi, maximize=True)
        total = float(phi[r_ind, c_ind].sum())
    return total, float(len(key)), total, float(len(response))


def cluster_counts(key: Sequence[Cluster], response: Sequence[Cluster]) -> Dict[str, Counts]:
    """RETURNS (Dict[str, Counts]): Recall and precision counts of MUC, B-cubed, CEAF-e and
    LEA for one document."""
    return {
        "muc": _symmetric(_muc_recall, key, response),
        "b3": _symmetric(_b3_recall, key, response),
        "ceafe": ceafe_counts(key, response),
        "lea": _symmetric(_lea_recall, key, response),
    }


def prf(counts: Counts) -> Tuple[float, float, float]:
    """RETURNS (Tuple[float, float, float]): Precision, recall and F1 (0 where undefined)."""
    r_num, r_den, p_num, p_den = counts
    r = r_num / r_den if r_den else 0.0
    p = p_num / p_den if p_den else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score_clusters(
    pairs: Iterable[Tuple[Sequence[Cluster], Sequence[Cluster]]],
) -> Dict[str, float]:
    """Corpus scores of (key, response) cluster lists, one pair per document, the counts
    summed over documents.

    RETURNS (Dict[str, float]): `coref_<metric>_{p,r,f}` for muc, b3, ceafe and lea,
        `coref_f` (the CoNLL F1: the mean of the MUC, B-cubed and CEAF-e F1s) and
        `coref_mentions_{p,r,f}` (exact span match of the clusters' mentions).
    """
    totals = {metric: numpy.zeros(4) for metric in METRICS}
    found = gold = both = 0
    for key, response in pairs:
        for metric, counts in cluster_counts(key, response).items():
            totals[metric] += counts
        key_mentions = {m for c in key for m in c}
        response_mentions = {m for c in response for m in c}
        gold += len(key_mentions)
        found += len(response_mentions)
        both += len(key_mentions & response_mentions)
    scores: Dict[str, float] = {}
    for metric in METRICS:
        p, r, f = prf(tuple(float(x) for x in totals[metric]))  # type: ignore[arg-type]
        scores.update({f"coref_{metric}_p": p, f"coref_{metric}_r": r, f"coref_{metric}_f": f})
    scores["coref_f"] = (scores["coref_muc_f"] + scores["coref_b3_f"] + scores["coref_ceafe_f"]) / 3
    p, r, f = prf((both, gold, both, found))
    scores.update({"coref_mentions_p": p, "coref_mentions_r": r, "coref_mentions_f": f})
    return scores


def score_coref(examples: Iterable) -> Dict[str, float]:
    """RETURNS (Dict[str, float]): `score_clusters` of the examples' `coref_clusters_N`
    groups (reference against predicted), for `spacy evaluate` and training."""
    return score_clusters(
        (get_clusters(eg.reference), get_clusters(eg.predicted)) for eg in examples
    )


def gap_decisions(reference, predicted) -> List[Tuple[str, bool, bool]]:
    """RETURNS (List[Tuple[str, bool, bool]]): For a GAP doc, for names A and B: the
    pronoun's gender, whether the name is gold coreferent with the pronoun, and whether the
    prediction says so (a predicted cluster holds the pronoun and a mention overlapping the
    name). Empty for a doc without the "gap" span group."""
    if GAP_KEY not in reference.spans or len(reference.spans[GAP_KEY]) != 3:
        return []
    pronoun, *names = [(s.start, s.end) for s in reference.spans[GAP_KEY]]
    word = reference[pronoun[0] : pronoun[1]].text.lower()
    gender = "F" if word in GAP_FEMININE else "M" if word in GAP_MASCULINE else ""

    def linked(clusters: List[List[Tuple[int, int]]], name: Tuple[int, int]) -> bool:
        return any(
            pronoun in cluster
            and any(s < name[1] and name[0] < e for s, e in cluster if (s, e) != pronoun)
            for cluster in clusters
        )

    gold, pred = get_clusters(reference), get_clusters(predicted)
    return [(gender, linked(gold, name), linked(pred, name)) for name in names]


def score_gap(examples: Iterable) -> Dict[str, float]:
    """RETURNS (Dict[str, float]): GAP's F1 of the pronoun-name decisions, overall
    (`gap_f`), masculine (`gap_m_f`), feminine (`gap_f_f`) and the bias F/M (`gap_bias`)."""
    counts: Dict[str, Counter] = {"all": Counter(), "M": Counter(), "F": Counter()}
    for eg in examples:
        for gender, gold, pred in gap_decisions(eg.reference, eg.predicted):
            for group in ("all", gender):
                if group in counts:
                    counts[group]["tp"] += gold and pred
                    counts[group]["gold"] += gold
                    counts[group]["pred"] += pred
    f1 = {}
    for group, c in counts.items():
        f1[group] = prf((c["tp"], c["gold"], c["tp"], c["pred"]))[2]
    return {
        "gap_f": f1["all"],
        "gap_m_f": f1["M"],
        "gap_f_f": f1["F"],
        "gap_bias": f1["F"] / f1["M"] if f1["M"] else 0.0,
    }
