import json
import warnings
from collections import Counter
from pathlib import Path

import pytest
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_jmt.cli import app
from spacy_jmt.convert import (
    DataFormatError,
    DataWarning,
    convert,
    merge_uner,
    merge_uner_into_conllu,
    read_docs,
    read_spert,
    read_uner,
    spert_to_docs,
)
from spacy_jmt.relations import has_relations

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not found")

UNER = """\
# newdoc id = d1
# sent_id = d1-0001
# text = I don't know Tampa Bay.
1\tI\tO\t-\t-
2\tdo\tO\t-\t-
3\tn't\tO\t-\t-
4\tknow\tO\t-\t-
5\tTampa\tB-LOC\t-\tstephen
6\tBay\tI-LOC\t-\tstephen
7\t.\tO\t-\t-

# sent_id = d1-0002
# text = Ask Acme Corp Mary
1\tAsk\tO\t-\t-
2\tAcme\tB-ORG\t-\tstephen
3\tCorp\tI-ORG\t-\tstephen
4\tMary\tI-PER\t-\tstephen

# newdoc id = d2
# sent_id = d2-0001
# text = Hello there
1\tHello\tO\t-\t-
2\tthere\tO\t-\t-
"""

# UD order differs from UNER's (documents sorted by id there); d3-0001 has no UNER sentence.
CONLLU = """\
# sent_id = d2-0001
# text = Hello there
1\tHello\thello\tINTJ\tUH\t_\t0\troot\t0:root\t_
2\tthere\tthere\tADV\tRB\t_\t1\tadvmod\t1:advmod\t_

# sent_id = d3-0001
# text = Bye
1\tBye\tbye\tINTJ\tUH\t_\t0\troot\t0:root\t_

# sent_id = d1-0001
# text = I don't know Tampa Bay.
1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t4:nsubj\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t4:aux\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t4:advmod\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t0:root\t_
5\tTampa\tTampa\tPROPN\tNNP\t_\t6\tcompound\t6:compound\t_
6\tBay\tBay\tPROPN\tNNP\t_\t4\tobj\t4:obj\tSpaceAfter=No
7\t.\t.\tPUNCT\t.\t_\t4\tpunct\t4:punct\t_

# sent_id = d1-0002
# text = Ask Acme Corp Mary
1\tAsk\task\tVERB\tVB\t_\t0\troot\t0:root\t_
2\tAcme\tAcme\tPROPN\tNNP\t_\t3\tcompound\t3:compound\t_
3\tCorp\tCorp\tPROPN\tNNP\t_\t1\tobj\t1:obj\t_
4\tMary\tMary\tPROPN\tNNP\t_\t1\tvocative\t1:vocative\t_
"""

SPERT = [
    {
        "tokens": ["John", "Smith", "works", "for", "Acme", "Corp", "in", "Paris", "."],
        "entities": [
            {"type": "Peop", "start": 0, "end": 2},
            {"type": "Org", "start": 4, "end": 6},
            {"type": "Loc", "start": 7, "end": 8},
        ],
        "relations": [
            {"type": "Work_For", "head": 0, "tail": 1},
            {"type": "OrgBased_In", "head": 1, "tail": 2},
        ],
        "orig_id": 17,
    },
    {"tokens": ["Nothing", "here", "."], "entities": [], "relations": []},
    {  # nested entities, as in ADE, and an exact duplicate
        "tokens": ["Lead", "toxicity", "after", "lead", "exposure", "."],
        "entities": [
            {"type": "Adverse-Effect", "start": 0, "end": 2},
            {"type": "Drug", "start": 0, "end": 1},
            {"type": "Drug", "start": 3, "end": 4},
            {"type": "Adverse-Effect", "start": 3, "end": 5},
            {"type": "Drug", "start": 3, "end": 4},
        ],
        "relations": [
            {"type": "Adverse-Effect", "head": 0, "tail": 1},
            {"type": "Adverse-Effect", "head": 3, "tail": 4},
        ],
        "orig_id": 18,
    },
]


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    return path


def write_json(tmp_path: Path, data, name: str = "data.json") -> Path:
    return write(tmp_path, json.dumps(data, indent=1), name)


def ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def span_ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.spans["ents"]]


def relations(doc):
    return [
        (r.head.text, r.head.label_, r.label, r.tail.text, r.tail.label_) for r in doc._.relations
    ]


# -- Universal NER ---------------------------------------------------------------------------------


def test_uner_tokens_entities_and_sentences(tmp_path):
    (doc,) = read_uner(write(tmp_path, UNER, "a.iob2"), Vocab(), n_sents=3)
    assert [t.i for t in doc if t.is_sent_start] == [0, 7, 11]
    # SpaceAfter from "# text": "do n't" is "don't", "Bay." has no space
    assert doc.text.startswith("I don't know Tampa Bay. Ask Acme Corp Mary Hello there")
    # a stray I-PER after I-ORG starts a new entity
    assert ents(doc) == [(4, 6, "LOC"), (8, 10, "ORG"), (10, 11, "PER")]
    assert span_ents(doc) == ents(doc)
    assert [t.ent_iob_ for t in doc[:5]] == ["O", "O", "O", "O", "B"]  # O, not missing
    docs = read_uner(write(tmp_path, UNER, "a.iob2"), Vocab(), n_sents=2)
    assert [len(list(d.sents)) for d in docs] == [2, 1]


def test_uner_text_that_does_not_match_gives_single_spaces(tmp_path):
    text = UNER.replace("# text = Ask Acme Corp Mary", "# text = something else")
    docs = read_uner(write(tmp_path, text, "a.iob2"), Vocab(), n_sents=1)
    assert docs[1].text == "Ask Acme Corp Mary"
    assert docs[0].text == "I don't know Tampa Bay."


@pytest.mark.parametrize(
    "line_no,bad_line,expected",
    [
        (4, "1\tI", "expected tab-separated columns"),
        (5, "3\tdo\tO\t-\t-", "expected token index 2, got '3'"),
        (5, "2\t \tO\t-\t-", "empty token"),
        (8, "5\tTampa\tB-\t-\t-", "invalid IOB2 tag 'B-'"),
        (8, "5\tTampa\tX-LOC\t-\t-", "invalid IOB2 tag 'X-LOC'"),
    ],
)
def test_uner_malformed_line(tmp_path, line_no, bad_line, expected):
    lines = UNER.split("\n")
    lines[line_no - 1] = bad_line
    path = write(tmp_path, "\n".join(lines), "bad.iob2")
    with pytest.raises(DataFormatError, match=expected) as err:
        read_uner(path, Vocab())
    assert str(err.value).startswith(f"{path}:{line_no}: ")


def test_uner_sentence_without_tokens(tmp_path):
    path = write(tmp_path, "# sent_id = x\n# text = \n\n" + UNER, "bad.iob2")
    with pytest.raises(DataFormatError, match=r"bad.iob2:1: sentence has no tokens"):
        read_uner(path, Vocab())


# -- merging UNER into UD ------------------------------------------------------------------------


def test_merge_uner_into_conllu(tmp_path):
    conllu, uner = write(tmp_path, CONLLU, "a.conllu"), write(tmp_path, UNER, "a.iob2")
    docs, report = merge_uner(conllu, uner, Vocab(), n_sents=10)
    (doc,) = docs
    assert [t.i for t in doc if t.is_sent_start] == [0, 2, 3, 10]  # UD order
    assert doc[3].pos_ == "PRON" and doc[5].dep_ == "advmod" and doc[8].tag_ == "NNP"
    assert ents(doc) == [(7, 9, "LOC"), (11, 13, "ORG"), (13, 14, "PER")]
    assert span_ents(doc) == ents(doc)
    # d2-0001 is annotated (O); d3-0001 has no UNER sentence: missing, not O
    assert [t.ent_iob_ for t in doc[:4]] == ["O", "O", "", "O"]
    assert (report.n_conllu, report.n_uner, report.n_identical) == (4, 3, 3)
    assert report.unannotated == ["d3-0001"] and not report.projected and not report.unused
    with pytest.warns(DataWarning, match=r"1 UD sentences left without entity annotation"):
        merge_uner_into_conllu(conllu, uner, Vocab())


def test_merge_tokens_differ_is_an_error_naming_file_and_sent_id(tmp_path):
    uner_text = UNER.replace("1\tAsk\tO", "1\tAsk-\tO")
    conllu, uner = write(tmp_path, CONLLU, "a.conllu"), write(tmp_path, uner_text, "a.iob2")
    with pytest.raises(DataFormatError, match=r"sent_id d1-0002: tokens differ") as err:
        merge_uner(conllu, uner, Vocab())
    assert str(err.value).startswith(f"{uner}:12: ") and "a.conllu (line 21)" in str(err.value)


def test_merge_projects_through_characters(tmp_path):
    # UNER splits "AcmeCorp" where UD has one token; entity boundaries still fit UD tokens
    conllu_text = CONLLU.replace("2\tAcme\tAcme", "2\tAc\tAc").replace(
        "3\tCorp\tCorp", "3\tmeCorp\tx"
    )
    uner_text = UNER.replace("# sent_id = d2-0001", "# sent_id = d9-0001")  # not in UD
    conllu, uner = write(tmp_path, conllu_text, "a.conllu"), write(tmp_path, uner_text, "a.iob2")
    with pytest.raises(DataFormatError, match="sent_id d1-0002: tokens differ"):
        merge_uner(conllu, write(tmp_path, UNER, "b.iob2"), Vocab())
    (doc,), report = merge_uner(conllu, uner, Vocab(), on_mismatch="project")
    assert ents(doc)[1:] == [(11, 13, "ORG"), (13, 14, "PER")]
    assert report.projected == ["d1-0002"] and report.unused == ["d9-0001"]
    assert report.unannotated == ["d2-0001", "d3-0001"]
    # a boundary inside a UD token cannot be projected: the sentence is left unannotated
    conllu_text = CONLLU.replace("3\tCorp\tCorp", "3\tCorpMary\tx").replace(
        "4\tMary\tMary", "4\tx\tx"
    )
    uner_text = UNER.replace("4\tMary\tI-PER", "4\tMary\tI-PER\t-\t-\n5\tx\tO")
    conllu, uner = write(tmp_path, conllu_text, "b.conllu"), write(tmp_path, uner_text, "b.iob2")
    (doc,), report = merge_uner(conllu, uner, Vocab(), on_mismatch="project")
    assert report.unannotated == ["d3-0001", "d1-0002"] and report.lost_entities == 2
    assert all(t.ent_iob_ == "" for t in doc[10:])


@pytest.mark.parametrize(
    "conllu_text,uner_text,expected",
    [
        (CONLLU, UNER.replace("d2-0001", "d9-0001"), r"a.iob2:\d+: sent_id d9-0001 is not in"),
        (CONLLU, UNER.replace("d1-0002", "d1-0001"), r"a.iob2:\d+: duplicate sent_id d1-0001"),
        (
            CONLLU.replace("# sent_id = d3-0001\n", ""),
            UNER,
            r"a.conllu:6: sentence has no '# sent_id'",
        ),
        (CONLLU, UNER.replace("d1-0", "x").replace("d2-0", "y"), "no sent_id in common"),
    ],
)
def test_merge_errors(tmp_path, conllu_text, uner_text, expected):
    conllu, uner = write(tmp_path, conllu_text, "a.conllu"), write(tmp_path, uner_text, "a.iob2")
    with pytest.raises(DataFormatError, match=expected):
        merge_uner(conllu, uner, Vocab())


def test_merge_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="on_mismatch"):
        merge_uner(tmp_path / "a", tmp_path / "b", Vocab(), on_mismatch="skip")


# -- SpERT JSON ------------------------------------------------------------------------------------


def test_spert_docs_entities_and_relations(tmp_path):
    docs, overlaps = spert_to_docs(write_json(tmp_path, SPERT), Vocab())
    assert len(docs) == 3
    doc = docs[0]
    assert doc.text == "John Smith works for Acme Corp in Paris ."
    assert [t.is_sent_start for t in doc][:2] == [True, False]
    assert ents(doc) == span_ents(doc) == [(0, 2, "Peop"), (4, 6, "Org"), (7, 8, "Loc")]
    assert relations(doc) == [
        ("John Smith", "Peop", "Work_For", "Acme Corp", "Org"),
        ("Acme Corp", "Org", "OrgBased_In", "Paris", "Loc"),
    ]
    assert [r.score for r in doc._.relations] == [1.0, 1.0]
    assert has_relations(docs[1]) and docs[1]._.relations == [] and ents(docs[1]) == []


def test_spert_overlaps_are_kept_and_reported(tmp_path):
    path = write_json(tmp_path, SPERT)
    docs, overlaps = spert_to_docs(path, Vocab())
    doc = docs[2]
    # all distinct entities in the span group (the exact duplicate once), a subset in doc.ents
    assert span_ents(doc) == [
        (0, 2, "Adverse-Effect"),
        (0, 1, "Drug"),
        (3, 4, "Drug"),
        (3, 5, "Adverse-Effect"),
    ]
    assert ents(doc) == [(0, 2, "Adverse-Effect"), (3, 5, "Adverse-Effect")]
    assert relations(doc) == [
        ("Lead toxicity", "Adverse-Effect", "Adverse-Effect", "Lead", "Drug"),
        ("lead exposure", "Adverse-Effect", "Adverse-Effect", "lead", "Drug"),
    ]
    assert [(o.item, o.first, o.second) for o in overlaps] == [
        (3, (0, 2, "Adverse-Effect"), (0, 1, "Drug")),
        (3, (3, 4, "Drug"), (3, 5, "Adverse-Effect")),
    ]
    with pytest.warns(DataWarning) as record:
        read_spert(path, Vocab())
    message = str(record[0].message)
    assert (
        str(path) in message
        and "2 pairs of overlapping gold entities in 1 items (items 3)" in message
    )
    assert "2 left out" in message


def test_spert_no_warning_without_overlaps(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_spert(write_json(tmp_path, SPERT[:2]), Vocab())) == 2


def test_spert_grouping_keeps_relations(tmp_path):
    docs, _ = spert_to_docs(write_json(tmp_path, SPERT), Vocab(), n_sents=2)
    assert len(docs) == 2
    assert [t.i for t in docs[0] if t.is_sent_start] == [0, 9]
    assert relations(docs[0]) == relations(
        spert_to_docs(write_json(tmp_path, SPERT[:1]), Vocab())[0][0]
    )
    assert len(docs[1].spans["ents"]) == 4 and len(docs[1]._.relations) == 2


def test_spert_docbin_round_trip(tmp_path):
    with pytest.warns(DataWarning, match="overlapping"):
        convert(write_json(tmp_path, SPERT), tmp_path / "out.spacy", "spert", n_sents=1)
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(Vocab()))
    assert relations(docs[0])[0] == ("John Smith", "Peop", "Work_For", "Acme Corp", "Org")
    assert len(docs[2].spans["ents"]) == 4


def bad(item_index, **changes):
    data = json.loads(json.dumps(SPERT))
    item = data[item_index]
    for key, value in changes.items():
        if value is None:
            del item[key]
        else:
            item[key] = value
    return data


@pytest.mark.parametrize(
    "data,expected",
    [
        (bad(0, tokens=None), r"item 1: item: missing key\(s\) \['tokens'\]"),
        (bad(1, text="x"), r"item 2: item: unknown key\(s\) \['text'\]"),
        (bad(0, tokens=[]), "item 1: tokens must be a non-empty list"),
        (bad(0, tokens=["a", ""]), r"item 1: token 1 must be a non-empty string .*\(orig_id 17\)"),
        (bad(0, tokens=["a b"]), "token 0 must be a non-empty string without whitespace"),
        (bad(1, entities={}), "item 2: entities must be a list"),
        (
            bad(1, entities=[{"type": "X", "start": 0, "end": 4}]),
            r"item 2: entity 0: span \[0, 4\)",
        ),
        (bad(1, entities=[{"type": "X", "start": 1, "end": 1}]), r"entity 0: span \[1, 1\)"),
        (bad(1, entities=[{"type": "X", "start": True, "end": 2}]), r"entity 0: span \[True, 2\)"),
        (
            bad(1, entities=[{"type": "", "start": 0, "end": 1}]),
            "entity 0: type must be a non-empty",
        ),
        (bad(1, entities=[{"type": "X", "start": 0}]), r"entity 0: missing key\(s\) \['end'\]"),
        (bad(1, entities=[{"type": "X", "start": 0, "end": 1, "id": 3}]), r"entity 0: unknown key"),
        (bad(1, entities=["X"]), "entity 0 must be an object"),
        (
            bad(0, relations=[{"type": "R", "head": 0, "tail": 3}]),
            "item 1: relation 0: tail 3 is not an index",
        ),
        (
            bad(0, relations=[{"type": "R", "head": -1, "tail": 0}]),
            "relation 0: head -1 is not an index",
        ),
        (bad(0, relations=[{"type": "R", "head": 0}]), r"relation 0: missing key\(s\) \['tail'\]"),
        (bad(0, relations=[{"type": 3, "head": 0, "tail": 1}]), "relation 0: type must be"),
        ([SPERT[0], "x"], "item 2: item must be an object"),
        ({"tokens": []}, r":1: expected a non-empty JSON list"),
        ([], r":1: expected a non-empty JSON list"),
    ],
)
def test_spert_malformed_items(tmp_path, data, expected):
    path = write_json(tmp_path, data, "bad.json")
    with pytest.raises(DataFormatError, match=expected) as err:
        spert_to_docs(path, Vocab())
    assert str(err.value).startswith(str(path))


def test_spert_invalid_json_names_line(tmp_path):
    path = write(
        tmp_path, '[\n {"tokens": ["a"],\n  "entities": [] "relations": []}\n]', "bad.json"
    )
    with pytest.raises(DataFormatError, match=r"bad.json:3: invalid JSON"):
        spert_to_docs(path, Vocab())
    path.write_bytes(b'["\xff"]')
    with pytest.raises(DataFormatError, match="not valid UTF-8"):
        spert_to_docs(path, Vocab())


# -- read_docs and the CLI -------------------------------------------------------------------------


def test_read_docs_formats(tmp_path):
    assert len(read_docs(write(tmp_path, UNER, "a.iob2"), "uner", n_sents=1)) == 3
    assert len(read_docs(write_json(tmp_path, SPERT[:2]), "spert", n_sents=1)) == 2


def test_read_docs_spans_key_and_uner_merge(tmp_path):
    docs = read_docs(write_json(tmp_path, SPERT[:2]), "spert", n_sents=1, spans_key="c04")
    assert all("c04" in doc.spans and "ents" not in doc.spans for doc in docs)
    assert relations(docs[0])  # the relations keep their arguments
    conllu, uner = write(tmp_path, CONLLU, "a.conllu"), write(tmp_path, UNER, "a.iob2")
    with pytest.warns(DataWarning):
        (doc,) = read_docs(conllu, "conllu", uner_path=uner)
    assert span_ents(doc) == ents(doc) == [(7, 9, "LOC"), (11, 13, "ORG"), (13, 14, "PER")]
    assert doc[5].dep_ == "advmod"
    with pytest.raises(ValueError, match="only be merged into CoNLL-U"):
        read_docs(uner, "uner", uner_path=uner)


@pytest.mark.filterwarnings("ignore::spacy_jmt.convert.DataWarning")
def test_cli_convert_spert_and_uner(tmp_path):
    args = [
        "convert",
        str(write_json(tmp_path, SPERT)),
        str(tmp_path / "s.spacy"),
        "-f",
        "spert",
        "-n",
        "1",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Wrote 3 docs (3 sentences)" in result.output
    args = [
        "convert",
        str(write(tmp_path, UNER, "a.iob2")),
        str(tmp_path / "u.spacy"),
        "-f",
        "uner",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (doc,) = DocBin().from_disk(tmp_path / "u.spacy").get_docs(Vocab())
    assert ents(doc)[0] == (4, 6, "LOC")
    path = write_json(tmp_path, bad(0, tokens=None), "bad.json")
    result = CliRunner().invoke(
        app, ["convert", str(path), str(tmp_path / "b.spacy"), "-f", "spert"]
    )
    assert result.exit_code == 1 and "bad.json: item 1: item: missing key" in result.output


# -- the real datasets (skipped without ../shared/data) --------------------------------------------


def counts(docs):
    ent_types = Counter(e.label_ for doc in docs for e in doc.spans["ents"])
    rel_types = Counter(r.label for doc in docs for r in doc._.relations)
    return ent_types, rel_types


@needs_data
def test_real_conll04_dev():
    docs, overlaps = spert_to_docs(DATA / "conll04" / "conll04_dev.json", Vocab())
    ent_types, rel_types = counts(docs)
    assert len(docs) == 231 and not overlaps
    assert ent_types == {"Loc": 322, "Org": 170, "Peop": 283, "Other": 118}
    assert sum(rel_types.values()) == 343
    assert sum(len(doc.ents) for doc in docs) == 893


@needs_data
def test_real_ade_split_0_test():
    docs, overlaps = spert_to_docs(DATA / "ade" / "ade_split_0_test.json", Vocab())
    ent_types, rel_types = counts(docs)
    assert len(docs) == 427 and len(overlaps) == 12
    assert sum(ent_types.values()) == 1070 and rel_types == {"Adverse-Effect": 666}
    assert sum(len(doc.ents) for doc in docs) == 1070 - 12


@needs_data
def test_real_uner_dev_merged_into_ud_dev():
    uner = DATA / "uner_english_ewt" / "en_ewt-ud-dev.iob2"
    docs = read_uner(uner, Vocab(), n_sents=10)
    assert Counter(e.label_ for doc in docs for e in doc.ents) == {
        "PER": 343,
        "ORG": 224,
        "LOC": 399,
    }
    conllu = DATA / "ud_english_ewt" / "en_ewt-ud-dev.conllu"
    with pytest.raises(DataFormatError, match="tokens differ"):
        merge_uner(conllu, uner, Vocab())
    merged, report = merge_uner(conllu, uner, Vocab(), on_mismatch="project")
    assert report.n_identical == 1998 and len(report.projected) == 3 and not report.unannotated
    assert sum(len(doc.ents) for doc in merged) == 966
    assert all(doc.has_annotation("DEP") and doc.has_annotation("POS") for doc in merged)
