"""Token tagging: XPOS (`token.tag_`), UPOS (`token.pos_`), morphological features
(`token.morph`, UD FEATS as one label per token), sentence starts, or a custom token
extension (`_.<name>`)."""

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

import numpy
from spacy.attrs import MORPH, POS, SENT_START, TAG
from spacy.parts_of_speech import IDS as UPOS_IDS
from spacy.scorer import Scorer
from spacy.tokens import Doc, Token
from spacy.training import Example

from ..pairs import is_pair_data
from .base import Task

if TYPE_CHECKING:
    import torch
    from torch import nn

# Gold values that mean "not annotated".
MISSING = (None, "")
# How SENT_START values (1 start, -1 inside, 0 missing) map to labels.
SENT_LABELS = {1: "S", -1: "I"}
# The label of a token without morphological features (UD's "_") in a doc annotated with them.
NO_FEATS = "_"
# The attributes a tagging task reads and writes, besides SENT_START and extensions.
TOKEN_ATTRS = {"TAG": TAG, "POS": POS, "MORPH": MORPH}


def token_targets(gold: List[List[Optional[str]]], labels: List[str], width: int) -> "torch.Tensor":
    """Label indices padded to (batch, width); -1 where gold is missing or unknown."""
    import torch

    index = {label: i for i, label in enumerate(labels)}
    targets = torch.full((len(gold), width), -1, dtype=torch.long)
    for b, values in enumerate(gold):
        targets[b, : len(values)] = torch.tensor(
            [index.get(v, -1) if v not in MISSING else -1 for v in values], dtype=torch.long
        )
    return targets


def token_cross_entropy(
    logits: "torch.Tensor", targets: "torch.Tensor"
) -> Optional["torch.Tensor"]:
    """Mean cross-entropy over the annotated tokens; None if none is annotated."""
    import torch

    if not bool((targets >= 0).any()):
        return None
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1
    )


class TokenTask(Task):
    """A task that gives every token one of `token_labels` through a token classifier (the
    tagging, span and lemma kinds): its head, its loss and its label embeddings."""

    embeds_labels = True
    communicates = True

    @property
    def token_labels(self) -> List[str]:
        """RETURNS (List[str]): What the classifier predicts per token (`gold` gives them)."""
        return self.labels

    @property
    def n_outputs(self) -> int:
        return len(self.token_labels)

    def gold(self, example: Example) -> List[Optional[str]]:
        """RETURNS (List[Optional[str]]): The gold token label per predicted token (None:
        missing)."""
        raise NotImplementedError

    def build_head(self, width_in: int, sizes: Dict[str, Any]) -> "nn.Module":
        return self.head_class()(
            width_in, self.n_outputs, self.cfg["depth"], sizes["width"],
            sizes["label_embedding_width"], sizes["dropout"],
        )  # fmt: skip

    def head_class(self) -> type:
        """RETURNS (type): The head's class: a `TaggerHead` or one of its subclasses."""
        from ..heads import TaggerHead

        return TaggerHead

    def loss(
        self, examples: List[Example], outputs: Dict[str, Dict[str, Any]]
    ) -> Optional["torch.Tensor"]:
        logits = outputs[self.name]["logits"]
        gold = [self.gold(eg) for eg in examples]
        return token_cross_entropy(logits, token_targets(gold, self.token_labels, logits.shape[1]))


class TaggingTask(TokenTask):
    """One label per token, read from and written to a token attribute.

    attr (str): "TAG", "POS", "MORPH" (the whole FEATS string is the label), "SENT_START",
        or "_.<extension>".
    """

    kind = "tagging"
    settings = {"attr": "TAG"}

    def __init__(self, name: str, cfg: Dict[str, Any], labels: Optional[List[str]] = None):
        super().__init__(name, cfg, labels)
        attr = self.cfg["attr"]
        if attr not in (*TOKEN_ATTRS, "SENT_START") and not attr.startswith("_."):
            raise ValueError(
                f"Task '{name}': attr must be TAG, POS, MORPH, SENT_START or _.<extension>, "
                f"got {attr!r}"
            )
        if attr == "SENT_START" and not self.writes:
            raise ValueError(
                f"Task '{name}' predicts sentence starts, which bound every level above it, "
                "so it writes them: write = false is for the tasks that only train the network"
            )
        if attr == "SENT_START" and self.level != 0:
            raise ValueError(
                f"Task '{name}' predicts sentence starts, so it must sit at level 0: the "
                "sentences it finds bound every level above it"
            )
        if attr.startswith("_.") and not Token.has_extension(attr[2:]):
            Token.set_extension(attr[2:], default=None)

    @property
    def attr(self) -> str:
        return self.cfg["attr"]

    @property
    def splits_sentences(self) -> bool:
        return self.attr == "SENT_START"

    def sentence_starts(self, output: Dict[str, Any]) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): (batch, T) bool, the predicted sentence starts of a
        sentence splitter (`splits_sentences`)."""
        start = self.labels.index("S")
        return (output["logits"].argmax(-1) == start).numpy()

    def gold(self, example: Example) -> List[Optional[str]]:
        """RETURNS (List[Optional[str]]): The gold label per predicted token (None: missing)."""
        if self.attr == "SENT_START":
            if not example.reference.has_annotation("SENT_START"):
                return [None] * len(example.predicted)
            return [SENT_LABELS.get(v) for v in aligned_sent_starts(example)]
        if self.attr.startswith("_."):
            ext = self.attr[2:]
            x2y = example.alignment.x2y
            ref = example.reference
            return [
                getattr(ref[x2y[i][0]]._, ext) if x2y.lengths[i] == 1 else None
                for i in range(len(example.predicted))
            ]
        if self.attr == "MORPH":
            if not example.reference.has_annotation("MORPH"):
                return [None] * len(example.predicted)
            values = example.get_aligned("MORPH", as_string=True)
            return [NO_FEATS if v == "" else v for v in values]
        return list(example.get_aligned(self.attr, as_string=True))

    def gold_labels(self, example: Example) -> Iterable[str]:
        if self.attr == "SENT_START":  # both labels, even if the data has one-sentence docs
            return SENT_LABELS.values() if example.reference.has_annotation("SENT_START") else ()
        return (v for v in self.gold(example) if v not in MISSING)

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        best = outputs[self.name]["logits"].argmax(-1).numpy()
        if self.attr.startswith("_."):
            ext = self.attr[2:]
            for b, doc in enumerate(docs):
                for token, j in zip(doc, best[b]):
                    if overwrite or getattr(token._, ext) is None:
                        setattr(token._, ext, self.labels[j])
            return
        if self.attr == "SENT_START":
            is_start = numpy.asarray([label == "S" for label in self.labels])
            for b, doc in enumerate(docs):
                if overwrite or not doc.has_annotation("SENT_START"):
                    set_sent_starts(doc, is_start[best[b, : len(doc)]])
            return
        # TAG, POS, MORPH: one array write per doc, keeping existing values unless overwriting.
        attr_id = TOKEN_ATTRS[self.attr]
        if not docs:
            return
        if self.attr == "TAG":
            ids = [docs[0].vocab.strings.add(label) for label in self.labels]
        elif self.attr == "MORPH":
            morphology = docs[0].vocab.morphology
            ids = [morphology.add("" if label == NO_FEATS else label) for label in self.labels]
        else:
            ids = [UPOS_IDS[label] for label in self.labels]
        label_ids = numpy.asarray(ids, dtype="uint64")
        for b, doc in enumerate(docs):
            if len(doc) == 0:
                continue
            values = label_ids[best[b, : len(doc)]]
            if not overwrite:
                existing = doc.to_array(attr_id)
                values = numpy.where(existing != 0, existing, values)
            doc.from_array([attr_id], values.reshape(-1, 1))

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        if self.attr == "SENT_START":
            # Pair data: readers give the predicted docs the pair's sentences (input to the
            # pair tasks), so they are not the splitter's to score.
            return Scorer.score_spans(
                [eg for eg in examples if not is_pair_data(eg.reference)],
                "sents",
                has_annotation=lambda doc: doc.has_annotation("SENT_START"),
            )
        if self.attr.startswith("_."):
            ext = self.attr[2:]
            return Scorer.score_token_attr(
                examples, self.name, getter=lambda token, _: getattr(token._, ext)
            )
        if self.attr == "MORPH":
            examples = [eg for eg in examples if eg.reference.has_annotation("MORPH")]
            if not examples:
                return {"morph_acc": None, "morph_per_feat": None}
            return {
                **Scorer.score_token_attr(examples, "morph", getter=morph_key),
                **Scorer.score_token_attr_per_feat(examples, "morph", getter=morph_key),
            }
        return Scorer.score_token_attr(examples, self.attr.lower())


def morph_key(token: Token, attr: str) -> int:
    """The key of a token's morphology (the whole FEATS string), as spaCy scores it."""
    return getattr(token, attr).key


def aligned_sent_starts(example: Example) -> List[int]:
    """RETURNS (List[int]): Per predicted token 1 (starts a sentence), -1 (does not) or 0
    (unknown or misaligned). spaCy returns these as uint64, so -1 arrives wrapped around,
    and None for tokens that do not align one-to-one."""
    values = example.get_aligned("SENT_START")
    return [0 if v is None else int(numpy.uint64(v).astype("int64")) for v in values]


def set_sent_starts(doc: Doc, starts: numpy.ndarray) -> None:
    """Mark sentence starts (the first token always starts one) unless the doc is parsed."""
    if len(doc) == 0 or doc.has_annotation("DEP"):
        return
    values = numpy.where(numpy.asarray(starts, dtype=bool), 1, -1).astype("int64")
    values[0] = 1
    doc.from_array([SENT_START], values.astype("uint64").reshape(-1, 1))  # type: ignore[arg-type]
