"""A corpus reader that mixes several DocBin corpora with a sampling schedule."""

import itertools
import math
import random
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

from spacy.attrs import SPACY
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.training.corpus import walk_corpus
from spacy.util import registry

from .keys import CORPUS_KEY
from .pairs import is_pair_data
from .segmentation import copy_gold_sentences

SCHEDULES = ("proportional", "uniform", "temperature")
UNITS = ("examples", "words")


def _check_schedule(schedule: str, temperature: float, unit: str = "examples") -> None:
    """Raise a ValueError for an unknown schedule or unit, or a temperature that is not > 0."""
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {schedule!r}; accepted: {', '.join(SCHEDULES)}")
    if unit not in UNITS:
        raise ValueError(f"Unknown unit {unit!r}; accepted: {', '.join(UNITS)}")
    if schedule == "temperature" and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def schedule_probabilities(
    sizes: Dict[str, int], schedule: str, temperature: float = 1.0
) -> Dict[str, float]:
    """Compute the probability of drawing an example from each corpus.

    proportional: p_i ∝ n_i; uniform: p_i = 1 / k; temperature: p_i ∝ n_i ** (1 / T),
    which is proportional for T = 1 and tends to uniform as T grows.

    sizes (Dict[str, int]): Corpus name -> number of examples (each > 0).
    schedule (str): "proportional", "uniform" or "temperature".
    temperature (float): The temperature T > 0, used by the "temperature" schedule.
    RETURNS (Dict[str, float]): Corpus name -> probability; the values sum to 1.
    """
    _check_schedule(schedule, temperature)
    if not sizes:
        raise ValueError("No corpora given")
    for name, size in sizes.items():
        if size <= 0:
            raise ValueError(f"Corpus {name!r} is empty (size {size})")
    exponent = {"proportional": 1.0, "uniform": 0.0, "temperature": 1.0 / temperature}[schedule]
    weights = {name: size**exponent for name, size in sizes.items()}
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()}


def draw_probabilities(
    docs: Dict[str, List[Doc]], schedule: str, temperature: float = 1.0, unit: str = "examples"
) -> Dict[str, float]:
    """Compute the probability of drawing each corpus for the next example.

    unit "examples": the schedule shares out the examples (schedule_probabilities over the
    numbers of docs). unit "words": it shares out the words, so that a corpus of long
    documents (LitBank's 2,000 words) and one of short sentences (CoNLL04's 25) get the
    shares of the training words that the schedule gives their sizes in words: each
    corpus's share is divided by its mean doc length and the results are renormalized.

    docs (Dict[str, List[Doc]]): Corpus name -> docs (each list not empty).
    RETURNS (Dict[str, float]): Corpus name -> probability per example; they sum to 1.
    """
    _check_schedule(schedule, temperature, unit)
    if unit == "examples":
        return schedule_probabilities({n: len(d) for n, d in docs.items()}, schedule, temperature)
    words = {name: max(1, sum(len(doc) for doc in corpus)) for name, corpus in docs.items()}
    shares = schedule_probabilities(words, schedule, temperature)
    per_example = {name: shares[name] * len(docs[name]) / words[name] for name in docs}
    total = sum(per_example.values())
    return {name: p / total for name, p in per_example.items()}


def epoch_counts(
    sizes: Dict[str, int], probs: Dict[str, float], epoch_size: int = 0
) -> Dict[str, int]:
    """Share out the examples of one epoch between the corpora by their probabilities.

    spaCy draws the training corpus once when `[training] max_epochs` is 0 or more and
    reshuffles that one draw every epoch, so the draw has to hold every doc: epoch_size 0
    is the smallest epoch in which each corpus gets at least as many examples as it has
    docs (max over i of n_i / p_i), so that a corpus the schedule holds back is still seen
    whole, and small ones repeat. The counts are p_i * epoch_size, rounded by largest
    remainder so that they sum to the epoch size.

    sizes (Dict[str, int]): Corpus name -> number of docs.
    probs (Dict[str, float]): Corpus name -> probability per example (sum 1).
    epoch_size (int): Examples in the epoch; 0: the smallest that holds every doc.
    RETURNS (Dict[str, int]): Corpus name -> examples in the epoch.
    """
    if not epoch_size:
        epoch_size = max(math.ceil(sizes[name] / probs[name] - 1e-9) for name in sizes)
    exact = {name: probs[name] * epoch_size for name in sizes}
    counts = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(sizes, key=lambda name: counts[name] - exact[name])
    for name in by_remainder[: epoch_size - sum(counts.values())]:
        counts[name] += 1
    return counts


T = TypeVar("T")


def _cycle(items: List[T], shuffle: bool) -> Iterator[T]:
    """Cycle through Docs (or Examples) forever, reshuffling before each pass if shuffle is
    set.

    items (List[T]): The Docs or Examples (not empty).
    shuffle (bool): Whether to shuffle each pass with Python's random module.
    YIELDS (T): The next one.
    """
    while True:
        order = list(items)
        if shuffle:
            random.shuffle(order)
        yield from order


def _make_example(
    nlp: Language,
    reference: Doc,
    gold_tokens: bool = False,
    norms: Optional[Dict[str, str]] = None,
) -> Example:
    """Build an Example from a reference Doc as spacy.training.Corpus does.

    nlp (Language): The pipeline, for its tokenizer.
    reference (Doc): The gold-standard Doc.
    gold_tokens (bool): Give the predicted Doc the reference's tokens instead of the
        tokenizer's (with the norms the tokenizer gives those words).
    norms (Optional[Dict[str, str]]): A cache of set_tokenizer_norms to share across calls.
    RETURNS (Example): A new Example with an unannotated predicted Doc; for a sentence pair
        (spacy_jmt.pairs.is_pair_data) the predicted Doc gets the two sentences, which are
        input for the pair tasks.
    """
    if gold_tokens or reference.has_unknown_spaces:
        words = [token.text for token in reference]
        spaces = reference.to_array(SPACY).astype(bool).tolist()
        predicted = Doc(nlp.vocab, words=words, spaces=spaces)
        set_tokenizer_norms(nlp, [predicted], norms)
        example = Example(predicted, reference)
    else:
        example = Example(nlp.make_doc(reference.text), reference)
    if is_pair_data(reference):
        copy_gold_sentences(example)
    return example


def set_tokenizer_norms(
    nlp: Language, docs: List[Doc], cache: Optional[Dict[str, str]] = None
) -> None:
    """Give docs built from given words the norms that the pipeline's tokenizer gives the
    same words (its exceptions set e.g. "n't" -> "not"), so that models reading NORM see
    the features they see on raw text.

    nlp (Language): The pipeline, for its tokenizer.
    docs (List[Doc]): The docs, changed in place.
    cache (Optional[Dict[str, str]]): Word -> norm, filled as words are met; pass the same
        dict for the same tokenizer to skip tokenizing a word twice (a reader's epochs).
    """
    cache = {} if cache is None else cache
    for doc in docs:
        for token in doc:
            if token.text not in cache:
                tokens = nlp.make_doc(token.text)
                cache[token.text] = tokens[0].norm_ if len(tokens) == 1 else token.norm_
            token.norm_ = cache[token.text]


def limit_length(docs: List[Doc], max_length: int) -> Tuple[List[Doc], int, int]:
    """spacy.Corpus.v1's rule for max_length, with counts: a doc of max_length or more tokens
    is split into its sentences, and a sentence (or a doc without sentences) of that length
    is left out.

    docs (List[Doc]): The reference docs.
    max_length (int): The limit; 0: none.
    RETURNS (Tuple[List[Doc], int, int]): The docs kept, the number of docs split, and the
        number of sentences or docs left out.
    """
    if not max_length:
        return docs, 0, 0
    kept: List[Doc] = []
    n_split = n_left_out = 0
    for doc in docs:
        if len(doc) < max_length:
            kept.append(doc)
        elif not doc.has_annotation("SENT_START"):
            n_left_out += 1
        else:
            n_split += 1
            for sent in doc.sents:
                if len(sent) < max_length:
                    kept.append(sent.as_doc())
                else:
                    n_left_out += 1
    return kept, n_split, n_left_out


class MultiCorpus:
    """Draw the examples of one epoch from several DocBin corpora by a schedule.

    proportional: a (shuffled) concatenation of all corpora, drawn without replacement.
    uniform / temperature: each corpus gets its share of the epoch's examples by the
    probabilities of draw_probabilities (the schedule over the corpora's sizes in examples,
    or in words with unit "words"; epoch_counts), in a random order, and gives them from a
    cycle of its own that is reshuffled on each pass, so small corpora repeat and none is
    starved.
    All randomness comes from Python's random module (seeded by spaCy's fix_random_seed).
    """

    def __init__(
        self,
        paths: Dict[str, Optional[Union[str, Path]]],
        *,
        schedule: str = "proportional",
        temperature: float = 1.0,
        epoch_size: int = 0,
        shuffle: bool = True,
        max_length: int = 0,
        gold_tokens: bool = False,
        unit: str = "examples",
    ) -> None:
        """Initialize the reader. Files are read when it is called.

        paths (Dict[str, Union[str, Path]]): Corpus name -> .spacy file or directory; a
            corpus whose path is null or "" is left out (optional corpora, e.g. rehearsal
            data switched on from the command line).
        schedule (str): "proportional", "uniform" or "temperature".
        temperature (float): The temperature T of the "temperature" schedule.
        epoch_size (int): Examples per call (epoch); 0 is the sum of the corpus sizes for
            "proportional", and for the other schedules the smallest epoch in which every
            corpus is seen whole (epoch_counts).
        shuffle (bool): Whether to shuffle; proportional without shuffling yields the
            corpora concatenated in the order of `paths`.
        max_length (int): As in spacy.Corpus.v1: longer docs are split into sentences,
            and longer sentences are left out, with a warning that counts them. 0 means no
            limit.
        gold_tokens (bool): Predicted docs get the gold tokens instead of the tokenizer's
            (to train and evaluate for gold tokenization).
        unit (str): What the uniform and temperature schedules share out: "examples" or
            "words" (proportional is the same either way: every doc once per pass).
        """
        kept = {name: Path(path) for name, path in paths.items() if path}  # null: left out
        if not kept:
            raise ValueError("spacy-jmt.MultiCorpus.v1 needs at least one corpus in `paths`")
        if epoch_size < 0:
            raise ValueError(f"epoch_size must be >= 0, got {epoch_size}")
        _check_schedule(schedule, temperature, unit)
        self.paths = kept
        self.schedule = schedule
        self.temperature = temperature
        self.epoch_size = epoch_size
        self.shuffle = shuffle
        self.max_length = max_length
        self.gold_tokens = gold_tokens
        self.unit = unit
        # set_tokenizer_norms' cache, for the tokenizer it was filled with, so that later
        # epochs do not tokenize the same words again.
        self._norms: Tuple[Any, Dict[str, str]] = (None, {})

    def read(self, nlp: Language) -> Dict[str, List[Doc]]:
        """Read the reference Docs of every corpus.

        nlp (Language): The pipeline whose vocab the Docs use.
        RETURNS (Dict[str, List[Doc]]): Corpus name -> reference Docs, in file order.
        """
        references = {}
        for name, path in self.paths.items():
            if not path.exists():
                raise FileNotFoundError(f"Corpus {name!r}: path does not exist: {path}")
            # The reference docs as spacy.Corpus reads them (empty docs left out), without
            # the examples it would build by tokenizing every text again.
            corpus = Corpus(path)
            try:
                docs = list(corpus.read_docbin(nlp.vocab, walk_corpus(path, ".spacy")))
            except ValueError as err:  # a damaged .spacy file (spaCy's E1014 names no file)
                raise ValueError(f"Corpus {name!r}: cannot read {path}: {err}") from err
            references[name], n_split, n_left_out = limit_length(docs, self.max_length)
            if n_left_out:
                warnings.warn(
                    f"[spacy-jmt] corpus {name!r} ({path}): max_length {self.max_length}: "
                    f"{n_split} longer docs were split into sentences, and {n_left_out} "
                    f"sentences (or docs without sentences) of {self.max_length}+ tokens "
                    "were left out",
                    UserWarning,
                    stacklevel=2,
                )
            if not references[name]:
                raise ValueError(f"Corpus {name!r} has no examples: {path}")
            for doc in references[name]:
                doc.user_data[CORPUS_KEY] = name
        return references

    def __call__(self, nlp: Language) -> Iterator[Example]:
        """Yield the examples of one epoch.

        nlp (Language): The current pipeline.
        YIELDS (Example): The examples.
        """
        references = self.read(nlp)
        drawn: Iterator[Doc]
        if self.schedule == "proportional":
            everything = list(itertools.chain.from_iterable(references.values()))
            epoch_size = self.epoch_size or len(everything)
            drawn = itertools.islice(_cycle(everything, self.shuffle), epoch_size)
        else:
            probs = draw_probabilities(references, self.schedule, self.temperature, self.unit)
            sizes = {name: len(docs) for name, docs in references.items()}
            counts = epoch_counts(sizes, probs, self.epoch_size)
            names = [name for name, count in counts.items() for _ in range(count)]
            random.shuffle(names)
            cycles = {name: _cycle(docs, self.shuffle) for name, docs in references.items()}
            drawn = (next(cycles[name]) for name in names)
        if self._norms[0] is not nlp.tokenizer:
            self._norms = (nlp.tokenizer, {})
        for reference in drawn:
            yield _make_example(nlp, reference, self.gold_tokens, self._norms[1])


@registry.readers("spacy-jmt.MultiCorpus.v1")
def create_multi_corpus(
    paths: Dict[str, Optional[Union[str, Path]]],
    schedule: str = "proportional",
    temperature: float = 1.0,
    epoch_size: int = 0,
    shuffle: bool = True,
    max_length: int = 0,
    gold_tokens: bool = False,
    unit: str = "examples",
) -> Callable[[Language], Iterator[Example]]:
    """Create a reader that mixes several DocBin corpora (spacy-jmt.MultiCorpus.v1).

    paths (Dict[str, Union[str, Path]]): Corpus name -> .spacy file or directory; null
        or "" leaves the corpus out.
    schedule (str): "proportional", "uniform" or "temperature".
    temperature (float): The temperature T of the "temperature" schedule (p_i ∝ n_i^(1/T)).
    epoch_size (int): Examples per epoch; 0: every doc at least once (epoch_counts).
    shuffle (bool): Whether to shuffle; "proportional" with shuffle false is the plain
        concatenation of the corpora, in order (for dev sets).
    max_length (int): As in spacy.Corpus.v1. 0 means no limit.
    gold_tokens (bool): Predicted docs get the gold tokens instead of the tokenizer's.
    unit (str): What the uniform and temperature schedules share out: "examples" or "words".
    RETURNS (Callable[[Language], Iterator[Example]]): The reader.
    """
    return MultiCorpus(
        paths,
        schedule=schedule,
        temperature=temperature,
        epoch_size=epoch_size,
        shuffle=shuffle,
        max_length=max_length,
        gold_tokens=gold_tokens,
        unit=unit,
    )


class AnnealedBatcher:
    """Annealed sampling (Stickland and Murray 2019): every epoch re-draws the corpora's
    shares, p_i ∝ n_i ** alpha, with alpha going linearly from `start` (1: proportional)
    to `end` (towards uniform) over the run's steps, so that the large corpora lead early
    and the small ones get more of the later epochs.

    spaCy hands the batcher the shuffled epoch of the reader each epoch (with `[training]
    max_epochs` >= 0 the reader is called once), so the batcher is where sampling can change
    between epochs. It groups the epoch's examples by the corpus MultiCorpus noted in each
    reference Doc (examples of other readers are one corpus), draws as many examples as it
    was given by the current shares (epoch_counts; a corpus held back is subsampled, one
    brought forward repeats), and passes them in a random order to the inner batcher.

    batcher (Callable): The inner batcher, e.g. spacy.batch_by_words.v1.
    max_steps (int): The run's steps (`${training.max_steps}`), over which alpha anneals.
    start, end (float): alpha at the first and at the last step (> 0; 1 is proportional).
    unit (str): What the shares count: "examples" or "words" (as in MultiCorpus).
    """

    def __init__(
        self,
        batcher: Callable[[Iterable[Example]], Iterable[Any]],
        max_steps: int,
        start: float = 1.0,
        end: float = 0.2,
        unit: str = "examples",
    ) -> None:
        if max_steps <= 0:
            raise ValueError(f"max_steps must be > 0 for annealed sampling, got {max_steps}")
        if not (start > 0 and end > 0):
            raise ValueError(f"start and end must be > 0, got {start} and {end}")
        _check_schedule("temperature", 1.0, unit)
        self.batcher = batcher
        self.max_steps = max_steps
        self.start = start
        self.end = end
        self.unit = unit
        self.steps = 0

    @property
    def alpha(self) -> float:
        """The exponent for the next epoch, by the steps batched so far."""
        progress = min(1.0, self.steps / self.max_steps)
        return self.start + (self.end - self.start) * progress

    def draw(self, examples: Iterable[Example]) -> List[Example]:
        """RETURNS (List[Example]): This epoch's examples, re-drawn by the current shares."""
        by_corpus: Dict[str, List[Example]] = {}
        for eg in examples:
            by_corpus.setdefault(eg.reference.user_data.get(CORPUS_KEY, ""), []).append(eg)
        if len(by_corpus) < 2:
            return [eg for egs in by_corpus.values() for eg in egs]
        docs = {name: [eg.reference for eg in egs] for name, egs in by_corpus.items()}
        probs = draw_probabilities(docs, "temperature", 1.0 / self.alpha, self.unit)
        sizes = {name: len(egs) for name, egs in by_corpus.items()}
        counts = epoch_counts(sizes, probs, sum(sizes.values()))
        cycles = {name: _cycle(egs, shuffle=True) for name, egs in by_corpus.items()}
        names = [name for name, count in counts.items() for _ in range(count)]
        random.shuffle(names)
        return [next(cycles[name]) for name in names]

    def __call__(self, examples: Iterable[Example]) -> Iterator[Any]:
        for batch in self.batcher(self.draw(examples)):
            self.steps += 1
            yield batch


@registry.batchers("spacy-jmt.annealed_batcher.v1")
def create_annealed_batcher(
    batcher: Callable[[Iterable[Example]], Iterable[Any]],
    max_steps: int,
    start: float = 1.0,
    end: float = 0.2,
    unit: str = "examples",
) -> AnnealedBatcher:
    """Create a batcher with annealed sampling between corpora (spacy-jmt.annealed_batcher.v1;
    see AnnealedBatcher). Use it with spacy-jmt.MultiCorpus.v1's "proportional" schedule,
    which gives it every doc once per epoch.

    batcher (Callable): The inner batcher.
    max_steps (int): The run's steps.
    start, end (float): The exponent alpha of p_i ∝ n_i ** alpha at the first and last step.
    unit (str): "examples" or "words".
    RETURNS (AnnealedBatcher): The batcher.
    """
    return AnnealedBatcher(batcher, max_steps, start, end, unit)


class SequentialBatcher:
    """JMT's order of per-task passes (Hashimoto et al. 2017): each epoch trains on one
    corpus after another, every batch from a single corpus, in `order` (the lower levels'
    corpora first, as JMT trains POS, then chunking, then parsing, then the semantic tasks),
    instead of one shuffled mixture. Corpora that `order` does not name follow it, in the
    order they first appear. Within a corpus the examples keep spaCy's shuffle. Pair it
    with the component's `successive_regularization` to hold the shared levels near where
    the previous pass left them, as JMT does.

    batcher (Callable): The inner batcher, e.g. spacy.batch_by_words.v1.
    order (List[str]): Corpus names (those of spacy-jmt.MultiCorpus.v1's paths).
    """

    def __init__(
        self, batcher: Callable[[Iterable[Example]], Iterable[Any]], order: List[str]
    ) -> None:
        if len(set(order)) != len(order):
            raise ValueError(f"order names a corpus twice: {order}")
        self.batcher = batcher
        self.order = list(order)

    def passes(self, examples: Iterable[Example]) -> List[List[Example]]:
        """RETURNS (List[List[Example]]): This epoch's examples, one list per corpus, in
        the order of the passes."""
        by_corpus: Dict[str, List[Example]] = {}
        for eg in examples:
            by_corpus.setdefault(eg.reference.user_data.get(CORPUS_KEY, ""), []).append(eg)
        rank = {name: i for i, name in enumerate(self.order)}
        names = sorted(by_corpus, key=lambda name: rank.get(name, len(rank)))  # stable
        return [by_corpus[name] for name in names]

    def __call__(self, examples: Iterable[Example]) -> Iterator[Any]:
        for corpus in self.passes(examples):
            yield from self.batcher(corpus)


@registry.batchers("spacy-jmt.sequential_batcher.v1")
def create_sequential_batcher(
    batcher: Callable[[Iterable[Example]], Iterable[Any]], order: List[str]
) -> SequentialBatcher:
    """Create a batcher that passes over the corpora one after another each epoch
    (spacy-jmt.sequential_batcher.v1; see SequentialBatcher).

    batcher (Callable): The inner batcher.
    order (List[str]): The corpora's names, first pass first.
    RETURNS (SequentialBatcher): The batcher.
    """
    return SequentialBatcher(batcher, order)
