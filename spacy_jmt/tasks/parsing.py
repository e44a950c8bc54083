"""Dependency parsing: biaffine scores decoded to one well-formed tree per sentence ->
`token.head`, `token.dep_`, and so `doc.sents`."""

from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy
import torch
from spacy.attrs import DEP, HEAD
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from ..decoding import eisner_decode, mst_decode
from ..layers.heads import Segment
from .base import Task


class ParsingTask(Task):
    """A dependency parser bounded by sentence.

    sentences (Optional[str]): A tagging task on SENT_START whose predictions give the
        sentences of docs that have none; without it such docs are cut into windows.
    projective (bool): Decode with Eisner (projective) instead of Chu-Liu-Edmonds.
    max_sentence_length (int): Longer sentences are split into windows of this many tokens,
        each parsed as its own tree (arc scoring is quadratic in sentence length).
    """

    kind = "parsing"
    settings = {"sentences": None, "projective": False, "max_sentence_length": 200}

    def gold(self, example: Example) -> Tuple[List[Optional[int]], List[Optional[str]]]:
        """RETURNS: gold heads (predicted token indices) and labels; None where missing."""
        if not example.reference.has_annotation("DEP"):
            n = len(example.predicted)
            return [None] * n, [None] * n
        heads, deps = example.get_aligned_parse(projectivize=False)
        deps = [d if d else None for d in deps]
        return list(heads), deps

    def gold_labels(self, example: Example) -> Iterable[str]:
        return (d for d in self.gold(example)[1] if d is not None)

    @property
    def root_label(self) -> str:
        """RETURNS (str): The label written on sentence roots."""
        for label in ("ROOT", "root"):
            if label in self.labels:
                return label
        return self.labels[0] if self.labels else "ROOT"

    def loss(self, examples: List[Example], output: Dict[str, Any]) -> Optional[torch.Tensor]:
        arc, label = output["arc"], output["label"]
        segments: List[Segment] = output["segments"]
        golds = [self.gold(eg) for eg in examples]
        index = {lab: i for i, lab in enumerate(self.labels)}
        head_t = torch.full(arc.shape[:2], -1, dtype=torch.long)
        label_t = torch.full(arc.shape[:2], -1, dtype=torch.long)
        for s, (b, start, end) in enumerate(segments):
            heads, deps = golds[b]
            for i in range(start, end):
                h = heads[i]
                if h is None or not (start <= h < end):
                    continue
                head_t[s, i - start] = 0 if h == i else h - start + 1
                label_t[s, i - start] = index.get(deps[i], -1) if deps[i] else -1
        if not bool((head_t >= 0).any()):
            return None
        has_head = head_t >= 0
        arc_loss = torch.nn.functional.cross_entropy(arc[has_head], head_t[has_head])
        gold_label_scores = label[has_head, head_t[has_head]]  # (n_arcs, n_labels)
        has_label = label_t[has_head] >= 0
        if not bool(has_label.any()):
            return arc_loss
        label_loss = torch.nn.functional.cross_entropy(
            gold_label_scores[has_label], label_t[has_head][has_label]
        )
        return arc_loss + label_loss

    def set_annotations(self, docs: List[Doc], output: Dict[str, Any], overwrite: bool) -> None:
        if not self.labels:
            return
        arc = torch.log_softmax(output["arc"], dim=-1).numpy()
        label = output["label"].numpy()
        decode = eisner_decode if self.cfg["projective"] else mst_decode
        root = self.labels.index(self.root_label) if self.root_label in self.labels else -1
        heads = {b: numpy.arange(len(doc)) for b, doc in enumerate(docs)}
        deps = {b: numpy.zeros(len(doc), dtype="uint64") for b, doc in enumerate(docs)}
        for s, (b, start, end) in enumerate(output["segments"]):
            n = end - start
            tree = decode(arc[s, :n, : n + 1])
            lab = label[s, numpy.arange(n), tree]  # (n, n_labels)
            if root >= 0:
                lab[:, root] = -numpy.inf
            best = lab.argmax(-1)
            if root >= 0:
                best[tree == 0] = root
            # spaCy marks the root by a head pointing at itself.
            heads[b][start:end] = numpy.where(tree == 0, numpy.arange(start, end), tree - 1 + start)
            deps[b][start:end] = [docs[b].vocab.strings.add(self.labels[j]) for j in best]
        for b, doc in enumerate(docs):
            if len(doc) == 0 or (doc.has_annotation("DEP") and not overwrite):
                continue
            rel_heads = (heads[b] - numpy.arange(len(doc))).astype("uint64")
            doc.from_array([HEAD, DEP], numpy.stack([rel_heads, deps[b]], axis=1))

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        examples = [eg for eg in examples if eg.reference.has_annotation("DEP")]
        if not examples:
            return {"dep_uas": None, "dep_las": None, "dep_las_per_type": None}
        return Scorer.score_deps(examples, "dep", getter=_dep_getter)


def _dep_getter(token, attr: str) -> str:
    return token.vocab.strings.as_string(getattr(token, attr)).lower()


def sentence_segments(
    starts: List[numpy.ndarray], max_length: int
) -> List[Segment]:
    """Turn sentence-start flags per doc into (doc index, start, end) segments of at most
    max_length tokens.

    starts (List[numpy.ndarray]): Per doc, a bool array with True where a sentence starts.
    max_length (int): The longest segment.
    RETURNS (List[Segment]): The segments of all docs, in order.
    """
    segments = []
    for b, flags in enumerate(starts):
        n = len(flags)
        bounds = [i for i in range(1, n) if flags[i]] + [n]
        begin = 0
        for end in bounds:
            for s in range(begin, end, max_length):
                segments.append((b, s, min(s + max_length, end)))
            begin = end
    return segments
