"""Entity mentions, nested and labelled (HMTL's mention level): span enumeration with
classification -> `doc.spans[<key>]` (default "mentions"), each span with a confidence
(`doc.spans[<key>].attrs["scores"]`).

Every span of at most `max_width` tokens inside a sentence is a candidate; the head
(`spacy_jmt.heads.SpanClassifierHead`) gives it a distribution over the labels and "no
mention". A candidate is a mention where its most probable label is more than `min_odds`
times as probable as "no mention" (an inference setting: it can change after training); of
mentions that cross (overlap without nesting) the more confident one is kept, so mentions
nest to any depth, as LitBank's do (up to depth 4), and never cross.
"""

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

from spacy.scorer import Scorer
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example

from ..keys import MENTIONS_KEY
from .base import Task

if TYPE_CHECKING:
    import torch
    from torch import nn

BLOCK_CELLS = 20000  # (doc, start, width) cells of the span grid scored at once at inference


class MentionTask(Task):
    """Nested, labelled spans read from and written to `doc.spans[spans_key]`.

    spans_key (str): The span group to read gold from and write to.
    max_width (int): The longest mention, in tokens (longer gold mentions are not learned
        and are reported after `initialize`; on LitBank 98.3% are at most 10 tokens).
    width_embedding (int): Width of the head's span-width embedding.
    negative_weight (float): The weight of a "no mention" candidate in the loss, against 1
        for a mention (a sentence of 28 tokens has 280 candidates and about 2 mentions; the
        weighted mean keeps the mentions from drowning, as SpERT's sampled negatives do).
    min_odds (float): How many times more probable than "no mention" a candidate's best
        label must be for it to be a mention. The negative weight tilts the network towards
        mentions (by up to 1 / negative_weight in the odds), so values over 1 trade recall
        for precision; tune it on dev (`spacy.load(path, config={"components": {"jmt":
        {"tasks": {NAME: {"min_odds": ...}}}}})`), no retraining needed.
    """

    kind = "mentions"
    settings = {
        "spans_key": MENTIONS_KEY, "max_width": 10, "width_embedding": 20,
        "negative_weight": 0.2, "min_odds": 1.0,
    }  # fmt: skip
    inference_settings = ("min_odds",)
    min_level = 1

    def __init__(self, name: str, cfg: Dict[str, Any], labels: Optional[List[str]] = None):
        super().__init__(name, cfg, labels)
        if not isinstance(self.cfg["max_width"], int) or self.cfg["max_width"] < 1:
            raise ValueError(f"Task '{name}': max_width must be an integer >= 1")
        self.require_number("min_odds", lambda odds: odds > 0, "a number > 0")

    @property
    def key(self) -> str:
        return self.cfg["spans_key"]

    def build_head(self, width_in: int, sizes: Dict[str, Any]) -> "nn.Module":
        from ..heads import SpanClassifierHead

        return SpanClassifierHead(
            width_in, len(self.labels), self.cfg["depth"], sizes["width"],
            self.cfg["max_width"], self.cfg["width_embedding"], sizes["dropout"],
        )  # fmt: skip

    # -- gold -------------------------------------------------------------------------------

    def gold_labels(self, example: Example) -> Iterable[str]:
        return (span.label_ for span in example.reference.spans.get(self.key, []))

    def gold(self, example: Example) -> Optional[Dict[Tuple[int, int], str]]:
        """RETURNS: the gold mentions on the predicted tokens, (start, end) -> label (the
        first label where a span has several), or None if the doc does not annotate them."""
        ref = example.reference
        if self.key not in ref.spans:
            return None
        found: Dict[Tuple[int, int], str] = {}
        for span in ref.spans[self.key]:
            aligned = example.predicted.char_span(span.start_char, span.end_char)
            if aligned is not None:
                found.setdefault((aligned.start, aligned.end), span.label_)
        return found

    def observe(self, example: Example) -> None:
        """Count the gold mentions the task cannot learn: longer than max_width, or not on
        the predicted doc's token boundaries."""
        gold = example.reference.spans.get(self.key, [])
        if not len(gold):
            return
        aligned = self.gold(example) or {}
        long = sum(1 for s, e in aligned if e - s > self.cfg["max_width"])
        for key, n in (("n_mentions", len(gold)), ("n_long", long),
                       ("n_misaligned", len(gold) - len(aligned))):  # fmt: skip
            self.state[key] = self.state.get(key, 0) + n

    def data_warning(self) -> Optional[str]:
        long, misaligned = self.state.get("n_long", 0), self.state.get("n_misaligned", 0)
        if not long and not misaligned:
            return None
        return (
            f"Task '{self.name}': of the {self.state['n_mentions']} gold mentions in "
            f"doc.spans['{self.key}'], {long} are longer than max_width "
            f"({self.cfg['max_width']}) and {misaligned} (or their duplicates) do not align to "
            "the predicted tokens: they are not learned and still count in the scores"
        )

    # -- candidates -------------------------------------------------------------------------

    def _grid(
        self, output: Dict[str, Any], first: int, last: int, training: bool
    ) -> "torch.Tensor":
        assert self.head is not None, "the component binds the heads once the network is built"
        head: Any = self.head  # a SpanClassifierHead
        return head.grid_logits(output["features"], first, last, training=training)

    # -- training ---------------------------------------------------------------------------

    def loss(
        self, examples: List[Example], outputs: Dict[str, Dict[str, Any]]
    ) -> Optional["torch.Tensor"]:
        import torch

        output = outputs[self.name]
        golds = [self.gold(eg) for eg in examples]
        segments = [seg for seg in output["segments"] if golds[seg[0]] is not None]
        T, width = output["features"].shape[1], self.cfg["max_width"]
        valid = candidate_grid(sentence_ids(segments, len(examples), T, width), 0, T, width)
        if not valid.any():
            return None
        index = {label: i + 1 for i, label in enumerate(self.labels)}
        targets = torch.zeros(valid.shape, dtype=torch.long)
        for b, gold in enumerate(golds):
            for (s, e), label in (gold or {}).items():
                if e - s <= width and label in index:
                    targets[b, s, e - s - 1] = index[label]
        logits = self._grid(output, 0, T, training=True)
        return weighted_loss(logits[valid], targets[valid], self.cfg["negative_weight"])

    # -- inference --------------------------------------------------------------------------

    def predict_mentions(
        self, outputs: Dict[str, Dict[str, Any]], n_docs: int
    ) -> List[List[Tuple[int, int, str, float]]]:
        """RETURNS: per doc, the predicted mentions as (start, end, label, probability),
        nested but never crossing, sorted by start and then longest first."""
        import torch

        output = outputs[self.name]
        found: List[List[Tuple[int, int, str, float]]] = [[] for _ in range(n_docs)]
        segments = output.get("segments", [])
        if not segments or not self.labels:
            return found
        T, width = output["features"].shape[1], self.cfg["max_width"]
        chosen: List[Tuple[float, int, int, int, int]] = []  # (probability, b, s, e, label)
        step = max(16, BLOCK_CELLS // (n_docs * width))
        sentence = sentence_ids(segments, n_docs, T, width)
        with torch.no_grad():  # in blocks of starts: a 100k-token doc has a million spans
            for first in range(0, T, step):
                last = min(first + step, T)
                probs = torch.softmax(self._grid(output, first, last, False), -1)
                best_p, best = probs[..., 1:].max(-1)
                keep = candidate_grid(sentence, first, last, width)
                keep &= best_p > self.cfg["min_odds"] * probs[..., 0]
                for b, t, w in torch.nonzero(keep).tolist():
                    s = first + t
                    chosen.append((float(best_p[b, t, w]), b, s, s + w + 1, int(best[b, t, w])))
        ends_at: List[Dict[int, List[int]]] = [{} for _ in range(n_docs)]  # start -> ends
        for p, b, s, e, label in sorted(chosen, key=lambda c: -c[0]):
            # a kept mention crosses (s, e) if it starts inside it and ends after it, or
            # starts before it and ends inside it; kept mentions are at most `width` long
            crossing = any(
                (s < s2 and e < e2) or (s2 < s and s < e2 < e)
                for s2 in range(s - width + 1, e)
                for e2 in ends_at[b].get(s2, ())
                if s2 < e and s < e2
            )
            if not crossing:
                found[b].append((s, e, self.labels[label], p))
                ends_at[b].setdefault(s, []).append(e)
        for mentions in found:
            mentions.sort(key=lambda m: (m[0], -m[1]))
        return found

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        for doc, mentions in zip(docs, self.predict_mentions(outputs, len(docs))):
            if overwrite or self.key not in doc.spans:
                doc.spans[self.key] = SpanGroup(
                    doc,
                    name=self.key,
                    spans=[Span(doc, s, e, label=label) for s, e, label, _ in mentions],
                    attrs={"scores": [p for *_, p in mentions]},
                )

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        key = self.key
        return Scorer.score_spans(
            list(examples),
            key,
            getter=lambda doc, _: doc.spans.get(key, []),
            has_annotation=lambda doc: key in doc.spans,
            allow_overlap=True,
        )


def sentence_ids(
    segments: List[Tuple[int, int, int]], n_docs: int, T: int, width: int
) -> "torch.Tensor":
    """RETURNS (Tensor): (n_docs, T + width) long: the index of the sentence (doc, start,
    end) each token is in, -1 for none (and for the `width` positions past the end)."""
    import torch

    sentence = torch.full((n_docs, T + width), -1, dtype=torch.long)
    for n, (b, start, end) in enumerate(segments):
        sentence[b, start:end] = n
    return sentence


def candidate_grid(sentence: "torch.Tensor", first: int, last: int, width: int) -> "torch.Tensor":
    """RETURNS (Tensor): (n_docs, last - first, width) bool: whether the span starting at
    token first + t with width w + 1 lies inside one sentence (`sentence_ids`)."""
    import torch

    starts = sentence[:, first:last]
    ends = torch.stack([sentence[:, first + w : last + w] for w in range(width)], -1)
    return (starts[..., None] >= 0) & (ends == starts[..., None])


def weighted_loss(
    logits: "torch.Tensor", targets: "torch.Tensor", negative_weight: float
) -> "torch.Tensor":
    """RETURNS (Tensor): The mean cross-entropy (for one logit per candidate, the logistic
    loss of "is a mention") weighted by candidate: `negative_weight` for the candidates
    whose target is 0 (no mention), 1 for the others."""
    import torch.nn.functional as F

    positive = (targets > 0).float()
    weights = positive + negative_weight * (1 - positive)
    if logits.dim() == 1:
        losses = F.binary_cross_entropy_with_logits(logits, positive, reduction="none")
    else:
        losses = F.cross_entropy(logits, targets, reduction="none")
    return (weights * losses).sum() / weights.sum()
