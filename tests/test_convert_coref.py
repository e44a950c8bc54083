"""Converters for mentions and coreference: LitBank coreference (CoNLL-2012 brackets), LitBank
entities (brat, nested) and GAP (TSV), with file-and-line errors, the split lists, and the
cluster groups surviving a DocBin and pickling."""

import pickle
import warnings
from pathlib import Path

import pytest
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_jmt.cli import app
from spacy_jmt.convert import DataFormatError, DataWarning, read_docs
from spacy_jmt.converters.coref import get_clusters, select_documents

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not found")

ROW = "doc\t0\t{i}\t{w}\t_\t_\t_\t_\t_\t_\t_\t_\t{c}"


def conll(rows, name="doc"):
    lines = [f"#begin document ({name}); part 0"]
    for row in rows:
        lines.append("" if row is None else ROW.format(i=0, w=row[0], c=row[1]))
    return "\n".join(lines + ["#end document", ""])


SENTS = [
    ("Sir", "(0"), ("Walter", "0)"), ("saw", ""), ("himself", "(0)"), (".", ""), None,
    ("He", "(0)|(1"), ("smiled", "1)"), (".", ""),
]  # fmt: skip


def test_litbank_coref_reads_nested_brackets_sentences_and_singletons(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text(conll(SENTS, name="105_persuasion_brat"), encoding="utf8")
    (doc,) = read_docs(path, "litbank-coref")
    assert [t.text for t in doc] == ["Sir", "Walter", "saw", "himself", ".", "He", "smiled", "."]
    assert [s.text for s in doc.sents] == ["Sir Walter saw himself .", "He smiled ."]
    assert get_clusters(doc) == [[(0, 2), (3, 4), (5, 6)], [(5, 7)]]  # "He smiled": a singleton
    assert doc.user_data["doc_id"] == "105_persuasion_brat"
    assert len(doc.spans["coref_mentions"]) == 4 and "mentions" not in doc.spans
    ids = tmp_path / "train.ids"
    ids.write_text("missing_brat.tsv\n105_persuasion_brat.tsv\n", encoding="utf8")
    assert select_documents([doc], ids) == [doc]


@pytest.mark.parametrize(
    "rows,line,message",
    [
        ([("a", "(0"), ("b", "")], 2, "never closed"),
        ([("a", "0)")], 2, "never opened"),
        ([("a", "(x")], 2, "malformed coreference bracket"),
    ],
)
def test_litbank_coref_errors_name_file_and_line(tmp_path, rows, line, message):
    path = tmp_path / "bad.conll"
    path.write_text(conll(rows), encoding="utf8")
    with pytest.raises(DataFormatError, match=rf"bad.conll:{line}: .*{message}"):
        read_docs(path, "litbank-coref")
    path.write_text("doc\t0\t0\tword\n", encoding="utf8")
    with pytest.raises(DataFormatError, match="bad.conll:1: token line outside"):
        read_docs(path, "litbank-coref")


def test_litbank_entities_keep_nesting_and_extend_cut_tokens(tmp_path):
    (tmp_path / "d_brat.txt").write_text("the men of Kellynch Hall\nThey left .\n", encoding="utf8")
    (tmp_path / "d_brat.ann").write_text(
        "T0\tPER 0 24\tthe men of Kellynch Hall\nT1\tFAC 11 24\tKellynch Hall\n"
        "T2\tFAC 11 19\tKellynch\nT3\tPER 25 29\tThey\nT4\tFAC 11 18\tKellync\n",
        encoding="utf8",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (doc,) = read_docs(tmp_path, "litbank-entities")
    assert [str(w.message) for w in caught if w.category is DataWarning][0].startswith("1 mention")
    mentions = [(m.text, m.label_) for m in doc.spans["mentions"]]
    assert mentions == [
        ("the men of Kellynch Hall", "PER"),
        ("Kellynch Hall", "FAC"),
        ("Kellynch", "FAC"),  # T2 and the cut T4 are the same mention once extended
        ("They", "PER"),
    ]
    assert [s.text for s in doc.sents] == ["the men of Kellynch Hall", "They left ."]
    (tmp_path / "d_brat.ann").write_text("T0\tPER 0 3\tmen\n", encoding="utf8")
    with pytest.raises(DataFormatError, match=r"d_brat.ann:1: offsets 0-3 read 'the'"):
        read_docs(tmp_path, "litbank-entities")


GAP_HEADER = "ID\tText\tPronoun\tPronoun-offset\tA\tA-offset\tA-coref\tB\tB-offset\tB-coref\tURL"


def test_gap_rows_become_mentions_and_clusters(tmp_path):
    text = "Zoe met Maggie Smith. Later she left."
    path = tmp_path / "gap.tsv"
    path.write_text(
        f"{GAP_HEADER}\nd-1\t{text}\tshe\t28\tZoe\t0\tFALSE\tMaggie Smith\t8\tTRUE\thttp://x\n",
        encoding="utf8",
    )
    (doc,) = read_docs(path, "gap")
    assert [(s.text, s.label_) for s in doc.spans["gap"]] == [
        ("she", "PRONOUN"),
        ("Zoe", "A"),
        ("Maggie Smith", "B"),
    ]
    assert [[doc[s:e].text for s, e in c] for c in get_clusters(doc)] == [
        ["Zoe"],
        ["Maggie Smith", "she"],
    ]
    assert doc.user_data["gap_gender"] == "F"
    assert doc.spans["coref_mentions"].attrs == {"partial": True}  # the rest is unannotated
    docbin = DocBin(docs=[doc], store_user_data=True)
    (restored,) = DocBin().from_bytes(docbin.to_bytes()).get_docs(Vocab())
    assert (
        get_clusters(restored) == get_clusters(doc) == get_clusters(pickle.loads(pickle.dumps(doc)))
    )
    assert restored.spans["coref_mentions"].attrs == {"partial": True}
    path.write_text(f"{GAP_HEADER}\nd-1\t{text}\tshe\t27\tZoe\t0\tFALSE\tMaggie\t8\tYES\tx\n")
    with pytest.raises(DataFormatError, match=r"gap.tsv:2: Pronoun-offset 27 does not point"):
        read_docs(path, "gap")


@needs_data
def test_cli_converts_the_shared_litbank_split(tmp_path):
    out = tmp_path / "dev.spacy"
    folds = DATA / "litbank_coref" / "tenfold_splits" / "0"
    result = CliRunner().invoke(
        app,
        [
            "convert", str(DATA / "litbank_coref" / "conll"), str(out),
            "--format", "litbank-coref", "--ids", str(folds / "dev.ids"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(out).get_docs(Vocab()))
    assert len(docs) == 9  # the tenth document of the fold is held out
    assert all(get_clusters(doc) for doc in docs)
