import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_jmt.cli import app
from spacy_jmt.convert import (
    DataFormatError,
    _chunks_from_iob,
    convert,
    read_conll2000,
    read_conllu,
    split_dev,
)

CONLL2000 = """\
He PRP B-NP
reckons VBZ B-VP
the DT B-NP
current JJ I-NP
account NN I-NP
. . O

Rockwell NNP I-NP
Corp. NNP I-NP
said VBD B-VP
the DT B-NP
deal NN I-NP
calls VBZ I-VP
for IN B-PP
. . O

Confidence NN B-NP
rose VBD B-VP
"""

CONLLU = """\
# newdoc id = d1
# sent_id = s1
# text = I don't know.
1\tI\tI\tPRON\tPRP\tCase=Nom\t4\tnsubj\t4:nsubj\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\tMood=Ind\t4\taux\t4:aux\t_
3\tn't\tnot\tPART\tRB\tPolarity=Neg\t4\tadvmod\t4:advmod\t_
4\tknow\tknow\tVERB\tVB\tVerbForm=Inf\t0\troot\t0:root\tSpaceAfter=No
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t4:punct\t_

# sent_id = s2
# text = Go home!
1\tGo\tgo\tVERB\tVB\tMood=Imp\t0\troot\t0:root\t_
1.1\twent\tgo\tVERB\tVBD\t_\t_\t_\t1:conj\t_
2\thome\thome\tADV\tRB\t_\t1\tadvmod\t1:advmod\tSpaceAfter=No
3\t!\t!\tPUNCT\t.\t_\t1\tpunct\t1:punct\t_
"""


def write(tmp_path: Path, text: str, name: str = "data.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    return path


def replace_line(text: str, line_no: int, new_line: str) -> str:
    lines = text.split("\n")
    lines[line_no - 1] = new_line
    return "\n".join(lines)


def test_conll2000_tokens_tags_and_sentences(tmp_path):
    docs = read_conll2000(write(tmp_path, CONLL2000), Vocab(), n_sents=2)
    assert len(docs) == 2
    doc = docs[0]
    assert doc.text == "He reckons the current account . Rockwell Corp. said the deal calls for ."
    assert [t.tag_ for t in doc[:3]] == ["PRP", "VBZ", "DT"]
    assert [t.i for t in doc if t.is_sent_start] == [0, 6]
    assert all(t.is_sent_start is False for t in doc if t.i not in (0, 6))
    assert [s.start for s in doc.sents] == [0, 6]
    assert docs[1].text == "Confidence rose"
    assert len(read_conll2000(write(tmp_path, CONLL2000), Vocab(), n_sents=1)) == 3


def test_conll2000_chunks_with_stray_i(tmp_path):
    doc = read_conll2000(write(tmp_path, CONLL2000), Vocab(), n_sents=10)[0]
    chunks = [(s.text, s.label_) for s in doc.spans["chunks"]]
    assert chunks == [
        ("He", "NP"),
        ("reckons", "VP"),
        ("the current account", "NP"),
        ("Rockwell Corp.", "NP"),  # a stray I-NP at the sentence start opens a chunk
        ("said", "VP"),
        ("the deal", "NP"),
        ("calls", "VP"),  # I-VP after an NP opens a new VP chunk
        ("for", "PP"),
        ("Confidence", "NP"),
        ("rose", "VP"),
    ]


def test_conll2000_crlf_and_no_final_newline(tmp_path):
    text = CONLL2000.strip().replace("\n", "\r\n")
    docs = read_conll2000(write(tmp_path, text), Vocab(), n_sents=10)
    assert [t.text for t in docs[0]][-2:] == ["Confidence", "rose"]
    assert len(docs[0].spans["chunks"]) == 10


@pytest.mark.parametrize(
    "line_no,bad_line,expected",
    [
        (3, "the DT", "expected 3 space-separated columns (word POS chunk), got 2: 'the DT'"),
        (9, "Corp. NNP I-NP extra", "got 4"),
        (10, "said VBD X-NP", "invalid chunk tag 'X-NP'"),
        (1, "He PRP B-", "invalid chunk tag 'B-'"),
    ],
)
def test_conll2000_malformed_line(tmp_path, line_no, bad_line, expected):
    path = write(tmp_path, replace_line(CONLL2000, line_no, bad_line))
    with pytest.raises(DataFormatError) as excinfo:
        read_conll2000(path, Vocab())
    assert excinfo.value.line == line_no
    assert str(excinfo.value).startswith(f"{path}:{line_no}: ")
    assert expected in str(excinfo.value)


@pytest.mark.parametrize("text", ["", "\n\n  \n\t\n"])
def test_conll2000_blank_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError, match=rf"^{re.escape(str(path))}:1: file contains no"):
        read_conll2000(path, Vocab())


def test_n_sents_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="n_sents"):
        read_conll2000(write(tmp_path, CONLL2000), Vocab(), n_sents=0)


tags = st.lists(st.sampled_from(["O", "B-NP", "I-NP", "B-VP", "I-VP"]), max_size=30)


@given(tags)
def test_chunks_from_iob_cover_exactly_the_tagged_tokens(iob):
    chunks = _chunks_from_iob(iob)
    covered = [i for start, end, _ in chunks for i in range(start, end)]
    assert covered == [i for i, tag in enumerate(iob) if tag != "O"]
    for start, end, label in chunks:
        assert all(tag[2:] == label for tag in iob[start:end])
        assert all(tag.startswith("I-") for tag in iob[start + 1 : end])
    starts = {start for start, _, _ in chunks}
    assert {i for i, tag in enumerate(iob) if tag.startswith("B-")} <= starts


def test_conllu_words_tags_heads_and_sentences(tmp_path):
    docs = read_conllu(write(tmp_path, CONLLU, "data.conllu"), Vocab(), n_sents=10)
    assert len(docs) == 1
    doc = docs[0]
    assert doc.text == "I don't know. Go home! "  # no SpaceAfter=No on "!"
    assert [t.text for t in doc] == ["I", "do", "n't", "know", ".", "Go", "home", "!"]
    assert [t.tag_ for t in doc] == ["PRP", "VBP", "RB", "VB", ".", "VB", "RB", "."]
    assert [t.pos_ for t in doc] == ["PRON", "AUX", "PART", "VERB", "PUNCT"] + [
        "VERB",
        "ADV",
        "PUNCT",
    ]
    assert [t.head.i for t in doc] == [3, 3, 3, 3, 3, 5, 5, 5]
    assert [t.dep_ for t in doc] == ["nsubj", "aux", "advmod", "ROOT", "punct"] + [
        "ROOT",
        "advmod",
        "punct",
    ]
    assert [t.lemma_ for t in doc[:3]] == ["I", "do", "not"]
    assert [s.start for s in doc.sents] == [0, 5]
    assert doc[5].is_sent_start and doc[6].is_sent_start is False
    assert len(read_conllu(write(tmp_path, CONLLU, "data.conllu"), Vocab(), n_sents=1)) == 2


@pytest.mark.parametrize(
    "line_no,bad_line,expected",
    [
        (4, "1\tI\tI\tPRON\tPRP\tCase=Nom\t4\tnsubj\t4:nsubj", "expected 10 tab-separated"),
        (4, "1\tI\tI\tPRON\tPRP\tCase=Nom\t9\tnsubj\t4:nsubj\t_", "HEAD 9 out of range"),
        (6, "2\tdo\tdo\tAUX\tVBP\t_\tx\taux\t4:aux\t_", "HEAD must be an integer, got 'x'"),
        (6, "2\tdo\tdo\tAUX\tVBP\t_\t_\taux\t4:aux\t_", "HEAD must be an integer, got '_'"),
        (8, "4\tknow\tknow\tVERB\tVB\t_\t2\troot\t0:root\t_", "word 4 is part of a HEAD cycle"),
        (7, "4\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t4:advmod\t_", "expected word ID 3, got 4"),
        (7, "x\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t4:advmod\t_", "invalid ID 'x'"),
        (7, "3\tn't\tnot\tNOPE\tRB\t_\t4\tadvmod\t4:advmod\t_", "invalid UPOS 'NOPE'"),
        (5, "2-1\tdon't\t_\t_\t_\t_\t_\t_\t_\t_", "invalid multiword range '2-1'"),
        (5, "2-9\tdon't\t_\t_\t_\t_\t_\t_\t_\t_", "multiword range ends at 9"),
        (6, "2\tdo\tdo\tAUX\tVBP\t_\t\u00b2\taux\t4:aux\t_", "HEAD must be an integer"),
        (15, "2\thome\thome\tADV\tRB\t_\t4\tadvmod\t1:advmod\t_", "HEAD 4 out of range"),
        (6, "2\tdo\tdo\tAUX\tVBP\t0\t4\taux\t4:aux\t_", "FEATS must be _ or Name=Value"),
        (9, "5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t4:punct\t", "column 10 is blank"),
        (9, "5\t \t.\tPUNCT\t.\t_\t4\tpunct\t4:punct\t_", "column 2 is blank"),
    ],
)
def test_conllu_malformed_line(tmp_path, line_no, bad_line, expected):
    path = write(tmp_path, replace_line(CONLLU, line_no, bad_line), "data.conllu")
    with pytest.raises(DataFormatError) as excinfo:
        read_conllu(path, Vocab())
    assert excinfo.value.line == line_no
    assert str(excinfo.value).startswith(f"{path}:{line_no}: ")
    assert expected in str(excinfo.value)


def test_conllu_sentence_without_words(tmp_path):
    path = write(tmp_path, CONLLU + "\n# sent_id = s3\n# text = \n", "data.conllu")
    with pytest.raises(DataFormatError, match=r":18: sentence has no words"):
        read_conllu(path, Vocab())


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"a NN B-NP\n\nb\xff NN B-NP\n")
    with pytest.raises(DataFormatError, match=r":3: not valid UTF-8"):
        read_conll2000(path, Vocab())


def test_conllu_blank_file(tmp_path):
    path = write(tmp_path, "\n\n", "data.conllu")
    with pytest.raises(DataFormatError, match=r":1: file contains no sentences"):
        read_conllu(path, Vocab())


def test_convert_writes_docbin(tmp_path):
    output = tmp_path / "out" / "train.spacy"
    assert convert(write(tmp_path, CONLL2000), output, "conll2000", n_sents=2) == 2
    docs = list(DocBin().from_disk(output).get_docs(Vocab()))
    assert len(docs) == 2
    assert [s.label_ for s in docs[0].spans["chunks"]][:3] == ["NP", "VP", "NP"]
    assert docs[0][0].tag_ == "PRP"
    assert [s.start for s in docs[0].sents] == [0, 6]
    assert convert(write(tmp_path, CONLLU, "d.conllu"), output, "conllu") == 1
    doc = next(DocBin().from_disk(output).get_docs(Vocab()))
    assert [t.head.i for t in doc] == [3, 3, 3, 3, 3, 5, 5, 5]


def test_convert_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="conll2000, conllu"):
        convert(write(tmp_path, CONLL2000), tmp_path / "x.spacy", "iob")


def test_split_dev_takes_the_last_docs(tmp_path):
    docs = read_conll2000(write(tmp_path, CONLL2000), Vocab(), n_sents=1)
    train, dev = split_dev(docs, 0.3)
    assert [d.text for d in train] == [d.text for d in docs[:2]]
    assert [d.text for d in dev] == ["Confidence rose"]
    assert split_dev(docs, 0.0) == (docs, [])
    for bad in (1.0, -0.1, 0.1):  # 0.1 of 3 docs rounds to an empty dev set
        with pytest.raises(ValueError):
            split_dev(docs, bad)


def test_cli_convert_with_dev_split(tmp_path):
    text = "\n".join(f"w{i} NN B-NP\n" for i in range(20))
    train, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    args = ["convert", str(write(tmp_path, text)), str(train), "--format", "conll2000"]
    args += ["--n-sents", "2", "--dev-fraction", "0.1", "--dev-output", str(dev)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Wrote 9 docs (18 sentences)" in result.output
    assert [d.text for d in DocBin().from_disk(dev).get_docs(Vocab())] == ["w18 w19"]
    assert len(DocBin().from_disk(train)) == 9


@pytest.mark.parametrize(
    "text,extra,expected",
    [
        ("a NN B-NP\nb NN\n", [], "data.txt:2: expected 3 space-separated columns"),
        (CONLL2000, ["--dev-fraction", "0.5"], "--dev-output must be given"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, text, extra, expected):
    args = ["convert", str(write(tmp_path, text)), str(tmp_path / "x.spacy"), "-f", "conll2000"]
    result = CliRunner().invoke(app, args + extra)
    assert result.exit_code == 1
    assert expected in result.output
    assert result.output.strip().count("\n") == 0
    assert "Traceback" not in result.output


def test_cli_missing_input(tmp_path):
    missing = tmp_path / "missing.txt"
    output = tmp_path / "x.spacy"
    result = CliRunner().invoke(app, ["convert", str(missing), str(output), "-f", "conllu"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: input file not found: {missing}"
    assert not output.exists()
    args = ["convert", str(missing), str(output), "-f", "conllu", "--skip-missing"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and "Skipped" in result.output
    assert not output.exists()
