"""Two drop-in `embed` layers for spaCy's `Tok2Vec.v2`.

`spacy-jmt.RareWordEmbed.v1`: spaCy's MultiHashEmbed whose word column (the first attribute,
e.g. NORM) has an unknown-word key. At `initialize` the component counts the words of the
training data (`WordCounts`). In training a word seen c times is replaced by the unknown
key with probability alpha / (alpha + c) (word dropout as in Kiperwasser and Goldberg 2016),
so the network learns what to do with a word it has no embedding for: read the static
vectors, prefix, suffix and shape. At inference every word the training data never showed
gets the unknown key, instead of the hash rows of other words it happens to collide with.

`spacy-jmt.CharCNNEmbed.v1`: spaCy's MultiHashEmbed (hashed NORM/PREFIX/SUFFIX/SHAPE and,
optionally, static vectors; with `alpha`, the RareWordEmbed above instead) concatenated with
a character CNN over each word's UTF-8 bytes (an embedding per byte, a window of three bytes
through a Maxout, max-pooled over the word), mixed back to `width` by a Maxout.
"""

from collections import Counter
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy
from spacy.attrs import intify_attr
from spacy.ml.featureextractor import FeatureExtractor
from spacy.ml.models.tok2vec import MultiHashEmbed
from spacy.ml.staticvectors import StaticVectors
from spacy.strings import hash_string
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import (
    HashEmbed,
    Maxout,
    Model,
    Ragged,
    chain,
    concatenate,
    expand_window,
    list2ragged,
    ragged2list,
    reduce_max,
    with_array,
)
from thinc.layers import Embed
from thinc.types import Floats2d, Ints2d

UNKNOWN_WORD = hash_string("<spacy-jmt unknown word>")
RARE_WORDS = "rare_words"  # the name of the layer that maps words to the unknown key


@registry.architectures("spacy-jmt.RareWordEmbed.v1")
def build_rare_word_embed(
    width: int,
    attrs: List[Union[str, int]],
    rows: List[int],
    include_static_vectors: bool,
    alpha: float = 0.25,
) -> Model[List[Doc], List[Floats2d]]:
    """spaCy's MultiHashEmbed.v2 with an unknown-word key for its first attribute.

    width, attrs, rows, include_static_vectors: As spaCy's MultiHashEmbed.v2 (attrs[0] is the
        word column, e.g. NORM).
    alpha (float): Word dropout: in training a word seen c times in the training data
        becomes the unknown word with probability alpha / (alpha + c); 0 switches word
        dropout off (unseen words still become the unknown word at inference).
    RETURNS (Model[List[Doc], List[Floats2d]]): One (n_tokens, width) array per doc.
    """
    if len(rows) != len(attrs):
        raise ValueError(f"Mismatched lengths: {len(rows)} rows for {len(attrs)} attrs")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    # The seeds of spaCy's MultiHashEmbed (8, 9, ...), so the tables hash as it does.
    embeddings = [
        HashEmbed(width, n_rows, column=i, seed=8 + i, dropout=0.0) for i, n_rows in enumerate(rows)
    ]
    features: Model[List[Doc], Ragged] = chain(
        FeatureExtractor(attrs),
        rare_words(intify_attr(attrs[0]), alpha),
        list2ragged(),
        with_array(concatenate(*embeddings)),
    )
    if include_static_vectors:
        features = concatenate(features, StaticVectors(width, dropout=0.0))
    n_in = width * (len(embeddings) + include_static_vectors)
    max_out = with_array(Maxout(width, n_in, nP=3, dropout=0.0, normalize=True))
    return chain(features, max_out, ragged2list())


def rare_words(attr: int, alpha: float) -> Model[List[Ints2d], List[Ints2d]]:
    """Replace column 0 of the features (the word) with UNKNOWN_WORD: in training with
    probability alpha / (alpha + count), at inference where the count is 0. Until
    `WordCounts.save` has given it the counts, the layer passes the features through."""
    return Model(
        RARE_WORDS,
        _rare_words_forward,
        attrs={"attr": attr, "alpha": alpha, "words": None, "counts": None},
    )


class WordCounts:
    """Counts the words of the training data for the rare-word layers inside `model`, one
    doc at a time (`add`, within the component's one pass over the data), then gives them
    the counts (`save`). Does nothing where `model` has no such layer."""

    def __init__(self, model: Model) -> None:
        self.layers = [node for node in model.walk() if node.name == RARE_WORDS]
        self.attrs = sorted({layer.attrs["attr"] for layer in self.layers})
        self.counters: Dict[int, Counter] = {a: Counter() for a in self.attrs}  # ~ vocabulary

    def add(self, doc: Doc) -> None:
        if not self.layers:
            return
        table = doc.to_array(self.attrs).reshape((len(doc), len(self.attrs)))
        for j, attr in enumerate(self.attrs):
            self.counters[attr].update(table[:, j].tolist())

    def save(self) -> None:
        for layer in self.layers:
            counter = self.counters[layer.attrs["attr"]]
            words = numpy.array(sorted(counter), dtype="uint64")
            layer.attrs["words"] = words
            layer.attrs["counts"] = numpy.array([counter[w] for w in words.tolist()], "int32")


def _rare_words_forward(
    model: Model, Xs: List[Ints2d], is_train: bool
) -> Tuple[List[Ints2d], Callable]:
    words, counts = model.attrs["words"], model.attrs["counts"]
    if words is None or not len(Xs):
        return Xs, lambda dYs: dYs
    alpha = model.attrs["alpha"]
    Ys = []
    for X in Xs:
        Y = model.ops.to_numpy(X).copy()  # the features as numpy arrays, on CPU or GPU
        column = Y[:, 0].astype("uint64")
        found = numpy.searchsorted(words, column).clip(0, max(len(words) - 1, 0))
        seen = numpy.zeros(len(column), dtype="int32")
        if len(words):
            hit = words[found] == column
            seen[hit] = counts[found[hit]]
        if is_train and alpha > 0:
            unknown = numpy.random.uniform(size=len(column)) < alpha / (alpha + seen)
        else:
            unknown = seen == 0
        Y[unknown, 0] = UNKNOWN_WORD
        Ys.append(model.ops.asarray(Y))
    return Ys, lambda dYs: dYs


BOW, EOW, OFFSET = 1, 2, 3  # byte b becomes id b + OFFSET
N_BYTE_IDS = 256 + OFFSET


@registry.architectures("spacy-jmt.CharCNNEmbed.v1")
def build_char_cnn_embed(
    width: int,
    attrs: List[Union[str, int]],
    rows: List[int],
    include_static_vectors: bool,
    char_width: int = 32,
    n_filters: int = 64,
    max_bytes: int = 20,
    alpha: Optional[float] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Hashed word features (and static vectors) plus a character CNN.

    width (int): The output width.
    attrs, rows, include_static_vectors: As spaCy's MultiHashEmbed.v2.
    char_width (int): The width of each byte's embedding.
    n_filters (int): The width of the CNN's output (after max pooling over the word).
    max_bytes (int): A word's first max_bytes UTF-8 bytes are read (with markers for the
        word's start and end, so a cut word's end is not mistaken for a suffix).
    alpha (Optional[float]): If set, the word features are RareWordEmbed's (its unknown-word
        key and word dropout alpha) instead of MultiHashEmbed's.
    RETURNS (Model[List[Doc], List[Floats2d]]): One (n_tokens, width) array per doc.
    """
    if alpha is None:
        words = MultiHashEmbed(width, attrs, rows, include_static_vectors)
    else:
        words = build_rare_word_embed(width, attrs, rows, include_static_vectors, alpha)
    chars: Model[List[Doc], Floats2d] = chain(
        char_ids(max_bytes),
        with_array(Embed(nO=char_width, nV=N_BYTE_IDS)),
        expand_window(window_size=1),
        with_array(Maxout(n_filters, char_width * 3, nP=3, normalize=True, dropout=0.0)),
        reduce_max(),
    )
    mix = Maxout(width, width + n_filters, nP=3, normalize=True, dropout=0.0)
    return Model(
        "char_cnn_embed",
        _forward,
        init=_init,
        layers=[words, chars, mix],
        dims={"nO": width},
        attrs={"width": width},
    )


def _init(model: Model, X: Optional[List[Doc]] = None, Y: Optional[List] = None) -> None:
    words, chars, mix = model.layers
    words.initialize(X=X)
    chars.initialize(X=X)
    mix.initialize()


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    words, chars, mix = model.layers
    ops = model.ops
    width = model.attrs["width"]
    lengths = [len(doc) for doc in docs]
    if sum(lengths) == 0:
        return [ops.alloc2f(0, width) for _ in docs], lambda dYs: []
    Ws, backprop_words = words(docs, is_train)
    C, backprop_chars = chars(docs, is_train)
    X = ops.xp.hstack([ops.flatten(Ws), C])
    Y, backprop_mix = mix(X, is_train)

    def backprop(dYs: List[Floats2d]) -> List:
        dX = backprop_mix(ops.flatten(dYs))
        backprop_chars(ops.xp.ascontiguousarray(dX[:, width:]))
        dwords = ops.xp.ascontiguousarray(dX[:, :width])
        backprop_words(ops.unflatten(dwords, ops.asarray1i(lengths)))
        return []

    return ops.unflatten(Y, ops.asarray1i(lengths)), backprop


def char_ids(max_bytes: int) -> Model[List[Doc], Ragged]:
    """Each token's byte ids (BOW, first max_bytes bytes, EOW), as one Ragged over all the
    tokens of the batch (lengths: bytes per token)."""
    return Model("char_ids", _char_ids_forward, attrs={"max_bytes": max_bytes})


def _char_ids_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Ragged, Callable]:
    max_bytes = model.attrs["max_bytes"]
    ids: List[int] = []
    lengths: List[int] = []
    for doc in docs:
        for token in doc:
            data = token.text.encode("utf8")[:max_bytes]
            ids.append(BOW)
            ids.extend(b + OFFSET for b in data)
            ids.append(EOW)
            lengths.append(len(data) + 2)
    ops = model.ops
    ragged = Ragged(ops.asarray1i(ids), ops.asarray1i(lengths))
    return ragged, lambda dY: []
