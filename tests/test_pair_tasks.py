"""The pair tasks of the `jmt` component: relatedness and entailment over sentence pairs
(docs of exactly two sentences), trained together with the syntactic tasks.

The data are a handful of SICK-like pairs next to the tiny syntax data; the component must
overfit them, keep its pair outputs through every serialization route, give the same
answers through the pair API in batches and one by one, and leave docs that are no pairs
alone.
"""

import pickle
from typing import Dict, List

import pytest
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Adam
from tiny_data import SENTENCES, TINY_MODEL

from spacy_jmt.pairs import ENTAILMENT_LABELS, get_entailment, is_pair_data, make_pair_doc
from spacy_jmt.readers import _make_example
from spacy_jmt.tasks.pair import expected_scores, score_distribution

PAIRS = [
    ("A man is playing a guitar", "A man is playing an instrument", 4.6, "ENTAILMENT"),
    ("A woman is slicing an onion", "A man is playing a flute", 1.2, "NEUTRAL"),
    ("The dog is running in the park", "The dog is not running in the park", 4.0,
     "CONTRADICTION"),
    ("Two kids are swimming", "Nobody is swimming", 3.1, "CONTRADICTION"),
    ("A cat sleeps on the sofa", "A cat is sleeping", 4.3, "ENTAILMENT"),
    ("A chef is cooking", "The boy plays football", 1.6, "NEUTRAL"),
]  # fmt: skip
TASKS: Dict[str, Dict] = {
    "sents": {"kind": "tagging", "attr": "SENT_START", "level": 0},
    "tag": {"kind": "tagging", "attr": "TAG", "level": 1},
    "dep": {"kind": "parsing", "level": 2},
    "relatedness": {"kind": "relatedness", "level": 3},
    "entailment": {"kind": "entailment", "level": 4, "relatedness_task": "relatedness"},
}
CONFIG = {"model": {**TINY_MODEL, "hidden_width": 48}, "tasks": TASKS}


def blank(config: Dict = CONFIG) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("jmt", config=config)
    return nlp


def syntax_reference(vocab, data) -> Doc:
    heads = [h for h in data["heads"]]
    return Doc(vocab, words=data["words"], spaces=data["spaces"], tags=data["tags"],
               heads=heads, deps=data["deps"])  # fmt: skip


def examples_of(nlp: Language) -> List[Example]:
    pairs = [
        make_pair_doc(nlp, a, b, relatedness=r, entailment=label, pair_id=str(i))
        for i, (a, b, r, label) in enumerate(PAIRS)
    ]
    syntax = [syntax_reference(nlp.vocab, data) for data in SENTENCES]
    return [_make_example(nlp, ref) for ref in pairs + syntax]


def train(nlp: Language, n_iter: int = 120) -> Language:
    fix_random_seed(0)
    nlp.initialize(lambda: examples_of(nlp))
    optimizer = Adam(0.01)
    for _ in range(n_iter):
        nlp.update(examples_of(nlp), sgd=optimizer)
    return nlp


@pytest.fixture(scope="module")
def trained() -> Language:
    return train(blank())


def pair(nlp: Language, a: str, b: str) -> Doc:
    return nlp(make_pair_doc(nlp, a, b))


def test_overfits_pairs(trained):
    for a, b, score, label in PAIRS:
        doc = pair(trained, a, b)
        assert doc._.relatedness == pytest.approx(score, abs=0.3)
        assert get_entailment(doc) == label
        assert sum(doc.cats[label] for label in ENTAILMENT_LABELS) == pytest.approx(1.0)


def test_reader_gives_pairs_their_sentences_and_the_splitter_learns_them(trained):
    for eg in examples_of(trained)[: len(PAIRS)]:
        assert is_pair_data(eg.reference)
        assert [s.text for s in eg.predicted.sents] == [s.text for s in eg.reference.sents]
    # From raw text, the splitter finds the pair (no punctuation between the sentences).
    for a, b, _, label in PAIRS:
        doc = trained(f"{a} {b}")
        assert [s.text for s in doc.sents] == [a, b]
        assert get_entailment(doc) == label


def test_compare_batch_equals_single_calls_and_doc_form(trained):
    jmt = trained.get_pipe("jmt")
    docs = [(trained.make_doc(a), trained.make_doc(b)) for a, b, _, _ in PAIRS]
    batch = jmt.compare_batch(docs, batch_size=4)
    for (doc_a, doc_b), result in zip(docs, batch):
        single = jmt.compare(doc_a, doc_b)
        assert single["entailment"] == result["entailment"]
        assert single["relatedness"] == pytest.approx(result["relatedness"], abs=1e-5)
        for label in ENTAILMENT_LABELS:
            assert single["entailment_probs"][label] == pytest.approx(
                result["entailment_probs"][label], abs=1e-5
            )
        doc = pair(trained, doc_a.text, doc_b.text)
        assert doc._.relatedness == pytest.approx(single["relatedness"], abs=1e-5)
        assert not doc_a.has_annotation("TAG") and not doc_a.has_annotation("SENT_START")


@pytest.fixture(scope="module")
def trained_attention() -> Language:
    tasks = {name: {**task, "attention": True} if task["kind"] in ("relatedness", "entailment")
             else task for name, task in TASKS.items()}  # fmt: skip
    return train(blank({**CONFIG, "tasks": tasks}))


def test_attention_overfits_pairs_and_ignores_padding(trained_attention):
    """With ESIM's alignment the sentences attend to each other; a pair's outputs must not
    depend on the longer pairs padded beside it in a batch."""
    nlp = trained_attention
    heads = [task.head for task in nlp.get_pipe("jmt").tasks if task.pair_level]
    assert heads and all(head.compose is not None for head in heads)
    for a, b, score, label in PAIRS:
        doc = pair(nlp, a, b)
        assert doc._.relatedness == pytest.approx(score, abs=0.3)
        assert get_entailment(doc) == label
    jmt = nlp.get_pipe("jmt")
    docs = [(nlp.make_doc(a), nlp.make_doc(b)) for a, b, _, _ in PAIRS]
    for (doc_a, doc_b), result in zip(docs, jmt.compare_batch(docs, batch_size=6)):
        single = jmt.compare(doc_a, doc_b)
        assert single["relatedness"] == pytest.approx(result["relatedness"], abs=1e-5)
    # Swapping the sentences changes the input of a directed task.
    a, b = docs[4]
    assert jmt.compare(a, b)["entailment_probs"] != jmt.compare(b, a)["entailment_probs"]


def test_compare_errors(trained):
    jmt = trained.get_pipe("jmt")
    with pytest.raises(ValueError, match="no tokens"):
        jmt.compare(trained.make_doc(""), trained.make_doc("A dog"))
    with pytest.raises(TypeError, match="must be a Doc"):
        jmt.compare("A dog", trained.make_doc("A dog"))
    syntax_only = blank({"model": TINY_MODEL, "tasks": {"tag": TASKS["tag"]}})
    with pytest.raises(ValueError, match="no relatedness or entailment task"):
        syntax_only.get_pipe("jmt").compare(trained.make_doc("a"), trained.make_doc("b"))


@pytest.mark.parametrize("n_sents", [1, 3])
def test_docs_that_are_not_pairs_get_no_pair_output(trained, n_sents):
    words = ["A", "dog", "runs", "."] * n_sents
    starts = [i % 4 == 0 for i in range(len(words))]
    doc = trained(Doc(trained.vocab, words=words, sent_starts=starts))
    assert doc._.relatedness is None and doc.cats == {}
    assert doc.has_annotation("TAG") and doc.has_annotation("DEP")
    # A batch mixing pairs and other docs: only the pairs get pair output.
    docs = list(trained.pipe([doc.text, make_pair_doc(trained, "A dog", "A cat"), ""]))
    assert docs[0]._.relatedness is None and docs[2]._.relatedness is None
    assert docs[1]._.relatedness is not None and get_entailment(docs[1]) is not None


def test_pair_levels_are_skipped_without_pairs(trained):
    """Levels that only pair tasks read do not run on a batch without pairs."""
    from spacy_jmt.model import get_torch_network

    network = get_torch_network(trained.get_pipe("jmt").model)
    assert network.pairs_only_from == 3
    calls = []
    hook = network.levels[2].register_forward_hook(lambda *args: calls.append(1))
    try:
        trained("The dog sleeps.")
        assert calls == []
        trained(make_pair_doc(trained, "A dog", "A cat"))
        assert calls == [1]
    finally:
        hook.remove()


def test_overwrite_false_keeps_existing_pair_output(trained):
    doc = make_pair_doc(trained, "A man is playing a guitar", "A man is playing an instrument",
                        relatedness=2.0, entailment="NEUTRAL")  # fmt: skip
    doc = trained(doc)
    assert doc._.relatedness == 2.0 and get_entailment(doc) == "NEUTRAL"


@pytest.mark.parametrize("store_user_data", [True, False])
def test_pair_output_survives_docbin(trained, store_user_data):
    doc = pair(trained, *PAIRS[0][:2])
    data = DocBin(docs=[doc], store_user_data=store_user_data).to_bytes()
    (restored,) = DocBin().from_bytes(data).get_docs(trained.vocab)
    assert restored._.relatedness == doc._.relatedness
    assert restored.cats == doc.cats


def test_pair_output_survives_pickle_and_n_process(trained):
    doc = pair(trained, *PAIRS[2][:2])
    restored = pickle.loads(pickle.dumps(doc))
    assert restored._.relatedness == doc._.relatedness and restored.cats == doc.cats
    docs = [make_pair_doc(trained, a, b) for a, b, _, _ in PAIRS[:2]]
    single = [trained(d.copy()) for d in docs]
    multi = list(trained.pipe([d.copy() for d in docs], n_process=2))
    for s, m in zip(single, multi):
        assert s._.relatedness == pytest.approx(m._.relatedness, abs=1e-5)
        assert get_entailment(s) == get_entailment(m)


def test_round_trip_disk_and_bytes(trained, tmp_path):
    trained.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    from_bytes = blank()
    from_bytes.from_bytes(trained.to_bytes())
    for a, b, _, _ in PAIRS:
        expected = pair(trained, a, b)
        for nlp in (loaded, from_bytes):
            doc = pair(nlp, a, b)
            assert doc._.relatedness == pytest.approx(expected._.relatedness, abs=1e-5)
            assert doc.cats == pytest.approx(expected.cats, abs=1e-5)


def test_scores(trained):
    examples = examples_of(trained)
    scores = trained.evaluate(examples)
    assert scores["relatedness_pearson"] > 0.95
    assert scores["relatedness_mse"] < 0.1
    assert scores["entailment_acc"] == 1.0 and scores["entailment_macro_f"] == 1.0
    # The pairs' given sentences are not scored as the splitter's.
    syntax_only = trained.evaluate(examples[len(PAIRS) :])
    assert scores["sents_f"] == syntax_only["sents_f"]


def test_without_shortcuts_and_label_embeddings():
    model = {**CONFIG["model"], "shortcut_connections": False, "label_embedding_width": 0}
    nlp = train(blank({"model": model, "tasks": TASKS}), n_iter=80)
    scores = nlp.evaluate(examples_of(nlp))
    assert scores["entailment_acc"] > 0.8 and scores["relatedness_mse"] < 0.5


def test_docs_without_pair_gold_give_no_pair_loss():
    nlp = blank()
    nlp.initialize(lambda: examples_of(nlp))
    unlabelled = [_make_example(nlp, make_pair_doc(nlp, a, b)) for a, b, _, _ in PAIRS]
    losses = nlp.update(unlabelled, sgd=Adam(0.01))
    assert "jmt:relatedness" not in losses and "jmt:entailment" not in losses
    losses = nlp.update(examples_of(nlp), sgd=Adam(0.01))
    assert losses["jmt:relatedness"] > 0 and losses["jmt:entailment"] > 0


@pytest.mark.parametrize(
    "tasks,match",
    [
        ({"r": {"kind": "relatedness", "level": 0}}, "level must be"),
        ({"e": {"kind": "entailment", "relatedness_task": "x"}}, "not a relatedness task"),
        ({"r": {"kind": "relatedness", "level": 2}, "e": {"kind": "entailment",
          "relatedness_task": "r"}}, "must not sit below"),
        ({"a": {"kind": "relatedness"}, "b": {"kind": "relatedness"}},
         "may write doc._.relatedness"),
    ],
)  # fmt: skip
def test_config_errors(tasks, match):
    with pytest.raises(ValueError, match=match):
        blank({"model": TINY_MODEL, "tasks": tasks})


def test_score_distribution_and_expectation():
    assert score_distribution(3.6, 5) == pytest.approx([0, 0, 0.4, 0.6, 0])
    assert score_distribution(5.0, 5) == [0, 0, 0, 0, 1.0]
    assert score_distribution(1.0, 5) == [1.0, 0, 0, 0, 0]
    for value in (1.0, 2.25, 4.9, 5.0):
        target = torch.tensor([score_distribution(value, 5)])
        assert float(expected_scores(target.log())[0]) == pytest.approx(value)


def test_cli_evaluate_pairs_and_optional_corpora(trained, tmp_path):
    import json

    from typer.testing import CliRunner

    from spacy_jmt.cli import app

    trained.to_disk(tmp_path / "nlp")
    docs = [make_pair_doc(trained, a, b, relatedness=r, entailment=label)
            for a, b, r, label in PAIRS]  # fmt: skip
    DocBin(docs=docs).to_disk(tmp_path / "dev.spacy")
    args = ["evaluate", str(tmp_path / "nlp"), "-c", f"dev={tmp_path / 'dev.spacy'}",
            "-c", f"test={tmp_path / 'test.spacy'}", "-o", str(tmp_path / "m.json")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "'test' not found" in result.output
    result = CliRunner().invoke(app, args + ["--skip-missing"])
    assert result.exit_code == 0, result.output
    assert "test: skipped" in result.output
    scores = json.loads((tmp_path / "m.json").read_text())
    assert list(scores) == ["dev"] and scores["dev"]["entailment_acc"] == 1.0
