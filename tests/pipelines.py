"""A small pipeline with every layer the commands show (tags, parse, entities, relations,
coreference), overfitted on hand-made docs and saved to disk: the model that the tests of
`annotate` and `serve` load by path, as a user would."""

from pathlib import Path
from typing import List

import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Adam
from tiny_data import SENTENCES, TINY_MODEL

from spacy_jmt.converters.coref import set_clusters
from spacy_jmt.relations import Relation

TASKS = {
    "sents": {"kind": "tagging", "attr": "SENT_START", "level": 0},
    "tag": {"kind": "tagging", "attr": "TAG", "level": 1},
    "pos": {"kind": "tagging", "attr": "POS", "level": 1},
    "ents": {"kind": "spans", "level": 1, "doc_ents": True},
    "dep": {"kind": "parsing", "level": 2},
    "rel": {"kind": "relation", "level": 2, "spans_task": "ents"},
    "coref": {"kind": "coreference", "level": 2, "max_width": 3, "top_ratio": 0.5},
}
# (words, entities (start, end, label), relations (head entity, tail entity, label)).
ENTITY_DATA = [
    ("Anna Smith works for Acme Corp in Paris .".split(),
     [(0, 2, "PER"), (4, 6, "ORG"), (7, 8, "LOC")], [(0, 1, "Work_For"), (1, 2, "Based_In")]),
    ("Bob lives in Rome .".split(), [(0, 1, "PER"), (3, 4, "LOC")], [(0, 1, "Live_In")]),
]  # fmt: skip
COREF_WORDS = ["Anne", "saw", "Walter", ".", "She", "smiled", "at", "him", "."]
COREF_CLUSTERS = [[(0, 1), (4, 5)], [(2, 3), (7, 8)]]
# Texts the trained pipeline annotates as it was taught.
TEXTS = [
    "I like green apples. She eats bread.",
    "Anna Smith works for Acme Corp in Paris.",
    "Bob lives in Rome.",
    "Anne saw Walter. She smiled at him.",
    "The dog sleeps.",
]


def _examples(vocab) -> List[Example]:
    refs = []
    for data in SENTENCES:
        starts = [i == 0 or data["words"][i - 1] == "." for i in range(len(data["words"]))]
        refs.append(
            Doc(vocab, words=data["words"], spaces=data["spaces"], tags=data["tags"],
                pos=data["pos"], heads=data["heads"], deps=data["deps"], sent_starts=starts)
        )  # fmt: skip
    for words, ents, rels in ENTITY_DATA:
        doc = Doc(vocab, words=words)
        spans = [Span(doc, s, e, label=label) for s, e, label in ents]
        doc.spans["ents"] = spans
        doc.ents = spans
        doc._.relations = [Relation(spans[h], spans[t], label) for h, t, label in rels]
        refs.append(doc)
    starts = [i == 0 or COREF_WORDS[i - 1] == "." for i in range(len(COREF_WORDS))]
    doc = Doc(vocab, words=COREF_WORDS, sent_starts=starts)
    set_clusters(doc, COREF_CLUSTERS)
    refs.append(doc)
    return [Example(Doc(vocab, words=[t.text for t in ref]), ref) for ref in refs]


def train_showcase(path: Path, n_iter: int = 80) -> Path:
    """Train the pipeline from seed 0 and save it to `path`. RETURNS (Path): `path`."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("jmt", config={"tasks": TASKS, "model": TINY_MODEL})
    examples = _examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer)
    nlp.meta["name"] = "showcase"
    nlp.to_disk(path)
    return path
