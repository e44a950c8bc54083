"""The jmt component's own `embed` layers: `spacy-jmt.CharCNNEmbed.v1` (hashed word features
plus a character CNN) and `spacy-jmt.RareWordEmbed.v1` (hashed word features with an
unknown-word key and word dropout)."""

import copy

import numpy
import pytest
import spacy
from thinc.api import fix_random_seed

from spacy_jmt.embed import UNKNOWN_WORD, WordCounts, build_char_cnn_embed, build_rare_word_embed

ATTRS = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]


def test_shapes_and_empty_docs():
    nlp = spacy.blank("en")
    docs = [nlp("Hello wörld, a " + "x" * 50 + "."), nlp(""), nlp("Two words")]
    model = build_char_cnn_embed(16, ATTRS, [100, 50, 50, 50], False, n_filters=8)
    model.initialize(X=docs)
    Ys, backprop = model.begin_update(docs)
    assert [y.shape for y in Ys] == [(len(d), 16) for d in docs]
    assert backprop([numpy.ones_like(y) for y in Ys]) == []
    assert [y.shape for y in model.predict([nlp("")])] == [(0, 16)]


def train_with_embed(embed):
    """A small jmt pipeline with this `embed` in its tok2vec, trained to the gold tags of the
    tiny data; RETURNS (nlp, the annotated docs)."""
    from test_component import SMALL_CONFIG, annotations, examples_of, gold_annotations, train
    from tiny_data import SENTENCES

    import spacy_jmt.embed  # noqa: F401  (registers the architectures without entry points)

    fix_random_seed(0)
    config = copy.deepcopy(SMALL_CONFIG)
    config["model"]["tok2vec"]["embed"] = {
        "width": 32,
        "attrs": ATTRS,
        "rows": [500, 200, 200, 200],
        "include_static_vectors": False,
        **embed,
    }
    nlp = spacy.blank("en")
    nlp.add_pipe("jmt", config=config)
    nlp.initialize(lambda: examples_of(nlp))
    train(nlp, lambda: examples_of(nlp), 80)
    docs = [nlp(" ".join(data["words"])) for data in SENTENCES]
    for doc, data in zip(docs, SENTENCES):
        assert annotations(doc)["tags"] == gold_annotations(data)["tags"]
    return nlp, docs


@pytest.mark.parametrize("alpha", [None, 0.1])
def test_jmt_learns_with_it_and_round_trips(tmp_path, alpha):
    from test_component import annotations

    embed = {"@architectures": "spacy-jmt.CharCNNEmbed.v1", "char_width": 8, "n_filters": 16}
    nlp, docs = train_with_embed({**embed, "alpha": alpha})
    tok2vec = nlp.get_pipe("jmt").model.get_ref("tok2vec")
    rare = [node for node in tok2vec.walk() if node.name == "rare_words"]
    # With alpha the word features are RareWordEmbed's, given their counts at initialize.
    assert len(rare) == (alpha is not None) and all(r.attrs["words"] is not None for r in rare)
    nlp.to_disk(tmp_path / "p")
    again = spacy.load(tmp_path / "p")
    assert [annotations(again(d.text)) for d in docs] == [annotations(d) for d in docs]


def rare_word_features(model, docs, is_train):
    """The features after the rare-word layer (column 0: the word)."""
    layers = {node.name: node for node in model.walk()}
    features = layers["extract_features"](docs, is_train)[0]
    return layers["rare_words"](features, is_train)[0]


def test_rare_words_become_the_unknown_word():
    nlp = spacy.blank("en")
    train_docs = [nlp("the cat sat on the mat"), nlp("the dog sat")]
    model = build_rare_word_embed(16, ATTRS, [100, 50, 50, 50], False, alpha=0.25)
    model.initialize(X=train_docs)
    doc = nlp("The zebra sat")
    # Before the counts are given, the layer passes the words through.
    assert UNKNOWN_WORD not in rare_word_features(model, [doc], False)[0][:, 0]
    counts = WordCounts(model)
    for train_doc in train_docs:
        counts.add(train_doc)
    counts.save()
    words = rare_word_features(model, [doc], False)[0][:, 0]
    assert [w == UNKNOWN_WORD for w in words] == [False, True, False]  # norms: "the" is seen
    # In training a word seen c times is dropped with probability alpha / (alpha + c).
    fix_random_seed(0)
    many = [nlp("the cat")] * 2000
    dropped = numpy.array(
        [row[:, 0] == UNKNOWN_WORD for row in rare_word_features(model, many, True)]
    )
    the, cat = dropped.mean(axis=0)  # "the" seen 3 times, "cat" once
    assert abs(the - 0.25 / 3.25) < 0.02 and abs(cat - 0.25 / 1.25) < 0.03
    Ys = model.predict([doc, nlp("")])
    assert [y.shape for y in Ys] == [(3, 16), (0, 16)]


def test_rare_word_embed_trains_in_jmt_and_keeps_its_counts(tmp_path):
    from test_component import annotations

    nlp, docs = train_with_embed({"@architectures": "spacy-jmt.RareWordEmbed.v1", "alpha": 0.1})

    def rare_layer(pipeline):
        tok2vec = pipeline.get_pipe("jmt").model.get_ref("tok2vec")
        return next(node for node in tok2vec.walk() if node.name == "rare_words")

    assert len(rare_layer(nlp).attrs["words"]) == len({t.norm for d in docs for t in d})
    nlp.to_disk(tmp_path / "p")
    again = spacy.load(tmp_path / "p")
    assert numpy.array_equal(rare_layer(again).attrs["words"], rare_layer(nlp).attrs["words"])
    texts = [d.text for d in docs] + ["Zebras quizzically juxtapose."]
    assert [annotations(again(t)) for t in texts] == [annotations(nlp(t)) for t in texts]
