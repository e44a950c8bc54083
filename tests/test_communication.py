"""Message passing between task layers: complete and star graphs."""

import copy

import numpy
import pytest
import spacy
import torch
from spacy.util import fix_random_seed
from test_component import PIPE_TEXTS, SMALL_MODEL, annotations, examples_of, train
from typer.testing import CliRunner

from spacy_jmt.cli import app
from spacy_jmt.heatmap import heatmap_svg
from spacy_jmt.layers.communication import senders
from spacy_jmt.model import get_torch_network

# The default tasks: sents (level 0, not a node), tag + pos (1), chunks (2), dep (3).
NODES = ["tag", "pos", "chunks", "dep"]


def _nlp(communication: str):
    nlp = spacy.blank("en")
    model = {**copy.deepcopy(SMALL_MODEL), "communication": communication}
    nlp.add_pipe("jmt", config={"model": model})
    return nlp


@pytest.fixture(scope="module", params=["complete", "star"])
def trained(request):
    fix_random_seed(0)
    nlp = _nlp(request.param)
    nlp.initialize(lambda: examples_of(nlp))
    first = train(nlp, lambda: examples_of(nlp), 1)
    last = train(nlp, lambda: examples_of(nlp), 80)
    return request.param, nlp, first, last


def test_who_hears_whom():
    tasks = [{"name": n, "communicates": c, "level": lv} for n, c, lv in [
        ("sents", True, 0), ("tag", True, 1), ("pos", True, 1),
        ("chunks", True, 2), ("dep", True, 3), ("sim", False, 4)]]  # fmt: skip
    assert senders("complete", tasks) == {
        "tag": ["pos"], "pos": ["tag"], "chunks": ["tag", "pos"], "dep": ["tag", "pos", "chunks"]
    }  # fmt: skip
    assert senders("star", tasks)["tag"] == ["tag", "pos"]
    assert senders("star", tasks)["dep"] == NODES
    assert senders("none", tasks) == {}
    with pytest.raises(ValueError, match="Unknown communication"):
        senders("ring", tasks)


def test_each_structure_trains_to_near_zero_loss(trained):
    _, nlp, first, last = trained
    assert last["jmt"] < 0.05 * first["jmt"]
    docs = list(nlp.pipe(["I like green apples. She eats bread.", "The dog sleeps."]))
    assert [t.tag_ for t in docs[1]] == ["DT", "NN", "VBZ", "."]
    assert [t.dep_ for t in docs[1]] == ["det", "nsubj", "ROOT", "punct"]


def test_round_trip_through_disk_and_bytes(trained, tmp_path):
    structure, nlp, _, _ = trained
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("jmt").model.attrs["communication"] == structure
    again = _nlp(structure).from_bytes(nlp.to_bytes())
    expected = [annotations(doc) for doc in nlp.pipe(PIPE_TEXTS)]
    assert [annotations(doc) for doc in loaded.pipe(PIPE_TEXTS)] == expected
    assert [annotations(doc) for doc in again.pipe(PIPE_TEXTS)] == expected
    texts = PIPE_TEXTS[:1]
    assert numpy.array_equal(
        loaded.get_pipe("jmt").task_weights(loaded.pipe(texts))["mean"],
        nlp.get_pipe("jmt").task_weights(nlp.pipe(texts))["mean"],
    )


def test_weights_are_normalised_with_the_documented_shape(trained):
    structure, nlp, _, _ = trained
    docs = [nlp.make_doc(text) for text in ["I like green apples. She eats bread.", "Hi"]]
    found = nlp.get_pipe("jmt").task_weights(docs)
    assert found["tasks"] == NODES
    assert found["n_tokens"] == len(docs[0]) + len(docs[1])
    assert [w.shape for w in found["per_token"]] == [(len(d), 4, 4) for d in docs]
    heard = senders(structure, [t.spec() for t in nlp.get_pipe("jmt").tasks])
    allowed = numpy.zeros((4, 4), dtype=bool)
    for receiver, names in heard.items():
        allowed[NODES.index(receiver), [NODES.index(n) for n in names]] = True
    for weights in found["per_token"]:
        assert numpy.allclose(weights.sum(-1), 1.0, atol=1e-5)  # every node hears someone
        assert (weights[:, ~allowed] == 0).all()  # nobody hears a task above it
        assert (weights >= 0).all()
    assert numpy.allclose(found["mean"].sum(-1), 1.0, atol=1e-5)


def test_no_communication_is_the_plain_hierarchy():
    """communication = "none" builds exactly the network and outputs it built before."""
    fix_random_seed(0)
    plain = spacy.blank("en")
    plain.add_pipe("jmt", config={"model": copy.deepcopy(SMALL_MODEL)})  # no setting at all
    plain.initialize(lambda: examples_of(plain))
    fix_random_seed(0)
    none = _nlp("none")
    none.initialize(lambda: examples_of(none))
    network = get_torch_network(none.get_pipe("jmt").model)
    assert network.graph is None
    plain_state = get_torch_network(plain.get_pipe("jmt").model).state_dict()
    assert network.state_dict().keys() == plain_state.keys()
    assert all(torch.equal(network.state_dict()[k], v) for k, v in plain_state.items())
    assert [annotations(d) for d in none.pipe(PIPE_TEXTS)] == [
        annotations(d) for d in plain.pipe(PIPE_TEXTS)
    ]
    with pytest.raises(ValueError, match="no communication"):
        none.get_pipe("jmt").task_weights([none.make_doc("Hi")])


def test_unknown_structure_is_rejected():
    with pytest.raises(ValueError, match="communication must be one of"):
        _nlp("ring")


def test_heatmap_svg_has_labelled_axes():
    svg = heatmap_svg([[0.25, 0.75], [1.0, 0.0]], ["tag", "dep"], ["pos", "chunks <NP>"], "w")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<rect") == 4
    for label in ("tag", "dep", "pos", "chunks &lt;NP&gt;", "0.75", "receiver", "sender"):
        assert label in svg
    with pytest.raises(ValueError, match="2 x 2"):
        heatmap_svg([[0.5]], ["a", "b"], ["a", "b"])


def test_weights_cli_draws_corpus_and_token_maps(trained, tmp_path):
    _, nlp, _, _ = trained
    nlp.to_disk(tmp_path / "pipeline")
    from spacy.tokens import DocBin

    DocBin(docs=[nlp.make_doc(t) for t in PIPE_TEXTS]).to_disk(tmp_path / "texts.spacy")
    runner = CliRunner()
    args = ["weights", str(tmp_path / "pipeline"), str(tmp_path / "mean.svg")]
    result = runner.invoke(app, args + ["--corpus", str(tmp_path / "texts.spacy"),
                                        "--output-json", str(tmp_path / "mean.json")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mean.svg").read_text().count("<rect") == 16
    assert "mean" in (tmp_path / "mean.json").read_text()
    args = ["weights", str(tmp_path / "pipeline"), str(tmp_path / "doc.svg")]
    result = runner.invoke(app, args + ["--text", "The dog sleeps."])
    assert result.exit_code == 0, result.output
    assert "dep ← chunks" in (tmp_path / "doc.svg").read_text()
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "exactly one of" in result.output
