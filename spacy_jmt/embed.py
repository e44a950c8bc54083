"""`spacy-jmt.CharCNNEmbed.v1`: spaCy's MultiHashEmbed (hashed NORM/PREFIX/SUFFIX/SHAPE and,
optionally, static vectors) concatenated with a character CNN over each word's UTF-8 bytes
(an embedding per byte, a window of three bytes through a Maxout, max-pooled over the
word), mixed back to `width` by a Maxout. A drop-in `embed` for spaCy's `Tok2Vec.v2`.
"""

from typing import Callable, List, Optional, Tuple, Union

from spacy.ml.models.tok2vec import MultiHashEmbed
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Maxout, Model, Ragged, chain, expand_window, reduce_max, with_array
from thinc.layers import Embed
from thinc.types import Floats2d

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
) -> Model[List[Doc], List[Floats2d]]:
    """Hashed word features (and static vectors) plus a character CNN.

    width (int): The output width.
    attrs, rows, include_static_vectors: As spaCy's MultiHashEmbed.v2.
    char_width (int): The width of each byte's embedding.
    n_filters (int): The width of the CNN's output (after max pooling over the word).
    max_bytes (int): A word's first max_bytes UTF-8 bytes are read (with markers for the
        word's start and end, so a cut word's end is not mistaken for a suffix).
    RETURNS (Model[List[Doc], List[Floats2d]]): One (n_tokens, width) array per doc.
    """
    words = MultiHashEmbed(width, attrs, rows, include_static_vectors)
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
