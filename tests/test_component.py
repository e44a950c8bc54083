"""The standard component tests of the `jmt` pipeline component (STYLE.md, "Tests").

The data are three hand-made sentences in two docs (so one doc holds two sentences), with
tags, POS, a dependency parse and phrase chunks in `doc.spans["chunks"]`. The tests run
against the installed package: the component comes from its entry point.
"""

import copy
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import spacy
import torch
from spacy.language import Language
from spacy.lookups import Lookups
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Adam
from tiny_data import SENTENCES, TINY_MODEL

# A tiny network, so that the tests stay fast.
SMALL_MODEL: Dict[str, Any] = {
    "hidden_width": 64,
    "label_embedding_width": 16,
    "arc_width": 64,
    "label_width": 32,
    "dropout": 0.0,
    "tok2vec": {
        "embed": {"width": 32, "rows": [500, 200, 200, 200]},
        "encode": {"width": 32, "depth": 1},
    },
}
SMALL_CONFIG: Dict[str, Any] = {"model": SMALL_MODEL}
DEFAULT_TASK_NAMES = {"sents", "tag", "pos", "chunks", "dep"}

TRAIN_DATA = SENTENCES
TEXTS = ["I like green apples. She eats bread.", "The dog sleeps."]
LABELS = {
    "sents": ["I", "S"],
    "tag": [".", "DT", "JJ", "NN", "NNS", "PRP", "VBP", "VBZ"],
    "pos": ["ADJ", "DET", "NOUN", "PRON", "PUNCT", "VERB"],
    "chunks": ["NP", "VP"],
    "dep": ["ROOT", "amod", "det", "nsubj", "obj", "punct"],
}
# Texts to run a trained pipeline over: seen, unseen, several sentences, edge cases.
PIPE_TEXTS = [
    "I like green apples. She eats bread.",
    "",
    "The dog sleeps.",
    "Hello",
    "   ",
    "She likes the green dog. I sleep. The bread eats apples.",
    "dog",
    "The green apples sleep .",
]


def make_reference(vocab, data: Dict[str, Any]) -> Doc:
    doc = Doc(
        vocab,
        words=data["words"],
        spaces=data["spaces"],
        tags=data["tags"],
        pos=data["pos"],
        heads=data["heads"],
        deps=data["deps"],
    )
    doc.spans["chunks"] = [Span(doc, s, e, label=label) for s, e, label in data["chunks"]]
    return doc


def examples_of(nlp: Language) -> List[Example]:
    refs = [make_reference(nlp.vocab, data) for data in TRAIN_DATA]
    return [Example(nlp.make_doc(ref.text), ref) for ref in refs]


def blank_jmt(config: Optional[Dict[str, Any]] = None) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("jmt", config=copy.deepcopy(SMALL_CONFIG if config is None else config))
    return nlp


def annotations(doc: Doc) -> Dict[str, Any]:
    """Everything the component writes, in a comparable form."""
    chunks = doc.spans["chunks"] if "chunks" in doc.spans else []
    return {
        "words": [t.text for t in doc],
        "tags": [t.tag_ for t in doc],
        "pos": [t.pos_ for t in doc],
        "heads": [t.head.i for t in doc],
        "deps": [t.dep_ for t in doc],
        "sent_starts": [bool(t.is_sent_start) for t in doc],
        "chunks": [(s.start, s.end, s.label_) for s in chunks],
        "noun_chunks": [(s.start, s.end) for s in doc.noun_chunks] if len(doc) else [],
    }


def chunk_scores(doc: Doc) -> List[float]:
    if "chunks" not in doc.spans:
        return []
    return list(doc.spans["chunks"].attrs["scores"])


def gold_annotations(data: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "tags": data["tags"],
        "pos": data["pos"],
        "heads": data["heads"],
        "deps": data["deps"],
        "chunks": [tuple(c) for c in data["chunks"]],
        "noun_chunks": [(s, e) for s, e, label in data["chunks"] if label == "NP"],
    }


def train(nlp: Language, get_examples: Callable[[], List[Example]], n_iter: int, lr=0.01):
    optimizer = Adam(lr)
    losses: Dict[str, float] = {}
    for _ in range(n_iter):
        losses = {}
        nlp.update(get_examples(), sgd=optimizer, drop=0.0, losses=losses)
    return losses


def train_small(n_iter: int) -> Tuple[Language, Dict[str, float]]:
    """The small pipeline trained on TRAIN_DATA for n_iter updates from seed 0, and the
    losses of its last update."""
    fix_random_seed(0)
    nlp = blank_jmt()
    nlp.initialize(lambda: examples_of(nlp))
    return nlp, train(nlp, lambda: examples_of(nlp), n_iter)


@pytest.fixture(scope="module")
def trained():
    """A pipeline overfitted on TRAIN_DATA, and the losses of its last update."""
    return train_small(80)


@pytest.fixture(scope="module")
def trained_nlp(trained):
    return trained[0]


def run_python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )


# -- registry -----------------------------------------------------------------------------------


def test_registry_names_resolve():
    from spacy_jmt.component import make_jmt
    from spacy_jmt.model import build_jmt_model
    from spacy_jmt.readers import create_multi_corpus
    from spacy_jmt.scorer import make_jmt_scorer

    assert spacy.registry.architectures.get("spacy-jmt.JMTModel.v1") is build_jmt_model
    assert spacy.registry.scorers.get("spacy-jmt.jmt_scorer.v1") is make_jmt_scorer
    assert spacy.registry.readers.get("spacy-jmt.MultiCorpus.v1") is create_multi_corpus
    assert spacy.registry.factories.get("jmt") is make_jmt
    assert Language.has_factory("jmt")


def test_entry_points_resolve_without_import():
    """A user's environment: nothing imports spacy_jmt, spaCy finds it by its entry points."""
    code = """
import json, sys
import spacy
assert "spacy_jmt" not in sys.modules
from spacy import registry
arch = registry.architectures.get("spacy-jmt.JMTModel.v1")
scorer = registry.scorers.get("spacy-jmt.jmt_scorer.v1")
reader = registry.readers.get("spacy-jmt.MultiCorpus.v1")
nlp = spacy.blank("en")
pipe = nlp.add_pipe("jmt")
print(json.dumps({
    "arch": arch.__module__, "scorer": scorer.__module__, "reader": reader.__module__,
    "pipe": type(pipe).__module__ + "." + type(pipe).__name__,
    "tasks": sorted(pipe.labels), "pipe_names": nlp.pipe_names,
}))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {
        "arch": "spacy_jmt.model",
        "scorer": "spacy_jmt.scorer",
        "reader": "spacy_jmt.readers",
        "pipe": "spacy_jmt.component.JMT",
        "tasks": sorted(DEFAULT_TASK_NAMES),
        "pipe_names": ["jmt"],
    }


# -- configuration and labels -------------------------------------------------------------------


def test_default_tasks_and_replacing_them():
    nlp = blank_jmt()
    assert set(nlp.get_pipe("jmt").labels) == DEFAULT_TASK_NAMES
    config = {**SMALL_CONFIG, "tasks": {"tag": {"kind": "tagging", "attr": "TAG", "level": 1}}}
    nlp = blank_jmt(config)
    jmt = nlp.get_pipe("jmt")
    assert set(jmt.labels) == {"tag"}
    nlp.initialize(lambda: examples_of(nlp))
    assert jmt.labels == {"tag": LABELS["tag"]}
    losses = train(nlp, lambda: examples_of(nlp), 1)
    assert set(losses) == {"jmt", "jmt:tag"}
    doc = nlp("The dog sleeps.")
    assert all(t.tag_ in LABELS["tag"] for t in doc)
    assert not doc.has_annotation("DEP")
    assert "chunks" not in doc.spans


def test_unknown_task_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown kind"):
        blank_jmt({**SMALL_CONFIG, "tasks": {"x": {"kind": "frobnicate", "level": 1}}})


def _unannotated_examples(nlp: Language) -> List[Example]:
    return [Example(nlp.make_doc(t), nlp.make_doc(t)) for t in TEXTS]


def _examples_without_deps(nlp: Language) -> List[Example]:
    examples = []
    for data in TRAIN_DATA:
        starts = [i == 0 for i in range(len(data["words"]))]
        ref = Doc(
            nlp.vocab,
            words=data["words"],
            spaces=data["spaces"],
            tags=data["tags"],
            pos=data["pos"],
            sent_starts=starts,
        )
        ref.spans["chunks"] = [Span(ref, s, e, label=lab) for s, e, lab in data["chunks"]]
        examples.append(Example(nlp.make_doc(ref.text), ref))
    return examples


@pytest.mark.parametrize(
    "get_data,task", [(_unannotated_examples, None), (_examples_without_deps, "dep")]
)
def test_no_label(get_data, task):
    nlp = blank_jmt()
    with pytest.raises(ValueError, match="E143") as err:
        nlp.initialize(lambda: get_data(nlp))
    if task is not None:
        assert f"'{task}'" in str(err.value)


def test_implicit_labels():
    nlp = blank_jmt()
    jmt = nlp.get_pipe("jmt")
    assert jmt.labels == {name: [] for name in DEFAULT_TASK_NAMES}
    nlp.initialize(lambda: examples_of(nlp))
    assert jmt.labels == LABELS
    assert jmt.label_data == LABELS


def test_explicit_labels_from_initialize_config():
    """Labels given in [initialize.components.jmt] (as `spacy init labels` writes them) are
    used as they are (sorted, deduplicated), and the data need not annotate anything."""
    labels = {name: list(reversed(values)) + values[:1] for name, values in LABELS.items()}
    labels["tag"] = labels["tag"] + ["XX"]
    nlp = blank_jmt()
    nlp.config["initialize"]["components"]["jmt"] = {"labels": labels}
    nlp.initialize(lambda: _unannotated_examples(nlp))
    jmt = nlp.get_pipe("jmt")
    assert jmt.labels == {**LABELS, "tag": sorted(LABELS["tag"] + ["XX"])}
    doc = nlp("The dog sleeps.")
    assert all(t.tag_ in jmt.labels["tag"] for t in doc)


def test_explicit_labels_direct_and_partial():
    """Explicit labels for some tasks, the others inferred from the data."""
    nlp = blank_jmt()
    jmt = nlp.get_pipe("jmt")
    jmt.initialize(lambda: examples_of(nlp), nlp=nlp, labels={"pos": ["X", "NOUN"]})
    assert jmt.labels == {**LABELS, "pos": ["NOUN", "X"]}


def test_add_label():
    nlp = blank_jmt()
    jmt = nlp.get_pipe("jmt")
    for name, values in LABELS.items():
        for label in values:
            assert jmt.add_label(label, task=name) == 1
    assert jmt.add_label("NN", task="tag") == 0
    with pytest.raises(ValueError):
        jmt.add_label("NN")  # several tasks: the task must be named
    nlp.initialize(lambda: _unannotated_examples(nlp))
    assert jmt.labels == LABELS


@pytest.mark.parametrize(
    "make_get_examples",
    [
        lambda nlp: examples_of(nlp),  # a list, not a callable
        lambda nlp: lambda: TEXTS,  # strings
        lambda nlp: lambda: [nlp.make_doc(t) for t in TEXTS],  # Docs
        lambda nlp: None,
    ],
    ids=["list", "strings", "docs", "none"],
)
def test_wrong_get_examples(make_get_examples):
    nlp = blank_jmt()
    jmt = nlp.get_pipe("jmt")
    with pytest.raises(TypeError):
        jmt.initialize(make_get_examples(nlp), nlp=nlp)
    get_examples = make_get_examples(nlp)
    if get_examples is not None:  # nlp.initialize() without examples is allowed
        with pytest.raises(TypeError):
            nlp.initialize(get_examples)
    assert not jmt.is_initialized


def test_not_initialized():
    nlp = blank_jmt()
    with pytest.raises(ValueError, match="E109"):
        nlp("I like green apples.")
    with pytest.raises(ValueError, match="E109"):
        list(nlp.pipe(TEXTS))
    with pytest.raises(ValueError, match="E109"):
        nlp.update(examples_of(nlp), losses={})


# -- training -----------------------------------------------------------------------------------


def _partial_docs(vocab) -> Dict[str, Doc]:
    tags_only = Doc(vocab, words=["She", "eats", "."], tags=["PRP", "VBZ", "."])
    chunks_only = Doc(vocab, words=["The", "dog", "sleeps"])
    chunks_only.spans["chunks"] = [Span(chunks_only, 0, 2, "NP"), Span(chunks_only, 2, 3, "VP")]
    pos_only = Doc(vocab, words=["green", "apples"], pos=["ADJ", "NOUN"])
    deps_only = Doc(vocab, words=["dog", "sleeps"], heads=[1, 1], deps=["nsubj", "ROOT"])
    return {"tag": tags_only, "chunks": chunks_only, "pos": pos_only, "dep": deps_only}


@pytest.mark.parametrize("task", ["tag", "chunks", "pos", "dep"])
def test_partial_data_gives_loss_only_for_present_tasks(task):
    fix_random_seed(0)
    nlp = blank_jmt()
    nlp.initialize(lambda: examples_of(nlp))
    ref = _partial_docs(nlp.vocab)[task]
    example = Example(nlp.make_doc(ref.text), ref)
    losses: Dict[str, float] = {}
    nlp.update([example], sgd=Adam(0.01), losses=losses)
    # A parse also gives the sentence boundaries, so it trains the sentence task too.
    expected = {task, "sents"} if task == "dep" else {task}
    assert set(losses) == {"jmt"} | {f"jmt:{name}" for name in expected}
    assert all(math.isfinite(v) and v > 0 for v in losses.values())
    if task != "dep":
        assert losses["jmt"] == pytest.approx(losses[f"jmt:{task}"])


def test_missing_annotation_gives_no_gradient():
    """Tag-only data changes the tagger, but not the parser's or chunker's own parameters."""
    from spacy_jmt.model import get_torch_network

    fix_random_seed(0)
    nlp = blank_jmt()
    nlp.initialize(lambda: examples_of(nlp))
    network = get_torch_network(nlp.get_pipe("jmt").model)
    before = {n: p.detach().clone() for n, p in network.named_parameters()}
    ref = _partial_docs(nlp.vocab)["tag"]
    nlp.update([Example(nlp.make_doc(ref.text), ref)], sgd=Adam(0.01, L2=0.0), losses={})
    after = dict(network.named_parameters())
    changed = {n for n in before if not bool((before[n] == after[n]).all())}
    dep_params = {n for n in before if ".dep." in f".{n}."}
    chunk_params = {n for n in before if ".chunks." in f".{n}."}
    tag_params = {n for n in before if ".tag." in f".{n}."}
    assert dep_params and chunk_params and tag_params
    assert changed & tag_params
    assert not changed & (dep_params | chunk_params)


def test_partial_data_trains():
    """A corpus where each doc annotates a different task: training runs and learns the tags."""
    fix_random_seed(0)
    nlp = blank_jmt()
    nlp.initialize(lambda: examples_of(nlp))
    partial = list(_partial_docs(nlp.vocab).values())
    examples = [Example(nlp.make_doc(ref.text), ref) for ref in partial]
    first = train(nlp, lambda: examples, 1)
    last = train(nlp, lambda: examples, 30)
    assert set(first) == set(last) == {"jmt"} | {f"jmt:{n}" for n in DEFAULT_TASK_NAMES}
    assert last["jmt"] < first["jmt"]
    assert [t.tag_ for t in nlp("She eats .")] == ["PRP", "VBZ", "."]


def test_task_learns_only_from_its_corpora():
    """With `corpora`, a task takes its labels, its loss and its scores from those corpora
    only; the other tasks still learn from every corpus."""
    from spacy_jmt.component import DEFAULT_TASKS
    from spacy_jmt.keys import CORPUS_KEY
    from spacy_jmt.scorer import score_jmt

    config = copy.deepcopy(SMALL_CONFIG)
    tasks = {name: dict(settings) for name, settings in DEFAULT_TASKS.items()}
    tasks["tag"]["corpora"] = ["a"]
    config["tasks"] = tasks
    fix_random_seed(0)
    nlp = blank_jmt(config)
    examples = examples_of(nlp)
    for eg in examples:
        eg.reference.user_data[CORPUS_KEY] = "a"
    other = Doc(nlp.vocab, words=["dog", "sleeps"], tags=["XX", "VBZ"], pos=["NOUN", "VERB"])
    other.user_data[CORPUS_KEY] = "b"
    from_b = Example(nlp.make_doc(other.text), other)
    nlp.initialize(lambda: examples + [from_b])
    jmt = nlp.get_pipe("jmt")
    assert "XX" not in jmt.labels["tag"] and "NOUN" in jmt.labels["pos"]
    losses: Dict[str, float] = {}
    nlp.update([from_b], sgd=Adam(0.01), losses=losses)
    assert "jmt:pos" in losses and "jmt:tag" not in losses
    tasks_cfg = jmt.cfg["tasks"]
    scores = score_jmt([from_b], tasks=tasks_cfg, labels=jmt.labels)
    assert scores["tag_acc"] is None and scores["pos_acc"] is not None
    assert "unseen_labels" not in scores  # "XX" is not the tag task's to know
    typo = blank_jmt({"model": SMALL_MODEL, "tasks": {"tag": tasks["tag"]}})
    with pytest.raises(ValueError, match=r"found no labels in the corpora \['a'\]"):
        typo.initialize(lambda: [from_b])
    # Examples that name no corpus (other readers, spacy evaluate) are every task's.
    del other.user_data[CORPUS_KEY]
    assert score_jmt([from_b], tasks=tasks_cfg)["tag_acc"] is not None
    with pytest.raises(ValueError, match="corpora must be a list"):
        blank_jmt({"tasks": {"tag": {"kind": "tagging", "attr": "TAG", "corpora": "a"}}})


def test_auxiliary_task_trains_but_writes_nothing():
    """A task with write = false learns (its loss; its label embeddings feed the levels
    above, so the network has its head) but leaves its attribute unset and has no scores."""
    from spacy_jmt.component import DEFAULT_TASKS
    from spacy_jmt.model import get_torch_network
    from spacy_jmt.scorer import score_jmt

    config = copy.deepcopy(SMALL_CONFIG)
    config["tasks"] = {name: dict(settings) for name, settings in DEFAULT_TASKS.items()}
    config["tasks"]["tag"]["write"] = False
    fix_random_seed(0)
    nlp = blank_jmt(config)
    nlp.initialize(lambda: examples_of(nlp))
    losses = train(nlp, lambda: examples_of(nlp), 40)
    assert losses["jmt:tag"] < 0.1
    jmt = nlp.get_pipe("jmt")
    assert "tag" in get_torch_network(jmt.model).heads
    docs = list(nlp.pipe(TEXTS))
    assert not any(doc.has_annotation("TAG") for doc in docs)
    assert all(doc.has_annotation("POS") and doc.has_annotation("DEP") for doc in docs)
    scores = score_jmt(examples_of(nlp), tasks=jmt.cfg["tasks"], labels=jmt.labels)
    assert "tag_acc" not in scores and scores["pos_acc"] is not None
    with pytest.raises(ValueError, match="write must be true or false"):
        blank_jmt({"tasks": {"tag": {"kind": "tagging", "attr": "TAG", "write": "no"}}})
    # The sentence splitter bounds the levels above it: it always writes what it finds.
    with pytest.raises(ValueError, match="so it writes them"):
        blank_jmt({"tasks": {"sents": {"kind": "tagging", "attr": "SENT_START", "level": 0,
                                       "write": False}}})  # fmt: skip


def _misaligned_example(nlp: Language) -> Example:
    """The reference splits "don't" and "rain." into two tokens each; the predicted doc not."""
    ref = Doc(
        nlp.vocab,
        words=["I", "do", "n't", "like", "rain", "."],
        spaces=[True, False, True, True, False, False],
        tags=["PRP", "VBP", "RB", "VBP", "NN", "."],
        pos=["PRON", "AUX", "PART", "VERB", "NOUN", "PUNCT"],
        heads=[3, 3, 3, 3, 3, 3],
        deps=["nsubj", "aux", "neg", "ROOT", "dobj", "punct"],
    )
    ref.spans["chunks"] = [Span(ref, 0, 1, "NP"), Span(ref, 1, 4, "VP"), Span(ref, 4, 5, "NP")]
    pred = Doc(nlp.vocab, words=["I", "don't", "like", "rain."], spaces=[True, True, True, False])
    return Example(pred, ref)


def test_misaligned_data_trains():
    fix_random_seed(0)
    nlp = blank_jmt()
    # The chunk over merged tokens cannot be learned on the predicted tokens: counted.
    with pytest.warns(UserWarning, match=r"'chunks': of the 11 gold spans .*, 1 do not align"):
        nlp.initialize(lambda: [_misaligned_example(nlp)] + examples_of(nlp))
    # Labels come from the aligned gold (as in spaCy's tagger): the reference tokens that
    # are merged in the predicted doc ("do n't", "rain .") bring none.
    labels = nlp.get_pipe("jmt").labels
    assert labels["tag"] == LABELS["tag"] and labels["dep"] == LABELS["dep"]
    first = train(nlp, lambda: [_misaligned_example(nlp)], 1)
    last = train(nlp, lambda: [_misaligned_example(nlp)], 20)
    assert set(last) == {"jmt"} | {f"jmt:{n}" for n in DEFAULT_TASK_NAMES}
    assert all(math.isfinite(v) for v in last.values())
    assert last["jmt"] < first["jmt"]
    # The one-to-one aligned tokens learn their tags.
    doc = nlp.get_pipe("jmt")(_misaligned_example(nlp).predicted)
    assert [doc[0].tag_, doc[2].tag_] == ["PRP", "VBP"]


def test_update_with_empty_docs():
    fix_random_seed(0)
    nlp = blank_jmt()
    nlp.initialize(lambda: examples_of(nlp))
    empty = Example(nlp.make_doc(""), nlp.make_doc(""))
    losses = nlp.update([empty] + examples_of(nlp), sgd=Adam(0.01), losses={})
    assert set(losses) == {"jmt"} | {f"jmt:{n}" for n in DEFAULT_TASK_NAMES}
    assert all(math.isfinite(v) for v in losses.values())
    assert nlp.update([empty, empty], sgd=Adam(0.01), losses={}) == {"jmt": 0.0}


def test_sents_task_above_level_zero_is_rejected():
    """The sentence task decides the sentences every level runs on, so it sits at level 0."""
    from spacy_jmt.component import DEFAULT_TASKS

    tasks = copy.deepcopy(DEFAULT_TASKS)
    tasks["sents"]["level"] = 1
    with pytest.raises(ValueError, match="must sit at level 0"):
        blank_jmt({**SMALL_CONFIG, "tasks": tasks})


def test_max_sentence_length_windows():
    """Sentences longer than max_sentence_length are cut into windows, each with a tree."""
    fix_random_seed(0)
    nlp = blank_jmt({**SMALL_CONFIG, "max_sentence_length": 3})
    nlp.initialize(lambda: examples_of(nlp))
    losses = train(nlp, lambda: examples_of(nlp), 10)
    assert all(math.isfinite(v) for v in losses.values())
    doc = nlp("She likes the green dog and the bread very much .")
    assert all(len(sent) <= 3 for sent in doc.sents)
    assert len(list(doc.sents)) >= 4
    assert_trees(doc)


# -- trained pipeline ---------------------------------------------------------------------------


def test_overfitting(trained):
    nlp, losses = trained
    assert set(losses) == {"jmt"} | {f"jmt:{n}" for n in DEFAULT_TASK_NAMES}
    assert losses["jmt"] < 0.01
    for text, data in zip(TEXTS, TRAIN_DATA):
        doc = nlp(text)
        assert [t.text for t in doc] == data["words"]
        predicted = annotations(doc)
        for key, value in gold_annotations(data).items():
            assert predicted[key] == value, key
        gold_starts = [bool(t.is_sent_start) for t in make_reference(nlp.vocab, data)]
        assert predicted["sent_starts"] == gold_starts
    assert len(list(nlp(TEXTS[0]).sents)) == 2


def test_to_disk_and_load(trained_nlp, tmp_path):
    before = [annotations(doc) for doc in trained_nlp.pipe(PIPE_TEXTS)]
    scores = [chunk_scores(doc) for doc in trained_nlp.pipe(PIPE_TEXTS)]
    trained_nlp.to_disk(tmp_path)
    loaded = spacy.load(tmp_path)
    assert loaded.pipe_names == ["jmt"]
    assert loaded.get_pipe("jmt").labels == LABELS
    assert [annotations(doc) for doc in loaded.pipe(PIPE_TEXTS)] == before
    for got, expected in zip([chunk_scores(d) for d in loaded.pipe(PIPE_TEXTS)], scores):
        assert got == pytest.approx(expected, abs=1e-6)


def test_to_bytes_and_from_bytes(trained_nlp):
    before = [annotations(doc) for doc in trained_nlp.pipe(PIPE_TEXTS)]
    nlp = blank_jmt()
    assert not nlp.get_pipe("jmt").is_initialized
    nlp.from_bytes(trained_nlp.to_bytes())
    assert nlp.get_pipe("jmt").labels == LABELS
    assert [annotations(doc) for doc in nlp.pipe(PIPE_TEXTS)] == before
    # The component alone, too.
    nlp2 = blank_jmt()
    nlp2.get_pipe("jmt").from_bytes(trained_nlp.get_pipe("jmt").to_bytes())
    assert [annotations(doc) for doc in nlp2.pipe(PIPE_TEXTS)] == before


def test_empty_and_one_token_docs(trained_nlp):
    empty = trained_nlp("")
    assert len(empty) == 0
    for text in ["Hello", "   ", "dog"]:
        doc = trained_nlp(text)
        assert len(doc) == 1
        token = doc[0]
        assert token.head.i == 0
        assert token.dep_ == "ROOT"
        assert token.is_sent_start
        assert token.tag_ in LABELS["tag"]
        assert token.pos_ in LABELS["pos"]
        assert len(list(doc.sents)) == 1


def test_empty_docs_in_a_batch(trained_nlp):
    docs = list(trained_nlp.pipe(["", "The dog sleeps.", "", "Hello"], batch_size=4))
    assert [len(d) for d in docs] == [0, 4, 0, 1]
    assert annotations(docs[1]) == annotations(trained_nlp("The dog sleeps."))
    assert docs[3][0].head.i == 0
    assert all(not list(doc.spans.get("chunks", [])) for doc in (docs[0], docs[2]))
    # A batch of empty docs only.
    assert [len(d) for d in trained_nlp.pipe(["", ""])] == [0, 0]


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_pipe_equals_call(trained_nlp, batch_size):
    expected = [annotations(trained_nlp(text)) for text in PIPE_TEXTS]
    docs = list(trained_nlp.pipe(PIPE_TEXTS, batch_size=batch_size))
    assert [annotations(doc) for doc in docs] == expected
    for doc, text in zip(docs, PIPE_TEXTS):
        assert chunk_scores(doc) == pytest.approx(chunk_scores(trained_nlp(text)), abs=1e-5)


def test_pipe_n_process(trained_nlp):
    expected = [annotations(doc) for doc in trained_nlp.pipe(PIPE_TEXTS)]
    docs = list(trained_nlp.pipe(PIPE_TEXTS, n_process=2, batch_size=2))
    assert [annotations(doc) for doc in docs] == expected


def test_overwrite_false_keeps_existing_annotation(trained_nlp):
    doc = trained_nlp.make_doc("The dog sleeps.")
    doc[0].tag_ = "XX"
    doc = trained_nlp.get_pipe("jmt")(doc)
    assert [t.tag_ for t in doc] == ["XX", "NN", "VBZ", "."]


def test_noun_chunks_without_parser(trained_nlp):
    assert "parser" not in trained_nlp.pipe_names
    doc = trained_nlp("I like green apples. She eats bread.")
    chunks = doc.spans["chunks"]
    nps = [(s.start, s.end) for s in chunks if s.label_ == "NP"]
    assert nps == [(0, 1), (2, 4), (5, 6), (7, 8)]
    assert [(s.start, s.end) for s in doc.noun_chunks] == nps
    assert [s.text for s in doc.noun_chunks] == ["I", "green apples", "She", "bread"]
    # Also per sentence (Span.noun_chunks).
    assert [[s.text for s in sent.noun_chunks] for sent in doc.sents] == [
        ["I", "green apples"],
        ["She", "bread"],
    ]
    scores = chunks.attrs["scores"]
    assert len(scores) == len(chunks) > 0
    assert all(isinstance(s, float) and 0.0 < s <= 1.0 for s in scores)


def test_chunk_confidences_on_unseen_text(trained_nlp):
    for doc in trained_nlp.pipe(PIPE_TEXTS):
        if not len(doc):
            continue
        chunks = doc.spans["chunks"]
        scores = chunks.attrs["scores"]
        assert len(scores) == len(chunks)
        assert all(0.0 < s <= 1.0 for s in scores)
        assert all(s.label_ in LABELS["chunks"] for s in chunks)
        # Chunks do not overlap.
        covered = [i for s in chunks for i in range(s.start, s.end)]
        assert len(covered) == len(set(covered))


def assert_trees(doc: Doc) -> int:
    """Every sentence has one root (labelled ROOT), heads inside the sentence, no cycles.
    RETURNS (int): The number of sentences."""
    n_sents = 0
    for sent in doc.sents:
        n_sents += 1
        roots = [t for t in sent if t.head.i == t.i]
        assert len(roots) == 1, [(t.text, t.head.i) for t in sent]
        assert [t.i for t in sent if t.dep_ == "ROOT"] == [roots[0].i]
        for token in sent:
            assert sent.start <= token.head.i < sent.end
            node, steps = token, 0
            while node.head.i != node.i:
                node, steps = node.head, steps + 1
                assert steps <= len(sent)
            assert node.i == roots[0].i
    return n_sents


def test_trees_are_well_formed(trained_nlp):
    texts = PIPE_TEXTS + ["apples apples apples apples apples", "She . The . dog"]
    n_sents = sum(assert_trees(doc) for doc in trained_nlp.pipe(texts))
    assert n_sents >= len(texts) - 1


def test_sentences_of_an_earlier_component_are_kept(trained_nlp):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("jmt", config=SMALL_CONFIG)
    nlp.get_pipe("jmt").from_bytes(trained_nlp.get_pipe("jmt").to_bytes())
    doc = nlp("I like green apples. She eats bread. The dog sleeps")
    assert [sent.text for sent in doc.sents] == [
        "I like green apples.",
        "She eats bread.",
        "The dog sleeps",
    ]
    assert assert_trees(doc) == 3
    assert [t.head.i for t in doc][:5] == TRAIN_DATA[0]["heads"][:5]


def test_pickle(trained_nlp):
    """Pickling is what n_process uses where processes are spawned, not forked."""
    expected = [annotations(doc) for doc in trained_nlp.pipe(PIPE_TEXTS)]
    nlp = pickle.loads(pickle.dumps(trained_nlp))
    assert [annotations(doc) for doc in nlp.pipe(PIPE_TEXTS)] == expected


def test_scorer(trained_nlp):
    scores = trained_nlp.evaluate(examples_of(trained_nlp))
    keys = ["tag_acc", "pos_acc", "dep_uas", "dep_las", "chunks_f", "noun_chunks_f", "sents_f"]
    for key in keys:
        assert 0.0 <= scores[key] <= 1.0, key
        assert scores[key] == 1.0, key  # the pipeline is overfitted on these examples
    assert set(scores["chunks_per_type"]) == {"NP", "VP"}


def test_scorer_without_dep_annotation(trained_nlp):
    examples = _examples_without_deps(trained_nlp)
    scores = trained_nlp.evaluate(examples)
    assert scores["dep_uas"] is None
    assert scores["dep_las"] is None
    assert scores["tag_acc"] == 1.0
    assert 0.0 <= scores["chunks_f"] <= 1.0
    # Only some docs parsed: those are scored.
    mixed = examples[:1] + examples_of(trained_nlp)[1:]
    assert trained_nlp.evaluate(mixed)["dep_uas"] == 1.0


def test_scorer_on_wrong_predictions():
    """An untrained pipeline scores something in [0, 1], not 1 everywhere."""
    fix_random_seed(0)
    nlp = blank_jmt()
    nlp.initialize(lambda: examples_of(nlp))
    scores = nlp.evaluate(examples_of(nlp))
    keys = ["tag_acc", "pos_acc", "dep_uas", "dep_las", "chunks_f", "noun_chunks_f"]
    assert all(0.0 <= scores[k] <= 1.0 for k in keys)
    assert min(scores[k] for k in keys) < 1.0


# -- a shared tok2vec ---------------------------------------------------------------------------

TOK2VEC_CONFIG = {
    "model": {
        "@architectures": "spacy.HashEmbedCNN.v2",
        "width": 32,
        "depth": 1,
        "embed_size": 500,
        "window_size": 1,
        "maxout_pieces": 3,
        "subword_features": True,
        "pretrained_vectors": None,
    }
}
LISTENER_CONFIG = {
    "model": {
        **{k: v for k, v in SMALL_MODEL.items() if k != "tok2vec"},
        "tok2vec": {"@architectures": "spacy.Tok2VecListener.v1", "width": 32, "upstream": "*"},
    }
}


def test_listener(tmp_path):
    fix_random_seed(0)
    nlp = spacy.blank("en")
    tok2vec = nlp.add_pipe("tok2vec", config=TOK2VEC_CONFIG)
    jmt = nlp.add_pipe("jmt", config=LISTENER_CONFIG)
    assert jmt.model.get_ref("tok2vec").name == "tok2vec-listener"
    nlp.initialize(lambda: examples_of(nlp))
    assert tok2vec.listening_components == ["jmt"]
    tok2vec_before = tok2vec.model.to_bytes()
    first = train(nlp, lambda: examples_of(nlp), 1)
    last = train(nlp, lambda: examples_of(nlp), 30)
    assert {"tok2vec", "jmt"} <= set(first)
    assert last["jmt"] < first["jmt"]
    assert tok2vec.model.to_bytes() != tok2vec_before  # the listener's gradient reached it
    before = [annotations(doc) for doc in nlp.pipe(PIPE_TEXTS)]
    assert [t.tag_ for t in nlp("The dog sleeps.")] == TRAIN_DATA[1]["tags"]
    nlp.to_disk(tmp_path)
    loaded = spacy.load(tmp_path)
    assert loaded.pipe_names == ["tok2vec", "jmt"]
    assert [annotations(doc) for doc in loaded.pipe(PIPE_TEXTS)] == before
    assert [annotations(loaded(text)) for text in PIPE_TEXTS] == before
    # A long doc runs in pieces: the listener reads each piece's slice of doc.tensor.
    long_text = " ".join(PIPE_TEXTS) * 8
    expected = annotations(loaded(long_text))
    loaded.get_pipe("jmt").model.attrs.update(tok2vec_piece=16, sentence_group=16)
    assert annotations(loaded(long_text)) == expected


def test_replace_listeners(tmp_path):
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec", config=TOK2VEC_CONFIG)
    nlp.add_pipe("jmt", config=LISTENER_CONFIG)
    nlp.initialize(lambda: examples_of(nlp))
    train(nlp, lambda: examples_of(nlp), 20)
    before = [annotations(doc) for doc in nlp.pipe(PIPE_TEXTS)]
    nlp.replace_listeners("tok2vec", "jmt", ["model.tok2vec"])
    nlp.remove_pipe("tok2vec")
    assert nlp.get_pipe("jmt").model.get_ref("tok2vec").name != "tok2vec-listener"
    assert [annotations(doc) for doc in nlp.pipe(PIPE_TEXTS)] == before
    nlp.to_disk(tmp_path)
    loaded = spacy.load(tmp_path)
    assert loaded.pipe_names == ["jmt"]
    assert [annotations(doc) for doc in loaded.pipe(PIPE_TEXTS)] == before


# -- spacy train --------------------------------------------------------------------------------


def spacy_train(tmp_path: Path, dropout: float = 0.0) -> Path:
    """Train the small pipeline on TRAIN_DATA with `spacy train`; RETURNS its output dir."""
    nlp = blank_jmt()
    tmp_path.mkdir(parents=True, exist_ok=True)
    train_path, dev_path = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    refs = [make_reference(nlp.vocab, data) for data in TRAIN_DATA]
    DocBin(docs=refs, store_user_data=True).to_disk(train_path)
    DocBin(docs=refs, store_user_data=True).to_disk(dev_path)
    config = nlp.config.copy()
    config["paths"]["train"] = str(train_path)
    config["paths"]["dev"] = str(dev_path)
    config["corpora"]["train"] = {
        "@readers": "spacy-jmt.MultiCorpus.v1",
        "paths": {"gold": str(train_path)},
    }
    config["corpora"]["dev"] = {"@readers": "spacy.Corpus.v1", "path": str(dev_path)}
    config["components"]["jmt"]["model"]["dropout"] = dropout
    config["training"]["dropout"] = dropout
    config["training"]["max_steps"] = 20
    config["training"]["eval_frequency"] = 10
    config["training"]["optimizer"]["learn_rate"] = 0.01
    config["training"]["batcher"]["size"] = 100
    config_path = tmp_path / "config.cfg"
    config.to_disk(config_path)
    output = tmp_path / "output"
    proc = subprocess.run(
        [sys.executable, "-m", "spacy", "train", str(config_path), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return output


def test_spacy_train_cli(tmp_path):
    output = spacy_train(tmp_path)
    best = output / "model-best"
    assert (output / "model-last").exists()
    meta = json.loads((best / "meta.json").read_text())
    for key in ["tag_acc", "pos_acc", "dep_uas", "dep_las", "chunks_f"]:
        assert 0.0 <= meta["performance"][key] <= 1.0, key
    loaded = spacy.load(best)
    assert loaded.pipe_names == ["jmt"]
    assert loaded.get_pipe("jmt").labels == LABELS
    doc = loaded("I like green apples. She eats bread.")
    assert all(t.tag_ in LABELS["tag"] for t in doc)
    assert doc.has_annotation("DEP")
    assert "chunks" in doc.spans


def test_spacy_train_with_a_seed_is_deterministic(tmp_path):
    """Two trainings with the same seed (shuffled corpus, dropout on): the same weights and
    the same scores."""
    runs = [spacy_train(tmp_path / f"run{i}", dropout=0.2) for i in range(2)]
    metas = [json.loads((out / "model-last" / "meta.json").read_text()) for out in runs]
    assert metas[0]["performance"] == metas[1]["performance"]
    weights = [(out / "model-last" / "jmt" / "model").read_bytes() for out in runs]
    assert weights[0] == weights[1]


def test_data_is_consistent():
    """The hand-made data match the English tokenizer (guards the test data themselves)."""
    nlp = spacy.blank("en")
    for text, data in zip(TEXTS, TRAIN_DATA):
        ref = make_reference(nlp.vocab, data)
        assert ref.text == text
        assert [t.text for t in nlp.make_doc(text)] == data["words"]


def test_morph_task_learns_ud_feats_and_empty_feats():
    """A tagging task with attr MORPH reads and writes token.morph; a token without
    features in an annotated doc is a label of its own ("_"), not missing."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    tasks = {"morph": {"kind": "tagging", "attr": "MORPH", "level": 1}}
    nlp.add_pipe("jmt", config={"tasks": tasks, "model": TINY_MODEL})
    words = ["She", "eats", "the", "apples", "."]
    feats = ["Case=Nom|Number=Sing|Person=3|PronType=Prs", "Number=Sing|Person=3|Tense=Pres",
             "Definite=Def|PronType=Art", "Number=Plur", ""]  # fmt: skip
    ref = Doc(nlp.vocab, words=words, morphs=[f or "_" for f in feats])
    unannotated = Doc(nlp.vocab, words=["A", "dog", "."])  # no MORPH: all missing
    examples = [
        Example(Doc(nlp.vocab, words=words), ref),
        Example(Doc(nlp.vocab, words=["A", "dog", "."]), unannotated),
    ]
    nlp.initialize(lambda: examples)
    assert "_" in nlp.get_pipe("jmt").labels["morph"]
    assert "Number=Sing" not in nlp.get_pipe("jmt").labels["morph"]  # only what the data has
    optimizer = Adam(0.01)
    for _ in range(60):
        nlp.update(examples, sgd=optimizer)
    doc = nlp(Doc(nlp.vocab, words=words))
    assert [str(t.morph) for t in doc] == feats
    scores = nlp.evaluate(examples[:1])
    assert scores["morph_acc"] == 1.0
    assert scores["morph_per_feat"]["Number"]["f"] == 1.0


def test_lemma_task_learns_edit_trees_and_round_trips(tmp_path):
    """A lemma task learns edit trees (one tree serves many words), writes token.lemma_,
    keeps its trees through a save, and falls back to the form where no tree applies."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    tasks = {"lemma": {"kind": "lemma", "level": 1, "min_tree_freq": 1, "lookup": False}}
    nlp.add_pipe("jmt", config={"tasks": tasks, "model": TINY_MODEL})
    data = [
        (["Dogs", "were", "running", "."], ["dog", "be", "run", "."]),
        (["Cats", "are", "sitting", "."], ["cat", "be", "sit", "."]),
        (["The", "birds", "sang", "."], ["the", "bird", "sing", "."]),
    ]
    examples = [
        Example(Doc(nlp.vocab, words=w), Doc(nlp.vocab, words=w, lemmas=lemmas))
        for w, lemmas in data
    ]
    nlp.initialize(lambda: examples)
    labels = nlp.get_pipe("jmt").labels["lemma"]
    assert len(labels) < sum(len(w) for w, _ in data)  # "s" -> "" serves birds and (Dog)s
    optimizer = Adam(0.01)
    for _ in range(60):
        nlp.update(examples, sgd=optimizer)
    doc = nlp(Doc(nlp.vocab, words=["Cats", "are", "sitting", "."]))
    assert [t.lemma_ for t in doc] == ["cat", "be", "sit", "."]
    assert nlp.evaluate(examples)["lemma_acc"] == 1.0
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    words = ["Dogs", "are", "running", "x"]
    assert [t.lemma_ for t in loaded(Doc(loaded.vocab, words=words))] == [
        t.lemma_ for t in nlp(Doc(nlp.vocab, words=words))
    ]
    task = loaded.get_pipe("jmt").tasks[0]
    ning = next(i for i, label in enumerate(task.labels) if "'ning'" in label)  # running
    logits = torch.full((1, 1, len(task.labels)), -10.0)
    logits[0, 0, ning] = 10.0
    doc = Doc(loaded.vocab, words=["a"])
    task.set_annotations([doc], {"lemma": {"logits": logits}}, overwrite=True)
    assert doc[0].lemma_ == "a"  # the top trees cannot rewrite "a": the form is kept


def test_lemma_lookup_gives_seen_forms_their_training_lemma_by_pos(tmp_path):
    """With `lookup`, a form seen in training with the token's pos takes its most frequent
    training lemma whatever the trees say; an unseen form is left to the trees; a doc
    without pos looks up the form alone. The table survives a save."""
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "jmt", config={"tasks": {"lemma": {"kind": "lemma", "level": 1}}, "model": TINY_MODEL}
    )
    data = [
        (["I", "saw", "it"], ["PRON", "VERB", "PRON"], ["I", "see", "it"]),
        (["a", "saw", "cuts"], ["DET", "NOUN", "VERB"], ["a", "saw", "cut"]),
        (["we", "saw", "them"], ["PRON", "VERB", "PRON"], ["we", "see", "they"]),
    ]
    examples = [
        Example(Doc(nlp.vocab, words=w), Doc(nlp.vocab, words=w, pos=p, lemmas=lemmas))
        for w, p, lemmas in data
    ]
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "p")
    task = spacy.load(tmp_path / "p").get_pipe("jmt").tasks[0]
    identity = next(i for i, label in enumerate(task.labels) if label == "(m 0 0 () ())")
    logits = torch.full((1, 3, len(task.labels)), -10.0)
    logits[0, :, identity] = 10.0  # the trees would keep every form
    doc = Doc(nlp.vocab, words=["saw", "saw", "cutting"], pos=["VERB", "NOUN", "VERB"])
    task.set_annotations([doc], {"lemma": {"logits": logits}}, overwrite=True)
    assert [t.lemma_ for t in doc] == ["see", "saw", "cutting"]
    doc = Doc(nlp.vocab, words=["saw", "them", "cuts"])  # no pos: the form's commonest lemma
    task.set_annotations([doc], {"lemma": {"logits": logits}}, overwrite=True)
    assert [t.lemma_ for t in doc] == ["see", "they", "cut"]


def test_lemma_lookup_prefers_the_form_with_its_morphology():
    """A form seen with the token's pos and morph takes that combination's lemma ("her" as a
    possessive is "her", as an object "she"); with features never seen with the form, the
    (form, pos) lemma; a form seen without features keeps the (form, pos) counts unskewed."""
    nlp = spacy.blank("en")
    tasks = {"lemma": {"kind": "lemma", "level": 1, "min_tree_freq": 1}}
    nlp.add_pipe("jmt", config={"tasks": tasks, "model": TINY_MODEL})
    data = [
        (["saw", "her"], ["Case=Acc|Person=3", "Person=3|Poss=Yes"], ["see", "her"]),
        (["told", "her"], ["", "Case=Acc|Person=3"], ["tell", "she"]),
        (["like", "her"], ["", "Case=Acc|Person=3"], ["like", "she"]),
    ]
    examples = [
        Example(
            Doc(nlp.vocab, words=w),
            Doc(nlp.vocab, words=w, pos=["VERB", "PRON"], morphs=m, lemmas=lemmas),
        )
        for w, m, lemmas in data
    ]
    nlp.initialize(lambda: examples)
    task = nlp.get_pipe("jmt").tasks[0]
    logits = torch.zeros((1, 2, len(task.labels)))
    for morph, expected in [("Person=3|Poss=Yes", "her"), ("Case=Acc|Person=3", "she"),
                            ("Number=Plur", "she"), ("", "she")]:  # fmt: skip
        doc = Doc(nlp.vocab, words=["saw", "her"], pos=["VERB", "PRON"], morphs=["", morph])
        task.set_annotations([doc], {"lemma": {"logits": logits}}, overwrite=True)
        assert doc[1].lemma_ == expected, morph


def test_lemma_rules_serve_unseen_forms_of_the_parts_of_speech_they_cover(tmp_path):
    """With `rules`, a form the training table does not know goes to spaCy's rule lemmatizer
    (the vocab's tables, saved with the pipeline) where its part of speech has rules; the
    trees answer for the others. Without the tables, initialize says what to install."""
    nlp = spacy.blank("en")
    tasks = {"lemma": {"kind": "lemma", "level": 1, "rules": True, "min_tree_freq": 1}}
    nlp.add_pipe("jmt", config={"tasks": tasks, "model": TINY_MODEL})
    data = [(["we", "saw", "them"], ["PRON", "VERB", "PRON"], ["we", "see", "they"])]
    examples = [
        Example(Doc(nlp.vocab, words=w), Doc(nlp.vocab, words=w, pos=p, lemmas=lemmas))
        for w, p, lemmas in data
    ]
    with pytest.raises(ValueError, match="spacy-lookups-data"):
        nlp.initialize(lambda: examples)
    lookups = Lookups()
    lookups.add_table("lemma_rules", {"verb": [["ing", ""], ["ing", "e"]], "noun": [["s", ""]]})
    lookups.add_table("lemma_index", {"verb": ["make", "walk"], "noun": ["cat"]})
    lookups.add_table("lemma_exc", {"verb": {"went": ["go"]}})
    nlp.vocab.lookups = lookups
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    task = loaded.get_pipe("jmt").tasks[0]
    identity = next(i for i, label in enumerate(task.labels) if label == "(m 0 0 () ())")
    words, pos = ["saw", "making", "went", "Cats", "us"], ["VERB", "VERB", "VERB", "NOUN", "PRON"]
    logits = torch.full((1, len(words), len(task.labels)), -10.0)
    logits[0, :, identity] = 10.0  # the trees would keep every form
    doc = Doc(loaded.vocab, words=words, pos=pos)
    task.set_annotations([doc], {"lemma": {"logits": logits}}, overwrite=True)
    assert [t.lemma_ for t in doc] == ["see", "make", "go", "cat", "us"]


# A tok2vec spelled out in full, for models built by another architecture than the default.
TOK2VEC_V2 = {
    "@architectures": "spacy.Tok2Vec.v2",
    "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 32,
              "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"], "rows": [500, 200, 200, 200],
              "include_static_vectors": False},
    "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 32, "depth": 1,
               "window_size": 1, "maxout_pieces": 3},
}  # fmt: skip


def test_word_dropout_zeroes_whole_tokens_in_training_only():
    fix_random_seed(0)
    nlp = spacy.blank("en")
    model = {
        **TINY_MODEL, "@architectures": "spacy-jmt.JMTModel.v2", "word_dropout": 0.5,
        "tok2vec": TOK2VEC_V2,
    }  # fmt: skip
    tasks = {"tag": {"kind": "tagging", "attr": "TAG", "level": 1}}
    nlp.add_pipe("jmt", config={"tasks": tasks, "model": model})
    words = "one two three four five six seven eight".split()
    examples = [Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, tags=["X"] * 8))]
    nlp.initialize(lambda: examples)
    jmt = nlp.get_pipe("jmt")
    docs = [Doc(nlp.vocab, words=words)]
    first, _ = jmt.model.begin_update(docs)
    second, _ = jmt.model.begin_update(docs)
    assert not torch.equal(first["tag"]["logits"], second["tag"]["logits"])
    predicted = [jmt.model.predict(docs)["tag"]["logits"] for _ in range(2)]
    assert torch.equal(predicted[0], predicted[1])
    with pytest.raises(ValueError, match="word_dropout"):
        spacy.registry.architectures.get("spacy-jmt.JMTModel.v2")(
            jmt.model.get_ref("tok2vec"), word_dropout=1.0
        )


def test_uncertainty_loss_weights_are_learned_and_saved(tmp_path):
    """loss_weights = "uncertainty" (Kendall et al. 2018): each task learns a log variance
    s, its loss counts exp(-s) times, and the weights travel with the pipeline."""
    fix_random_seed(0)
    model = {**SMALL_MODEL, "@architectures": "spacy-jmt.JMTModel.v2",
             "loss_weights": "uncertainty", "tok2vec": TOK2VEC_V2}  # fmt: skip
    nlp = blank_jmt({"model": model})
    nlp.initialize(lambda: examples_of(nlp))
    jmt = nlp.get_pipe("jmt")
    assert jmt.loss_weights() == {name: 1.0 for name in DEFAULT_TASK_NAMES}
    train(nlp, lambda: examples_of(nlp), 60)
    learned = jmt.loss_weights()
    assert set(learned) == DEFAULT_TASK_NAMES
    assert all(abs(w - 1.0) > 0.05 for w in learned.values())
    # the tasks still learn: the overfitted tags are right
    doc = nlp(Doc(nlp.vocab, words=TRAIN_DATA[0]["words"], spaces=TRAIN_DATA[0]["spaces"]))
    assert [t.tag_ for t in doc] == TRAIN_DATA[0]["tags"]
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp").get_pipe("jmt").loss_weights()
    assert loaded == pytest.approx(learned)
    from typer.testing import CliRunner

    from spacy_jmt.cli import app

    args = ["weights", str(tmp_path / "nlp"), str(tmp_path / "w.svg"), "--loss-weights",
            "--output-json", str(tmp_path / "w.json")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "w.svg").read_text().count("<rect") == len(DEFAULT_TASK_NAMES)
    assert json.loads((tmp_path / "w.json").read_text())["loss_weights"] == pytest.approx(learned)
    assert blank_jmt().get_pipe("jmt").model.attrs["loss_weights"] == "fixed"
    with pytest.raises(ValueError, match="loss_weights"):
        spacy.registry.architectures.get("spacy-jmt.JMTModel.v2")(
            jmt.model.get_ref("tok2vec"), loss_weights="learned"
        )


def test_fixed_loss_weights_learn_none(tmp_path):
    nlp = blank_jmt()
    nlp.initialize(lambda: examples_of(nlp))
    assert nlp.get_pipe("jmt").loss_weights() == {}
    nlp.to_disk(tmp_path / "nlp")
    from typer.testing import CliRunner

    from spacy_jmt.cli import app

    args = ["weights", str(tmp_path / "nlp"), str(tmp_path / "w.svg"), "--loss-weights"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "no learned loss weights" in result.output
