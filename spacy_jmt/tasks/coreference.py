"""Document-level coreference (HMTL's coreference level): end-to-end span ranking as in Lee
et al. (2017) -> clusters in spaCy's convention, `doc.spans["coref_clusters_1"]`, `_2`, ...
(numbered from 1 in the order of their first mention), each group with its "score" (the mean
mention probability of its spans) in `attrs`.

Per doc (a LitBank document of 2,000 words is one forward pass): every span of at most
`max_width` tokens inside a sentence is a candidate; the head gives each a mention score and
the best `top_ratio` x (doc length) of them are kept, in doc order, with the spans that a
`mentions_task` predicts (HMTL's mention level feeding its coreference level; at most one
per token); each kept span is scored against the `max_antecedents` kept spans before it and
a dummy antecedent (no link, score 0).
Work and memory grow with the doc's length times max_width and max_antecedents, never with
its square, so a 100k-token doc is scored in blocks.

Training maximizes the marginal likelihood of the gold antecedents (spans earlier in the same
gold cluster; the dummy for the first mention of a cluster and for non-mentions), plus a
logistic loss on the mention scores of every candidate (gold mentions against the rest), so
that singletons, which LitBank annotates, are learned too. A doc whose gold mentions are
marked partial (`doc.spans["coref_mentions"].attrs["partial"]`, GAP's three mentions per
text) teaches only what it annotates: its gold mentions are the candidates, each ranks its
antecedents among them, and no other span counts as a non-mention. At inference a span links
to its best antecedent when that scores over `link_threshold` (0: the dummy's score); a span
that links to nothing is a singleton when its mention probability is over
`singleton_threshold` and `singletons` is on. Both are inference settings: tune them on dev
without retraining (`evaluate --set`); so is `max_antecedents`, on which no weight depends.
"""

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Set, Tuple

from spacy.tokens import Doc, SpanGroup
from spacy.training import Example

from ..converters.coref import get_clusters
from ..keys import CLUSTER_PREFIX, COREF_MENTIONS_KEY
from .base import Task
from .mentions import MentionTask, candidate_grid, sentence_ids, weighted_loss

if TYPE_CHECKING:
    import torch
    from torch import nn

BLOCK = 2048  # span starts (or spans with their antecedents / 10) scored at once at inference


class CoreferenceTask(Task):
    """Coreference clusters read from and written to `doc.spans["coref_clusters_N"]`.

    max_width (int): The longest candidate mention, in tokens.
    top_ratio (float): Candidates kept per token of the doc, by mention score.
    max_antecedents (int): Earlier kept spans each span is compared with (an inference
        setting: no weight depends on it).
    train_antecedents (Optional[int]): The window in training (None: max_antecedents); a
        smaller one trains faster (150 spans took 1.7 times as long a step as 50).
    singletons (bool): Write mentions that corefer with nothing as clusters of one.
    link_threshold (float): The score a best antecedent must beat for a link (the dummy
        antecedent scores 0; lower values link more, so clusters grow).
    singleton_threshold (float): The mention probability a span that links to nothing needs
        to be a singleton.
    pair_width (int): Width of the projected span representations the pair scorer reads.
    width_embedding (int): Width of the span-width and distance embeddings.
    negative_weight (float): The weight of a non-mention in the mention loss (as the
        mentions kind's).
    partial_mentions (bool): Whether docs with partial gold mentions (GAP) train the mention
        scores too. They can only give positives, so they teach that every span of their
        domain is a mention; off, they train the antecedent ranking alone.
    mentions_task (Optional[str]): A mentions task at this level or below (HMTL's mention
        level): the spans it predicts are always candidates, besides the best-scored ones.
    string_match (bool): Whether the antecedent scorer also reads whether two spans have the
        same lowercased text or the same last word (as feature-based coreference systems do;
        a network without a pretrained LM sees a name's occurrences apart otherwise).
    fine_antecedents (Optional[int]): Coarse-to-fine antecedents (Lee et al. 2018): a cheap
        bilinear score ranks the window and only its best `fine_antecedents` are scored by
        the pair MLP, in training and inference (None: the MLP scores the whole window).
        The window can then be long at the cost of a short one.
    """

    kind = "coreference"
    settings = {
        "max_width": 10, "top_ratio": 0.4, "max_antecedents": 50, "train_antecedents": None,
        "singletons": True, "pair_width": 128, "width_embedding": 20, "negative_weight": 0.2,
        "mentions_task": None, "partial_mentions": True, "link_threshold": 0.0,
        "singleton_threshold": 0.5, "string_match": False, "fine_antecedents": None,
    }  # fmt: skip
    inference_settings = ("link_threshold", "singleton_threshold", "max_antecedents")
    min_level = 1

    def __init__(self, name: str, cfg: Dict[str, Any], labels: Optional[List[str]] = None):
        super().__init__(name, cfg, labels or ["COREF"])
        for key in ("max_width", "max_antecedents", "train_antecedents", "fine_antecedents"):
            if key in ("train_antecedents", "fine_antecedents") and self.cfg[key] is None:
                continue
            if not isinstance(self.cfg[key], int) or self.cfg[key] < 1:
                raise ValueError(f"Task '{name}': {key} must be an integer >= 1")
        if not 0 < self.cfg["top_ratio"] <= self.cfg["max_width"]:
            raise ValueError(f"Task '{name}': top_ratio must be in (0, max_width]")
        self.require_number("link_threshold", lambda _: True, "a number")
        self.require_number("singleton_threshold", lambda p: 0 <= p < 1, "in [0, 1)")
        self.mention_task: Optional[MentionTask] = None

    def link(self, tasks: Dict[str, Task]) -> None:
        if self.cfg["mentions_task"] is not None:
            self.mention_task = self.linked(tasks, "mentions_task", MentionTask)

    def build_head(self, width_in: int, sizes: Dict[str, Any]) -> "nn.Module":
        from ..heads import CoreferenceHead

        return CoreferenceHead(
            width_in, self.cfg["depth"], sizes["width"], self.cfg["max_width"],
            self.cfg["width_embedding"], self.cfg["pair_width"], sizes["dropout"],
            self.cfg["string_match"], self.cfg["fine_antecedents"] is not None,
        )  # fmt: skip

    def gold_labels(self, example: Example) -> Iterable[str]:
        return ["COREF"] if get_clusters(example.reference) else []

    def gold(self, example: Example) -> Optional[Dict[Tuple[int, int], int]]:
        """RETURNS: the gold mentions on the predicted tokens, (start, end) -> cluster
        number, or None if the doc has no clusters (it does not annotate coreference)."""
        ref, pred = example.reference, example.predicted
        clusters = get_clusters(ref)
        if not clusters:
            return None
        found: Dict[Tuple[int, int], int] = {}
        for c, cluster in enumerate(clusters):
            for s, e in cluster:
                span = pred.char_span(ref[s].idx, ref[e - 1].idx + len(ref[e - 1]))
                if span is not None:
                    found.setdefault((span.start, span.end), c)
        return found

    def observe(self, example: Example) -> None:
        """Count the gold mentions no candidate can match: longer than max_width, across a
        sentence boundary of the reference, or off the predicted tokens."""
        gold = self.gold(example)
        if gold is None:
            return
        ref = example.reference
        mentions = [ref[s:e] for cluster in get_clusters(ref) for s, e in cluster]
        counts = {
            "n_mentions": len(mentions),
            "n_long": sum(1 for m in mentions if len(m) > self.cfg["max_width"]),
            "n_crossing": sum(1 for m in mentions if m[0].sent.end < m.end),
            "n_misaligned": len(mentions) - len(gold),
        }
        for key, n in counts.items():
            self.state[key] = self.state.get(key, 0) + n

    def data_warning(self) -> Optional[str]:
        found = {key: self.state.get(key, 0) for key in ("n_long", "n_crossing", "n_misaligned")}
        if not any(found.values()):
            return None
        return (
            f"Task '{self.name}': of the {self.state['n_mentions']} gold mentions, "
            f"{found['n_long']} are longer than max_width ({self.cfg['max_width']}), "
            f"{found['n_crossing']} cross a sentence boundary and {found['n_misaligned']} (or "
            "their duplicates) do not align to the predicted tokens: no candidate matches "
            "them; they still count in the scores"
        )

    # -- candidates -------------------------------------------------------------------------

    def _mention_scores(
        self, output: Dict[str, Any], b: int, n_tokens: int, training: bool
    ) -> Tuple[List[Tuple[int, int]], "torch.Tensor"]:
        """RETURNS: the candidate spans of doc b (every span of at most max_width tokens
        inside a sentence, in doc order) and their mention scores, computed in blocks of
        span starts when not training."""
        import torch

        head: Any = self.head
        features = output["features"][b : b + 1]
        segments = [(0, s, e) for d, s, e in output.get("segments", []) if d == b]
        width = self.cfg["max_width"]
        spans: List[Tuple[int, int]] = []
        scores = []
        step = n_tokens if training else BLOCK
        sentence = sentence_ids(segments, 1, n_tokens, width)
        for first in range(0, n_tokens, max(step, 1)):
            last = min(first + step, n_tokens)
            grid = head.grid_logits(features, first, last, training=training)[0, :, :, 0]
            valid = candidate_grid(sentence, first, last, width)[0]
            index = torch.nonzero(valid)
            spans += [(first + t, first + t + w + 1) for t, w in index.tolist()]
            scores.append(grid[valid])
        return spans, torch.cat(scores) if scores else features.new_zeros(0)

    def _antecedents(self, n: int, training: bool = False) -> "torch.Tensor":
        import torch

        k = self.cfg["max_antecedents"]
        if training and self.cfg["train_antecedents"] is not None:
            k = self.cfg["train_antecedents"]
        index = torch.arange(n)[:, None] - 1 - torch.arange(k)[None, :]
        return index.masked_fill(index < 0, -1)

    def _predicted_mentions(
        self, outputs: Dict[str, Dict[str, Any]], lengths: List[int]
    ) -> List[Set[Tuple[int, int]]]:
        """RETURNS: per doc, the spans the mentions task predicts (none without one), at most
        one per token (the most probable), so that an untrained mention level that finds
        mentions everywhere cannot blow up the candidates."""
        if self.mention_task is None:
            return [set() for _ in lengths]
        found = self.mention_task.predict_mentions(outputs, len(lengths))
        return [
            {(s, e) for s, e, *_ in sorted(mentions, key=lambda m: -m[3])[:n]}
            for mentions, n in zip(found, lengths)
        ]

    def _keep(
        self,
        scores: "torch.Tensor",
        n_tokens: int,
        spans: List[Tuple[int, int]],
        mentions: Set[Tuple[int, int]],
    ) -> "torch.Tensor":
        """RETURNS: the indices of the best top_ratio * n_tokens candidates and of the
        candidates among `mentions` (the mentions task's spans), in doc order."""
        import torch

        k = min(len(scores), max(1, int(self.cfg["top_ratio"] * n_tokens)))
        kept = set(torch.topk(scores, k).indices.tolist())
        if mentions:
            kept.update(i for i, span in enumerate(spans) if span in mentions)
        return torch.tensor(sorted(kept), dtype=torch.long)

    def _span_words(self, doc: Doc, spans: List[Tuple[int, int]]) -> Optional[Tuple[Any, Any]]:
        """RETURNS: what the pair scorer's string match reads (None without string_match)."""
        return span_words(doc, spans) if self.cfg["string_match"] else None

    # -- training ---------------------------------------------------------------------------

    def loss(
        self, examples: List[Example], outputs: Dict[str, Dict[str, Any]]
    ) -> Optional["torch.Tensor"]:
        import torch

        output = outputs[self.name]
        head: Any = self.head
        losses = []
        mentions = self._predicted_mentions(outputs, [len(eg.predicted) for eg in examples])
        for b, eg in enumerate(examples):
            gold = self.gold(eg)
            if gold is None:
                continue
            spans, scores = self._mention_scores(output, b, len(eg.predicted), training=True)
            if not spans:
                continue
            is_mention = torch.tensor([int(span in gold) for span in spans])
            if is_partial(eg.reference):
                kept = torch.nonzero(is_mention)[:, 0].tolist()
                if not kept:
                    continue
                mention_loss = (
                    weighted_loss(scores[kept], is_mention[kept], 1.0)
                    if self.cfg["partial_mentions"]
                    else scores.new_zeros(())
                )
            else:
                mention_loss = weighted_loss(scores, is_mention, self.cfg["negative_weight"])
                kept = self._keep(scores.detach(), len(eg.predicted), spans, mentions[b]).tolist()
            kept_spans = [spans[i] for i in kept]
            reps = head.represent(output["features"], _doc_spans(b, kept_spans))
            starts = torch.tensor([s for s, _ in kept_spans])
            words = self._span_words(eg.predicted, kept_spans)
            g = head.project(reps)
            antecedents = head.prune(
                g, scores[kept], starts, self._antecedents(len(kept), True),
                self.cfg["fine_antecedents"], words=words,
            )  # fmt: skip
            pair = head.antecedent_scores(g, scores[kept], starts, antecedents, words=words)
            cluster = torch.tensor([gold.get(span, -1) for span in kept_spans])
            j = antecedents.clamp(min=0)
            same = (cluster[:, None] == cluster[j]) & (cluster[:, None] >= 0) & (antecedents >= 0)
            target = torch.cat([~same.any(1, keepdim=True), same], 1)
            marginal = torch.logsumexp(pair.masked_fill(~target, float("-inf")), 1)
            coref_loss = (torch.logsumexp(pair, 1) - marginal).mean()
            losses.append(coref_loss + mention_loss)
        return torch.stack(losses).mean() if losses else None

    # -- inference --------------------------------------------------------------------------

    def predict_clusters(
        self, outputs: Dict[str, Dict[str, Any]], docs: List[Doc]
    ) -> List[List[Tuple[List[Tuple[int, int]], float]]]:
        """RETURNS: per doc, its clusters as (spans in doc order, mean mention probability),
        in the order of their first span."""
        import torch

        output = outputs[self.name]
        mentions = self._predicted_mentions(outputs, [len(doc) for doc in docs])
        with torch.no_grad():
            return [self._doc_clusters(output, b, doc, mentions[b]) for b, doc in enumerate(docs)]

    def _doc_clusters(
        self, output: Dict[str, Any], b: int, doc: Doc, mentions: Set[Tuple[int, int]]
    ) -> List[Tuple[List[Tuple[int, int]], float]]:
        import torch

        head: Any = self.head
        n_tokens = len(doc)
        spans, scores = self._mention_scores(output, b, n_tokens, training=False)
        if not spans:
            return []
        kept = self._keep(scores, n_tokens, spans, mentions).tolist()
        kept_spans = [spans[i] for i in kept]
        was_training = head.training
        head.eval()
        try:
            g = head.project(head.represent(output["features"], _doc_spans(b, kept_spans)))
            mention = scores[kept]
            starts = torch.tensor([s for s, _ in kept_spans])
            antecedents = self._antecedents(len(kept))
            words = self._span_words(doc, kept_spans)
            step = max(1, 10 * BLOCK // self.cfg["max_antecedents"])
            fine = self.cfg["fine_antecedents"]
            best: List[int] = []  # per span, its antecedent (-1: none)
            for i in range(0, len(kept), step):  # rows in blocks; each row reads earlier spans
                rows = slice(i, i + step)
                block = head.prune(g, mention, starts, antecedents[rows], fine, rows, words)
                pair = head.antecedent_scores(g, mention, starts, block, rows, words)
                pair[:, 0] += self.cfg["link_threshold"]  # the dummy: no link
                choice = pair.argmax(1)
                picked = block.gather(1, (choice - 1).clamp(min=0)[:, None])[:, 0]
                best += torch.where(choice > 0, picked, -1).tolist()
        finally:
            head.train(was_training)
        probs = torch.sigmoid(mention).tolist()
        cluster_of: Dict[int, int] = {}
        clusters: List[List[int]] = []
        for i, j in enumerate(best):
            if j >= 0:
                if j not in cluster_of:
                    cluster_of[j] = len(clusters)
                    clusters.append([j])
                cluster_of[i] = cluster_of[j]
                clusters[cluster_of[j]].append(i)
            elif self.cfg["singletons"] and probs[i] > self.cfg["singleton_threshold"]:
                cluster_of[i] = len(clusters)
                clusters.append([i])
        return [
            ([kept_spans[i] for i in members], sum(probs[i] for i in members) / len(members))
            for members in clusters
        ]

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        predicted = self.predict_clusters(outputs, docs)
        for doc, clusters in zip(docs, predicted):
            if not overwrite and any(k.startswith(CLUSTER_PREFIX) for k in doc.spans):
                continue
            for key in [k for k in doc.spans if k.startswith(CLUSTER_PREFIX)]:
                del doc.spans[key]
            for n, (spans, score) in enumerate(clusters, start=1):
                doc.spans[f"{CLUSTER_PREFIX}{n}"] = SpanGroup(
                    doc,
                    name=f"{CLUSTER_PREFIX}{n}",
                    spans=[doc[s:e] for s, e in spans],
                    attrs={"score": score},
                )

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        from ..coref_scores import score_coref, score_gap

        examples = [eg for eg in examples if get_clusters(eg.reference)]
        # docs with partial gold mentions (GAP) have their own score: against their three
        # mentions, every other predicted cluster would count as a precision error
        complete = [eg for eg in examples if not is_partial(eg.reference)]
        scores: Dict[str, Any] = dict(score_coref(complete)) if complete else {"coref_f": None}
        if any("gap" in eg.reference.spans for eg in examples):
            scores.update(score_gap(examples))
        return scores


def is_partial(doc: Doc) -> bool:
    """RETURNS (bool): Whether the doc's gold mentions are only some of its mentions."""
    group = doc.spans.get(COREF_MENTIONS_KEY)
    return group is not None and bool(group.attrs.get("partial"))


def span_words(doc: Doc, spans: List[Tuple[int, int]]) -> Tuple["torch.Tensor", "torch.Tensor"]:
    """RETURNS: ids of the spans' lowercased texts and of their last words (lowercased),
    equal ids for equal strings (the pair scorer's string-match codes)."""
    import torch

    def ids(strings: Iterable[str]) -> "torch.Tensor":
        index: Dict[str, int] = {}
        return torch.tensor([index.setdefault(s, len(index)) for s in strings], dtype=torch.long)

    texts = ids(doc[s:e].text.lower() for s, e in spans)
    return texts, ids(doc[e - 1].lower_ for _, e in spans)


def _doc_spans(b: int, spans: List[Tuple[int, int]]) -> "torch.Tensor":
    import torch

    return torch.tensor([(b, s, e) for s, e in spans], dtype=torch.long).view(-1, 3)
