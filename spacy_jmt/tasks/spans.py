"""Span tasks (entities, mentions, phrase chunks): IOB2 tagging decoded with a constrained
Viterbi search to valid, non-overlapping, labelled spans -> `doc.spans[<key>]`, each span
with a confidence (`doc.spans[<key>].attrs["scores"]`). One span task may also own
`doc.ents`.

Chunking is a span task whose NP chunks are also what `doc.noun_chunks` yields (see
`ChunkNounChunks`), with or without a dependency parser in the pipeline.
"""

import math
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    Union,
)

import numpy
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example
from spacy.vocab import Vocab

from ..decoding import bio_to_spans, bio_transitions, bio_viterbi
from ..keys import NOUN_CHUNK_LABEL
from .base import Task
from .tagging import TokenTask, token_targets

if TYPE_CHECKING:
    import torch


def spans_to_bio(spans: Iterable[Span], length: int) -> List[str]:
    """RETURNS (List[str]): IOB2 tags over `length` tokens (a later span never overwrites)."""
    tags = ["O"] * length
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if all(tag == "O" for tag in tags[span.start : span.end]):
            tags[span.start : span.end] = [f"B-{span.label_}"] + [f"I-{span.label_}"] * (
                len(span) - 1
            )
    return tags


def trim_whitespace(
    doc: Doc, spans: List[Tuple[int, int, str, float]]
) -> List[Tuple[int, int, str, float]]:
    """RETURNS: the spans without the whitespace tokens at their edges (the tokenizer makes
    one of each run of extra spaces), leaving out spans of whitespace only."""
    trimmed = []
    for start, end, label, score in spans:
        while start < end and doc[start].is_space:
            start += 1
        while end > start and doc[end - 1].is_space:
            end -= 1
        if start < end:
            trimmed.append((start, end, label, score))
    return trimmed


class SpanTask(TokenTask):
    """Labelled, non-overlapping spans, read from and written to `doc.spans[spans_key]`.

    spans_key (str): The span group to read gold from and write to; defaults to the task name.
        Gold spans that overlap are learned longest first (the others cannot be IOB2 tags)
        but are all kept for scoring.
    doc_ents (bool): Also write the spans to `doc.ents` (one task per component at most).
    noun_chunk_label (str): The label that `doc.noun_chunks` yields ("" for none).
    crf (bool): Learn the tags as a linear-chain CRF (a learned score for each pair of
        neighbouring tags, trained on the likelihood of the whole gold sequence) instead of
        one softmax per token; both decode with the IOB2 constraints.
    The labels are the span types; the network predicts their IOB2 tags.
    """

    kind = "spans"
    settings: Dict[str, Any] = {
        "spans_key": None, "doc_ents": False, "noun_chunk_label": "", "crf": False,
    }  # fmt: skip

    def __init__(self, name: str, cfg: Dict[str, Any], labels: Optional[List[str]] = None):
        super().__init__(name, cfg, labels)
        self.owns_noun_chunks = False  # `link`: the first span task with a noun_chunk_label

    def link(self, tasks: Dict[str, Task]) -> None:
        first = next(
            (t for t in tasks.values() if isinstance(t, SpanTask) and t.cfg["noun_chunk_label"]),
            None,
        )
        self.owns_noun_chunks = first is self

    def owns(self) -> List[str]:
        return ["doc.ents (doc_ents = true)"] if self.cfg["doc_ents"] else []

    def setup_vocab(self, vocab: Vocab) -> None:
        """Make `doc.noun_chunks` yield this task's NP chunks (the first span task of the
        component with a noun_chunk_label), with the language's own iterator as fallback."""
        if not self.owns_noun_chunks:
            return
        current = vocab.get_noun_chunks
        if isinstance(current, ChunkNounChunks):
            current = current.fallback
        vocab.get_noun_chunks = ChunkNounChunks(  # type: ignore[assignment]
            self.key, self.cfg["noun_chunk_label"], current
        )

    @property
    def key(self) -> str:
        return self.cfg["spans_key"] or self.name

    @property
    def tags(self) -> List[str]:
        return ["O"] + [f"{p}-{label}" for label in self.labels for p in ("B", "I")]

    @property
    def token_labels(self) -> List[str]:
        return self.tags

    def gold(self, example: Example) -> List[Optional[str]]:
        """RETURNS (List[Optional[str]]): Gold IOB2 tags per predicted token (None: missing)."""
        if self.key not in example.reference.spans:
            return [None] * len(example.predicted)
        spans = example.get_aligned_spans_y2x(example.reference.spans[self.key])
        return list(spans_to_bio(spans, len(example.predicted)))

    def gold_labels(self, example: Example) -> Iterable[str]:
        if self.key in example.reference.spans:
            yield from (span.label_ for span in example.reference.spans[self.key])

    def observe(self, example: Example) -> None:
        """Count the gold spans that IOB2 tags cannot hold (they overlap a longer or earlier
        span), and those whose boundaries fall inside a token of the predicted doc (the
        tokenizer's tokens, unless the reader gives gold tokens): the task learns without
        them but is scored against them."""
        if not self.state.get("n_spans"):
            self.state.update(n_spans=0, n_overlapping=0, n_misaligned=0)
        spans = list(example.reference.spans.get(self.key, []))
        kept = spans_to_bio(spans, len(example.reference))
        n_kept = sum(tag.startswith("B-") for tag in kept)
        aligned = example.get_aligned_spans_y2x(spans, allow_overlap=True) if spans else []
        self.state["n_spans"] += len(spans)
        self.state["n_overlapping"] += len({(s.start, s.end) for s in spans}) - n_kept
        self.state["n_misaligned"] += len(spans) - len(aligned)

    def data_warning(self) -> Optional[str]:
        n_overlapping = self.state.get("n_overlapping", 0)
        n_misaligned = self.state.get("n_misaligned", 0)
        problems = []
        if n_overlapping:
            problems.append(
                f"{n_overlapping} overlap another span and cannot be learned as IOB2 tags (the "
                "longest, then the earliest, is kept)"
            )
        if n_misaligned:
            problems.append(
                f"{n_misaligned} do not align to the tokenizer's tokens and are not learned "
                "(fix the tokenization, or train with the reader's gold_tokens = true)"
            )
        if not problems:
            return None
        return (
            f"Task '{self.name}': of the {self.state['n_spans']} gold spans in "
            f"doc.spans['{self.key}'], {'; '.join(problems)}; they still count in the scores"
        )

    def head_class(self) -> type:
        from ..heads import CRFTaggerHead, TaggerHead

        return CRFTaggerHead if self.cfg["crf"] else TaggerHead

    def loss(
        self, examples: List[Example], outputs: Dict[str, Dict[str, Any]]
    ) -> Optional["torch.Tensor"]:
        """The mean token cross-entropy, or with `crf` the negative log-likelihood of each
        doc's gold tags (summed over the paths that agree with them where some are missing)
        per annotated token."""
        if not self.cfg["crf"]:
            return super().loss(examples, outputs)
        import torch

        from ..heads import crf_log_partition

        logits = outputs[self.name]["logits"]
        targets = token_targets([self.gold(eg) for eg in examples], self.tags, logits.shape[1])
        annotated = targets >= 0
        rows = annotated.any(dim=1)
        if not bool(rows.any()):
            return None
        transitions, permitted = self._crf_constraints(outputs[self.name], logits.shape)
        gold = permitted & (
            ~annotated.unsqueeze(2)
            | (targets.clamp(min=0).unsqueeze(2) == torch.arange(logits.shape[2]))
        )
        lengths = torch.tensor([len(eg.predicted) for eg in examples])[rows]
        emissions, permitted, gold = logits[rows], permitted[rows], gold[rows]
        nll = crf_log_partition(emissions, transitions, lengths, permitted) - crf_log_partition(
            emissions, transitions, lengths, gold
        )
        return nll.sum() / annotated.sum()

    def _crf_constraints(
        self, output: Dict[str, Any], shape: Tuple[int, ...]
    ) -> Tuple["torch.Tensor", "torch.Tensor"]:
        """RETURNS: the learned transitions with the IOB2-invalid ones forbidden, and the tags
        permitted per token of a (B, T, L) batch ("I-X" never first)."""
        import torch

        from ..heads import CRF_FORBIDDEN

        first, allowed = (torch.from_numpy(mask) for mask in bio_transitions(self.tags))
        transitions = output["transitions"].masked_fill(~allowed, CRF_FORBIDDEN)
        permitted = torch.ones(shape, dtype=torch.bool)
        permitted[:, 0] = first
        return transitions, permitted

    def _tag_log_probs(self, output: Dict[str, Any], lengths: List[int]) -> "torch.Tensor":
        """RETURNS: (B, T, L) log-probabilities of each tag per token: the softmax's, or with
        `crf` the CRF's marginals (the gradient of the log partition by the emissions)."""
        import torch

        from ..heads import crf_log_partition

        if not self.cfg["crf"]:
            return torch.log_softmax(output["logits"].detach(), dim=-1)
        transitions, permitted = self._crf_constraints(output, output["logits"].shape)
        with torch.enable_grad():
            emissions = output["logits"].detach().requires_grad_()
            log_z = crf_log_partition(
                emissions, transitions.detach(), torch.tensor(lengths).clamp(min=1), permitted
            )
            (marginals,) = torch.autograd.grad(log_z.sum(), emissions)
        return marginals.clamp(min=1e-12).log()

    def predict_spans(
        self, output: Dict[str, Any], lengths: List[int]
    ) -> List[List[Tuple[int, int, str, float]]]:
        """RETURNS: per doc, (start, end, label, confidence) of each predicted chunk, where the
        confidence is the geometric mean of the chunk's tag probabilities (with `crf`, their
        marginals)."""
        log_probs = self._tag_log_probs(output, lengths).numpy()
        logits = output["logits"].detach().numpy()
        transitions = output["transitions"].detach().numpy() if self.cfg["crf"] else None
        tags = self.tags
        result = []
        for b, n in enumerate(lengths):
            if transitions is None:
                best = bio_viterbi(log_probs[b, :n], tags)
            else:
                best = bio_viterbi(logits[b, :n], tags, transitions)
            # a span's mean log probability from running sums: one numpy call per doc
            total = numpy.concatenate(
                [[0.0], numpy.cumsum(log_probs[b, numpy.arange(n), best], dtype=float)]
            )
            spans = bio_to_spans([tags[j] for j in best])
            result.append(
                [(s, e, label, math.exp((total[e] - total[s]) / (e - s))) for s, e, label in spans]
            )
        return result

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        predicted = self.predict_spans(outputs[self.name], [len(d) for d in docs])
        for doc, spans in zip(docs, predicted):
            if len(doc) == 0:
                continue
            spans = trim_whitespace(doc, spans)
            ents = [Span(doc, s, e, label=label) for s, e, label, _ in spans]
            if overwrite or self.key not in doc.spans:
                doc.spans[self.key] = SpanGroup(
                    doc, name=self.key, spans=ents, attrs={"scores": [s for *_, s in spans]}
                )
            if self.cfg["doc_ents"] and (overwrite or not doc.has_annotation("ENT_IOB")):
                doc.set_ents(ents, default="outside")

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        examples = list(examples)
        key = self.key
        has_key: Callable[[Doc], bool] = lambda doc: key in doc.spans  # noqa: E731
        scores = Scorer.score_spans(
            examples, key, getter=lambda doc, _: doc.spans.get(key, []), has_annotation=has_key
        )
        label = self.cfg["noun_chunk_label"]
        if label:
            np_scores = Scorer.score_spans(
                examples,
                "noun_chunks",
                getter=lambda doc, _: [s for s in doc.spans.get(key, []) if s.label_ == label],
                has_annotation=has_key,
            )
            scores.update({k: v for k, v in np_scores.items() if not k.endswith("per_type")})
        return scores


class ChunkingTask(SpanTask):
    """Phrase chunking (JMT's second task): a span task whose NP chunks `doc.noun_chunks`
    yields."""

    kind = "chunking"
    settings = {**SpanTask.settings, "noun_chunk_label": NOUN_CHUNK_LABEL}


class ChunkNounChunks:
    """A noun-chunk iterator for the vocab that yields the NP chunks of a chunking task,
    falling back to the language's own iterator (which needs a parse) for docs without them.

    It is a class rather than a closure so that the vocab stays picklable.

    key (str): The span group with the chunks.
    label (str): The chunk label that counts as a noun chunk.
    fallback (Optional[Callable]): The language's own noun-chunk iterator.
    """

    def __init__(self, key: str, label: str, fallback: Optional[Callable] = None):
        self.key = key
        self.label = label
        self.fallback = fallback

    def __call__(self, doclike: Union[Doc, Span]) -> Iterator[Tuple[int, int, int]]:
        doc = doclike.doc
        if self.key not in doc.spans:
            if self.fallback is None:
                return
            yield from self.fallback(doclike)
            return
        start, end = (0, len(doc)) if isinstance(doclike, Doc) else (doclike.start, doclike.end)
        for span in doc.spans[self.key]:
            if span.label_ == self.label and start <= span.start and span.end <= end:
                yield span.start, span.end, span.label
