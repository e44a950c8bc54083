"""Relation extraction over the spans of a span task -> `doc._.relations`.

Candidates are the ordered pairs of distinct spans within one sentence. A pair's logits come
from the task's head (its own layers, the span task's label embeddings, a biaffine scorer;
see `spacy_jmt.heads.SpanPairHead`), one sigmoid per label, so a pair may hold several
relations. A label is predicted where its probability reaches `threshold` and, with
`constrain_types`, only for argument types it joined in the training data (head type, label,
tail type).

Training candidates: the gold spans (with their gold types) plus the spans the span task
predicts in the same forward pass (with their predicted types) that are not gold. Gold spans
teach the relations from the first update; the predicted ones add the negatives that
inference will meet (pairs with a spurious span hold no relation), so no schedule switching
from gold to predicted spans is needed. At inference the candidates are the spans the span
task wrote (`doc.spans[<its key>]`).

Several relation tasks (over different span tasks, e.g. one per corpus with its own entity
types) share `doc._.relations`. A task's relations are those between spans of its span task:
it learns from a doc only if the doc annotates that span task (`doc.spans[<its key>]`), and
only from the gold relations whose arguments are among those spans; it is scored the same
way. The first relation task of a component writes `doc._.relations` for all of them.
"""

import bisect
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from spacy.tokens import Doc, Span
from spacy.training import Example

from ..relations import Relation, get_relations, has_relations
from .base import Task
from .spans import SpanTask

if TYPE_CHECKING:
    import torch
    from torch import nn

# A candidate argument: (doc index, start, end, type index + 1; 0 = unknown type).
Candidate = Tuple[int, int, int, int]
# A relation in character offsets, for scoring across tokenizations.
CharRelation = Tuple[int, int, str, int, int, str, str]


class RelationTask(Task):
    """Directed, labelled relations between the spans of a span task.

    spans_task (str): The span task whose spans are the arguments (required).
    threshold (float): Probability at which a label is predicted for a pair (an inference
        setting: a loaded pipeline takes it from the config it is loaded with).
    constrain_types (bool): Predict a label only for argument types seen with it in training.
    max_spans (int): Candidate spans per sentence at most (the first ones); pairs grow with
        its square.
    """

    kind = "relation"
    settings = {"spans_task": None, "threshold": 0.5, "constrain_types": True, "max_spans": 50}
    inference_settings = ("threshold",)
    min_level = 1
    communicates = True
    reads_settings = ("spans_task",)

    def __init__(self, name: str, cfg: Dict[str, Any], labels: Optional[List[str]] = None):
        super().__init__(name, cfg, labels)
        if not isinstance(self.cfg["spans_task"], str):
            raise ValueError(f"Task '{name}': set spans_task, the span task it relates")
        self.span_task: Optional[SpanTask] = None
        # The component's relation tasks in order; the first writes doc._.relations for all.
        self.peers: List["RelationTask"] = [self]

    def link(self, tasks: Dict[str, Task]) -> None:
        self.span_task = self.linked(tasks, "spans_task", SpanTask)
        self.peers = [t for t in tasks.values() if isinstance(t, RelationTask)]

    @property
    def spans(self) -> SpanTask:
        assert self.span_task is not None, "build_tasks links the tasks"
        return self.span_task

    def build_head(self, width_in: int, sizes: Dict[str, Any]) -> "nn.Module":
        from ..heads import SpanPairHead

        return SpanPairHead(
            width_in + sizes["label_embedding_width"], self.n_outputs, len(self.spans.labels),
            self.cfg["depth"], sizes["width"], sizes["arc_width"], sizes["label_width"],
            sizes["dropout"],
        )  # fmt: skip

    # -- gold -------------------------------------------------------------------------------

    def own_relations(self, doc: Doc) -> Optional[List[Relation]]:
        """RETURNS (Optional[List[Relation]]): The relations of the doc between spans of
        this task's span group, or None if the doc does not annotate this task (no
        relations, or no span group of the span task)."""
        if not has_relations(doc) or self.spans.key not in doc.spans:
            return None
        spans = {(s.start, s.end, s.label_) for s in doc.spans[self.spans.key]}
        return [
            r for r in get_relations(doc)
            if (r.head.start, r.head.end, r.head.label_) in spans
            and (r.tail.start, r.tail.end, r.tail.label_) in spans
        ]  # fmt: skip

    def gold_labels(self, example: Example) -> Iterable[str]:
        return (rel.label for rel in self.own_relations(example.reference) or [])

    def observe(self, example: Example) -> None:
        """Learn the argument-type constraints: (head type, label, tail type) triples; count
        the relations with an argument that does not align to the predicted tokens."""
        allowed = {tuple(t) for t in self.state.get("allowed", [])}
        relations = self.own_relations(example.reference) or []
        seen = {(r.head.label_, r.label, r.tail.label_) for r in relations}
        if not seen <= allowed:
            self.state["allowed"] = sorted(list(t) for t in allowed | seen)
        pred = example.predicted
        misaligned = sum(
            any(pred.char_span(a.start_char, a.end_char) is None for a in (rel.head, rel.tail))
            for rel in relations
        )
        self.state["n_relations"] = self.state.get("n_relations", 0) + len(relations)
        self.state["n_misaligned"] = self.state.get("n_misaligned", 0) + misaligned

    def data_warning(self) -> Optional[str]:
        n = self.state.get("n_misaligned", 0)
        if not n:
            return None
        return (
            f"Task '{self.name}': {n} of the {self.state['n_relations']} gold relations have "
            "an argument that does not align to the tokenizer's tokens and are not learned "
            "(fix the tokenization, or train with the reader's gold_tokens = true); they still "
            "count in the scores"
        )

    def _type(self, label: str) -> int:
        labels = self.spans.labels
        return labels.index(label) + 1 if label in labels else 0

    def gold(
        self, example: Example
    ) -> Tuple[List[Tuple[int, int, int]], Dict[Tuple[int, int, int, int], Set[str]]]:
        """The gold arguments and relations, on the predicted tokens (misaligned ones are
        left out).

        RETURNS: the spans as (start, end, type), and per (head start, head end, tail start,
            tail end) the set of relation labels.
        """
        pred, ref = example.predicted, example.reference

        def align(span: Span) -> Optional[Tuple[int, int, int]]:
            aligned = pred.char_span(span.start_char, span.end_char)
            if aligned is None:
                return None
            return aligned.start, aligned.end, self._type(span.label_)

        spans = [align(s) for s in ref.spans.get(self.spans.key, [])]
        relations: Dict[Tuple[int, int, int, int], Set[str]] = defaultdict(set)
        for rel in self.own_relations(ref) or []:
            head, tail = align(rel.head), align(rel.tail)
            if head is not None and tail is not None:
                spans += [head, tail]
                relations[head[:2] + tail[:2]].add(rel.label)
        return list(dict.fromkeys(s for s in spans if s is not None)), relations

    # -- candidates -------------------------------------------------------------------------

    def pairs(
        self, candidates: List[Candidate], segments: List[Tuple[int, int, int]]
    ) -> List[Tuple[int, int]]:
        """RETURNS: the ordered pairs (head, tail) of distinct candidates in one sentence,
        with at most max_spans candidates per sentence."""
        starts: Dict[int, List[int]] = defaultdict(list)
        ends: Dict[Tuple[int, int], int] = {}
        for b, start, end in segments:  # in doc order, as the segmenter gives them
            starts[b].append(start)
            ends[b, start] = end
        by_segment: Dict[Tuple[int, int], List[int]] = defaultdict(list)
        for i, (b, start, end, _) in enumerate(candidates):
            k = bisect.bisect_right(starts[b], start) - 1
            if k < 0:
                continue
            segment = (b, starts[b][k])
            if end <= ends[segment] and len(by_segment[segment]) < self.cfg["max_spans"]:
                by_segment[segment].append(i)
        return [(h, t) for group in by_segment.values() for h in group for t in group if h != t]

    def _score(
        self,
        output: Dict[str, Any],
        candidates: List[Candidate],
        pairs: List[Tuple[int, int]],
        training: bool,
    ) -> "torch.Tensor":
        import torch

        assert self.head is not None, "the component binds the heads once the network is built"
        spans = torch.tensor([c[:3] for c in candidates], dtype=torch.long).view(-1, 3)
        types = torch.tensor([c[3] for c in candidates], dtype=torch.long)
        index = torch.tensor(pairs, dtype=torch.long).view(-1, 2)
        head: Any = self.head  # a SpanPairHead
        return head.score_pairs(output["features"], spans, types, index, training=training)

    # -- training ---------------------------------------------------------------------------

    def loss(
        self, examples: List[Example], outputs: Dict[str, Dict[str, Any]]
    ) -> Optional["torch.Tensor"]:
        import torch

        output = outputs[self.name]
        annotated = [
            b for b, eg in enumerate(examples) if self.own_relations(eg.reference) is not None
        ]
        if not annotated or not self.labels:
            return None
        predicted = self.spans.predict_spans(
            outputs[self.spans.name], [len(eg.predicted) for eg in examples]
        )
        candidates: List[Candidate] = []
        gold: Dict[Tuple[int, int, int, int, int], Set[str]] = {}
        for b in annotated:
            spans, relations = self.gold(examples[b])
            seen = {(s, e) for s, e, _ in spans}
            candidates += [(b, s, e, t) for s, e, t in spans]
            candidates += [
                (b, s, e, self._type(label))
                for s, e, label, _ in predicted[b]
                if (s, e) not in seen
            ]
            gold.update({(b, *key): labels for key, labels in relations.items()})
        pairs = self.pairs(candidates, output["segments"])
        if not pairs:
            return None
        targets = torch.zeros(len(pairs), len(self.labels))
        index = {label: i for i, label in enumerate(self.labels)}
        for p, (h, t) in enumerate(pairs):
            (b, hs, he, _), (_, ts, te, _) = candidates[h], candidates[t]
            for label in gold.get((b, hs, he, ts, te), ()):
                if label in index:
                    targets[p, index[label]] = 1.0
        logits = self._score(output, candidates, pairs, training=True)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
        return bce / len(pairs)

    # -- inference --------------------------------------------------------------------------

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        """The first relation task writes the relations of every relation task (in task
        order) to the docs that may be written: all when overwriting, else those that had
        no relations."""
        if self.peers[0] is not self:
            return
        writable = [b for b, doc in enumerate(docs) if overwrite or not has_relations(doc)]
        found: Dict[int, List[Relation]] = {b: [] for b in writable}
        for task in self.peers:
            for b, relations in task.predict_relations(docs, outputs, writable).items():
                found[b] += relations
        for b, relations in found.items():
            docs[b]._.relations = relations

    def predict_relations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], writable: List[int]
    ) -> Dict[int, List[Relation]]:
        """RETURNS (Dict[int, List[Relation]]): This task's relations per writable doc, between
        the spans its span task wrote, sorted by head, tail and label."""
        import torch

        output = outputs[self.name]
        arguments: List[Span] = []
        candidates: List[Candidate] = []
        for b in writable:
            for span in docs[b].spans.get(self.spans.key, []):
                arguments.append(span)
                candidates.append((b, span.start, span.end, self._type(span.label_)))
        pairs = self.pairs(candidates, output.get("segments", []))
        found: Dict[int, List[Relation]] = {b: [] for b in writable}
        if pairs and self.labels:
            with torch.no_grad():
                probs = torch.sigmoid(self._score(output, candidates, pairs, training=False))
            allowed = {tuple(t) for t in self.state.get("allowed", [])}
            for p, q in zip(*torch.nonzero(probs >= self.cfg["threshold"], as_tuple=True)):
                head, tail = arguments[pairs[p][0]], arguments[pairs[p][1]]
                label = self.labels[int(q)]
                if self.cfg["constrain_types"] and (
                    (head.label_, label, tail.label_) not in allowed
                ):
                    continue
                found[candidates[pairs[p][0]][0]].append(
                    Relation(head, tail, label, float(probs[p, q]))
                )
        for relations in found.values():
            relations.sort(key=lambda r: (r.head.start, r.tail.start, r.label))
        return found

    # -- scores -----------------------------------------------------------------------------

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        examples = [eg for eg in examples if self.own_relations(eg.reference) is not None]
        return score_relations(examples, self.name, lambda doc: self.own_relations(doc) or [])


def _char_relations(
    doc: Doc, boundaries_only: bool, relations: Callable[[Doc], List[Relation]]
) -> Set[CharRelation]:
    result = set()
    for r in relations(doc):
        h_label, t_label = ("", "") if boundaries_only else (r.head.label_, r.tail.label_)
        result.add(
            (r.head.start_char, r.head.end_char, h_label,
             r.tail.start_char, r.tail.end_char, t_label, r.label)
        )  # fmt: skip
    return result


def _prf(tp: int, n_pred: int, n_gold: int) -> Tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score_relations(
    examples: List[Example],
    name: str,
    relations: Callable[[Doc], List[Relation]] = get_relations,
) -> Dict[str, Any]:
    """Relation P/R/F, micro and macro (over the relation labels in gold or predictions).

    Strict: both arguments' boundaries and types and the label must match. Boundaries: the
    types of the arguments are not compared. Arguments are compared by character offsets,
    so the predicted tokenization need not match the gold one.

    examples (List[Example]): Examples whose references have relation annotation.
    name (str): The prefix of the keys.
    relations (Callable[[Doc], List[Relation]]): The relations of a doc to score (all of
        `doc._.relations` by default).
    RETURNS (Dict[str, Any]): {name}_micro_p/r/f, {name}_macro_p/r/f, the same with
        {name}_boundaries_..., and {name}_per_type (strict, per label: p, r, f).
    """
    keys = [f"{name}{mode}_{avg}_{m}" for mode in ("", "_boundaries")
            for avg in ("micro", "macro") for m in "prf"]  # fmt: skip
    if not examples:
        return {**{k: None for k in keys}, f"{name}_per_type": None}
    scores: Dict[str, Any] = {}
    for mode, boundaries_only in (("", False), ("_boundaries", True)):
        counts: Dict[str, List[int]] = defaultdict(lambda: [0, 0, 0])  # tp, pred, gold
        for eg in examples:
            pred = _char_relations(eg.predicted, boundaries_only, relations)
            gold = _char_relations(eg.reference, boundaries_only, relations)
            for rel in pred:
                counts[rel[-1]][1] += 1
                counts[rel[-1]][0] += rel in gold
            for rel in gold:
                counts[rel[-1]][2] += 1
        total = [sum(c[i] for c in counts.values()) for i in range(3)]
        micro = _prf(*total)
        per_type = {label: _prf(*c) for label, c in sorted(counts.items())}
        macro = tuple(
            sum(v[i] for v in per_type.values()) / len(per_type) if per_type else 0.0
            for i in range(3)
        )
        for avg, values in (("micro", micro), ("macro", macro)):
            scores.update({f"{name}{mode}_{avg}_{m}": v for m, v in zip("prf", values)})
        if not boundaries_only:
            scores[f"{name}_per_type"] = {
                label: dict(zip("prf", v)) for label, v in per_type.items()
            }
    return scores
