"""Sentence pairs on the Doc: the doc form of relatedness and entailment (SICK).

A pair doc is a Doc of exactly two sentences, sentence A then sentence B, with its sentence
starts set (`make_pair_doc` builds one from two texts; `pair_sentences` finds the two).
- Entailment is `doc.cats` over ENTAILMENT_LABELS (ENTAILMENT, NEUTRAL, CONTRADICTION):
  one-hot for gold, probabilities summing to 1 for predictions (`set_entailment`,
  `get_entailment`). Cats are part of `Doc.to_bytes` and `Doc.to_json`.
- Relatedness is `doc._.relatedness`: a float on SICK's 1-5 scale, None when absent.

Storage of the relatedness. `doc._.relatedness` is a getter/setter over a span group:
    doc.spans["pair"]        the two sentence spans, [A, B]
    doc.spans["pair"].attrs  {"relatedness": float or None, "pair_id": str (optional)}
Span groups with their attrs are part of `Doc.to_bytes`, so the score survives every route
built on it: `DocBin` with *and without* user data, pickling, `Doc.copy` and
`nlp.pipe(n_process=N)`. A plain user-data extension would be lost by
`DocBin(store_user_data=False)`, the DocBin that `spacy convert` and many projects write.
`doc.cats["RELATEDNESS"]` would survive too, but cats are category scores in [0, 1]: a 1-5
value there would be read as a fourth category by textcat scorers, by `get_entailment`
and by anything that takes the argmax of the cats. The group also records which two spans
the score was given for (the sentences when it was set); the same scheme as
`doc._.relations` (spacy_jmt.relations).

No "pair" group means "relatedness not annotated" (missing gold: no loss). Two routes drop
span group attrs; the getter then raises a ValueError (never a silent None):
- `Doc.to_json()` keeps the group's spans but not its attrs: ask for the extension,
  `doc.to_json(underscore=["relatedness"])`; `Doc(vocab).from_json(data)` restores it (its
  setter runs after the span groups and sentences are rebuilt).
- `Doc.from_docs()` concatenates the groups without attrs (and the result is no pair).

The extension is registered when this module is imported (and by
`register_pair_extensions()`, which is idempotent).
"""

import math
from numbers import Real
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from spacy import util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup

from .extensions import register_doc_extension

ENTAILMENT = "ENTAILMENT"
NEUTRAL = "NEUTRAL"
CONTRADICTION = "CONTRADICTION"
ENTAILMENT_LABELS: Tuple[str, ...] = (ENTAILMENT, NEUTRAL, CONTRADICTION)
PAIR_KEY = "pair"
RELATEDNESS_EXTENSION = "relatedness"
RELATEDNESS_MIN, RELATEDNESS_MAX = 1.0, 5.0
# Predicted probabilities (float32 softmax) may miss 1 by rounding.
PROB_SUM_TOLERANCE = 1e-3

Tokenize = Union[Language, Callable[[str], Doc]]


def pair_sentences(doc: Doc) -> Optional[Tuple[Span, Span]]:
    """The two sentences of a pair doc.

    doc (Doc): The Doc.
    RETURNS (Optional[Tuple[Span, Span]]): Sentence A and sentence B, or None unless the
        Doc has sentence boundaries (set, or from a parse) and exactly two sentences.
    """
    if len(doc) < 2 or not doc.has_annotation("SENT_START"):
        return None
    sents = list(doc.sents)
    if len(sents) != 2:
        return None
    return sents[0], sents[1]


def is_pair(doc: Doc) -> bool:
    """Whether the Doc is a pair doc (exactly two sentences).

    doc (Doc): The Doc.
    RETURNS (bool): True if `pair_sentences(doc)` finds two sentences.
    """
    return pair_sentences(doc) is not None


def _tokenize(tokenizer: Tokenize, text: str, name: str) -> Doc:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ValueError(f"{name} is empty: a pair needs two non-empty sentences")
    make = tokenizer.make_doc if isinstance(tokenizer, Language) else tokenizer
    doc = make(text)
    if not isinstance(doc, Doc):
        raise TypeError(f"the tokenizer returned {type(doc).__name__}, not a Doc")
    return doc


def join_pair(doc_a: Doc, doc_b: Doc) -> Doc:
    """Join two docs into a new pair doc: their tokens (texts, whitespace and norms) with a
    space between them, sentence A starting at the first token and sentence B at its first
    token. No other annotation is copied, so the pair doc is what a tokenizer would make.

    doc_a (Doc): Sentence A.
    doc_b (Doc): Sentence B (same vocab).
    RETURNS (Doc): The pair doc.
    RAISES (ValueError): If a doc has no tokens or the vocabs differ.
    """
    for name, doc in (("sentence A", doc_a), ("sentence B", doc_b)):
        if not isinstance(doc, Doc):
            raise TypeError(f"{name} must be a Doc, got {type(doc).__name__}")
        if len(doc) == 0:
            raise ValueError(f"{name} has no tokens: a pair needs two non-empty sentences")
    if doc_a.vocab is not doc_b.vocab:
        raise ValueError("the two docs of a pair must share one vocab")
    tokens = list(doc_a) + list(doc_b)
    spaces = [bool(t.whitespace_) for t in tokens]
    spaces[len(doc_a) - 1] = True
    starts: List[Union[bool, int, None]] = [i in (0, len(doc_a)) for i in range(len(tokens))]
    doc = Doc(doc_a.vocab, words=[t.text for t in tokens], spaces=spaces, sent_starts=starts)
    for token, source in zip(doc, tokens):
        token.norm_ = source.norm_
    return doc


def is_pair_data(doc: Doc) -> bool:
    """Whether a reference doc is a sentence pair from pair data: two sentences with a gold
    relatedness or entailment label (or a pair_id). Its sentence boundaries are input to the
    pair tasks: the readers of this package give them to the predicted doc, so the sentence
    splitter is not scored on such docs (it does learn from them: in a raw text of two
    unpunctuated sentences, as SICK's, it must find the pair).

    doc (Doc): The reference Doc.
    RETURNS (bool): Whether it is pair data.
    """
    if pair_sentences(doc) is None:
        return False
    return PAIR_KEY in doc.spans or any(label in doc.cats for label in ENTAILMENT_LABELS)


def make_pair_doc(
    tokenizer: Tokenize,
    text_a: str,
    text_b: str,
    *,
    relatedness: Optional[float] = None,
    entailment: Union[str, Mapping[str, float], None] = None,
    pair_id: Optional[str] = None,
) -> Doc:
    """Build a pair doc: both texts tokenized, concatenated (with a space between them),
    sentence A starting at the first token and sentence B at its first token.

    Each text is one sentence of the pair, whatever punctuation it holds; surrounding
    whitespace is stripped. The tokenizer runs on each text alone, and `Doc.text` is
    "A B": `nlp.make_doc(doc.text)` gives the same tokens for spaCy's rule-based
    tokenizers, but no sentence starts (sentence boundaries are input for pairs).

    tokenizer (Union[Language, Callable[[str], Doc]]): A pipeline (its `make_doc` is used)
        or a tokenizer such as `nlp.tokenizer`.
    text_a (str): Sentence A.
    text_b (str): Sentence B.
    relatedness (Optional[float]): The relatedness score, if known.
    entailment (Union[str, Mapping[str, float], None]): A label of ENTAILMENT_LABELS
        (one-hot cats) or the three probabilities, if known.
    pair_id (Optional[str]): An identifier kept in the "pair" span group's attrs.
    RETURNS (Doc): The pair doc.
    RAISES (ValueError): If a text is empty, or relatedness or entailment are malformed.
    """
    doc = join_pair(_tokenize(tokenizer, text_a, "text_a"), _tokenize(tokenizer, text_b, "text_b"))
    if relatedness is not None or pair_id is not None:
        _write_pair_group(doc, relatedness, pair_id=pair_id)
    if entailment is not None:
        set_entailment(doc, entailment)
    return doc


def _check_relatedness(value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"relatedness must be a finite number or None, got {value!r}")
    return float(value)


def _write_pair_group(doc: Doc, relatedness: Any, pair_id: Optional[str] = None) -> None:
    """Write doc.spans["pair"] with the pair's two spans and the attrs."""
    value = _check_relatedness(relatedness)
    sents = pair_sentences(doc)
    if sents is None:
        n = len(list(doc.sents)) if len(doc) and doc.has_annotation("SENT_START") else "no"
        raise ValueError(
            f"cannot set a relatedness on a doc that is not a sentence pair: it has {n} "
            "sentences, a pair doc has exactly two with their starts set (see "
            f"spacy_jmt.pairs.make_pair_doc): {doc.text[:60]!r}"
        )
    attrs = dict(doc.spans[PAIR_KEY].attrs) if PAIR_KEY in doc.spans else {}
    attrs["relatedness"] = value
    if pair_id is not None:
        attrs["pair_id"] = str(pair_id)
    doc.spans[PAIR_KEY] = SpanGroup(doc, name=PAIR_KEY, attrs=attrs, spans=list(sents))


def get_relatedness(doc: Doc) -> Optional[float]:
    """Read the relatedness of a pair doc (the getter of `doc._.relatedness`).

    doc (Doc): The Doc.
    RETURNS (Optional[float]): The score, or None if the Doc has none.
    RAISES (ValueError): If doc.spans["pair"] is there without its attrs.
    """
    if PAIR_KEY not in doc.spans:
        return None
    group = doc.spans[PAIR_KEY]
    if "relatedness" not in group.attrs:
        raise ValueError(
            f"doc.spans[{PAIR_KEY!r}] holds {len(group)} spans but no relatedness attr. Span "
            "group attrs are dropped by Doc.to_json (use "
            f"doc.to_json(underscore=[{RELATEDNESS_EXTENSION!r}])) and by Doc.from_docs "
            "(whose result is no pair doc)."
        )
    return _check_relatedness(group.attrs["relatedness"])


def set_relatedness(doc: Doc, value: Optional[float]) -> None:
    """Write the relatedness of a pair doc (the setter of `doc._.relatedness`).

    doc (Doc): The pair doc; its two sentences are recorded in doc.spans["pair"] (other
        attrs of an existing group, such as "pair_id", are kept).
    value (Optional[float]): The score; None removes it (and the "pair" group, unless
        the group holds a pair_id).
    RAISES (ValueError): If the value is not a finite number, or the Doc is no pair.
    """
    if value is None:
        if PAIR_KEY in doc.spans:
            group = doc.spans[PAIR_KEY]
            if set(group.attrs) - {"relatedness"}:  # keep the pair_id
                group.attrs["relatedness"] = None
            else:
                del doc.spans[PAIR_KEY]
        return
    _write_pair_group(doc, value)


def get_pair_id(doc: Doc) -> Optional[str]:
    """The pair's identifier (e.g. SICK's pair_ID), if one was recorded.

    doc (Doc): The Doc.
    RETURNS (Optional[str]): The identifier, or None.
    """
    if PAIR_KEY not in doc.spans:
        return None
    value = doc.spans[PAIR_KEY].attrs.get("pair_id")
    return None if value is None else str(value)


def set_entailment(doc: Doc, value: Union[str, Mapping[str, float], None]) -> None:
    """Write the entailment cats of a Doc; other cats are kept.

    doc (Doc): The Doc.
    value (Union[str, Mapping[str, float], None]): A label (gold: one-hot over
        ENTAILMENT_LABELS), the probabilities of all three labels (they must sum to 1), or
        None to remove the three cats.
    RAISES (ValueError): If the label is unknown or the probabilities are malformed.
    """
    if value is None:
        for label in ENTAILMENT_LABELS:
            doc.cats.pop(label, None)
        return
    if isinstance(value, str):
        if value not in ENTAILMENT_LABELS:
            expected = ", ".join(ENTAILMENT_LABELS)
            raise ValueError(f"unknown entailment label {value!r}; expected one of {expected}")
        probs = {label: float(label == value) for label in ENTAILMENT_LABELS}
    else:
        if set(value) != set(ENTAILMENT_LABELS):
            raise ValueError(
                f"entailment probabilities must have exactly the labels "
                f"{', '.join(ENTAILMENT_LABELS)}, got {sorted(value)}"
            )
        probs = {}
        for label in ENTAILMENT_LABELS:
            p = value[label]
            if isinstance(p, bool) or not isinstance(p, Real) or not 0.0 <= p <= 1.0:
                raise ValueError(f"entailment probability of {label} must be in [0, 1], got {p!r}")
            probs[label] = float(p)
        if abs(sum(probs.values()) - 1.0) > PROB_SUM_TOLERANCE:
            raise ValueError(f"entailment probabilities must sum to 1, got {sum(probs.values())}")
    doc.cats.update(probs)


def get_entailment(doc: Doc) -> Optional[str]:
    """The most probable entailment label in the cats (ties: ENTAILMENT_LABELS order).

    doc (Doc): The Doc.
    RETURNS (Optional[str]): The label, or None if the cats have none of the labels.
    """
    scores = [(doc.cats[label], label) for label in ENTAILMENT_LABELS if label in doc.cats]
    if not scores:
        return None
    best = max(score for score, _ in scores)
    return next(label for score, label in scores if score == best)


def gold_entailment(doc: Doc) -> Optional[str]:
    """The gold entailment label: the one label of ENTAILMENT_LABELS whose cat is > 0.5.

    doc (Doc): The reference Doc.
    RETURNS (Optional[str]): The label, or None unless exactly one label is positive.
    """
    positive = [label for label in ENTAILMENT_LABELS if doc.cats.get(label, 0.0) > 0.5]
    return positive[0] if len(positive) == 1 else None


def entailment_probs(doc: Doc) -> Optional[Dict[str, float]]:
    """The entailment cats of a Doc.

    doc (Doc): The Doc.
    RETURNS (Optional[Dict[str, float]]): The three labels' values, or None unless all
        three are in the cats.
    """
    if not all(label in doc.cats for label in ENTAILMENT_LABELS):
        return None
    return {label: float(doc.cats[label]) for label in ENTAILMENT_LABELS}


def register_pair_extensions() -> None:
    """Register `Doc._.relatedness` (idempotent).

    If another package registered an extension of that name, it is replaced with a warning.
    """
    register_doc_extension(RELATEDNESS_EXTENSION, get_relatedness, set_relatedness)


register_pair_extensions()


def compare_pairs(
    component: TrainablePipe, pairs: Iterable[Tuple[Doc, Doc]], batch_size: int = 64
) -> List[Dict[str, Any]]:
    """Relatedness and entailment of many sentence pairs, in batches (`JMT.compare_batch`).

    Each pair becomes a new pair doc of the two docs' tokens (`join_pair`: no other
    annotation is read, and the docs are not changed); the component's pair-level tasks run
    on these docs as in its doc form (`doc._.relatedness`, `doc.cats`). The network must
    have its own tok2vec: with a tok2vec listener, run the whole pipeline on pair docs
    (`make_pair_doc`) instead.

    component (TrainablePipe): The `jmt` component, initialized.
    pairs (Iterable[Tuple[Doc, Doc]]): (sentence A, sentence B) per pair.
    batch_size (int): Pairs per forward pass.
    RETURNS (List[Dict[str, Any]]): Per pair, "relatedness" (float on the 1-5 scale),
        "entailment" (the most probable label) and "entailment_probs" (label ->
        probability); None for what the component has no task for.
    """
    tasks = [task for task in component.tasks if task.pair_level and task.writes]  # type: ignore[attr-defined]
    if not tasks:
        raise ValueError(
            f"Component '{component.name}' has no relatedness or entailment task to compare "
            "sentence pairs with"
        )
    docs = [join_pair(doc_a, doc_b) for doc_a, doc_b in pairs]
    for batch in util.minibatch(docs, size=batch_size):
        outputs = component.predict(batch)
        for task in tasks:
            task.set_annotations(batch, outputs, True)
    return [
        {
            "relatedness": doc._.relatedness,
            "entailment": get_entailment(doc),
            "entailment_probs": entailment_probs(doc),
        }
        for doc in docs
    ]
