"""A damaged or partial pipeline directory gets a clear error at load time."""

import shutil

import pytest
import spacy
import srsly
from test_component import PIPE_TEXTS, annotations, examples_of, train_small


@pytest.fixture(scope="module")
def trained_nlp():
    return train_small(10)[0]


@pytest.fixture
def saved(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "pipeline")
    return tmp_path / "pipeline"


def test_save_leaves_no_temporary_files_and_loads(saved, trained_nlp):
    assert sorted(p.name for p in (saved / "jmt").iterdir()) == ["cfg", "model"]
    loaded = spacy.load(saved)
    assert [annotations(d) for d in loaded.pipe(PIPE_TEXTS)] == [
        annotations(d) for d in trained_nlp.pipe(PIPE_TEXTS)
    ]


@pytest.mark.parametrize("name", ["model", "cfg"])
def test_missing_file_is_named(saved, name):
    (saved / "jmt" / name).unlink()
    with pytest.raises(ValueError, match=f"jmt/{name} is missing"):
        spacy.load(saved)


def test_truncated_weights_are_named(saved):
    weights = saved / "jmt" / "model"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="jmt/model does not match"):
        spacy.load(saved)


def test_truncated_cfg_is_named(saved):
    cfg = saved / "jmt" / "cfg"
    cfg.write_bytes(cfg.read_bytes()[:100])
    with pytest.raises(ValueError, match="jmt/cfg is damaged"):
        spacy.load(saved)


def test_weights_from_another_save_are_refused(saved, tmp_path):
    """An interrupted save over an older directory: new cfg, old weights (or the reverse)."""
    other = spacy.blank("en")
    other.add_pipe("jmt", config={"tasks": {"tag": {"kind": "tagging", "attr": "TAG"}}})
    other.initialize(lambda: examples_of(other))
    other.to_disk(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "jmt" / "model", saved / "jmt" / "model")
    with pytest.raises(ValueError, match="does not match"):
        spacy.load(saved)


def test_weights_that_do_not_fit_the_cfg_are_refused(saved, tmp_path):
    """Without a checksum (a hand-edited cfg), the weights' shapes are checked."""
    cfg = srsly.read_json(saved / "jmt" / "cfg")
    cfg["model_sha256"] = ""
    cfg["labels"]["tag"] = cfg["labels"]["tag"] + ["XX"]  # one more output than trained
    srsly.write_json(saved / "jmt" / "cfg", cfg)
    with pytest.raises(ValueError, match="do not fit the network"):
        spacy.load(saved)


def test_damaged_bytes_are_refused(trained_nlp):
    data = trained_nlp.get_pipe("jmt").to_bytes()
    with pytest.raises(ValueError, match="cannot load 'jmt' from bytes"):
        trained_nlp.get_pipe("jmt").from_bytes(data[: len(data) // 2])
