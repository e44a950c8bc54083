"""Lemmatization as tagging with edit trees (Müller et al. 2015, as spaCy's
`trainable_lemmatizer` learns them) -> `token.lemma_`.

Each (form, lemma) pair of the training data is turned into the edit tree that rewrites the
form into the lemma ("running" -> "run": keep the prefix, replace the suffix "ning" by ""),
so that one tree serves many words. The tree is the token's label; the head is a token
classifier on the task's level; trees seen fewer than `min_tree_freq` times in the training
data are not learned (their tokens give no loss). At inference the most probable of the
`top_k` best trees that applies to the form gives the lemma; where none applies, the form.

With `lookup` (the default), a form seen in the training data with the token's predicted
part of speech takes its most frequent training lemma instead, as Stanza's lemmatizer does
(on UD EWT 90% of the dev tokens are such forms, and their training lemma is right for 99.7%
of them); the trees serve the other forms. Where the form was seen with the predicted
morphology too, the lemma of that combination wins ("her" with Poss=Yes is "her", without it
"she"). A doc without `token.pos` looks up the form alone.
The trees and the table are learned at `initialize` and saved with the component (`state`).

With `rules`, a form the table does not know goes to spaCy's rule lemmatizer before the trees:
suffix rules, exceptions and a word index per part of speech (`lemma_rules`, `lemma_exc`,
`lemma_index`, from `spacy-lookups-data` through `[initialize.lookups]`; they are saved with
the pipeline's vocab). It knows words that the training data never showed, where the trees
only know suffixes; it answers for the parts of speech its tables have (for English: nouns,
verbs, adjectives, adverbs) and the trees answer for the others.
"""

from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import numpy
from spacy.attrs import LEMMA, MORPH, ORTH, POS
from spacy.lang.en.lemmatizer import EnglishLemmatizer
from spacy.pipeline import Lemmatizer
from spacy.pipeline._edit_tree_internals.edit_trees import EditTrees
from spacy.scorer import Scorer
from spacy.strings import StringStore
from spacy.tokens import Doc, Token
from spacy.training import Example
from spacy.vocab import Vocab

from .tagging import MISSING, TokenTask

KNOWN_CACHE = 100_000  # distinct (form, pos, morph) kept before the cache starts again


class LemmaTask(TokenTask):
    """Lemmas through edit trees, read from and written to `token.lemma_`.

    top_k (int): Try the k most probable trees, in order, until one applies to the form.
    min_tree_freq (int): Learn only the trees seen at least this often in the training data
        (spaCy's default: 3; on UD EWT train, 531 of 1,938 trees, 99.2% of the tokens).
    lookup (bool): Give forms seen in training (with the token's `pos`) their training lemma.
    rules (bool): Give the other forms to spaCy's rule lemmatizer, for the parts of speech
        that the vocab's `lemma_rules`, `lemma_exc` and `lemma_index` tables cover.
    """

    kind = "lemma"
    assigns = ("token.lemma",)
    settings = {"top_k": 3, "min_tree_freq": 3, "lookup": True, "rules": False}
    min_level = 1

    def __init__(self, name: str, cfg: Dict[str, Any], labels: Optional[List[str]] = None):
        super().__init__(name, cfg, labels)
        for key in ("top_k", "min_tree_freq"):
            if not isinstance(self.cfg[key], int) or self.cfg[key] < 1:
                raise ValueError(f"Task '{name}': {key} must be an integer >= 1")
        self._trees: Optional[EditTrees] = None
        self._strings = StringStore()
        self._ids: Dict[str, int] = {}  # label (the tree as a string) -> tree id
        self._counts: Dict[str, int] = {}  # label -> occurrences observed at initialize
        self._lemma_counts: Dict[str, Counter] = {}  # lookup key -> lemma -> occurrences
        self._rules: Optional[RuleLemmas] = None
        # (ORTH, POS, MORPH) -> the lemma the table or the rules give (None: neither), so
        # that each distinct token is looked up once; emptied when the table changes
        self._known: Dict[Tuple[int, int, int], Optional[str]] = {}

    @property
    def trees(self) -> EditTrees:
        """RETURNS (EditTrees): The trees, rebuilt from `state` when it was loaded."""
        if self._trees is None:
            self._strings = StringStore(self.state.get("strings", []))
            self._trees = EditTrees(self._strings)
            self._trees.from_json(self.state.get("trees", []))
            self._ids = {self._trees.tree_to_str(i): i for i in range(len(self._trees))}
        return self._trees

    def _load_rules(self, vocab: Vocab) -> None:
        """With `rules`, build the rule lemmatizer over the vocab's tables once."""
        if self.cfg["rules"] and self._rules is None:
            self._rules = RuleLemmas(vocab, self.name)

    def _label(self, form: str, lemma: str) -> str:
        tree = self.trees.add(form, lemma)
        label = self.trees.tree_to_str(tree)
        self._ids[label] = tree
        return label

    def gold(self, example: Example) -> List[Optional[str]]:
        """RETURNS (List[Optional[str]]): The gold tree per predicted token (None: missing)."""
        if not example.reference.has_annotation("LEMMA"):
            return [None] * len(example.predicted)
        lemmas = example.get_aligned("LEMMA", as_string=True)
        return [
            None if lemma in MISSING else self._label(token.text, lemma)
            for token, lemma in zip(example.predicted, lemmas)
        ]

    def gold_labels(self, example: Example) -> Iterable[str]:
        return (label for label in self.gold(example) if label is not None)

    def observe(self, example: Example) -> None:
        """Keep the trees of the training data (and their strings) in `state`: trees are
        only ever appended, and refer to each other by their index."""
        self._load_rules(example.predicted.vocab)  # at initialize: the tables or an error
        self._known.clear()
        for label in self.gold(example):
            if label is not None:
                self._counts[label] = self._counts.get(label, 0) + 1
        if self.cfg["lookup"] and example.reference.has_annotation("LEMMA"):
            self._observe_lemmas(example)
        trees, saved = self.trees, self.state.setdefault("trees", [])
        if len(trees) > len(saved):
            saved.extend(trees[i] for i in range(len(saved), len(trees)))
            self.state["strings"] = list(self._strings)

    def _observe_lemmas(self, example: Example) -> None:
        """Keep the most frequent lemma of each form, of each form with its gold `pos`, and of
        each form with its gold `pos` and `morph` in `state["lookup"]`, updated as the counts
        grow."""
        if "lookup" not in self.state:  # a new `initialize`: the counts start again
            self._lemma_counts = {}
        table = self.state.setdefault("lookup", {})
        reference = example.reference
        for token in reference:
            if not token.lemma_:
                continue
            keys = {  # a set: without features the last is the second
                lookup_key(token.text, ""),
                lookup_key(token.text, token.pos_),
                lookup_key(token.text, token.pos_, str(token.morph)),
            }
            for key in keys:
                counts = self._lemma_counts.setdefault(key, Counter())
                counts[token.lemma_] += 1
                if counts[token.lemma_] > counts[table.get(key, "")]:
                    table[key] = token.lemma_

    def prune_labels(self, found: Set[str]) -> Set[str]:
        counts, self._counts = self._counts, {}  # only needed here: not saved
        return {label for label in found if counts.get(label, 0) >= self.cfg["min_tree_freq"]}

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        logits = outputs[self.name]["logits"].detach().numpy()
        for b, doc in enumerate(docs):
            if not len(doc):
                continue
            self._load_rules(doc.vocab)
            strings = doc.vocab.strings
            array = doc.to_array([ORTH, POS, MORPH, LEMMA])
            lemmas = array[:, 3].copy()
            for i, (orth, pos, morph, lemma_id) in enumerate(array.tolist()):
                if lemma_id != 0 and not overwrite:
                    continue
                key = (orth, pos, morph)
                if key not in self._known:  # the table and the rules depend on these alone
                    if len(self._known) >= KNOWN_CACHE:
                        self._known.clear()
                    self._known[key] = self._table_or_rules(doc[i])
                lemma = self._known[key]
                if lemma is None:  # the network's trees: only where no table or rule answers
                    lemma = self._best_tree(logits[b, i], doc[i].text)
                lemmas[i] = strings.add(lemma)
            doc.from_array([LEMMA], lemmas.reshape(-1, 1))

    def _table_or_rules(self, token: Token) -> Optional[str]:
        """RETURNS (Optional[str]): The token's lemma from the training table or the rules;
        None if neither knows the form."""
        table = self.state.get("lookup", {}) if self.cfg["lookup"] else {}
        lemma = table.get(lookup_key(token.text, token.pos_, str(token.morph)))
        if lemma is None:
            lemma = table.get(lookup_key(token.text, token.pos_))
        if lemma is None and self._rules is not None:
            lemma = self._rules(token)
        return lemma

    def _best_tree(self, scores: numpy.ndarray, form: str) -> str:
        """RETURNS (str): The lemma of the most probable of the top k trees that applies to
        the form; the form itself if none does."""
        trees = self.trees
        k = min(self.cfg["top_k"], len(self.labels))
        for j in numpy.argsort(-scores)[:k]:
            tree = self._ids.get(self.labels[j])
            if tree is not None:
                lemma = trees.apply(tree, form)
                if lemma is not None:
                    return lemma
        return form

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        examples = [eg for eg in examples if eg.reference.has_annotation("LEMMA")]
        if not examples:
            return {"lemma_acc": None}
        return Scorer.score_token_attr(examples, "lemma")


def lookup_key(form: str, pos: str, morph: str = "") -> str:
    """RETURNS (str): The key of a form, its part of speech ("" for none) and, where given,
    its morphology (UD FEATS) in the table."""
    return f"{form}\t{pos}\t{morph}" if morph else f"{form}\t{pos}"


class RuleLemmas:
    """spaCy's rule lemmatizer over the vocab's lookup tables, for the parts of speech they
    cover (English: its own class, which leaves base forms alone by their morphology)."""

    TABLES = ("lemma_rules", "lemma_exc", "lemma_index")

    def __init__(self, vocab: Vocab, task: str):
        lookups = vocab.lookups
        if "lemma_rules" not in lookups.tables:
            raise ValueError(
                f"Task '{task}': rules = true needs the tables {', '.join(self.TABLES)} in the "
                "vocab's lookups: install spacy-lookups-data and set [initialize.lookups] "
                '(@misc = "spacy.LookupsDataLoader.v1", lang, tables), or set rules = false'
            )
        cls = EnglishLemmatizer if vocab.lang == "en" else Lemmatizer
        self.lemmatizer = cls(vocab, None, mode="rule")
        self.lemmatizer.initialize(lookups=lookups)
        # A table's keys are hashed: it can say whether it has a part of speech, not list them
        self.tables = [lookups.get_table(name) for name in self.TABLES if name in lookups.tables]

    def __call__(self, token: Token) -> Optional[str]:
        """RETURNS (Optional[str]): The token's lemma, or None for a part of speech that the
        tables do not cover."""
        pos = token.pos_.lower()
        if not pos or not any(pos in table for table in self.tables):
            return None
        return self.lemmatizer.rule_lemmatize(token)[0]
