"""Growing a trained pipeline: a new task on top of a trained `jmt` (spacy_jmt.growth)."""

import pytest
import spacy
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example
from tiny_data import SENTENCES, TINY_MODEL

from spacy_jmt.model import get_torch_network

OLD_TASKS = {
    "tag": {"kind": "tagging", "attr": "TAG", "level": 1},
    "dep": {"kind": "parsing", "level": 2},
}
NEW_TASKS = {**OLD_TASKS, "ents": {"kind": "spans", "level": 3, "doc_ents": True}}
# The entities of each SENTENCES doc.
ENTS = [[(0, 1, "PER"), (5, 6, "PER")], [(0, 2, "ANIMAL")]]


def _examples(nlp, with_syntax: bool, with_ents: bool):
    examples = []
    for sent, ents in zip(SENTENCES, ENTS):
        annotation = {"tags": sent["tags"], "heads": sent["heads"], "deps": sent["deps"]}
        ref = Doc(nlp.vocab, words=sent["words"], spaces=sent["spaces"],
                  **(annotation if with_syntax else {}))  # fmt: skip
        if with_ents:
            ref.spans["ents"] = [Span(ref, start, end, label) for start, end, label in ents]
        examples.append(Example(nlp.make_doc(ref.text), ref))
    return examples


def _train(nlp, examples, steps: int, optimizer=None):
    optimizer = optimizer or nlp.initialize(lambda: examples)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    return optimizer


def _pipeline(tasks, **settings):
    nlp = spacy.blank("en")
    nlp.add_pipe("jmt", config={"tasks": tasks, "model": TINY_MODEL, **settings})
    return nlp


def _syntax(nlp, texts):
    return [[(t.tag_, t.head.i, t.dep_) for t in doc] for doc in nlp.pipe(texts)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained tagger + parser on disk."""
    torch.manual_seed(0)
    nlp = _pipeline(OLD_TASKS)
    _train(nlp, _examples(nlp, True, False), 60)
    path = tmp_path_factory.mktemp("grow") / "syntax"
    nlp.to_disk(path)
    return path


def _grow(path, tasks=NEW_TASKS, **settings):
    """A pipeline with the new tasks, grown from `path` through its config, as `spacy train`
    does it: `[initialize.components.jmt] grow_from`."""
    config = _pipeline(tasks, **settings).config
    config["initialize"]["components"]["jmt"] = {"grow_from": str(path)}
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    examples = _examples(nlp, False, True)
    optimizer = nlp.initialize(lambda: examples)
    return nlp, examples, optimizer


TEXTS = [" ".join(s["words"]) for s in SENTENCES] + ["She likes the dog ."]


def test_grown_pipeline_starts_with_the_old_labels_weights_and_outputs(trained):
    old = spacy.load(trained)
    nlp, _, _ = _grow(trained)
    jmt, old_jmt = nlp.get_pipe("jmt"), old.get_pipe("jmt")
    assert jmt.labels["tag"] == old_jmt.labels["tag"]
    assert jmt.labels["dep"] == old_jmt.labels["dep"]
    assert jmt.labels["ents"] == ["ANIMAL", "PER"]
    assert _syntax(nlp, TEXTS) == _syntax(old, TEXTS)
    assert jmt.cfg["grown_from"] == {"pipeline": str(trained), "tasks": ["dep", "tag"]}
    assert jmt.drift_penalty() == 0.0  # successive regularization starts at zero


@pytest.mark.parametrize("settings", [{"frozen_levels": 3}, {"successive_regularization": 10.0}])
def test_growing_keeps_the_old_tasks_and_learns_the_new_one(trained, settings, tmp_path):
    old = spacy.load(trained)
    torch.manual_seed(0)
    nlp, examples, optimizer = _grow(trained, **settings)
    _train(nlp, examples, 150, optimizer)
    docs = list(nlp.pipe(TEXTS[:2]))
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs] == ENTS
    if "frozen_levels" in settings:  # frozen: exactly the old outputs
        assert _syntax(nlp, TEXTS) == _syntax(old, TEXTS)
    else:  # regularized: the old tags survive the new task's training
        tags = [[t[0] for t in s] for s in _syntax(nlp, TEXTS)]
        assert tags == [[t[0] for t in s] for s in _syntax(old, TEXTS)]
    nlp.to_disk(tmp_path / "grown")
    loaded = spacy.load(tmp_path / "grown")
    assert _syntax(loaded, TEXTS) == _syntax(nlp, TEXTS)
    spans = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in loaded.pipe(TEXTS)]
    assert spans == [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(TEXTS)]


def test_frozen_levels_get_no_updates(trained):
    nlp, examples, optimizer = _grow(trained, frozen_levels=3)
    network = get_torch_network(nlp.get_pipe("jmt").model)
    before = {n: p.detach().clone() for n, p in network.named_parameters()}
    tok2vec = nlp.get_pipe("jmt").model.get_ref("tok2vec").to_bytes()
    _train(nlp, examples, 5, optimizer)
    after = dict(network.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    # only the new task's head and the new level 3 (levels.2) learn
    assert changed and all(n.startswith(("heads.ents.", "levels.2.")) for n in changed)
    assert nlp.get_pipe("jmt").model.get_ref("tok2vec").to_bytes() == tok2vec


def test_successive_regularization_grows_with_drift_and_holds_it_back(trained):
    drifts = []
    for strength in (0.0, 10.0):
        torch.manual_seed(0)
        nlp, examples, optimizer = _grow(trained, successive_regularization=strength)
        jmt = nlp.get_pipe("jmt")
        jmt.set_anchor()
        assert jmt.drift_penalty() == 0.0
        _train(nlp, examples, 1, optimizer)
        first = jmt.drift_penalty()
        _train(nlp, examples, 10, optimizer)
        drifts.append(jmt.drift_penalty())
        assert first > 0.0
        if strength == 0.0:  # unregularized, the inherited parameters drift further
            assert drifts[-1] > first
    assert drifts[1] < drifts[0]


def test_grow_from_refuses_a_config_that_drops_or_moves_old_tasks(trained):
    with pytest.raises(ValueError, match="task 'dep' is missing"):
        _grow(trained, tasks={"tag": OLD_TASKS["tag"], "ents": NEW_TASKS["ents"]})
    moved = {**NEW_TASKS, "dep": {"kind": "parsing", "level": 4}}
    with pytest.raises(ValueError, match="task 'dep' differs"):
        _grow(trained, tasks=moved)
    # how a task trains may change: its loss weight and the corpora it learns from
    retrained = {**NEW_TASKS, "tag": {**OLD_TASKS["tag"], "weight": 0.5, "corpora": ["ewt"]}}
    _grow(trained, tasks=retrained)
    below = {**OLD_TASKS, "ents": {"kind": "spans", "level": 1}}  # changes level 2's input
    with pytest.raises(ValueError, match="change the shape"):
        _grow(trained, tasks=below)
    with pytest.raises(ValueError, match="cannot load"):
        _grow(trained.parent / "missing")
