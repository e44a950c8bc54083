"""Task heads: the torch layers a task owns on top of the level it sits at.

Every head is called the same way by the network, `head(H, packing, inputs)`, and returns a
dict of outputs. Its class says how the network assembles those outputs when it runs the
sentences of a batch in groups (`spacy_jmt.layers.network.merge_outputs`): `row_outputs` are
per token (packed rows, returned in doc layout), `joined_outputs` per sentence or per pair
(concatenated over the groups), `segment_outputs` lists of (sentence indices, value) (the
indices offset per group); anything else is the same in every group. A head whose task
embeds its labels returns "label_emb" per token, which the network hands to the levels above.
Each task kind builds its head in `build_head` (spacy_jmt/tasks/).
"""

from typing import Any, Dict, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .layers.encoder import MLP, BiLSTM, Packing
from .layers.network import HeadInputs


class TaggerHead(nn.Module):
    """Token classification: optional own BiLSTM layers, an MLP and a softmax layer.

    Its label embedding is the predicted label distribution times a learned matrix, which the
    levels above read (JMT's label embeddings).

    width_in (int): Width of the level it reads.
    n_labels (int): Number of output labels.
    depth (int): Own BiLSTM layers before the classifier (Crone 2020's task-specific depth).
    width (int): Hidden width of the own layers and the MLP.
    label_width (int): Width of the label embedding; 0 for none.
    dropout (float): Dropout rate.
    """

    def __init__(
        self,
        width_in: int,
        n_labels: int,
        depth: int,
        width: int,
        label_width: int,
        dropout: float,
    ):
        super().__init__()
        self.own = BiLSTM(width_in, width, depth, dropout) if depth else None
        self.mlp = MLP(width if depth else width_in, width, dropout)
        self.out = nn.Linear(width, n_labels)
        self.label_embed = nn.Linear(n_labels, label_width, bias=False) if label_width else None

    row_outputs = ("logits",)
    joined_outputs: Tuple[str, ...] = ()
    segment_outputs: Tuple[str, ...] = ()

    def forward(self, H: torch.Tensor, packing: Packing, inputs: HeadInputs) -> Dict[str, Any]:
        """H (Tensor): (n_rows, width_in) packed rows. RETURNS: "logits" (n_rows, n_labels)
        and, with label embeddings on, "label_emb" (n_rows, label_width).
        """
        if self.own is not None:
            H = self.own(H, packing)
        logits = self.out(self.mlp(H))
        out = {"logits": logits}
        if self.label_embed is not None:
            out["label_emb"] = self.label_embed(torch.softmax(logits, dim=-1))
        return out


# The score of a forbidden tag or transition: low enough to carry no probability, finite so
# that sums over paths stay defined.
CRF_FORBIDDEN = -1e4


class CRFTaggerHead(TaggerHead):
    """A `TaggerHead` whose tags form a linear-chain CRF (Lample et al. 2016): its logits are
    the emission scores, and it learns a score for every pair of neighbouring tags
    ("transitions", (n_labels, n_labels): [i, j] for tag i followed by tag j)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        n_labels = self.out.out_features
        self.transitions = nn.Parameter(torch.zeros(n_labels, n_labels))

    def forward(self, H: torch.Tensor, packing: Packing, inputs: HeadInputs) -> Dict[str, Any]:
        return {**super().forward(H, packing, inputs), "transitions": self.transitions}


def crf_log_partition(
    emissions: torch.Tensor, transitions: torch.Tensor, lengths: torch.Tensor, tags: torch.Tensor
) -> torch.Tensor:
    """The log of the summed exp-scores of all tag paths of a linear-chain CRF that use only
    the permitted tags (the forward algorithm). Masking the gold tags in `tags` gives the
    gold path's score (the log of the sum over the paths that agree with partial gold).

    emissions (Tensor): (B, T, L) tag scores per token, in doc layout.
    transitions (Tensor): (L, L) scores of tag i followed by tag j; forbidden ones very low.
    lengths (Tensor): (B,) the tokens of each row (>= 1).
    tags (Tensor): (B, T, L) bool, the tags permitted at each token.
    RETURNS (Tensor): (B,) the log partition of each row.
    """
    scores = emissions.masked_fill(~tags, CRF_FORBIDDEN)
    alpha = scores[:, 0]
    for t in range(1, scores.shape[1]):
        step = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + scores[:, t]
        alpha = torch.where((lengths > t).unsqueeze(1), step, alpha)
    return torch.logsumexp(alpha, dim=1)


class BiaffineHead(nn.Module):
    """Biaffine dependency scorer (Dozat and Manning 2017), bounded by sentence.

    Arc scores are computed per sentence only, so memory is quadratic in the sentence length,
    never in the document length. Labels are scored only for the arcs that matter (the gold
    arcs in training, the decoded tree at inference): the head returns the per-token label
    features and the bilinear label weights, and its task scores the arcs it needs.

    width_in (int): Width of the level it reads.
    n_labels (int): Number of dependency labels.
    depth (int): Own BiLSTM layers.
    width (int): Width of the own BiLSTM layers.
    arc_width (int): Width of the arc MLPs.
    label_width (int): Width of the label MLPs.
    dropout (float): Dropout rate.
    """

    def __init__(
        self,
        width_in: int,
        n_labels: int,
        depth: int,
        width: int,
        arc_width: int,
        label_width: int,
        dropout: float,
    ):
        super().__init__()
        self.own = BiLSTM(width_in, width, depth, dropout) if depth else None
        width_in = width if depth else width_in
        self.root = nn.Parameter(torch.zeros(width_in))
        self.arc_dep = MLP(width_in, arc_width, dropout)
        self.arc_head = MLP(width_in, arc_width, dropout)
        self.lab_dep = MLP(width_in, label_width, dropout)
        self.lab_head = MLP(width_in, label_width, dropout)
        self.arc_W = nn.Parameter(torch.zeros(arc_width, arc_width))
        self.arc_b = nn.Linear(arc_width, 1, bias=False)
        self.lab_W = nn.Parameter(torch.zeros(n_labels, label_width + 1, label_width + 1))

    row_outputs = ("lab_dep", "lab_head")
    joined_outputs = ("arc",)
    segment_outputs = ("arc_buckets",)

    def forward(self, H: torch.Tensor, packing: Packing, inputs: HeadInputs) -> Dict[str, Any]:
        """H (Tensor): (n_rows, width_in) packed rows of the sentences.
        RETURNS (Dict[str, Any]): "arc": the arc scores of every bucket of sentences of
        similar length, flattened one after the other, and "arc_buckets" (not a tensor):
        per bucket its sentences (indices into the segments) and its length m, so that its
        block in "arc" is (n_sentences, m, m + 1) (`arc_blocks` reads them): the score of
        dependent i taking head j (j = 0 is the root; padding and self-loops score -inf).
        Memory grows with the sum of squared sentence lengths, not with the number of
        sentences times the longest one. "lab_dep", "lab_head" (n_rows, label_width + 1)
        and "lab_root" (label_width + 1,): label features with a bias feature; "lab_W"
        (n_labels, label_width + 1, label_width + 1): the bilinear label weights.
        """
        if self.own is not None:
            H = self.own(H, packing)
        dep_rows = self.arc_dep(H) @ self.arc_W  # row-wise first: no work on padding
        head_rows = self.arc_head(H)
        root = self.arc_head(self.root[None])[0]  # 2d: quantized Linear needs it
        parts, buckets = [], []
        for group in packing.buckets(64):  # sentences of similar length together
            dep = packing.pad(dep_rows, group)
            g, m, _ = dep.shape
            head = torch.cat([root.expand(g, 1, -1), packing.pad(head_rows, group)], 1)
            scores = dep @ head.transpose(1, 2) + self.arc_b(head).transpose(1, 2)
            is_pad = torch.arange(m + 1)[None, :] > packing.lengths[group][:, None]
            self_loop = torch.eye(m, m + 1, dtype=torch.bool).roll(1, dims=1)
            scores = scores.masked_fill(is_pad[:, None, :] | self_loop, float("-inf"))
            parts.append(scores.reshape(-1))
            buckets.append((group, m))
        ones = H.new_ones(H.shape[0], 1)
        return {
            "arc": torch.cat(parts),
            "arc_buckets": buckets,
            "lab_dep": torch.cat([self.lab_dep(H), ones], -1),
            "lab_head": torch.cat([self.lab_head(H), ones], -1),
            "lab_root": torch.cat([self.lab_head(self.root[None])[0], self.root.new_ones(1)]),
            "lab_W": self.lab_W,
        }


def arc_blocks(output: Dict[str, Any]) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """The arc scores of a BiaffineHead's output, bucket by bucket.

    YIELDS (Tuple[Tensor, Tensor]): The bucket's sentences (indices into the segments) and
        their scores (n_sentences, m, m + 1); sentence k of the bucket has length <= m.
    """
    offset = 0
    for group, m in output["arc_buckets"]:
        size = len(group) * m * (m + 1)
        yield group, output["arc"][offset : offset + size].view(len(group), m, m + 1)
        offset += size


class SpanPairHead(nn.Module):
    """Scorer of labelled pairs of spans, e.g. relations between arguments (SpERT-style
    pooling, Crone 2020's label embeddings, a biaffine scorer).

    In the forward pass the head only computes its token features: its own BiLSTM layers
    over the level it reads concatenated with the label embeddings it reads (`inputs.reads`:
    the soft span types of every token). The candidate pairs are only known once the spans
    are (gold spans in training, decoded ones at inference), so its task calls `score_pairs`
    on the features afterwards, outside the network's forward pass; the gradients of the
    pair scorer's parameters go straight to them, as torch accumulates them.

    A span is the max-pool of its tokens' features plus an embedding of its type; a pair
    is scored from the projected head and tail spans with one bilinear form per label, plus
    a linear score of the max-pooled tokens between them (their context). The logits are
    independent per label (sigmoid): a pair may hold several relations.

    width_in (int): Width of the level it reads plus the label embeddings it reads.
    n_labels (int): Number of relation labels.
    n_types (int): Number of span types (index 0 is reserved for "unknown").
    depth (int): Own BiLSTM layers.
    width (int): Width of the own BiLSTM layers.
    pair_width (int): Width of the head and tail projections.
    type_width (int): Width of the span type embeddings.
    dropout (float): Dropout rate.
    """

    def __init__(
        self,
        width_in: int,
        n_labels: int,
        n_types: int,
        depth: int,
        width: int,
        pair_width: int,
        type_width: int,
        dropout: float,
    ):
        super().__init__()
        self.own = BiLSTM(width_in, width, depth, dropout) if depth else None
        width_f = width if depth else width_in
        self.type_embed = nn.Embedding(n_types + 1, type_width)
        self.head = MLP(width_f + type_width, pair_width, dropout)
        self.tail = MLP(width_f + type_width, pair_width, dropout)
        self.W = nn.Parameter(torch.zeros(n_labels, pair_width + 1, pair_width + 1))
        self.context = nn.Linear(width_f, n_labels)

    row_outputs = ("features",)
    joined_outputs: Tuple[str, ...] = ()
    segment_outputs: Tuple[str, ...] = ()

    def forward(self, H: torch.Tensor, packing: Packing, inputs: HeadInputs) -> Dict[str, Any]:
        """H (Tensor): (n_rows, width) packed rows; inputs.reads: label embeddings of the
        same rows. RETURNS: {"features": (n_rows, width)}."""
        embs = [e for e in inputs.reads if e is not None]
        if embs:
            H = torch.cat([H, *embs], -1)
        if self.own is not None:
            H = self.own(H, packing)
        return {"features": H}

    def score_pairs(
        self,
        features: torch.Tensor,
        spans: torch.Tensor,
        types: torch.Tensor,
        pairs: torch.Tensor,
        training: bool = False,
    ) -> torch.Tensor:
        """Score candidate pairs of spans.

        features (Tensor): (batch, T, width) token features in doc layout.
        spans (Tensor): (n_spans, 3) long: doc index, start, end of each argument span.
        types (Tensor): (n_spans,) long: type index + 1 of each span (0: unknown).
        pairs (Tensor): (n_pairs, 2) long: head and tail span indices.
        training (bool): Whether dropout is on (the mode of the forward pass it follows).
        RETURNS (Tensor): (n_pairs, n_labels) logits.
        """
        was_training = self.training
        self.train(training)
        try:
            return self._score_pairs(features, spans, types, pairs)
        finally:
            self.train(was_training)

    def _score_pairs(
        self, features: torch.Tensor, spans: torch.Tensor, types: torch.Tensor, pairs: torch.Tensor
    ) -> torch.Tensor:
        reps = torch.cat([max_pool_spans(features, spans), self.type_embed(types)], dim=-1)
        heads, tails = self.head(reps), self.tail(reps)
        # Without gradients (inference) the pairs are scored in blocks: an untrained span
        # level can find 50 spans in each of a document's 100 sentences, 245,000 pairs.
        step = max(len(pairs), 1) if torch.is_grad_enabled() else PAIR_BLOCK
        parts = []
        for first in range(0, len(pairs), step):
            block = pairs[first : first + step]
            head, tail = spans[block[:, 0]], spans[block[:, 1]]
            # The context of a pair: the tokens between the two spans (may be none).
            context = torch.stack(
                [head[:, 0], torch.minimum(head[:, 2], tail[:, 2]),
                 torch.maximum(head[:, 1], tail[:, 1])], dim=1,
            )  # fmt: skip
            ones = reps.new_ones(len(block), 1)
            h = torch.cat([heads[block[:, 0]], ones], -1)
            t = torch.cat([tails[block[:, 1]], ones], -1)
            bilinear = bilinear_scores(h, self.W, t)
            parts.append(bilinear + self.context(max_pool_spans(features, context)))
        if not parts:
            return reps.new_zeros(0, self.W.shape[0])
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def bilinear_scores(x: torch.Tensor, W: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """RETURNS (Tensor): (n, n_labels): x[i] @ W[l] @ y[i] for every row i and label l.

    x (Tensor): (n, d). W (Tensor): (n_labels, d, k). y (Tensor): (n, k).
    Without gradients torch's `bilinear` is 1.5-2.4x as fast as the einsum (1 thread, 50
    labels of width 65, 500 to 16,384 rows), with them its backward is about 9x as slow, so
    each runs where it is the faster.
    """
    if torch.is_grad_enabled():
        return torch.einsum("nd,ldk,nk->nl", x, W, y)
    return F.bilinear(x, y, W)


def max_pool_spans(features: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """Max-pool token features over spans; an empty span pools to zeros. The spans are
    pooled POOL_ROWS span tokens at a time, so that the gathered (n, longest, width) values
    never hold more than that many rows (a batch of candidate pairs can have 10^5 contexts).

    features (Tensor): (batch, T, width).
    spans (Tensor): (n, 3) long: doc index, start, end.
    RETURNS (Tensor): (n, width).
    """
    n, width = len(spans), features.shape[-1]
    if n == 0:
        return features.new_zeros(0, width)
    lengths = (spans[:, 2] - spans[:, 1]).clamp(min=0)
    longest = max(int(lengths.max()), 1)
    step = max(POOL_ROWS // longest, 1)
    parts = []
    for first in range(0, n, step):
        block, block_lengths = spans[first : first + step], lengths[first : first + step]
        offsets = torch.arange(longest)
        positions = (block[:, 1:2] + offsets).clamp(max=features.shape[1] - 1)
        values = features[block[:, 0:1], positions]  # (step, longest, width)
        inside = (offsets[None, :] < block_lengths[:, None])[:, :, None]
        pooled = values.masked_fill(~inside, float("-inf")).max(dim=1).values
        parts.append(torch.where(block_lengths[:, None] > 0, pooled, torch.zeros_like(pooled)))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


# Span tokens gathered at once in max_pool_spans: about 50 MB of values at width 200.
POOL_ROWS = 65536
# Candidate pairs scored at once without gradients: the bilinear form's (pairs, labels,
# width) intermediate stays near 100 MB at 6 labels and width 257.
PAIR_BLOCK = 16384


class SentencePairHead(nn.Module):
    """Sentence-pair classifier (JMT's top two layers).

    Each sentence of a pair is the max-pool over time of the level it reads (after the
    head's own BiLSTM layers, if any); the pair is [|a - b|; a * b], plus the label
    embedding of another pair task's prediction where the task reads one. An MLP and a
    linear layer give the logits; the softmax of the logits times a learned matrix is this
    head's own label embedding for a pair task above it.

    With `attention`, the sentences first read each other, as ESIM (Chen et al. 2017) does:
    each token x of one sentence attends over the tokens of the other (dot products), its
    aligned vector x~ is the attention-weighted sum, and [x; x~; x - x~; x * x~] is projected
    (Linear, ReLU) to `width`. A sentence is then the max-pool and the mean of its projected
    tokens, and the pair is [a; b; |a - b|; a * b] (the order of the two sentences counts,
    as entailment is directed).

    width_in (int): Width of the level it reads.
    n_labels (int): Number of outputs (score points or labels).
    depth (int): Own BiLSTM layers.
    width (int): Width of the own layers and the MLP.
    label_width (int): Width of the label embedding it gives and reads; 0 for none.
    reads_pair (bool): Whether it reads the label embedding of another pair task.
    dropout (float): Dropout rate.
    attention (bool): Whether the sentences attend to each other (ESIM's alignment).
    """

    def __init__(
        self,
        width_in: int,
        n_labels: int,
        depth: int,
        width: int,
        label_width: int,
        reads_pair: bool,
        dropout: float,
        attention: bool = False,
    ):
        super().__init__()
        self.own = BiLSTM(width_in, width, depth, dropout) if depth else None
        width_s = width if depth else width_in
        self.compose = MLP(4 * width_s, width, dropout) if attention else None
        width_pair = 8 * width if attention else 2 * width_s
        self.mlp = MLP(width_pair + (label_width if reads_pair else 0), width, dropout)
        self.out = nn.Linear(width, n_labels)
        self.label_embed = nn.Linear(n_labels, label_width, bias=False) if label_width else None

    row_outputs: Tuple[str, ...] = ()
    joined_outputs = ("logits", "label_emb")
    segment_outputs: Tuple[str, ...] = ()

    def forward(self, H: torch.Tensor, packing: Packing, inputs: HeadInputs) -> Dict[str, Any]:
        """H (Tensor): (n_rows, width_in) packed rows of the sentences.
        inputs.pairs (Tensor): (n_pairs, 2) long: the segment indices of sentences A and B.
        inputs.reads: [(n_pairs, label_width)], the label embedding of the pair task it
            reads, if any.
        RETURNS (Dict[str, Tensor]): "logits" (n_pairs, n_labels) and, with label
            embeddings on, "label_emb" (n_pairs, label_width).
        """
        if self.own is not None:
            H = self.own(H, packing)
        padded = packing.pad(H)  # (n_segments, longest, width), zeros for padding
        inside = torch.arange(padded.shape[1])[None, :] < packing.lengths[:, None]
        assert inputs.pairs is not None, "the network runs pair heads on pairs only"
        first, second = inputs.pairs[:, 0], inputs.pairs[:, 1]
        if self.compose is None:
            sents = padded.masked_fill(~inside[:, :, None], float("-inf")).max(dim=1).values
            a, b = sents[first], sents[second]
            features = [(a - b).abs(), a * b]
        else:
            a, b = self._align(padded[first], inside[first], padded[second], inside[second])
            features = [a, b, (a - b).abs(), a * b]
        features += [e for e in inputs.reads if e is not None]
        logits = self.out(self.mlp(torch.cat(features, dim=-1)))
        out = {"logits": logits}
        if self.label_embed is not None:
            out["label_emb"] = self.label_embed(torch.softmax(logits, dim=-1))
        return out

    def _align(
        self, A: torch.Tensor, mask_a: torch.Tensor, B: torch.Tensor, mask_b: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """A, B (Tensor): (n_pairs, longest, width) the tokens of the first and second
        sentences; mask_a, mask_b (Tensor): (n_pairs, longest) bool, True on real tokens.
        RETURNS: the two sentence vectors, (n_pairs, 2 * width) each."""
        assert self.compose is not None
        scores = A @ B.transpose(1, 2)  # (n_pairs, longest A, longest B)
        to_b = torch.softmax(scores.masked_fill(~mask_b[:, None, :], float("-inf")), dim=2)
        to_a = torch.softmax(scores.masked_fill(~mask_a[:, :, None], float("-inf")), dim=1)
        aligned_a, aligned_b = to_b @ B, to_a.transpose(1, 2) @ A
        vectors = []
        for X, aligned, mask in ((A, aligned_a, mask_a), (B, aligned_b, mask_b)):
            C = self.compose(torch.cat([X, aligned, X - aligned, X * aligned], dim=-1))
            m = mask[:, :, None]
            peak = C.masked_fill(~m, float("-inf")).max(dim=1).values
            mean = (C * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
            vectors.append(torch.cat([peak, mean], dim=-1))
        return vectors[0], vectors[1]


class SpanClassifierHead(nn.Module):
    """Classifier of enumerated spans, e.g. nested entity mentions (span enumeration as in
    Lee et al. 2017 and SpERT): a span is its first and last token's features, an attention-
    weighted sum of its tokens (a learned score per token, softmaxed within the span) and an
    embedding of its width; an MLP gives one logit per label plus "no span" (index 0).

    As for `SpanPairHead`, the forward pass only computes the token features (own BiLSTM
    layers over the level it reads); the task calls `grid_logits` afterwards. That scores
    every span of up to max_width tokens at once without building the span representations:
    the MLP's first layer is linear in them, so it is applied to each token's features first
    (start, end and pooled parts) and the parts are combined per span (`represent` gives the
    representations themselves, for the spans a task keeps).

    width_in (int): Width of the level it reads.
    n_labels (int): Number of span labels (the logits have n_labels + 1 columns).
    depth (int): Own BiLSTM layers.
    width (int): Width of the own BiLSTM layers and the MLP.
    max_width (int): The longest span, in tokens.
    width_embedding (int): Width of the span-width embedding.
    dropout (float): Dropout rate.
    """

    float_modules = ("mlp.0",)  # _grid_hidden reads its weights: not quantized

    def __init__(
        self,
        width_in: int,
        n_labels: int,
        depth: int,
        width: int,
        max_width: int,
        width_embedding: int,
        dropout: float,
    ):
        super().__init__()
        self.own = BiLSTM(width_in, width, depth, dropout) if depth else None
        width_f = width if depth else width_in
        self.max_width = max_width
        self.attend = nn.Linear(width_f, 1)
        self.width_embed = nn.Embedding(max_width + 1, width_embedding)
        self.span_width = 3 * width_f + width_embedding
        self.mlp = MLP(self.span_width, width, dropout)
        self.out = nn.Linear(width, n_labels + 1)

    row_outputs = ("features",)
    joined_outputs: Tuple[str, ...] = ()
    segment_outputs: Tuple[str, ...] = ()

    def forward(self, H: torch.Tensor, packing: Packing, inputs: HeadInputs) -> Dict[str, Any]:
        """H (Tensor): (n_rows, width_in) packed rows. RETURNS: {"features": (n_rows, width)}."""
        if self.own is not None:
            H = self.own(H, packing)
        return {"features": H}

    def represent(self, features: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """RETURNS (Tensor): (n_spans, span_width) span representations of the spans
        (n_spans, 3: doc index, start, end; 1 <= end - start <= max_width) of features
        (batch, T, width), computed POOL_ROWS span tokens at a time."""
        n = len(spans)
        if n == 0:
            return features.new_zeros(0, self.span_width)
        lengths = spans[:, 2] - spans[:, 1]
        longest = int(lengths.max())
        step = max(POOL_ROWS // longest, 1)
        parts = []
        for first in range(0, n, step):
            block, block_lengths = spans[first : first + step], lengths[first : first + step]
            offsets = torch.arange(longest)
            positions = (block[:, 1:2] + offsets).clamp(max=features.shape[1] - 1)
            values = features[block[:, 0:1], positions]  # (step, longest, width)
            inside = offsets[None, :] < block_lengths[:, None]
            weights = self.attend(values).squeeze(-1).masked_fill(~inside, float("-inf"))
            pooled = (torch.softmax(weights, dim=1)[:, :, None] * values).sum(1)
            ends = values[torch.arange(len(block)), block_lengths - 1]
            parts.append(
                torch.cat([values[:, 0], ends, pooled, self.width_embed(block_lengths)], -1)
            )
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def grid_logits(
        self, features: torch.Tensor, first: int, last: int, training: bool = False
    ) -> torch.Tensor:
        """The logits of every span starting at tokens first..last - 1 of features (batch,
        T, width), one per width 1..max_width: (batch, last - first, max_width, n_out),
        where [b, t, w] is the span (first + t, first + t + w + 1). Spans that run past the
        doc's end get logits too; the task masks them (and those across sentences).
        training (bool): Whether dropout is on (the mode of the forward pass it follows)."""
        was_training = self.training
        self.train(training)
        try:
            return self.out(self._grid_hidden(features, first, last))
        finally:
            self.train(was_training)

    def _grid_hidden(self, features: torch.Tensor, first: int, last: int) -> torch.Tensor:
        W, d = self.max_width, features.shape[-1]
        X = features[:, first : last + W - 1]
        n = last - first
        linear: nn.Linear = self.mlp[0]  # type: ignore[assignment]
        w_start, w_end, w_pool, w_width = linear.weight.split(
            [d, d, d, linear.in_features - 3 * d], 1
        )
        starts, ends, pooled = X @ w_start.T, X @ w_end.T, X @ w_pool.T  # (batch, n + W - 1, h)
        scores = self.attend(X).squeeze(-1)  # (batch, n + W - 1)
        pad = n + W - 1 - X.shape[1]  # tokens past the doc's end
        if pad:
            ends, pooled = F.pad(ends, (0, 0, 0, pad)), F.pad(pooled, (0, 0, 0, pad))
            scores = F.pad(scores, (0, pad), value=-1e4)
        widths = self.width_embed(torch.arange(1, W + 1)) @ w_width.T  # (W, h)
        grid = []
        for w in range(1, W + 1):  # a softmax over each span's w tokens, as shifted slices
            window = torch.stack([scores[:, k : k + n] for k in range(w)], -1)
            alpha = torch.softmax(window, -1)  # (batch, n, w)
            pool = sum(alpha[:, :, k : k + 1] * pooled[:, k : k + n] for k in range(w))
            grid.append(starts[:, :n] + ends[:, w - 1 : w - 1 + n] + pool + widths[w - 1])
        hidden = torch.stack(grid, 2) + linear.bias  # (batch, n, W, h)
        return self.mlp[2](self.mlp[1](hidden))


class CoreferenceHead(SpanClassifierHead):
    """End-to-end coreference scorer (Lee et al. 2017), on the span representations of
    `SpanClassifierHead`: a mention score s_m(i) per candidate span (its single output) and,
    for a span i and an earlier candidate j, s(i, j) = s_m(i) + s_m(j) + s_a(i, j), where
    s_a is an MLP over [g_i, g_j, g_i * g_j, an embedding of the token distance] of the
    projected span representations g (and, with `string_match`, an embedding of how the two
    spans' words match); the dummy antecedent (i starts a cluster or is no mention) scores 0.
    The task prunes the candidates and picks the antecedents.

    With `coarse` (coarse-to-fine inference, Lee et al. 2018), a cheap score ranks a long
    window of antecedents first: s_c(i, j) = g_i' W_c g_j plus a learned bias for the
    distance bucket and, with `string_match`, for the match code (`prune`); only the best of
    them reach the MLP, and s_c is part of their score s(i, j), so it is trained through it.

    width_in, depth, width, max_width, width_embedding, dropout: As SpanClassifierHead.
    pair_width (int): Width of the projection g that the pair scorer reads.
    string_match (bool): Whether the pair scorer reads a string-match code per pair
        (N_MATCH_CODES values, see `match_codes`).
    coarse (bool): Whether the head has the coarse scorer.
    """

    def __init__(
        self,
        width_in: int,
        depth: int,
        width: int,
        max_width: int,
        width_embedding: int,
        pair_width: int,
        dropout: float,
        string_match: bool = False,
        coarse: bool = False,
    ):
        super().__init__(width_in, 0, depth, width, max_width, width_embedding, dropout)
        self.project = nn.Linear(self.span_width, pair_width)
        self.coarse = nn.Linear(pair_width, pair_width, bias=False) if coarse else None
        self.coarse_bias = nn.Embedding(N_DISTANCE_BUCKETS + N_MATCH_CODES, 1) if coarse else None
        if self.coarse_bias is not None:
            nn.init.zeros_(self.coarse_bias.weight)
        self.distance_embed = nn.Embedding(N_DISTANCE_BUCKETS, width_embedding)
        self.match_embed = nn.Embedding(N_MATCH_CODES, width_embedding) if string_match else None
        n_embedded = 2 if string_match else 1
        self.pair = nn.Sequential(
            MLP(3 * pair_width + n_embedded * width_embedding, width, dropout), nn.Linear(width, 1)
        )

    def antecedent_scores(
        self,
        g: torch.Tensor,
        mention_scores: torch.Tensor,
        starts: torch.Tensor,
        antecedents: torch.Tensor,
        rows: slice = slice(None),
        words: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        """Score spans against their candidate antecedents.

        g (Tensor): (n, pair_width) projected representations of the kept spans, in doc
            order (`project(represent(...))`, computed once per doc: the rows of a long doc
            are scored in blocks, each reading the spans before it).
        mention_scores (Tensor): (n,) their mention scores.
        starts (Tensor): (n,) long: their first tokens.
        antecedents (Tensor): (m, K) long: for the m spans `rows` of the n, the indices of
            their candidate antecedents (earlier spans); -1 where there is none.
        rows (slice): The spans scored (all by default; a block of them for long docs).
        words (Optional[Tuple[Tensor, Tensor]]): (n,) long ids of the n spans' lowercased
            texts and of their last words (`match_codes`); required with `string_match`.
        RETURNS (Tensor): (m, K + 1): column 0 the dummy antecedent (0), then s(i, j);
            -inf where there is no antecedent.
        """
        valid = antecedents >= 0
        if self.match_embed is not None and words is None:
            raise ValueError("This coreference head reads string matches: pass words")
        j, buckets, codes = pair_codes(starts, antecedents, rows, words)
        gi, gj = g[rows][:, None, :].expand(-1, j.shape[1], -1), g[j]
        pair = [gi, gj, gi * gj, self.distance_embed(buckets)]
        if self.match_embed is not None:
            pair.append(self.match_embed(codes))
        scores = self.pair(torch.cat(pair, -1)).squeeze(-1)
        scores = scores + mention_scores[rows][:, None] + mention_scores[j]
        if self.coarse is not None:
            scores = scores + self._coarse(g, j, rows, buckets, codes)
        scores = scores.masked_fill(~valid, float("-inf"))
        return torch.cat([scores.new_zeros(len(scores), 1), scores], 1)

    def coarse_scores(
        self,
        g: torch.Tensor,
        starts: torch.Tensor,
        antecedents: torch.Tensor,
        rows: slice = slice(None),
        words: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        """RETURNS (Tensor): (m, K) the coarse scores s_c(i, j) (arguments as
        `antecedent_scores`; finite also where there is no antecedent)."""
        j, buckets, codes = pair_codes(starts, antecedents, rows, words)
        return self._coarse(g, j, rows, buckets, codes)

    def _coarse(
        self,
        g: torch.Tensor,
        j: torch.Tensor,
        rows: slice,
        buckets: torch.Tensor,
        codes: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """s_c for the pairs (`rows`, j) with their distance buckets and match codes."""
        assert self.coarse is not None and self.coarse_bias is not None
        scores = torch.bmm(g[j], self.coarse(g[rows])[:, :, None]).squeeze(-1)
        scores = scores + self.coarse_bias(buckets)[..., 0]
        if codes is not None:
            scores = scores + self.coarse_bias(N_DISTANCE_BUCKETS + codes)[..., 0]
        return scores

    def prune(
        self,
        g: torch.Tensor,
        mention_scores: torch.Tensor,
        starts: torch.Tensor,
        antecedents: torch.Tensor,
        k: Optional[int],
        rows: slice = slice(None),
        words: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        """RETURNS (Tensor): (m, min(k, K)) long: for each span `rows`, its k candidate
        antecedents (of `antecedents`, -1 for none) with the best s_m(j) + s_c(i, j); all
        of them where k is None, without the coarse scorer, or with at most k."""
        if k is None or self.coarse is None or antecedents.shape[1] <= k:
            return antecedents
        with torch.no_grad():
            scores = self.coarse_scores(g, starts, antecedents, rows, words)
            scores = scores + mention_scores[antecedents.clamp(min=0)]
            top = scores.masked_fill(antecedents < 0, float("-inf")).topk(k, 1)
        return antecedents.gather(1, top.indices).masked_fill(torch.isinf(top.values), -1)


N_DISTANCE_BUCKETS = 9
N_MATCH_CODES = 3


def pair_codes(
    starts: torch.Tensor,
    antecedents: torch.Tensor,
    rows: slice,
    words: Optional[Tuple[torch.Tensor, torch.Tensor]],
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """RETURNS: for the spans `rows` and their antecedents (-1: none), the antecedents'
    indices (clamped to 0), the distance buckets and the string-match codes (None without
    words), which the fine and the coarse scores both read."""
    j = antecedents.clamp(min=0)
    buckets = distance_buckets(starts[rows][:, None] - starts[j])
    return j, buckets, None if words is None else match_codes(words, antecedents, rows)


def match_codes(
    words: Tuple[torch.Tensor, torch.Tensor], antecedents: torch.Tensor, rows: slice = slice(None)
) -> torch.Tensor:
    """RETURNS (Tensor): (m, K) long, per span `rows` and candidate antecedent: 2 where the two
    spans' texts are the same, 1 where only their last words are ("Mary Smith" .. "Smith"),
    else 0. words: (n,) long ids of the n spans' lowercased texts and of their last words;
    antecedents: (m, K) indices into them (-1 for none: its code is masked later)."""
    j = antecedents.clamp(min=0)
    text, last = words
    same_text = text[rows][:, None] == text[j]
    same_last = last[rows][:, None] == last[j]
    return same_text.long() + same_last.long()


def distance_buckets(distance: torch.Tensor) -> torch.Tensor:
    """RETURNS (Tensor): Lee et al.'s buckets of token distances: 0-1, 2, 3, 4, 5-7, 8-15,
    16-31, 32-63, 64+ -> 0..8."""
    d = distance.clamp(min=1)
    log = torch.floor(torch.log2(d.float())).long() + 2
    return torch.where(d <= 4, d - 1, log.clamp(max=N_DISTANCE_BUCKETS - 1))
