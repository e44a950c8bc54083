"""Robustness of the trained pipeline: odd text, docs from other tokenizers, annotation that is
already there, long docs, and property-based fuzzing of the whole pipeline.

The fuzz tests run `settings.max_examples` cases each (conftest.py: 150 under the default
profile, 10,000 under `HYPOTHESIS_PROFILE=fuzz`). With `SPACY_JMT_FUZZ_PIPELINE=<path>` they
fuzz that trained pipeline instead of the tiny one trained here (project command `fuzz`).
"""

import os
import warnings
from typing import Any, Dict

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.language import Language
from spacy.tokens import Doc
from test_component import (
    PIPE_TEXTS,
    SMALL_CONFIG,
    annotations,
    assert_trees,
    blank_jmt,
    train_small,
)

from spacy_jmt.model import SENTENCE_GROUP, TOK2VEC_PIECE, tok2vec_in_pieces

FUZZ_PIPELINE = os.environ.get("SPACY_JMT_FUZZ_PIPELINE")
# Texts that have broken NLP pipelines: control characters, zero-width and bidi marks, emoji
# with modifiers and joiners, right-to-left scripts, combining marks, lone symbols.
ODD_TEXTS = [
    "",
    " ",
    "\n\n\t  \n",
    "a",
    ".",
    "\x00\x01\x07 the dog\x1b[31m sleeps\x7f",
    "\u200b\u200d\ufeff\u2028\u2029",
    "I like 👍🏽 apples 🎉🇩🇪 👨‍👩‍👧 .",
    "שלום עולם. זה טקסט בעברית.",
    "مرحبا بالعالم. هذا نص عربي.",
    "\u202eThe dog sleeps.\u202c She eats.",
    "Ünïcödé ç̧̈ å̊ Z̴̡̛a̷l̸g̵o̶ text",
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "apples " * 400,  # one sentence longer than max_sentence_length windows
    "x" * 5000,  # one huge token
    "漢字のテキスト。中文文本。",
    "\ud7ff\ue000\U0010fffd",
]


@pytest.fixture(scope="module")
def nlp() -> Language:
    if FUZZ_PIPELINE:
        return spacy.load(FUZZ_PIPELINE)
    return train_small(40)[0]


def check_doc(nlp: Language, doc: Doc) -> None:
    """What every annotated doc must satisfy: labels the component knows, one well-formed
    tree per sentence, chunks inside the doc without overlaps."""
    labels = nlp.get_pipe("jmt").labels
    for token in doc:
        if "tag" in labels:
            assert token.tag_ in labels["tag"]
        if "pos" in labels:
            assert token.pos_ in labels["pos"]
        if "dep" in labels:
            assert token.dep_ in labels["dep"]
    if len(doc) and "dep" in labels:
        assert_trees(doc)
    chunks = doc.spans["chunks"] if "chunks" in doc.spans else []
    covered = [i for span in chunks for i in range(span.start, span.end)]
    assert len(covered) == len(set(covered))
    assert all(0 <= i < len(doc) for i in covered)


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_odd_texts(nlp, text):
    doc = nlp(text)
    assert doc.text == text
    check_doc(nlp, doc)
    if len(doc):
        assert all(token.is_sent_start is not None for token in doc)


def test_odd_texts_in_one_batch_equal_one_by_one(nlp):
    expected = [annotations(nlp(text)) for text in ODD_TEXTS]
    for batch_size in (1, 4, 64):
        docs = nlp.pipe(ODD_TEXTS, batch_size=batch_size)
        assert [annotations(doc) for doc in docs] == expected


@pytest.mark.parametrize(
    "words,spaces",
    [
        (["The", "dog", "sleeps", "."], None),  # whitespace tokenizer: a space after each
        (["The", " ", "dog", "  ", "sleeps"], [True, False, True, False, False]),
        (["Thedog", "sleeps."], [False, False]),
        (["a b", "c\td", "e\nf"], None),  # tokens with whitespace inside
    ],
)
def test_docs_from_other_tokenizers(nlp, words, spaces):
    doc = nlp(Doc(nlp.vocab, words=words, spaces=spaces))
    assert [t.text for t in doc] == words
    check_doc(nlp, doc)


@pytest.mark.parametrize("lang", ["xx", "de", "zh"])
def test_docs_of_another_language_and_vocab(nlp, lang):
    other = spacy.blank(lang)
    doc = other.make_doc("The dog sleeps. 狗在睡觉。Der Hund schläft.")
    doc = nlp.get_pipe("jmt")(doc)
    check_doc(nlp, doc)


def test_overwrite_decides_about_existing_annotation(nlp):
    # overwrite = false (the default): tags, heads and sentences already there are kept.
    doc = nlp.make_doc("The dog sleeps. She eats.")
    doc[0].tag_ = "XX"
    doc[0].pos_ = "X"
    doc[3].is_sent_start = False
    kept = nlp.get_pipe("jmt")(doc)
    assert kept[0].tag_ == "XX" and kept[0].pos_ == "X"
    # overwrite = true: everything is the component's.
    nlp2 = blank_jmt({**SMALL_CONFIG, "overwrite": True})
    nlp2.get_pipe("jmt").from_bytes(nlp.get_pipe("jmt").to_bytes())
    nlp2.get_pipe("jmt").cfg["overwrite"] = True
    doc = nlp.make_doc("The dog sleeps. She eats.")
    doc[0].tag_ = "XX"
    doc[0].pos_ = "X"
    replaced = nlp2.get_pipe("jmt")(doc)
    fresh = nlp("The dog sleeps. She eats.")
    assert [t.tag_ for t in replaced] == [t.tag_ for t in fresh]
    assert [t.pos_ for t in replaced] == [t.pos_ for t in fresh]


def test_long_doc_runs_in_pieces(nlp):
    """Over a doc longer than the piece length, the tok2vec runs piece by piece with context
    on either side (the same vectors as over the whole doc: the CNN sees PIECE_CONTEXT
    tokens at most), and the levels over groups of sentences: the same annotation."""
    jmt = nlp.get_pipe("jmt")
    text = " ".join(t for t in PIPE_TEXTS if t.strip()) * 10
    doc = nlp.make_doc(text)
    assert len(doc) > 300
    tok2vec = jmt.model.get_ref("tok2vec")
    whole = tok2vec.predict([doc])[0]
    pieces = tok2vec_in_pieces(tok2vec, [nlp.make_doc("a b c"), doc], 64)
    assert pieces[1].shape == whole.shape
    assert abs(pieces[1] - whole).max() < 1e-5
    assert abs(pieces[0] - tok2vec.predict([nlp.make_doc("a b c")])[0]).max() < 1e-5
    expected = annotations(nlp(text))
    jmt.model.attrs.update(tok2vec_piece=64, sentence_group=64)
    try:
        assert annotations(nlp(text)) == expected
    finally:
        jmt.model.attrs.update(tok2vec_piece=TOK2VEC_PIECE, sentence_group=SENTENCE_GROUP)


# -- fuzzing ----------------------------------------------------------------------------------

# Any Unicode but lone surrogates (which Python strings allow but no text encoding does).
CHARS = st.characters(blacklist_categories=("Cs",))
WORDS = st.text(CHARS, min_size=1, max_size=12)  # spaCy's Doc refuses empty words
FUZZ_SETTINGS = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@FUZZ_SETTINGS
@given(text=st.text(CHARS, max_size=300))
def test_fuzz_texts(nlp, text):
    doc = nlp(text)
    assert doc.text == text
    check_doc(nlp, doc)


@FUZZ_SETTINGS
@given(
    tokens=st.lists(st.tuples(WORDS, st.booleans()), max_size=80),
    preset=st.lists(st.integers(0, 79), max_size=5),
)
def test_fuzz_token_sequences(nlp, tokens, preset):
    """Docs as another tokenizer makes them (any words, any spaces), some with sentence
    starts already set."""
    words = [word for word, _ in tokens]
    doc = Doc(nlp.vocab, words=words, spaces=[space for _, space in tokens])
    for i in preset:
        if i < len(doc):
            doc[i].is_sent_start = True
    doc = nlp(doc)
    assert [t.text for t in doc] == words
    check_doc(nlp, doc)


@FUZZ_SETTINGS
@given(texts=st.lists(st.text(CHARS, max_size=60), min_size=2, max_size=6))
def test_fuzz_batches_equal_one_by_one(nlp, texts):
    expected = [annotations(nlp(text)) for text in texts]
    assert [annotations(doc) for doc in nlp.pipe(texts, batch_size=3)] == expected


def test_labels_never_seen_in_training(nlp):
    """Gold labels the model does not know do not break scoring: they count as errors, and
    they are counted and reported."""
    from spacy.training import Example

    doc = nlp.make_doc("The dog sleeps.")
    gold: Dict[str, Any] = {
        "tags": ["ZZ", "NN", "VBZ", "ZZ"],
        "pos": ["DET", "NOUN", "VERB", "PUNCT"],
        "heads": [1, 2, 2, 2],
        "deps": ["never_seen", "nsubj", "ROOT", "punct"],
    }
    example = Example.from_dict(doc, gold)
    with pytest.warns(UserWarning, match="never saw in training.*tag: 'ZZ' \\(2\\)"):
        scores = nlp.evaluate([example])
    assert scores["unseen_labels"] == {"tag": {"ZZ": 2}, "dep": {"never_seen": 1}}
    assert scores["tag_acc"] <= 0.5
    assert 0.0 <= scores["dep_las"] < 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known labels only: no warning
        known = nlp.evaluate([Example(nlp.make_doc("The dog sleeps."), nlp("The dog sleeps."))])
    assert "unseen_labels" not in known
