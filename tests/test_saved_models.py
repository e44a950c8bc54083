"""A damaged or partial pipeline directory gets a clear error at load time."""

import shutil
import sys
from pathlib import Path

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


FIXTURE = Path(__file__).parent / "fixtures" / "saved-0.1.0"


def test_a_pipeline_saved_by_an_older_version_loads_with_identical_outputs():
    """tests/fixtures/make_saved_pipeline.py saved this pipeline (every task kind, complete
    communication) with the code of commit 5ab06ec, and its outputs on a few texts; the
    current code must give the same outputs."""
    sys.path.insert(0, str(FIXTURE.parent))
    try:
        from make_saved_pipeline import outputs
    finally:
        sys.path.pop(0)
    nlp = spacy.load(FIXTURE)
    expected = srsly.read_json(FIXTURE / "expected.json")
    found = [outputs(doc) for doc in nlp.pipe(srsly.read_json(FIXTURE / "texts.json"))]
    assert [doc["relations"] for doc in expected if doc["relations"]], "the fixture relates"
    for got, want in zip(found, expected):
        for key in ("tokens", "tags", "heads", "deps", "sent_starts", "spans", "ents"):
            assert got[key] == want[key], key
        assert [r[:5] for r in got["relations"]] == [r[:5] for r in want["relations"]]
        numbers = [(got["relatedness"], want["relatedness"])] + [
            (g[5], w[5]) for g, w in zip(got["relations"], want["relations"])
        ]
        numbers += [(got["cats"].get(k), v) for k, v in want["cats"].items()]
        numbers += [
            (g, w)
            for key in want["span_scores"]
            for g, w in zip(got["span_scores"][key], want["span_scores"][key])
        ]
        for g, w in numbers:
            assert g == pytest.approx(w, abs=1e-6)
