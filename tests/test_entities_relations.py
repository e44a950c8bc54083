"""The span (entities) and relation task kinds inside the `jmt` component."""

import copy
import pickle
import re
from typing import Any, Dict, List, Tuple

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Adam
from tiny_data import TINY_MODEL

from spacy_jmt.relations import Relation, has_relations, set_relations
from spacy_jmt.tasks.relation import score_relations

# (text, entities (start, end, label), relations (head entity, tail entity, label)).
DATA: List[Tuple[str, List[Tuple[int, int, str]], List[Tuple[int, int, str]]]] = [
    ("Anna Smith works for Acme Corp in Paris .",
     [(0, 2, "PER"), (4, 6, "ORG"), (7, 8, "LOC")], [(0, 1, "Work_For"), (1, 2, "Based_In")]),
    ("Bob lives in Rome .", [(0, 1, "PER"), (3, 4, "LOC")], [(0, 1, "Live_In")]),
    ("Acme Corp hired Carl Jones .", [(0, 2, "ORG"), (3, 5, "PER")], [(1, 0, "Work_For")]),
    ("Dana met Bob in Rome .",
     [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")], [(0, 2, "Live_In"), (1, 2, "Live_In")]),
]  # fmt: skip

TASKS = {
    "ents": {"kind": "spans", "level": 1, "doc_ents": True},
    "rel": {"kind": "relation", "level": 2, "spans_task": "ents"},
}
CONFIG = {"tasks": TASKS, "model": TINY_MODEL}


def reference(vocab, text: str, ents, rels) -> Doc:
    doc = Doc(vocab, words=text.split())
    spans = [Span(doc, s, e, label=label) for s, e, label in ents]
    doc.spans["ents"] = spans
    doc.ents = spans
    doc._.relations = [Relation(spans[h], spans[t], label) for h, t, label in rels]
    return doc


def examples_of(nlp: Language) -> List[Example]:
    refs = [reference(nlp.vocab, *item) for item in DATA]
    return [Example(Doc(nlp.vocab, words=[t.text for t in ref]), ref) for ref in refs]


def blank(config: Dict[str, Any] = CONFIG) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("jmt", config=copy.deepcopy(config))
    return nlp


def relations_of(doc: Doc) -> List[Tuple[str, str, str]]:
    return sorted((r.head.text, r.label, r.tail.text) for r in doc._.relations)


def gold_relations(item) -> List[Tuple[str, str, str]]:
    text, ents, rels = item
    words = text.split()
    names = [" ".join(words[s:e]) for s, e, _ in ents]
    return sorted((names[h], label, names[t]) for h, t, label in rels)


@pytest.fixture(scope="module")
def trained() -> Language:
    fix_random_seed(0)
    nlp = blank()
    nlp.initialize(lambda: examples_of(nlp))
    optimizer = Adam(0.01)
    for _ in range(60):
        nlp.update(examples_of(nlp), sgd=optimizer)
    return nlp


def annotate(nlp: Language, text: str) -> Doc:
    return nlp(Doc(nlp.vocab, words=text.split()))


def test_overfits_entities_and_relations(trained):
    for item in DATA:
        doc = annotate(trained, item[0])
        assert [(e.start, e.end, e.label_) for e in doc.ents] == item[1]
        assert list(doc.spans["ents"]) == list(doc.ents)
        assert relations_of(doc) == gold_relations(item)
        for rel in doc._.relations:
            assert 0.5 <= rel.score <= 1.0


def test_span_scores_and_no_overlap(trained):
    doc = annotate(trained, "Carl Jones lives in Paris and works for Acme Corp .")
    group = doc.spans["ents"]
    assert len(group.attrs["scores"]) == len(group)
    assert all(0.0 <= s <= 1.0 for s in group.attrs["scores"])
    covered = [i for span in group for i in range(span.start, span.end)]
    assert len(covered) == len(set(covered))


def test_spans_never_start_or_end_on_whitespace(trained):
    for text in ("   ", "Bob  lives in  Rome .", "\tAnna Smith works for Acme Corp  in Paris ."):
        doc = trained(text)
        assert all(not s[0].is_space and not s[-1].is_space for s in doc.spans["ents"]), text
    assert [e.text for e in trained("Bob  lives in Rome .").ents] == ["Bob", "Rome"]


def test_constraints_learned_and_honoured(trained):
    jmt = trained.get_pipe("jmt")
    allowed = {tuple(t) for t in jmt.cfg["states"]["rel"]["allowed"]}
    assert allowed == {("PER", "Work_For", "ORG"), ("ORG", "Based_In", "LOC"),
                       ("PER", "Live_In", "LOC")}  # fmt: skip
    task = jmt._task("rel")
    task.cfg["threshold"] = 0.0  # every label of every pair passes the threshold ...
    try:
        doc = annotate(trained, DATA[0][0])
        triples = {(r.head.label_, r.label, r.tail.label_) for r in doc._.relations}
        assert triples and triples <= allowed  # ... but only allowed argument types come out
        task.cfg["constrain_types"] = False
        doc = annotate(trained, DATA[0][0])
        assert len(doc._.relations) == 3 * 2 * len(task.labels)  # all ordered pairs, labels
    finally:
        task.cfg.update(threshold=0.5, constrain_types=True)


def test_no_entities_gives_empty_relations(trained):
    doc = annotate(trained, ". . .")
    assert len(doc.ents) == 0
    assert has_relations(doc) and doc._.relations == []


def test_relations_only_within_a_sentence(trained):
    doc = Doc(trained.vocab, words="Bob lives . in Rome .".split())
    doc[3].is_sent_start = True
    for token in doc[1:3]:
        token.is_sent_start = False
    doc[5].is_sent_start = False
    doc = trained(doc)
    for rel in doc._.relations:
        assert rel.head.sent == rel.tail.sent


def test_overwrite_false_keeps_existing_relations(trained):
    doc = Doc(trained.vocab, words=DATA[1][0].split())
    doc._.relations = []
    assert trained(doc)._.relations == []


@pytest.mark.parametrize("store_user_data", [True, False])
def test_predicted_relations_survive_docbin(trained, store_user_data):
    doc = annotate(trained, DATA[0][0])
    expected = [r.to_dict() for r in doc._.relations]
    assert expected
    restored = list(DocBin(docs=[doc], store_user_data=store_user_data).get_docs(trained.vocab))[0]
    assert [r.to_dict() for r in restored._.relations] == expected


def test_predicted_relations_survive_json_and_pickle(trained):
    doc = annotate(trained, DATA[0][0])
    expected = [r.to_dict() for r in doc._.relations]
    data = doc.to_json(underscore=["relations_json"])
    assert [r.to_dict() for r in Doc(trained.vocab).from_json(data)._.relations] == expected
    assert [r.to_dict() for r in pickle.loads(pickle.dumps(doc))._.relations] == expected


def test_pipe_n_process(trained):
    texts = [item[0] for item in DATA]
    single = [[r.to_dict() for r in doc._.relations] for doc in trained.pipe(texts)]
    multi = [[r.to_dict() for r in d._.relations] for d in trained.pipe(texts, n_process=2)]
    assert multi == single
    assert any(single)


def test_round_trip_disk_and_bytes(trained, tmp_path):
    trained.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    from_bytes = blank().from_bytes(trained.to_bytes())
    for item in DATA:
        expected = relations_of(annotate(trained, item[0]))
        assert relations_of(annotate(loaded, item[0])) == expected
        assert relations_of(annotate(from_bytes, item[0])) == expected
    assert loaded.get_pipe("jmt").cfg["states"] == trained.get_pipe("jmt").cfg["states"]
    # The threshold is an inference setting: a loaded pipeline takes it from its config.
    lenient = {"components": {"jmt": {"tasks": {"rel": {"threshold": 0.0}}}}}
    doc = annotate(spacy.load(tmp_path / "nlp", config=lenient), DATA[0][0])
    assert len(doc._.relations) > len(relations_of(annotate(loaded, DATA[0][0])))


def test_scores(trained):
    scores = trained.evaluate(examples_of(trained))
    assert scores["ents_f"] == 1.0
    assert scores["rel_micro_f"] == 1.0 and scores["rel_macro_f"] == 1.0
    assert scores["rel_boundaries_micro_f"] == 1.0
    assert set(scores["rel_per_type"]) == {"Work_For", "Based_In", "Live_In"}


def test_score_strict_versus_boundaries():
    nlp = spacy.blank("en")
    ref = reference(nlp.vocab, *DATA[1])
    pred = Doc(nlp.vocab, words=DATA[1][0].split())
    per, loc = Span(pred, 0, 1, label="ORG"), Span(pred, 3, 4, label="LOC")  # wrong type
    pred._.relations = [Relation(per, loc, "Live_In", 0.9), Relation(loc, per, "Live_In", 0.8)]
    scores = score_relations([Example(pred, ref)], "rel")
    assert scores["rel_micro_f"] == 0.0
    assert scores["rel_boundaries_micro_p"] == 0.5
    assert scores["rel_boundaries_micro_r"] == 1.0
    assert score_relations([], "rel")["rel_micro_f"] is None


def test_docs_without_relation_annotation_give_no_relation_loss():
    nlp = blank()
    nlp.initialize(lambda: examples_of(nlp))
    refs = [Doc(nlp.vocab, words=item[0].split()) for item in DATA]
    for ref, item in zip(refs, DATA):
        ref.spans["ents"] = [Span(ref, s, e, label=label) for s, e, label in item[1]]
    losses = nlp.update([Example(Doc(nlp.vocab, words=[t.text for t in r]), r) for r in refs])
    assert "jmt:ents" in losses and "jmt:rel" not in losses


@pytest.mark.parametrize(
    "tasks, match",
    [
        ({"rel": {"kind": "relation"}}, "set spans_task"),
        ({"rel": {"kind": "relation", "spans_task": "nope"}}, "not a spans task"),
        ({"ents": {"kind": "spans", "level": 2},
          "rel": {"kind": "relation", "spans_task": "ents"}}, "must not sit below"),
        ({"a": {"kind": "spans", "doc_ents": True},
          "b": {"kind": "spans", "doc_ents": True}}, "Only one task may write doc.ents"),
    ],
)  # fmt: skip
def test_config_errors(tasks, match):
    with pytest.raises(ValueError, match=match):
        blank({"tasks": tasks, "model": TINY_MODEL})


def test_same_level_relation_task_runs_after_its_span_task():
    config = {"tasks": {"rel": {"kind": "relation", "spans_task": "ents", "level": 1},
                        "ents": {"kind": "spans", "level": 1, "depth": 1}},
              "model": TINY_MODEL}  # fmt: skip
    nlp = blank(config)
    assert [t.name for t in nlp.get_pipe("jmt").tasks] == ["ents", "rel"]
    nlp.initialize(lambda: examples_of(nlp))
    losses = nlp.update(examples_of(nlp))
    assert losses["jmt:rel"] > 0
    assert has_relations(nlp(DATA[0][0]))


def test_overlapping_gold_spans_are_reported():
    nlp = blank()
    examples = examples_of(nlp)
    ref = examples[0].reference
    ref.spans["ents"] = list(ref.spans["ents"]) + [Span(ref, 1, 3, label="PER")]  # overlaps
    with pytest.warns(UserWarning, match=r"'ents': of the 11 gold spans .*, 1 overlap"):
        nlp.initialize(lambda: examples)


def test_gold_spans_inside_tokens_are_counted():
    """A gold span whose boundary falls inside a token of the tokenizer cannot be learned
    on those tokens: initialize counts it and warns."""
    nlp = blank()
    ref = Doc(nlp.vocab, words=["Acme", "Corp", "sued", "Bob"], spaces=[False, True, True, False])
    ref.spans["ents"] = [Span(ref, 0, 1, label="ORG"), Span(ref, 3, 4, label="PER")]
    examples = examples_of(nlp) + [Example(nlp.make_doc(ref.text), ref)]  # "AcmeCorp"
    with pytest.warns(UserWarning, match=r"'ents': of the 12 gold spans .*, 1 do not align"):
        nlp.initialize(lambda: examples)
    assert nlp.get_pipe("jmt").cfg["states"]["ents"]["n_misaligned"] == 1
    # A relation with that span as an argument: counted by the relation task.
    set_relations(ref, [Relation(ref.spans["ents"][0], ref.spans["ents"][1], "Sued")])
    with pytest.warns(UserWarning) as record:
        nlp.initialize(lambda: examples)
    messages = " | ".join(str(w.message) for w in record)
    assert "'ents': of the 12 gold spans in doc.spans['ents'], 1 do not align" in messages
    assert re.search(r"'rel': 1 of the \d+ gold relations have an argument", messages)


def test_two_relation_tasks_share_doc_relations():
    """One relation task per corpus, each over its own span group: each learns and is
    scored only on the docs and relations of its spans; both write doc._.relations."""
    tasks = {
        "a_ents": {"kind": "spans", "level": 1},
        "b_ents": {"kind": "spans", "level": 1},
        "a_rel": {"kind": "relation", "level": 2, "spans_task": "a_ents"},
        "b_rel": {"kind": "relation", "level": 2, "spans_task": "b_ents"},
    }
    nlp = blank({"tasks": tasks, "model": TINY_MODEL})
    examples = examples_of(nlp)
    for i, eg in enumerate(examples):  # docs 0, 2 annotate corpus a; docs 1, 3 corpus b
        ref = eg.reference
        ref.spans["a_ents" if i % 2 == 0 else "b_ents"] = list(ref.spans["ents"])
        del ref.spans["ents"]
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    jmt = nlp.get_pipe("jmt")
    assert jmt.labels["a_rel"] == ["Based_In", "Work_For"]
    assert jmt.labels["b_rel"] == ["Live_In"]
    for _ in range(100):
        nlp.update(examples, sgd=optimizer)
    a_rel, b_rel = jmt._task("a_rel"), jmt._task("b_rel")
    for i, item in enumerate(DATA):
        doc = annotate(nlp, item[0])
        own = (a_rel if i % 2 == 0 else b_rel).own_relations(doc)
        assert sorted((r.head.text, r.label, r.tail.text) for r in own) == gold_relations(item)
        both = a_rel.own_relations(doc) + b_rel.own_relations(doc)
        assert {r.to_dict()["label"] for r in doc._.relations} == {r.label for r in both}
        assert len(doc._.relations) == len(both)
    scores = nlp.evaluate(examples)
    assert scores["a_rel_micro_f"] == 1.0 and scores["b_rel_micro_f"] == 1.0
    assert set(scores["a_rel_per_type"]) == {"Work_For", "Based_In"}


def test_crf_log_partition_matches_brute_force():
    import itertools

    import torch

    from spacy_jmt.heads import crf_log_partition

    torch.manual_seed(0)
    emissions, transitions = torch.randn(2, 3, 3), torch.randn(3, 3)
    lengths = torch.tensor([3, 2])
    permitted = torch.ones(2, 3, 3, dtype=torch.bool)
    permitted[0, 1] = torch.tensor([False, True, False])  # row 0: the middle tag is gold
    log_z = crf_log_partition(emissions, transitions, lengths, permitted)
    for b, n in enumerate(lengths.tolist()):
        paths = [
            p
            for p in itertools.product(range(3), repeat=n)
            if all(permitted[b, t, p[t]] for t in range(n))
        ]
        scores = [
            sum(emissions[b, t, p[t]] for t in range(n))
            + sum(transitions[p[t - 1], p[t]] for t in range(1, n))
            for p in paths
        ]
        assert torch.isclose(log_z[b], torch.logsumexp(torch.stack(scores), 0), atol=1e-5)


def test_crf_entities_learn_save_and_score():
    from spacy_jmt.model import get_torch_network

    fix_random_seed(0)
    config = {"tasks": {**TASKS, "ents": {**TASKS["ents"], "crf": True}}, "model": TINY_MODEL}
    nlp = blank(config)
    nlp.initialize(lambda: examples_of(nlp))
    optimizer = Adam(0.01)
    for _ in range(60):
        nlp.update(examples_of(nlp), sgd=optimizer)
    transitions = get_torch_network(nlp.get_pipe("jmt").model).heads["ents"].transitions
    assert float(transitions.detach().abs().max()) > 0.1  # learned, from zeros
    for item in DATA:
        doc = annotate(nlp, item[0])
        assert [(e.start, e.end, e.label_) for e in doc.ents] == item[1]
        assert all(0.5 < s <= 1.0 for s in doc.spans["ents"].attrs["scores"])  # marginals
        assert relations_of(doc) == gold_relations(item)
    for empty in ("", "   ", "\n"):  # no tokens, or only whitespace: no spans, no error
        assert not nlp(empty).ents
    loaded = blank(config).from_bytes(nlp.to_bytes())
    text = "Carl Jones lives in Paris and works for Acme Corp ."
    assert [(e.text, e.label_) for e in annotate(loaded, text).ents] == [
        (e.text, e.label_) for e in annotate(nlp, text).ents
    ]
    # Docs without the task's annotation give it no loss.
    task = nlp.get_pipe("jmt")._task("ents")
    unannotated = [
        Example(Doc(nlp.vocab, words=["Bob", "ran"]), Doc(nlp.vocab, words=["Bob", "ran"]))
    ]
    docs = [eg.predicted for eg in unannotated]
    outputs = nlp.get_pipe("jmt").model.predict(docs)
    assert task.loss(unannotated, outputs) is None
