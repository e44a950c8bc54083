"""Int8 inference (the component's `quantize` setting, spacy_jmt.quantize): the same
annotations as float32 on a trained pipeline, a copy that follows training, a float32
fallback where torch cannot quantize."""

import pickle

import numpy
import pytest
import spacy
import torch
from pipelines import TEXTS, train_showcase
from spacy.util import fix_random_seed
from test_component import SMALL_CONFIG, annotations, blank_jmt, examples_of, train

from spacy_jmt import quantize
from spacy_jmt.model import get_torch_network


@pytest.fixture(scope="module")
def showcase(tmp_path_factory):
    return train_showcase(tmp_path_factory.mktemp("quantize") / "showcase")


# The showcase's entity and coreference texts have no gold parse.
UNPARSED = {TEXTS[1], TEXTS[2], TEXTS[3]}


def _everything(doc):
    return {
        **annotations(doc),
        "ents": [(e.start, e.end, e.label_) for e in doc.ents],
        "relations": [(r.head.start, r.tail.start, r.label) for r in doc._.relations],
        "coref": sorted(
            [(s.start, s.end) for s in group]
            for key, group in doc.spans.items()
            if key.startswith("coref_clusters")
        ),
    }


def _load(path, on: bool):
    return spacy.load(path, config={"components": {"jmt": {"quantize": on}}})


def test_quantized_pipeline_annotates_as_float32(showcase):
    float32, int8 = _load(showcase, False), _load(showcase, True)
    assert int8.get_pipe("jmt").quantize and not float32.get_pipe("jmt").quantize
    for a, b in zip(float32.pipe(TEXTS), int8.pipe(TEXTS)):
        expected, found = _everything(a), _everything(b)
        if a.text in UNPARSED:  # never trained to parse: its dependency labels are near-ties
            for key in ("deps", "heads"):
                expected.pop(key), found.pop(key)
        assert found == expected
    assert int8.get_pipe("jmt").model.get_ref("network").shims[0]._quantized is not None


def test_default_is_float32(showcase):
    nlp = spacy.load(showcase)
    assert not nlp.get_pipe("jmt").quantize
    assert nlp.get_pipe("jmt").model.get_ref("network").shims[0]._quantized is None


def test_int8_tok2vec_is_close_to_float32(showcase):
    nlp = _load(showcase, True)
    tok2vec = nlp.get_pipe("jmt").model.get_ref("tok2vec")
    docs = [nlp.make_doc(text) for text in TEXTS]
    int8 = numpy.concatenate(tok2vec.predict(docs))
    quantize.quantize_maxouts(tok2vec, False)
    float32 = numpy.concatenate(tok2vec.predict(docs))
    assert not numpy.array_equal(int8, float32)  # the int8 path did run
    assert numpy.abs(int8 - float32).max() < 0.05 * numpy.abs(float32).max()


def _logits(nlp, docs):
    return nlp.get_pipe("jmt").predict(docs)["tag"]["logits"].numpy()


def test_int8_copy_follows_training():
    """Predicting between updates (as spaCy's evaluation does) must see the new weights,
    although the optimizer updates them in place."""
    fix_random_seed(0)
    nlp = blank_jmt({**SMALL_CONFIG, "quantize": True})
    nlp.initialize(lambda: examples_of(nlp))
    component = nlp.get_pipe("jmt")
    docs = [eg.predicted for eg in examples_of(nlp)]
    before = _logits(nlp, docs)
    train(nlp, lambda: examples_of(nlp), 20)
    after = _logits(nlp, docs)
    shim = component.model.get_ref("network").shims[0]
    shim.quantize = False
    quantize.quantize_maxouts(component.model.get_ref("tok2vec"), False)
    reference = _logits(nlp, docs)
    assert numpy.abs(after - before).max() > 1.0  # training moved the logits
    assert numpy.abs(after - reference).max() < 0.1 * numpy.abs(reference).max()


def test_float32_where_torch_cannot_quantize(showcase, monkeypatch):
    monkeypatch.setattr("spacy_jmt.model.quantized_engine", lambda: None)
    monkeypatch.setattr("spacy_jmt.quantize.quantized_engine", lambda: None)
    float32, fallback = _load(showcase, False), _load(showcase, True)
    docs = [float32.make_doc(text) for text in TEXTS]
    a = float32.get_pipe("jmt").predict(docs)["tag"]["logits"]
    b = fallback.get_pipe("jmt").predict(docs)["tag"]["logits"]
    assert torch.equal(a, b)


def test_quantized_network_leaves_the_network_alone(showcase):
    nlp = _load(showcase, False)
    network = get_torch_network(nlp.get_pipe("jmt").model)
    state = {k: v.clone() for k, v in network.state_dict().items()}
    copy = quantize.quantize_network(network)
    assert copy is not network and not copy.training
    assert all(torch.equal(v, state[k]) for k, v in network.state_dict().items())
    assert any(isinstance(m, torch.nn.LSTM) for m in network.modules())


def test_pickled_quantized_pipeline_leaves_its_int8_copies_behind(showcase):
    nlp = _load(showcase, True)
    expected = [_everything(doc) for doc in nlp.pipe(TEXTS)]  # the copies exist now
    copy = pickle.loads(pickle.dumps(nlp))  # what nlp.pipe(n_process=2) does
    component = copy.get_pipe("jmt")
    assert component.quantize and component.model.get_ref("network").shims[0]._quantized is None
    assert [_everything(doc) for doc in copy.pipe(TEXTS)] == expected


def test_layers_a_head_reads_itself_stay_float32(showcase):
    network = get_torch_network(_load(showcase, False).get_pipe("jmt").model)
    copy = quantize.quantize_network(network)
    coref = copy.heads["coref"]  # a span classifier: _grid_hidden reads mlp[0]'s weights
    assert type(coref.mlp[0]) is torch.nn.Linear
    assert type(coref.pair[1]) is not torch.nn.Linear  # the pair scorer is quantized
    assert type(network.heads["coref"].pair[1]) is torch.nn.Linear  # the original is not
