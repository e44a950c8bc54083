import math
import pickle
import warnings
from collections import Counter
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from typer.testing import CliRunner

from spacy_jmt.cli import app
from spacy_jmt.convert import DataFormatError, read_docs, read_sick
from spacy_jmt.pair_scores import (
    average_ranks,
    pearson,
    score_entailment,
    score_pairs,
    score_relatedness,
    spearman,
)
from spacy_jmt.pairs import (
    ENTAILMENT_LABELS,
    PAIR_KEY,
    entailment_probs,
    get_entailment,
    get_pair_id,
    gold_entailment,
    is_pair,
    make_pair_doc,
    pair_sentences,
    register_pair_extensions,
    set_entailment,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SICK = DATA / "sick"
needs_sick = pytest.mark.skipif(not SICK.is_dir(), reason=f"{SICK} not found")

HEADER = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


@pytest.fixture
def pair(nlp):
    return make_pair_doc(
        nlp,
        "A man is playing a guitar. ",
        "A person plays",
        relatedness=4.2,
        entailment="ENTAILMENT",
        pair_id="17",
    )


def texts(doc):
    return [s.text for s in doc.sents]


# The pair form ------------------------------------------------------------------------


def test_make_pair_doc(nlp, pair):
    assert texts(pair) == ["A man is playing a guitar.", "A person plays"]
    assert pair.text == "A man is playing a guitar. A person plays"
    a, b = pair_sentences(pair)
    assert (a.start, a.end, b.start, b.end) == (0, 7, 7, 10)
    assert pair._.relatedness == pytest.approx(4.2)
    assert pair.cats == {"ENTAILMENT": 1.0, "NEUTRAL": 0.0, "CONTRADICTION": 0.0}
    assert [s.text for s in pair.spans[PAIR_KEY]] == texts(pair)
    assert get_pair_id(pair) == "17"
    # The pipeline's tokenizer re-tokenizes the text into the same tokens (but no sentences).
    assert [t.text for t in nlp.make_doc(pair.text)] == [t.text for t in pair]
    assert pair_sentences(nlp.make_doc(pair.text)) is None


def test_make_pair_doc_one_sentence_per_text(nlp):
    doc = make_pair_doc(nlp.tokenizer, "Hi. Bye.", "  Two. Sentences!  ")
    assert texts(doc) == ["Hi. Bye.", "Two. Sentences!"]
    assert doc._.relatedness is None
    assert PAIR_KEY not in doc.spans
    assert get_entailment(doc) is None and doc.cats == {}


@pytest.mark.parametrize("a,b", [("", "A man"), ("A man", "   "), ("\n", "x")])
def test_make_pair_doc_empty_text(nlp, a, b):
    with pytest.raises(ValueError, match="empty"):
        make_pair_doc(nlp, a, b)


def test_make_pair_doc_bad_input(nlp):
    with pytest.raises(TypeError, match="text_b must be a str"):
        make_pair_doc(nlp, "A man", nlp("A man"))
    with pytest.raises(ValueError, match="finite number"):
        make_pair_doc(nlp, "A man", "A dog", relatedness=float("nan"))
    with pytest.raises(ValueError, match="unknown entailment label"):
        make_pair_doc(nlp, "A man", "A dog", entailment="entailment")


def test_not_pairs(nlp):
    assert pair_sentences(nlp("")) is None
    assert pair_sentences(nlp("A man walks. A dog runs.")) is None  # no sentence boundaries
    one = Doc(nlp.vocab, words=["A", "man", "walks"], sent_starts=[True, False, False])
    three = Doc(nlp.vocab, words=["A", "B", "C"], sent_starts=[True, True, True])
    for doc in (one, three):
        assert pair_sentences(doc) is None and not is_pair(doc)
        assert doc._.relatedness is None
        with pytest.raises(ValueError, match="not a sentence pair"):
            doc._.relatedness = 3.0
        assert PAIR_KEY not in doc.spans


def test_pair_from_parse(nlp):
    # Sentence boundaries from a dependency parse count as well as set starts.
    doc = Doc(
        nlp.vocab,
        words=["Dogs", "run", "Cats", "sleep"],
        heads=[1, 1, 3, 3],
        deps=["nsubj", "ROOT", "nsubj", "ROOT"],
    )
    assert [s.text for s in pair_sentences(doc)] == ["Dogs run", "Cats sleep"]
    doc._.relatedness = 1.5
    assert doc._.relatedness == 1.5


def test_relatedness_setter(nlp):
    doc = make_pair_doc(nlp, "A man", "A dog")
    doc._.relatedness = 3
    assert doc._.relatedness == 3.0 and isinstance(doc._.relatedness, float)
    assert doc.spans[PAIR_KEY].attrs == {"relatedness": 3.0}
    doc._.relatedness = None
    assert doc._.relatedness is None and PAIR_KEY not in doc.spans
    for bad in ("3", True, float("inf")):
        with pytest.raises(ValueError, match="finite number"):
            doc._.relatedness = bad
    assert PAIR_KEY not in doc.spans


def test_relatedness_none_keeps_pair_id(pair):
    pair._.relatedness = None
    assert pair._.relatedness is None
    assert get_pair_id(pair) == "17"
    pair._.relatedness = 2.0
    assert pair._.relatedness == 2.0 and get_pair_id(pair) == "17"


def test_entailment_cats(pair):
    pair.cats["OTHER"] = 0.7
    probs = {"ENTAILMENT": 0.2, "NEUTRAL": 0.5, "CONTRADICTION": 0.3}
    set_entailment(pair, probs)
    assert entailment_probs(pair) == probs and pair.cats["OTHER"] == 0.7
    assert get_entailment(pair) == "NEUTRAL"
    assert gold_entailment(pair) is None  # no label > 0.5
    set_entailment(pair, "CONTRADICTION")
    assert gold_entailment(pair) == get_entailment(pair) == "CONTRADICTION"
    set_entailment(pair, None)
    assert pair.cats == {"OTHER": 0.7} and get_entailment(pair) is None
    for bad, message in (
        ({"ENTAILMENT": 0.5, "NEUTRAL": 0.5}, "exactly the labels"),
        ({"ENTAILMENT": 0.5, "NEUTRAL": 0.4, "CONTRADICTION": 0.0}, "sum to 1"),
        ({"ENTAILMENT": 1.5, "NEUTRAL": -0.5, "CONTRADICTION": 0.0}, r"in \[0, 1\]"),
        ("MAYBE", "unknown entailment label"),
    ):
        with pytest.raises(ValueError, match=message):
            set_entailment(pair, bad)
    assert pair.cats == {"OTHER": 0.7}


def assert_same_pair(doc, pair):
    assert doc.text == pair.text
    assert texts(doc) == texts(pair)
    assert doc._.relatedness == pytest.approx(4.2)
    assert doc.cats == pair.cats
    assert get_pair_id(doc) == "17"


@pytest.mark.parametrize("store_user_data", [True, False])
def test_docbin(nlp, pair, store_user_data):
    data = DocBin(docs=[pair], store_user_data=store_user_data).to_bytes()
    (doc,) = DocBin().from_bytes(data).get_docs(nlp.vocab)
    assert_same_pair(doc, pair)


def test_docbin_default_attrs_on_disk(nlp, pair, tmp_path):
    DocBin(docs=[pair]).to_disk(tmp_path / "pairs.spacy")
    (doc,) = DocBin().from_disk(tmp_path / "pairs.spacy").get_docs(spacy.blank("en").vocab)
    assert_same_pair(doc, pair)


def test_pickle_bytes_copy(nlp, pair):
    assert_same_pair(pickle.loads(pickle.dumps(pair)), pair)
    assert_same_pair(Doc(nlp.vocab).from_bytes(pair.to_bytes()), pair)
    assert_same_pair(pair.copy(), pair)


def test_json(nlp, pair):
    data = pair.to_json(underscore=["relatedness"])
    assert data["_"] == {"relatedness": pytest.approx(4.2)}
    doc = Doc(nlp.vocab).from_json(data)
    assert texts(doc) == texts(pair)
    assert doc._.relatedness == pytest.approx(4.2)
    assert doc.cats == pair.cats
    # Without the extension the group comes back without its attrs: an error, not a None.
    doc = Doc(nlp.vocab).from_json(pair.to_json())
    with pytest.raises(ValueError, match="to_json"):
        _ = doc._.relatedness


def test_from_docs_is_no_pair(nlp, pair):
    other = make_pair_doc(nlp, "A dog", "A cat", relatedness=1.0)
    doc = Doc.from_docs([pair, other])
    assert pair_sentences(doc) is None
    with pytest.raises(ValueError, match="no relatedness attr"):
        _ = doc._.relatedness


def test_register_idempotent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_pair_extensions()
        register_pair_extensions()
    Doc.set_extension("relatedness", default=None, force=True)
    try:
        with pytest.warns(UserWarning, match="Replacing"):
            register_pair_extensions()
    finally:
        register_pair_extensions()
    getter = Doc.get_extension("relatedness")[2]
    assert getter is not None and getter.__module__ == "spacy_jmt.pairs"


# The SICK converter -------------------------------------------------------------------

ROWS = [
    "1\tA group of kids is playing in a yard \tA group of boys is playing\t4.5\tNEUTRAL",
    "2\tA man is not playing\tA man is playing\t3.25\tCONTRADICTION",
    "3\tA dog runs.\tAn animal runs.\t5\tENTAILMENT",
]


def write(tmp_path, text, name="SICK_tiny.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_read_sick(nlp, tmp_path):
    path = write(tmp_path, HEADER + "\n".join(ROWS) + "\n\n")
    docs = read_sick(path, nlp.vocab, 10)  # n_sents is ignored
    assert len(docs) == 3
    assert texts(docs[0]) == ["A group of kids is playing in a yard", "A group of boys is playing"]
    assert [d._.relatedness for d in docs] == [4.5, 3.25, 5.0]
    assert [gold_entailment(d) for d in docs] == ["NEUTRAL", "CONTRADICTION", "ENTAILMENT"]
    assert [get_pair_id(d) for d in docs] == ["1", "2", "3"]
    assert all(d.vocab is nlp.vocab for d in docs)
    assert docs[2].cats == {"ENTAILMENT": 1.0, "NEUTRAL": 0.0, "CONTRADICTION": 0.0}


def test_read_sick_crlf_bom(nlp, tmp_path):
    text = "\ufeff" + (HEADER + "\n".join(ROWS) + "\n").replace("\n", "\r\n")
    docs = read_docs(write(tmp_path, text), "sick")
    assert [d._.relatedness for d in docs] == [4.5, 3.25, 5.0]
    assert texts(docs[1]) == ["A man is not playing", "A man is playing"]


@pytest.mark.parametrize(
    "rows,line,message",
    [
        (["4\tA man\tA dog\t3.0"], 3, "expected 5 tab-separated columns"),
        (["4\tA man\tA dog\t3.0\tNEUTRAL\textra"], 3, "got 6"),
        (["4\tA man\tA dog\t3.0\tNEUTRAL", "", "5  A man  A dog  3.0  NEUTRAL"], 5, "got 1"),
        (["4\tA man\tA dog\t3.0\tentailment"], 3, "unknown entailment_judgment 'entailment'"),
        (["4\tA man\tA dog\t3.0\t"], 3, "unknown entailment_judgment ''"),
        (["4\tA man\tA dog\thigh\tNEUTRAL"], 3, "'high' of pair 4 is not a number"),
        (["4\tA man\tA dog\t\tNEUTRAL"], 3, "is not a number"),
        (["4\tA man\tA dog\t5.01\tNEUTRAL"], 3, r"outside \[1, 5\]"),
        (["4\tA man\tA dog\t0.9\tNEUTRAL"], 3, r"outside \[1, 5\]"),
        (["4\tA man\tA dog\tnan\tNEUTRAL"], 3, r"outside \[1, 5\]"),
        (["4\tA man\tA dog\tinf\tNEUTRAL"], 3, r"outside \[1, 5\]"),
        (["4\t\tA dog\t3.0\tNEUTRAL"], 3, "empty sentence_A in pair 4"),
        (["4\tA man\t  \t3.0\tNEUTRAL"], 3, "empty sentence_B in pair 4"),
        (["\tA man\tA dog\t3.0\tNEUTRAL"], 3, "empty pair_ID"),
        (["1\tA man\tA dog\t3.0\tNEUTRAL"], 3, "duplicate pair_ID '1' \\(first on line 2\\)"),
    ],
)
def test_read_sick_errors(nlp, tmp_path, rows, line, message):
    path = write(tmp_path, HEADER + ROWS[0] + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match=message) as info:
        read_sick(path, nlp.vocab)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(
    "text",
    [
        "\n".join(ROWS) + "\n",  # no header
        "",  # empty file
        HEADER.replace("pair_ID", "id") + ROWS[0],
        # The full SICK.txt release: other columns, other order.
        "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tentailment_AB\n",
    ],
)
def test_read_sick_header_errors(nlp, tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError, match="missing or unexpected header") as info:
        read_sick(path, nlp.vocab)
    assert info.value.line == 1 and str(info.value).startswith(f"{path}:1: ")


def test_read_sick_header_only(nlp, tmp_path):
    with pytest.raises(DataFormatError, match="no pairs"):
        read_sick(write(tmp_path, HEADER + "\n"), nlp.vocab)


def test_read_sick_not_utf8(nlp, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes((HEADER + ROWS[0] + "\n" + "4\tCaf\xe9\tA\t3\tNEUTRAL\n").encode("latin-1"))
    with pytest.raises(DataFormatError, match="not valid UTF-8") as info:
        read_sick(path, nlp.vocab)
    assert info.value.line == 3


def test_cli_convert_sick(tmp_path):
    path = write(tmp_path, HEADER + "\n".join(ROWS) + "\n")
    out, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    result = CliRunner().invoke(
        app,
        ["convert", str(path), str(out), "--format", "sick"]
        + ["--dev-fraction", "0.34", "--dev-output", str(dev)],
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 2 docs (4 sentences)" in result.output
    vocab = spacy.blank("en").vocab
    train = list(DocBin().from_disk(out).get_docs(vocab))
    (last,) = DocBin().from_disk(dev).get_docs(vocab)
    assert [d._.relatedness for d in train] == [4.5, 3.25]
    assert last._.relatedness == 5.0 and gold_entailment(last) == "ENTAILMENT"
    bad = write(tmp_path, HEADER + "4\tA\tB\t7\tNEUTRAL\n", "bad.txt")
    result = CliRunner().invoke(app, ["convert", str(bad), str(out), "-f", "sick"])
    assert result.exit_code == 1
    assert f"{bad}:2: relatedness_score '7' of pair 4 is outside [1, 5]" in result.output


# Scores -------------------------------------------------------------------------------


def test_pearson_spearman_hand_computed():
    # x ranks [1, 2.5, 2.5, 4], y ranks [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
    assert list(average_ranks([1, 2, 2, 3])) == [1.0, 2.5, 2.5, 4.0]
    assert list(average_ranks([3, 1, 3, 2, 3])) == [4.0, 1.0, 4.0, 2.0, 4.0]
    assert spearman([1, 2, 2, 3], [1, 3, 2, 5]) == pytest.approx(math.sqrt(0.9))
    # deviations (-1, 0, 0, 1) and (-1.75, .25, -.75, 2.25): 4 / sqrt(2 * 8.75).
    assert pearson([1, 2, 2, 3], [1, 3, 2, 5]) == pytest.approx(4 / math.sqrt(17.5))
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [1, 4, 9]) == pytest.approx(1.0)
    # Undefined correlations are 0.0: constant values, or a single pair.
    assert pearson([1, 2, 3], [2, 2, 2]) == 0.0 and spearman([4], [1]) == 0.0
    with pytest.raises(ValueError, match="one length"):
        pearson([1, 2], [1, 2, 3])


def test_pearson_spearman_against_numpy():
    rng = numpy.random.RandomState(0)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    assert pearson(x, y) == pytest.approx(numpy.corrcoef(x, y)[0, 1], abs=1e-12)
    # Without ties the ranks are the positions in sorted order.
    rank_x, rank_y = numpy.argsort(numpy.argsort(x)), numpy.argsort(numpy.argsort(y))
    assert spearman(x, y) == pytest.approx(numpy.corrcoef(rank_x, rank_y)[0, 1], abs=1e-12)
    # With ties (SICK's scores are on a coarse grid), compare with scipy when it is there.
    stats = pytest.importorskip("scipy.stats")
    a, b = rng.randint(1, 6, 300), rng.randint(1, 6, 300) + rng.randint(0, 2, 300)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)


def example(nlp, text_a, text_b, gold_rel=None, gold_label=None, pred_rel=None, pred=None):
    reference = make_pair_doc(nlp, text_a, text_b, relatedness=gold_rel, entailment=gold_label)
    predicted = make_pair_doc(nlp, text_a, text_b, relatedness=pred_rel, entailment=pred)
    return Example(predicted, reference)


def one_sentence_example(nlp, rel=None):
    reference = Doc(nlp.vocab, words=["A", "man"], sent_starts=[True, False])
    reference.cats = {"ENTAILMENT": 1.0, "NEUTRAL": 0.0, "CONTRADICTION": 0.0}
    predicted = make_pair_doc(nlp, "A", "man", relatedness=rel, entailment="NEUTRAL")
    return Example(predicted, reference)


def test_score_relatedness(nlp):
    examples = [
        example(nlp, "A", "b", gold_rel=g, pred_rel=p)
        for g, p in [(1.0, 1.0), (2.0, 3.0), (2.0, 2.0), (3.0, 5.0)]
    ]
    examples += [
        example(nlp, "A", "b", gold_rel=4.0),  # no prediction
        example(nlp, "A", "b", pred_rel=4.0),  # no gold
        one_sentence_example(nlp, rel=1.0),  # not a pair
    ]
    scores = score_relatedness(examples)
    assert scores["relatedness_pearson"] == pytest.approx(4 / math.sqrt(17.5))
    assert scores["relatedness_spearman"] == pytest.approx(math.sqrt(0.9))
    assert scores["relatedness_mse"] == pytest.approx((0 + 1 + 0 + 4) / 4)
    empty = score_relatedness(examples[4:])
    assert empty == dict.fromkeys(
        ["relatedness_pearson", "relatedness_spearman", "relatedness_mse"]
    )


def test_score_entailment(nlp):
    E, N, C = ENTAILMENT_LABELS
    pairs = [(E, E), (E, N), (N, N), (C, C), (N, None)]
    examples = [example(nlp, "A", "b", gold_label=g, pred=p) for g, p in pairs]
    soft = {"ENTAILMENT": 0.1, "NEUTRAL": 0.3, "CONTRADICTION": 0.6}
    examples.append(example(nlp, "A", "b", gold_label=C, pred=soft))  # argmax: correct
    examples.append(example(nlp, "A", "b", gold_label=None, pred=E))  # no gold: skipped
    examples.append(one_sentence_example(nlp))  # not a pair: skipped
    unsure = example(nlp, "A", "b", pred=E)
    unsure.reference.cats = {"ENTAILMENT": 1.0, "NEUTRAL": 1.0, "CONTRADICTION": 0.0}
    examples.append(unsure)  # two positive labels: skipped
    scores = score_entailment(examples)
    assert scores["entailment_acc"] == pytest.approx(4 / 6)
    per_type = scores["entailment_per_type"]
    # E: tp 1, fn 1. N: tp 1, fp 1, fn 1 (no prediction). C: tp 2.
    assert per_type["ENTAILMENT"] == pytest.approx({"p": 1.0, "r": 0.5, "f": 2 / 3})
    assert per_type["NEUTRAL"] == pytest.approx({"p": 0.5, "r": 0.5, "f": 0.5})
    assert per_type["CONTRADICTION"] == pytest.approx({"p": 1.0, "r": 1.0, "f": 1.0})
    assert scores["entailment_macro_f"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert score_entailment(examples[-3:]) == dict.fromkeys(
        ["entailment_acc", "entailment_macro_f", "entailment_per_type"]
    )


def test_score_entailment_macro_over_seen_labels(nlp):
    examples = [example(nlp, "A", "b", gold_label=g, pred=g) for g in ("NEUTRAL", "ENTAILMENT")]
    scores = score_pairs(examples)
    assert scores["entailment_acc"] == 1.0 and scores["entailment_macro_f"] == 1.0
    assert scores["relatedness_mse"] is None


# The real SICK files ------------------------------------------------------------------


@needs_sick
@pytest.mark.parametrize(
    "name,n_pairs,labels,mean",
    [
        (
            "SICK_train.txt",
            4500,
            {"ENTAILMENT": 1299, "NEUTRAL": 2536, "CONTRADICTION": 665},
            3.5209,
        ),
        ("SICK_trial.txt", 500, {"ENTAILMENT": 144, "NEUTRAL": 282, "CONTRADICTION": 74}, 3.5944),
    ],
)
def test_real_sick(nlp, name, n_pairs, labels, mean):
    docs = read_docs(SICK / name, "sick")
    assert len(docs) == n_pairs
    assert all(is_pair(doc) for doc in docs)
    assert Counter(gold_entailment(doc) for doc in docs) == labels
    scores = [doc._.relatedness for doc in docs]
    assert min(scores) == 1.0 and max(scores) == 5.0
    assert sum(scores) / len(scores) == pytest.approx(mean, abs=1e-4)
    assert len({get_pair_id(doc) for doc in docs}) == n_pairs
    # Round trip through the DocBin that `spacy-jmt convert` writes, without user data.
    (first, last) = DocBin(docs=[docs[0], docs[-1]], store_user_data=False).get_docs(nlp.vocab)
    assert (first._.relatedness, texts(first)) == (docs[0]._.relatedness, texts(docs[0]))
    assert get_pair_id(last) == get_pair_id(docs[-1])
