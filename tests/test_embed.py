"""`spacy-jmt.CharCNNEmbed.v1`: hashed word features plus a character CNN, as the `embed` of
the jmt component's tok2vec."""

import copy

import numpy
import spacy
from thinc.api import fix_random_seed

from spacy_jmt.embed import build_char_cnn_embed

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


def test_jmt_learns_with_it_and_round_trips(tmp_path):
    from test_component import SMALL_CONFIG, annotations, examples_of, gold_annotations, train
    from tiny_data import SENTENCES

    import spacy_jmt.embed  # noqa: F401  (registers the architecture without entry points)

    fix_random_seed(0)
    config = copy.deepcopy(SMALL_CONFIG)
    config["model"]["tok2vec"]["embed"] = {
        "@architectures": "spacy-jmt.CharCNNEmbed.v1",
        "width": 32,
        "attrs": ATTRS,
        "rows": [500, 200, 200, 200],
        "include_static_vectors": False,
        "char_width": 8,
        "n_filters": 16,
    }
    nlp = spacy.blank("en")
    nlp.add_pipe("jmt", config=config)
    nlp.initialize(lambda: examples_of(nlp))
    train(nlp, lambda: examples_of(nlp), 80)
    docs = [nlp(" ".join(data["words"])) for data in SENTENCES]
    for doc, data in zip(docs, SENTENCES):
        assert annotations(doc)["tags"] == gold_annotations(data)["tags"]
    nlp.to_disk(tmp_path / "p")
    again = spacy.load(tmp_path / "p")
    assert [annotations(again(d.text)) for d in docs] == [annotations(d) for d in docs]
