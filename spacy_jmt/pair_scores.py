"""Scores of the sentence-pair tasks: relatedness (Pearson, Spearman, MSE) and entailment
(accuracy, macro F1, per label), over the pair docs of the references (spacy_jmt.pairs).

Examples whose reference is not a pair doc (exactly two sentences) are skipped. Scores are
fractions in [0, 1] (correlations in [-1, 1]) as spaCy's scorers give them; MSE is on the
1-5 scale and lower is better (give it a negative weight, or none, in `score_weights`).
Numpy only: Pearson is the sample correlation, Spearman the Pearson correlation of the
ranks with ties given their average rank (as scipy.stats.spearmanr).
"""

from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy
from spacy.scorer import PRFScore
from spacy.training import Example

from .pairs import ENTAILMENT_LABELS, get_entailment, gold_entailment, pair_sentences

Values = Union[Sequence[float], numpy.ndarray]


def pearson(x: Values, y: Values) -> float:
    """The Pearson correlation of two equally long sequences.

    x (Union[Sequence[float], numpy.ndarray]): The first values.
    y (Union[Sequence[float], numpy.ndarray]): The second values.
    RETURNS (float): The correlation in [-1, 1]; 0.0 where it is undefined (fewer than two
        values, or either sequence constant: a constant predictor correlates with nothing).
    """
    a = numpy.asarray(x, dtype="float64")
    b = numpy.asarray(y, dtype="float64")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"pearson needs two 1-d sequences of one length, got {a.shape}, {b.shape}")
    if len(a) < 2:
        return 0.0
    da, db = a - a.mean(), b - b.mean()
    denom = float(numpy.sqrt((da * da).sum() * (db * db).sum()))
    if denom == 0.0:
        return 0.0
    return float(numpy.clip((da * db).sum() / denom, -1.0, 1.0))


def average_ranks(x: Values) -> numpy.ndarray:
    """Ranks 1..n of the values, ties sharing the average of the ranks they span.

    x (Union[Sequence[float], numpy.ndarray]): The values.
    RETURNS (numpy.ndarray): The ranks (float64), in the order of the values.
    """
    a = numpy.asarray(x, dtype="float64")
    order = numpy.argsort(a, kind="mergesort")
    sorted_a = a[order]
    # Start of each run of equal values in sorted order, and the run each value belongs to.
    starts = numpy.flatnonzero(numpy.r_[True, sorted_a[1:] != sorted_a[:-1]])
    ends = numpy.r_[starts[1:], len(a)]
    run_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = numpy.empty(len(a), dtype="float64")
    ranks[order] = numpy.repeat(run_rank, ends - starts)
    return ranks


def spearman(x: Values, y: Values) -> float:
    """The Spearman rank correlation (average ranks for ties).

    x (Union[Sequence[float], numpy.ndarray]): The first values.
    y (Union[Sequence[float], numpy.ndarray]): The second values.
    RETURNS (float): The correlation in [-1, 1]; 0.0 where it is undefined (as `pearson`).
    """
    return pearson(average_ranks(x), average_ranks(y))


def _pair_examples(examples: Iterable[Example]) -> List[Example]:
    return [eg for eg in examples if pair_sentences(eg.reference) is not None]


def score_relatedness(
    examples: Iterable[Example], name: str = "relatedness", **kwargs: Any
) -> Dict[str, Optional[float]]:
    """Score predicted relatedness against gold, over the examples whose reference is a pair
    doc with a relatedness and whose prediction has one (`doc._.relatedness`).

    examples (Iterable[Example]): The examples.
    name (str): The prefix of the keys (the task's name).
    RETURNS (Dict[str, Optional[float]]): "{name}_pearson", "{name}_spearman",
        "{name}_mse"; all None when no example has both scores.
    """
    gold: List[float] = []
    pred: List[float] = []
    for eg in _pair_examples(examples):
        g, p = eg.reference._.relatedness, eg.predicted._.relatedness
        if g is not None and p is not None:
            gold.append(g)
            pred.append(p)
    if not gold:
        return {f"{name}_pearson": None, f"{name}_spearman": None, f"{name}_mse": None}
    diff = numpy.asarray(pred, dtype="float64") - numpy.asarray(gold, dtype="float64")
    return {
        f"{name}_pearson": pearson(gold, pred),
        f"{name}_spearman": spearman(gold, pred),
        f"{name}_mse": float((diff * diff).mean()),
    }


def score_entailment(
    examples: Iterable[Example], name: str = "entailment", **kwargs: Any
) -> Dict[str, Any]:
    """Score predicted entailment labels against gold, over the examples whose reference is a
    pair doc with exactly one positive label among ENTAILMENT / NEUTRAL / CONTRADICTION in
    its cats. The predicted label is the argmax of the predicted cats over these labels; a
    prediction without them counts as wrong (a false negative of the gold label).

    examples (Iterable[Example]): The examples.
    name (str): The prefix of the keys (the task's name).
    RETURNS (Dict[str, Any]): "{name}_acc" and "{name}_macro_f" (the mean F of the
        labels found in gold or predictions), both None when no example is scored, and
        "{name}_per_type" ({label: {"p", "r", "f"}} for every label, None when no
        example is scored).
    """
    prf = {label: PRFScore() for label in ENTAILMENT_LABELS}
    seen = set()
    n = correct = 0
    for eg in _pair_examples(examples):
        gold = gold_entailment(eg.reference)
        if gold is None:
            continue
        guess = get_entailment(eg.predicted)
        n += 1
        seen.add(gold)
        if guess == gold:
            correct += 1
            prf[gold].tp += 1
            continue
        prf[gold].fn += 1
        if guess is not None:
            seen.add(guess)
            prf[guess].fp += 1
    if n == 0:
        return {f"{name}_acc": None, f"{name}_macro_f": None, f"{name}_per_type": None}
    return {
        f"{name}_acc": correct / n,
        f"{name}_macro_f": sum(prf[label].fscore for label in seen) / len(seen),
        f"{name}_per_type": {label: prf[label].to_dict() for label in ENTAILMENT_LABELS},
    }


def score_pairs(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
    """Both pair scores.

    examples (Iterable[Example]): The examples.
    RETURNS (Dict[str, Any]): The keys of `score_relatedness` and `score_entailment`.
    """
    examples = list(examples)
    return {**score_relatedness(examples), **score_entailment(examples)}
