"""Dependency parsing: biaffine scores decoded to one well-formed tree per sentence ->
`token.head`, `token.dep_`, and so `doc.sents`."""

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.attrs import DEP, HEAD
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from ..decoding import eisner_decode, mst_decode
from .base import Task

if TYPE_CHECKING:
    import torch
    from torch import nn


class ParsingTask(Task):
    """A dependency parser: one tree per sentence (the component decides the sentences).

    projective (bool): Decode with Eisner (projective) instead of Chu-Liu-Edmonds.
    """

    kind = "parsing"
    assigns = ("token.head", "token.dep")
    settings = {"projective": False}
    min_level = 1
    communicates = True

    def build_head(self, width_in: int, sizes: Dict[str, Any]) -> "nn.Module":
        from ..heads import BiaffineHead

        return BiaffineHead(
            width_in, self.n_outputs, self.cfg["depth"], sizes["width"], sizes["arc_width"],
            sizes["label_width"], sizes["dropout"],
        )  # fmt: skip

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
    def root_label(self) -> Optional[str]:
        """RETURNS (Optional[str]): The label of sentence roots, written on roots only (None
        if the training data had no ROOT/root label: then labels are not constrained)."""
        return next((label for label in ("ROOT", "root") if label in self.labels), None)

    def loss(
        self, examples: List[Example], outputs: Dict[str, Dict[str, Any]]
    ) -> Optional["torch.Tensor"]:
        import torch

        from ..heads import arc_blocks

        output = outputs[self.name]
        golds = [self.gold(eg) for eg in examples]
        index = {lab: i for i, lab in enumerate(self.labels)}
        longest = max(end - start for _, start, end in output["segments"])
        head_t = torch.full((len(output["segments"]), longest), -1, dtype=torch.long)
        arcs: List[Tuple[int, int, int, int]] = []  # (doc, token, head or -1 for root, label)
        for s, (b, start, end) in enumerate(output["segments"]):
            heads, deps = golds[b]
            for i in range(start, end):
                h = heads[i]
                if h is None or not (start <= h < end):
                    continue
                head_t[s, i - start] = 0 if h == i else h - start + 1
                if deps[i] in index:
                    arcs.append((b, i, -1 if h == i else h, index[deps[i]]))
        n_arcs = int((head_t >= 0).sum())
        if not n_arcs:
            return None
        summed = []  # per bucket, the summed cross-entropy of its gold heads
        for group, block in arc_blocks(output):
            target = head_t[group, : block.shape[1]]
            has_head = target >= 0
            if bool(has_head.any()):
                summed.append(
                    torch.nn.functional.cross_entropy(
                        block[has_head], target[has_head], reduction="sum"
                    )
                )
        loss = torch.stack(summed).sum() / n_arcs
        if arcs:
            b_idx, i_idx, h_idx, labels = (torch.tensor(col) for col in zip(*arcs))
            scores = label_scores(output, b_idx, i_idx, h_idx)
            loss = loss + torch.nn.functional.cross_entropy(scores, labels)
        return loss

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        import torch

        from ..heads import arc_blocks

        output = outputs[self.name]
        if not self.labels or not output["segments"]:
            return
        decode = eisner_decode if self.cfg["projective"] else mst_decode
        heads = [numpy.arange(len(doc)) for doc in docs]  # spaCy: a root is its own head
        is_root = [numpy.zeros(len(doc), dtype=bool) for doc in docs]
        segments = output["segments"]
        for group, block in arc_blocks(output):
            arc = torch.log_softmax(block, dim=-1).numpy()
            for row, s in enumerate(group.tolist()):
                b, start, end = segments[s]
                tree = decode(arc[row, : end - start, : end - start + 1])
                rows = numpy.arange(start, end)
                heads[b][start:end] = numpy.where(tree == 0, rows, tree - 1 + start)
                is_root[b][start:end] = tree == 0
        b_idx = numpy.concatenate([numpy.full(len(doc), b) for b, doc in enumerate(docs)])
        i_idx = numpy.concatenate([numpy.arange(len(doc)) for doc in docs])
        h_idx = numpy.concatenate([numpy.where(r, -1, h) for h, r in zip(heads, is_root)])
        with torch.no_grad():
            scores = label_scores(
                output, torch.from_numpy(b_idx), torch.from_numpy(i_idx), torch.from_numpy(h_idx)
            ).numpy()
        root = self.labels.index(self.root_label) if self.root_label else -1
        if root >= 0:  # the root label on roots only
            scores[:, root] = -numpy.inf
        best = scores.argmax(-1)
        if root >= 0:
            best[h_idx == -1] = root
        strings = docs[0].vocab.strings  # docs is not empty: there are segments
        label_ids = numpy.asarray([strings.add(label) for label in self.labels], dtype="uint64")
        offset = 0
        for b, doc in enumerate(docs):
            n = len(doc)
            deps = label_ids[best[offset : offset + n]]
            offset += n
            if n == 0 or (doc.has_annotation("DEP") and not overwrite):
                continue
            rel_heads = (heads[b] - numpy.arange(n)).astype("uint64")
            doc.from_array([HEAD, DEP], numpy.stack([rel_heads, deps], axis=1))  # type: ignore[arg-type]

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        examples = [eg for eg in examples if eg.reference.has_annotation("DEP")]
        if not examples:
            return {"dep_uas": None, "dep_las": None, "dep_las_per_type": None}
        return Scorer.score_deps(examples, "dep", getter=dep_label_getter)


def label_scores(
    output: Dict[str, Any], b: "torch.Tensor", i: "torch.Tensor", h: "torch.Tensor"
) -> "torch.Tensor":
    """Bilinear label scores of the arcs (doc b, dependent i, head h; h == -1: the root),
    LABEL_BLOCK arcs at a time (the bilinear form holds n_arcs x n_labels x width floats).

    RETURNS (Tensor): (n_arcs, n_labels).
    """
    import torch

    from ..heads import bilinear_scores

    parts = []
    for start in range(0, max(len(b), 1), LABEL_BLOCK):
        block = slice(start, start + LABEL_BLOCK)
        dep = output["lab_dep"][b[block], i[block]]
        head = output["lab_head"][b[block], h[block].clamp(min=0)]
        head = torch.where((h[block] < 0)[:, None], output["lab_root"].expand_as(head), head)
        parts.append(bilinear_scores(dep, output["lab_W"], head))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


# Arcs per bilinear form in label_scores: a batch of nlp.pipe in one (small blocks cost up to
# 9% of words/s on 2 threads), a long doc with an intermediate of about 100 MB at most.
LABEL_BLOCK = 16384


def dep_label_getter(token, attr: str) -> str:
    """The dependency label of a token, lowercased (UD and spaCy label case differ)."""
    return token.vocab.strings.as_string(getattr(token, attr)).lower()
