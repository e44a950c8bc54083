"""The mentions kind: nested, labelled spans by span enumeration -> doc.spans["mentions"]."""

import pickle

import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Adam
from tiny_data import TINY_MODEL
from typer.testing import CliRunner

from spacy_jmt.cli import app
from spacy_jmt.tasks.mentions import candidate_grid, sentence_ids

DATA = [  # fmt: skip
    (["the", "men", "of", "Kellynch", "Hall", "left", "."], [(0, 5, "PER"), (3, 5, "FAC")]),
    (["Anne", "saw", "the", "house", "of", "Bath", "."],
     [(0, 1, "PER"), (2, 6, "FAC"), (5, 6, "GPE")]),
    (["a", "boat", "left", "London", "."], [(0, 2, "VEH"), (3, 4, "GPE")]),
]  # fmt: skip


def make_examples(nlp):
    examples = []
    for words, spans in DATA:
        ref = Doc(nlp.vocab, words=words)
        ref.spans["mentions"] = [Span(ref, s, e, label=label) for s, e, label in spans]
        examples.append(Example(Doc(nlp.vocab, words=words), ref))
    return examples


def test_mentions_learn_nested_spans_and_round_trip(tmp_path):
    fix_random_seed(0)
    nlp = spacy.blank("en")
    tasks = {"mentions": {"kind": "mentions", "level": 1, "max_width": 4}}
    nlp.add_pipe("jmt", config={"tasks": tasks, "model": TINY_MODEL})
    examples = make_examples(nlp)
    with_warning = nlp.get_pipe("jmt")
    nlp.initialize(lambda: examples)
    assert with_warning.labels["mentions"] == ["FAC", "GPE", "PER", "VEH"]
    task = with_warning.tasks[0]
    assert "1 are longer than max_width (4)" in task.data_warning()  # "the men of Kellynch Hall"
    optimizer = Adam(0.01)
    for _ in range(80):
        nlp.update(examples, sgd=optimizer)
    doc = nlp(Doc(nlp.vocab, words=DATA[1][0]))
    found = [(s.start, s.end, s.label_) for s in doc.spans["mentions"]]
    assert found == [(0, 1, "PER"), (2, 6, "FAC"), (5, 6, "GPE")]  # nested: Bath in the house
    assert all(0.5 < p <= 1 for p in doc.spans["mentions"].attrs["scores"])
    scores = nlp.evaluate(examples[1:])
    assert scores["mentions_f"] == 1.0
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    again = loaded(Doc(loaded.vocab, words=DATA[1][0]))
    assert [(s.start, s.end, s.label_) for s in again.spans["mentions"]] == found
    restored = list(DocBin(docs=[again]).get_docs(loaded.vocab))[0]
    assert [(s.start, s.end, s.label_) for s in restored.spans["mentions"]] == found
    assert len(pickle.loads(pickle.dumps(again)).spans["mentions"]) == 3
    assert len(nlp("").spans.get("mentions", [])) == 0

    # min_odds is an inference setting: a loaded pipeline takes a new value from its config
    def found_with(min_odds):
        odds = {"components": {"jmt": {"tasks": {"mentions": {"min_odds": min_odds}}}}}
        reloaded = spacy.load(tmp_path / "p", config=odds)
        predicted = reloaded(Doc(reloaded.vocab, words=DATA[1][0]))
        return {(s.start, s.end, s.label_) for s in predicted.spans["mentions"]}

    assert found_with(1e9) == set()
    lenient = found_with(1e-9)  # more candidates pass; crossing ones are still dropped
    assert set(found) < lenient
    # and so does `evaluate --set`, to tune it on dev
    DocBin(docs=[eg.reference for eg in examples[1:]]).to_disk(tmp_path / "dev.spacy")
    args = ["evaluate", str(tmp_path / "p"), "-c", f"dev={tmp_path / 'dev.spacy'}"]
    for value, f_score in (("1", "1.0000"), ("1e9", "0.0000")):
        setting = ["--set", f"components.jmt.tasks.mentions.min_odds={value}"]
        result = CliRunner().invoke(app, args + setting)
        assert result.exit_code == 0 and f"mentions_f {f_score}" in result.output, result.output


def test_min_odds_must_be_a_positive_number():
    nlp = spacy.blank("en")
    for bad in (0, -1.0, "2", True):
        tasks = {"mentions": {"kind": "mentions", "level": 1, "min_odds": bad}}
        with pytest.raises(ValueError, match="min_odds must be a number > 0"):
            nlp.add_pipe("jmt", name=f"jmt_{bad}", config={"tasks": tasks, "model": TINY_MODEL})


def test_candidates_stay_inside_sentences():
    grid = candidate_grid(sentence_ids([(0, 0, 3), (0, 3, 4), (1, 0, 2)], 2, 4, 2), 0, 4, 2)
    spans = [(b, t, t + w + 1) for b, t, w in torch.nonzero(grid).tolist()]
    assert spans == [
        (0, 0, 1), (0, 0, 2), (0, 1, 2), (0, 1, 3), (0, 2, 3), (0, 3, 4), (1, 0, 1), (1, 0, 2),
        (1, 1, 2),
    ]  # fmt: skip
