"""Sentence-pair tasks (JMT's top two): relatedness -> `doc._.relatedness`, entailment ->
`doc.cats`.

A pair is a Doc of exactly two sentences (see `spacy_jmt.pairs`); the network scores every
doc of the batch that has two segments (its own sentence starts, or the predicted ones), and
other docs get no pair output. Each sentence is the max-pool over time of the task's level,
the pair is [|a - b|; a * b]; with `attention = true` the sentences first attend to each
other, as in ESIM (see `spacy_jmt.heads.SentencePairHead`).

Relatedness follows Tai et al. (2015) as JMT does: the head predicts a distribution over the
score points 1..5, trained with the KL divergence from the gold score spread over its two
nearest points (3.6 -> 0.4 on 3, 0.6 on 4); the prediction is its expected value. Entailment
is a softmax over ENTAILMENT / NEUTRAL / CONTRADICTION; with `relatedness_task` it also reads
that task's label embedding (its predicted distribution times a learned matrix), as JMT's
entailment layer reads relatedness.
"""

import math
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

from spacy.tokens import Doc
from spacy.training import Example

from ..pair_scores import score_entailment, score_relatedness
from ..pairs import (
    ENTAILMENT_LABELS,
    RELATEDNESS_MAX,
    RELATEDNESS_MIN,
    entailment_probs,
    gold_entailment,
    set_entailment,
)
from .base import Task

if TYPE_CHECKING:
    import torch
    from torch import nn

# The score points of the relatedness distribution: 1, 2, 3, 4, 5.
SCORE_POINTS = [str(p) for p in range(int(RELATEDNESS_MIN), int(RELATEDNESS_MAX) + 1)]


class PairTask(Task):
    """A task over sentence pairs, with a fixed label set.

    attention (bool): Whether the two sentences attend to each other before they are
        pooled (ESIM's alignment; see `spacy_jmt.heads.SentencePairHead`).
    """

    settings: Dict[str, Any] = {"attention": False}
    min_level = 1
    pair_level = True
    fixed_labels: List[str] = []

    def build_head(self, width_in: int, sizes: Dict[str, Any]) -> "nn.Module":
        from ..heads import SentencePairHead

        return SentencePairHead(
            width_in, self.n_outputs, self.cfg["depth"], sizes["width"],
            sizes["label_embedding_width"], bool(self.reads), sizes["dropout"],
            bool(self.cfg["attention"]),
        )  # fmt: skip

    def gold(self, example: Example) -> Any:
        """RETURNS: The example's gold value for this task, or None."""
        raise NotImplementedError

    def gold_labels(self, example: Example) -> Iterable[str]:
        return self.fixed_labels if self.gold(example) is not None else ()

    def target(self, value: Any) -> Any:
        """RETURNS: The loss target of a gold value."""
        raise NotImplementedError

    def pair_loss(self, logits: "torch.Tensor", targets: List[Any]) -> "torch.Tensor":
        """RETURNS (Tensor): The mean loss of the logits (n, n_labels) against the targets."""
        raise NotImplementedError

    def loss(
        self, examples: List[Example], outputs: Dict[str, Dict[str, Any]]
    ) -> Optional["torch.Tensor"]:
        own = self.pair_outputs(outputs)
        if own is None:
            return None
        rows, targets = [], []
        for i, b in enumerate(own["docs"]):
            value = self.gold(examples[b])
            if value is not None:
                rows.append(i)
                targets.append(self.target(value))
        if not rows:
            return None
        return self.pair_loss(own["logits"][rows], targets)

    def pair_outputs(self, outputs: Dict[str, Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        """RETURNS: The head's outputs ("logits" per pair, "docs": their batch indices), or
        None if the batch held no pair."""
        own = outputs.get(self.name)
        return own if own is not None and own.get("docs") else None


class RelatednessTask(PairTask):
    """Semantic relatedness of the two sentences, on SICK's 1-5 scale."""

    kind = "relatedness"
    fixed_labels = SCORE_POINTS

    def gold(self, example: Example) -> Optional[float]:
        return example.reference._.relatedness

    def target(self, value: float) -> List[float]:
        return score_distribution(value, len(self.labels))

    def owns(self) -> List[str]:
        return ["doc._.relatedness (a relatedness task)"]

    def pair_loss(self, logits: "torch.Tensor", targets: List[Any]) -> "torch.Tensor":
        import torch

        log_probs = torch.log_softmax(logits, dim=-1)
        return torch.nn.functional.kl_div(log_probs, torch.tensor(targets), reduction="batchmean")

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        own = self.pair_outputs(outputs)
        if own is None:
            return
        scores = expected_scores(own["logits"].detach())
        for b, score in zip(own["docs"], scores.tolist()):
            if overwrite or docs[b]._.relatedness is None:
                docs[b]._.relatedness = score

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        return score_relatedness(examples, name=self.name)


class EntailmentTask(PairTask):
    """Whether sentence A entails sentence B, contradicts it, or neither.

    relatedness_task (Optional[str]): A relatedness task at this level or below whose
        label embedding the classifier reads.
    """

    kind = "entailment"
    settings = {**PairTask.settings, "relatedness_task": None}
    reads_settings = ("relatedness_task",)
    fixed_labels = list(ENTAILMENT_LABELS)

    def owns(self) -> List[str]:
        return ["doc.cats (an entailment task)"]

    def link(self, tasks: Dict[str, Task]) -> None:
        if self.cfg["relatedness_task"] is not None:
            self.linked(tasks, "relatedness_task", RelatednessTask)

    def gold(self, example: Example) -> Optional[str]:
        return gold_entailment(example.reference)

    def target(self, value: str) -> int:
        return self.labels.index(value)

    def pair_loss(self, logits: "torch.Tensor", targets: List[Any]) -> "torch.Tensor":
        import torch

        return torch.nn.functional.cross_entropy(logits, torch.tensor(targets))

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        import torch

        own = self.pair_outputs(outputs)
        if own is None:
            return
        probs = torch.softmax(own["logits"].detach().double(), dim=-1).tolist()
        for b, row in zip(own["docs"], probs):
            if overwrite or entailment_probs(docs[b]) is None:
                set_entailment(docs[b], dict(zip(self.labels, row)))

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        return score_entailment(examples, name=self.name)


def score_distribution(value: float, n_points: int) -> List[float]:
    """Spread a score over its two nearest score points (Tai et al. 2015).

    value (float): The score, clipped to [1, n_points].
    n_points (int): The number of score points (1..n_points).
    RETURNS (List[float]): The target distribution, whose expected value is the score.
    """
    value = min(max(float(value), 1.0), float(n_points))
    low = int(math.floor(value))
    target = [0.0] * n_points
    target[low - 1] = low + 1 - value
    if low < n_points:
        target[low] = value - low
    return target


def expected_scores(logits: "torch.Tensor") -> "torch.Tensor":
    """The expected score under the predicted distribution over the points 1..n.

    logits (Tensor): (n_pairs, n_points).
    RETURNS (Tensor): (n_pairs,) float64 scores in [1, n_points].
    """
    import torch

    points = torch.arange(1, logits.shape[-1] + 1, dtype=torch.float64)
    return torch.softmax(logits.double(), dim=-1) @ points
