import copy
import json
import math
import pickle
import warnings

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from typer.testing import CliRunner

from spacy_jmt.cli import app
from spacy_jmt.relations import (
    HEADS_KEY,
    TAILS_KEY,
    Relation,
    concat_docs,
    has_relations,
    register_relations_extension,
    relations_from_json,
    relations_to_json,
    remove_relations,
)
from spacy_jmt.render import _dep_figure, relation_figures, render_relations

TEXT = "John Smith works for Acme Corp in Paris ."


@pytest.fixture
def nlp():
    return spacy.blank("en")


def annotated_doc(nlp, text=TEXT):
    """John Smith (PER, kb Q1) -Work_For 0.875-> Acme Corp (ORG) -OrgBased_In-> Paris (LOC)."""
    doc = nlp.make_doc(text)
    john, acme, paris = (
        Span(doc, 0, 2, "PER", kb_id="Q1"),
        Span(doc, 4, 6, "ORG"),
        Span(doc, 7, 8, "LOC"),
    )
    doc.ents = [john, acme, paris]
    doc._.relations = [(john, acme, "Work_For", 0.875), Relation(acme, paris, "OrgBased_In")]
    return doc


def as_tuples(doc):
    """Everything a relation holds, as plain values (comparable across Docs)."""
    return [
        (
            (r.head.start, r.head.end, r.head.label_, r.head.kb_id_, r.head.text),
            (r.tail.start, r.tail.end, r.tail.label_, r.tail.kb_id_, r.tail.text),
            r.label,
            r.score,
        )
        for r in doc._.relations
    ]


EXPECTED = [
    ((0, 2, "PER", "Q1", "John Smith"), (4, 6, "ORG", "", "Acme Corp"), "Work_For", 0.875),
    ((4, 6, "ORG", "", "Acme Corp"), (7, 8, "LOC", "", "Paris"), "OrgBased_In", 1.0),
]


def test_relations_api(nlp):
    doc = annotated_doc(nlp)
    relations = doc._.relations
    assert as_tuples(doc) == EXPECTED
    assert all(isinstance(r.head, Span) and isinstance(r.tail, Span) for r in relations)
    assert all(isinstance(r.label, str) and isinstance(r.score, float) for r in relations)
    assert relations[0].head.doc is doc
    assert [s.text for s in doc.spans[HEADS_KEY]] == ["John Smith", "Acme Corp"]
    assert [s.text for s in doc.spans[TAILS_KEY]] == ["Acme Corp", "Paris"]
    assert doc.spans[HEADS_KEY].attrs == {
        "labels": ["Work_For", "OrgBased_In"],
        "scores": [0.875, 1.0],
    }


def test_missing_versus_empty(nlp):
    doc = nlp.make_doc(TEXT)
    assert doc._.relations == [] and not has_relations(doc)
    assert doc._.relations_json is None
    doc._.relations = []
    assert doc._.relations == [] and has_relations(doc)
    assert doc._.relations_json == []
    doc = annotated_doc(nlp)
    doc._.relations = None
    assert not has_relations(doc) and HEADS_KEY not in doc.spans
    doc = annotated_doc(nlp)
    remove_relations(doc)
    assert not has_relations(doc)


def test_relation_list_is_read_only(nlp):
    doc = annotated_doc(nlp)
    relations = doc._.relations
    with pytest.raises(TypeError, match="assign a new list"):
        relations.append(relations[0])
    with pytest.raises(TypeError, match="assign a new list"):
        relations[0] = relations[1]
    assert copy.copy(relations) == relations
    doc._.relations = relations + [Relation(relations[0].tail, relations[0].head, "Employs", 0.5)]
    assert [r.label for r in doc._.relations] == ["Work_For", "OrgBased_In", "Employs"]


@pytest.mark.parametrize(
    "make_bad,match",
    [
        (lambda doc, other: (other[0:1], doc[0:1], "R", 1.0), "another Doc"),
        (lambda doc, other: (doc[0:1], doc[1:1], "R", 1.0), "empty span"),
        (lambda doc, other: (doc[0:1], doc[1:2], "", 1.0), "non-empty string"),
        (lambda doc, other: (doc[0:1], doc[1:2], 3, 1.0), "non-empty string"),
        (lambda doc, other: (doc[0:1], doc[1:2], "R", math.nan), "finite number"),
        (lambda doc, other: (doc[0:1], doc[1:2], "R", "0.5"), "finite number"),
        (lambda doc, other: (doc[0:1], doc[1:2], "R", True), "finite number"),
        (lambda doc, other: (doc[0], doc[1:2], "R", 1.0), "head must be a Span"),
        (lambda doc, other: (doc[0:1], doc[1:2]), "expected a Relation"),
        (lambda doc, other: "R", "expected a Relation"),
    ],
)
def test_invalid_relations_are_refused(nlp, make_bad, match):
    doc, other = annotated_doc(nlp), nlp.make_doc("Other text .")
    before = as_tuples(doc)
    with pytest.raises(ValueError, match=match):
        doc._.relations = [make_bad(doc, other)]
    assert as_tuples(doc) == before  # nothing was half-written


@pytest.mark.parametrize("store_user_data", [True, False])
def test_docbin_round_trip(nlp, store_user_data):
    docs = [annotated_doc(nlp), nlp.make_doc("No relations here ."), nlp.make_doc("Empty .")]
    docs[2]._.relations = []
    data = DocBin(docs=docs, store_user_data=store_user_data).to_bytes()
    loaded = list(DocBin().from_bytes(data).get_docs(spacy.blank("en").vocab))
    assert as_tuples(loaded[0]) == EXPECTED
    assert [has_relations(doc) for doc in loaded] == [True, False, True]
    assert [e.label_ for e in loaded[0].ents] == ["PER", "ORG", "LOC"]


def test_docbin_on_disk(nlp, tmp_path):
    DocBin(docs=[annotated_doc(nlp)]).to_disk(tmp_path / "rel.spacy")
    (doc,) = DocBin().from_disk(tmp_path / "rel.spacy").get_docs(nlp.vocab)
    assert as_tuples(doc) == EXPECTED


def test_doc_bytes_pickle_and_copy(nlp):
    doc = annotated_doc(nlp)
    assert as_tuples(Doc(nlp.vocab).from_bytes(doc.to_bytes())) == EXPECTED
    assert as_tuples(Doc(nlp.vocab).from_bytes(doc.to_bytes(exclude=["user_data"]))) == EXPECTED
    assert as_tuples(pickle.loads(pickle.dumps(doc))) == EXPECTED
    assert as_tuples(doc.copy()) == EXPECTED


def test_to_json_from_json(nlp):
    doc = annotated_doc(nlp)
    data = json.loads(json.dumps(doc.to_json(underscore=["relations_json"])))  # plain json
    assert data["_"]["relations_json"][0]["label"] == "Work_For"
    loaded = Doc(nlp.vocab).from_json(data)
    assert as_tuples(loaded) == EXPECTED
    # not annotated stays not annotated
    plain = nlp.make_doc("Nothing .")
    loaded = Doc(nlp.vocab).from_json(plain.to_json(underscore=["relations_json"]))
    assert not has_relations(loaded)


def test_to_json_helpers(nlp):
    doc = annotated_doc(nlp)
    other = nlp.make_doc(TEXT)
    relations_from_json(other, json.loads(json.dumps(relations_to_json(doc))))
    assert as_tuples(other) == EXPECTED
    with pytest.raises(ValueError, match="token boundaries"):
        relations_from_json(
            other, [{"head": {"start": 1, "end": 3}, "tail": {"start": 0, "end": 4}, "label": "R"}]
        )
    with pytest.raises(ValueError, match="must be a list"):
        relations_from_json(other, {"label": "R"})
    with pytest.raises(ValueError, match="head, tail, label"):
        relations_from_json(other, [{"head": {"start": 0, "end": 4}}])


def test_to_json_without_underscore_is_a_clear_error(nlp):
    data = annotated_doc(nlp).to_json()
    loaded = Doc(nlp.vocab).from_json(data)
    with pytest.raises(ValueError, match="relations_json"):
        _ = loaded._.relations
    # with no relations there is nothing to lose
    empty = nlp.make_doc("Nothing .")
    empty._.relations = []
    assert Doc(nlp.vocab).from_json(empty.to_json())._.relations == []


def test_to_json_of_relations_is_refused_by_spacy(nlp):
    with pytest.raises(ValueError, match="relations"):
        annotated_doc(nlp).to_json(underscore=["relations"])


def test_concat_docs_keeps_relations(nlp):
    first, second = (
        annotated_doc(nlp),
        annotated_doc(nlp, "Mary Jones works for Beta Inc in Rome ."),
    )
    middle = nlp.make_doc("Nothing here .")
    with pytest.raises(ValueError, match="concat_docs"):
        _ = Doc.from_docs([first, second])._.relations
    doc = concat_docs([first, middle, second])
    rels = doc._.relations
    assert [(r.head.text, r.label, r.tail.text, r.score) for r in rels] == [
        ("John Smith", "Work_For", "Acme Corp", 0.875),
        ("Acme Corp", "OrgBased_In", "Paris", 1.0),
        ("Mary Jones", "Work_For", "Beta Inc", 0.875),
        ("Beta Inc", "OrgBased_In", "Rome", 1.0),
    ]
    assert [r.head.label_ for r in rels] == ["PER", "ORG", "PER", "ORG"]
    assert not has_relations(concat_docs([middle, middle]))


def test_register_is_idempotent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_relations_extension()
        register_relations_extension()
    assert Doc.has_extension("relations") and Doc.has_extension("relations_json")


def test_register_replaces_a_foreign_extension(nlp):
    Doc.set_extension("relations", default=None, force=True)
    try:
        with pytest.warns(UserWarning, match="Replacing"):
            register_relations_extension()
    finally:
        register_relations_extension()
    assert as_tuples(annotated_doc(nlp)) == EXPECTED


@Language.component("spacy_jmt_test_relation_writer")
def relation_writer(doc: Doc) -> Doc:
    """Make the first and last tokens entities linked by a relation scored by length."""
    if len(doc) >= 2:
        head, tail = Span(doc, 0, 1, "A"), Span(doc, len(doc) - 1, len(doc), "B")
        doc.ents = [head, tail]
        doc._.relations = [(head, tail, "linked", 1.0 / len(doc))]
    return doc


def test_nlp_pipe_n_process():
    nlp = spacy.blank("en")
    nlp.add_pipe("spacy_jmt_test_relation_writer")
    texts = [
        "Alice met Bob .",
        "Carol phoned Dave today .",
        "Hi",
        "Eve knows Frank well , they say .",
    ]
    expected = [as_tuples(doc) for doc in nlp.pipe(texts)]
    assert expected[0][0][2:] == ("linked", 0.25)
    docs = list(nlp.pipe(texts, n_process=2, batch_size=1))
    assert [as_tuples(doc) for doc in docs] == expected


# -- rendering ------------------------------------------------------------------------------------


def test_render_dep(nlp):
    html = render_relations([annotated_doc(nlp)])
    assert html.startswith("\n<!DOCTYPE html>") or "<html" in html
    for text in ("Work_For 0.88", "OrgBased_In 1.00", "John Smith", "Acme Corp", "Paris", "PER"):
        assert text in html
    assert html.count("<svg") == 1
    svg = render_relations([annotated_doc(nlp)], page=False, show_scores=False)
    assert svg.startswith("<svg") and "<html" not in svg
    assert "Work_For" in svg and "Work_For 0.88" not in svg


def test_render_arc_direction(nlp):
    (figure,) = relation_figures(annotated_doc(nlp))
    # words: [John Smith] works for [Acme Corp] in [Paris] .: 2 arcs pointing right
    assert figure.count('class="displacy-arc"') == 2
    doc = annotated_doc(nlp)
    john, acme = doc.ents[0], doc.ents[1]
    doc._.relations = [(acme, john, "Employs", 0.5)]
    data, not_drawn = _dep_figure(doc[0 : len(doc)], doc._.relations, list(doc.ents), True)
    assert data["arcs"] == [{"start": 0, "end": 3, "label": "Employs 0.50", "dir": "left"}]
    assert [w["text"] for w in data["words"]][:4] == ["John Smith", "works", "for", "Acme Corp"]
    assert not not_drawn


def test_render_nested_arguments_and_escaping(nlp):
    doc = nlp.make_doc("lead toxicity was seen .")
    outer, inner = Span(doc, 0, 2, "Adverse-Effect"), Span(doc, 0, 1, "Drug")
    doc.spans["ents"] = [outer, inner]
    doc._.relations = [(outer, inner, "<AE>", 1.0)]
    html = render_relations(doc)
    assert "Not drawn" in html and "&lt;AE&gt;" in html and "<AE>" not in html
    span_html = render_relations(doc, style="span")
    assert "Adverse-Effect" in span_html and "Drug" in span_html and "&lt;AE&gt; 1.00" in span_html


def test_render_per_sentence(nlp):
    docs = [annotated_doc(nlp), annotated_doc(nlp, "Mary Jones works for Beta Inc in Rome .")]
    doc = concat_docs(docs)
    for token in doc:
        token.is_sent_start = token.i in (0, 9)
    assert len(relation_figures(doc)) == 2
    assert len(relation_figures(doc, per_sentence=False)) == 1
    cross = doc._.relations[0]
    doc._.relations = [Relation(cross.head, doc.ents[-1], "Cross")]
    assert len(relation_figures(doc)) == 1  # a relation crosses the sentences
    with pytest.raises(ValueError, match="style"):
        render_relations(doc, style="ent")


def test_cli_render_docbin_and_pipeline(nlp, tmp_path):
    DocBin(docs=[annotated_doc(nlp)]).to_disk(tmp_path / "rel.spacy")
    out = tmp_path / "out" / "rel.html"
    result = CliRunner().invoke(app, ["render", str(tmp_path / "rel.spacy"), str(out)])
    assert result.exit_code == 0, result.output
    assert "Work_For" in out.read_text() and "Acme Corp" in out.read_text()
    svg = tmp_path / "rel.svg"
    result = CliRunner().invoke(
        app, ["render", str(tmp_path / "rel.spacy"), str(svg), "--no-scores"]
    )
    assert result.exit_code == 0, result.output
    assert svg.read_text().startswith("<svg")
    pipeline = spacy.blank("en")
    pipeline.add_pipe("spacy_jmt_test_relation_writer")
    pipeline.to_disk(tmp_path / "pipeline")
    args = ["render", str(tmp_path / "pipeline"), str(out), "--text", "Alice met Bob ."]
    result = CliRunner().invoke(app, args + ["--style", "span"])
    assert result.exit_code == 0, result.output
    assert "linked" in out.read_text() and "Alice" in out.read_text()


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--text", "x"], "--text is for a pipeline"),
        (["--style", "span"], "SVG output needs --style dep"),
    ],
)
def test_cli_render_errors(nlp, tmp_path, extra, expected):
    DocBin(docs=[annotated_doc(nlp)]).to_disk(tmp_path / "rel.spacy")
    result = CliRunner().invoke(
        app, ["render", str(tmp_path / "rel.spacy"), str(tmp_path / "o.svg")] + extra
    )
    assert result.exit_code == 1
    assert expected in result.output


def test_cli_render_pipeline_needs_text(tmp_path):
    result = CliRunner().invoke(app, ["render", str(tmp_path), str(tmp_path / "o.html")])
    assert result.exit_code == 1 and "--text" in result.output
