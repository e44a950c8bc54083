from collections import Counter
from pathlib import Path
from typing import Dict, List

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import fix_random_seed, load_config_from_str, registry

from spacy_jmt.readers import (
    AnnealedBatcher,
    SequentialBatcher,
    create_multi_corpus,
    draw_probabilities,
    epoch_counts,
    schedule_probabilities,
)

SIZES = {"big": 30, "mid": 10, "small": 3}


@pytest.fixture
def nlp():
    return spacy.blank("en")


@pytest.fixture
def paths(tmp_path, nlp) -> Dict[str, Path]:
    """Write one DocBin per corpus; doc i of corpus "big" has the text "big i"."""
    result = {}
    for name, size in SIZES.items():
        docs = [Doc(nlp.vocab, words=[name, str(i)], spaces=[True, False]) for i in range(size)]
        result[name] = tmp_path / f"{name}.spacy"
        DocBin(docs=docs).to_disk(result[name])
    return result


def texts(reader, nlp) -> List[str]:
    return [eg.reference.text for eg in reader(nlp)]


def test_schedule_probabilities():
    sizes = {"a": 100, "b": 25}
    assert schedule_probabilities(sizes, "proportional") == {"a": 0.8, "b": 0.2}
    assert schedule_probabilities(sizes, "uniform") == {"a": 0.5, "b": 0.5}
    assert schedule_probabilities(sizes, "temperature", 2.0) == pytest.approx(
        {"a": 10 / 15, "b": 5 / 15}
    )
    assert schedule_probabilities(sizes, "temperature", 1.0) == pytest.approx(
        schedule_probabilities(sizes, "proportional")
    )
    hot = schedule_probabilities(sizes, "temperature", 1000.0)
    assert hot == pytest.approx({"a": 0.5, "b": 0.5}, abs=1e-3)


@pytest.mark.parametrize(
    "sizes,schedule,temperature,match",
    [
        ({"a": 1}, "random", 1.0, "Unknown schedule 'random'"),
        ({"a": 1}, "temperature", 0.0, "temperature must be > 0"),
        ({"a": 1, "b": 0}, "uniform", 1.0, "Corpus 'b' is empty"),
        ({}, "uniform", 1.0, "No corpora"),
    ],
)
def test_schedule_probabilities_errors(sizes, schedule, temperature, match):
    with pytest.raises(ValueError, match=match):
        schedule_probabilities(sizes, schedule, temperature)


def test_registered():
    assert registry.readers.get("spacy-jmt.MultiCorpus.v1") is create_multi_corpus


def test_proportional_without_shuffle_is_concatenation(paths, nlp):
    reader = create_multi_corpus(paths, schedule="proportional", shuffle=False)
    expected = [f"{name} {i}" for name, size in SIZES.items() for i in range(size)]
    assert texts(reader, nlp) == expected
    assert texts(reader, nlp) == expected


def test_null_paths_leave_their_corpus_out(paths, nlp):
    """A config can name optional corpora (rehearsal data) and switch them on by path."""
    reader = create_multi_corpus({**paths, "extra": None, "more": ""}, shuffle=False)
    expected = [f"{name} {i}" for name, size in SIZES.items() for i in range(size)]
    assert texts(reader, nlp) == expected


def test_proportional_with_shuffle_is_a_permutation(paths, nlp):
    fix_random_seed(0)
    reader = create_multi_corpus(paths, schedule="proportional", shuffle=True)
    expected = [f"{name} {i}" for name, size in SIZES.items() for i in range(size)]
    first, second = texts(reader, nlp), texts(reader, nlp)
    assert sorted(first) == sorted(second) == sorted(expected)
    assert first != expected and first != second


def test_proportional_epoch_size_cycles(paths, nlp):
    reader = create_multi_corpus(paths, epoch_size=2 * sum(SIZES.values()) + 5)
    counts = Counter(texts(reader, nlp))
    assert len(counts) == sum(SIZES.values())
    assert sorted(set(counts.values())) == [2, 3]
    assert sum(counts.values()) == 2 * sum(SIZES.values()) + 5


@pytest.mark.parametrize(
    "schedule,temperature", [("proportional", 1.0), ("uniform", 1.0), ("temperature", 2.0)]
)
def test_sampling_matches_schedule(paths, nlp, schedule, temperature):
    fix_random_seed(42)
    reader = create_multi_corpus(paths, schedule=schedule, temperature=temperature)
    draws = [text.split()[0] for _ in range(150) for text in texts(reader, nlp)]
    expected = schedule_probabilities(SIZES, schedule, temperature)
    for name, p in expected.items():
        assert draws.count(name) / len(draws) == pytest.approx(p, abs=0.02)


@pytest.mark.parametrize(
    "schedule,temperature,unit",
    [("uniform", 1.0, "examples"), ("temperature", 2.0, "examples"), ("uniform", 1.0, "words")],
)
def test_one_epoch_holds_every_doc(paths, nlp, schedule, temperature, unit):
    """spaCy draws the corpus once (max_epochs >= 0) and reshuffles that draw every epoch:
    a schedule that holds a big corpus back must still put all of its docs in the draw,
    or the docs left out are never trained on. (Every doc here has two words, so the
    "words" unit gives the same shares as "examples".)"""
    fix_random_seed(0)
    reader = create_multi_corpus(paths, schedule=schedule, temperature=temperature, unit=unit)
    seen = Counter(texts(reader, nlp))
    assert set(seen) == {f"{name} {i}" for name, size in SIZES.items() for i in range(size)}
    probs = schedule_probabilities(SIZES, schedule, temperature)
    counts = Counter(text.split()[0] for text in seen.elements())
    assert counts["big"] == 30 and counts["small"] == round(probs["small"] * sum(counts.values()))


def test_epoch_counts():
    sizes = {"a": 100, "b": 10}
    assert epoch_counts(sizes, {"a": 0.8, "b": 0.2}) == {"a": 100, "b": 25}
    assert epoch_counts(sizes, {"a": 0.5, "b": 0.5}) == {"a": 100, "b": 100}
    assert epoch_counts(sizes, {"a": 0.99, "b": 0.01}) == {"a": 990, "b": 10}
    assert epoch_counts(sizes, {"a": 0.5, "b": 0.5}, epoch_size=7) in (
        {"a": 4, "b": 3},
        {"a": 3, "b": 4},
    )
    assert sum(epoch_counts(sizes, {"a": 1 / 3, "b": 2 / 3}, epoch_size=100).values()) == 100


def test_sampling_by_words_shares_out_the_words(tmp_path, nlp):
    """With unit "words", uniform sampling gives two corpora equal shares of the training
    words, whatever their doc lengths: a corpus of 10-word docs is drawn a tenth as often
    (per example) as one of 1-word docs."""
    paths = {}
    for name, length in (("long", 10), ("short", 1)):
        docs = [Doc(nlp.vocab, words=[name] * length) for _ in range(20)]
        paths[name] = tmp_path / f"{name}.spacy"
        DocBin(docs=docs).to_disk(paths[name])
    fix_random_seed(0)
    reader = create_multi_corpus(paths, schedule="uniform", unit="words", epoch_size=4000)
    words = Counter(token.text for eg in reader(nlp) for token in eg.reference)
    assert words["long"] / sum(words.values()) == pytest.approx(0.5, abs=0.03)
    reader = create_multi_corpus(paths, schedule="uniform", epoch_size=4000)
    words = Counter(token.text for eg in reader(nlp) for token in eg.reference)
    assert words["long"] / sum(words.values()) == pytest.approx(10 / 11, abs=0.03)


def test_small_corpus_cycles_through_all_its_docs(paths, nlp):
    fix_random_seed(3)
    reader = create_multi_corpus(paths, schedule="uniform", epoch_size=300)
    small = [text for text in texts(reader, nlp) if text.startswith("small")]
    assert len(small) > 60
    for start in range(0, len(small) - 2, 3):  # every pass is a permutation
        assert sorted(small[start : start + 3]) == ["small 0", "small 1", "small 2"]
    assert len({tuple(small[i : i + 3]) for i in range(0, len(small) - 2, 3)}) > 1


def test_examples_are_fresh(paths, nlp):
    reader = create_multi_corpus(paths, schedule="uniform", epoch_size=100)
    examples = list(reader(nlp))
    assert len({id(eg.predicted) for eg in examples}) == 100
    assert all(eg.predicted.text == eg.reference.text for eg in examples)
    assert all(not eg.predicted.has_annotation("TAG") for eg in examples)


@pytest.mark.parametrize("schedule", ["proportional", "uniform", "temperature"])
def test_reproducible_with_seed(paths, nlp, schedule):
    reader = create_multi_corpus(paths, schedule=schedule, temperature=3.0, epoch_size=50)
    fix_random_seed(7)
    first = texts(reader, nlp) + texts(reader, nlp)
    fix_random_seed(7)
    assert texts(reader, nlp) + texts(reader, nlp) == first
    fix_random_seed(8)
    assert texts(reader, nlp) + texts(reader, nlp) != first


def test_string_paths_and_max_length(tmp_path, nlp):
    long_doc = Doc(nlp.vocab, words=list("abcdef"), sent_starts=[1, 0, 0, 1, 0, 0])
    DocBin(docs=[long_doc, Doc(nlp.vocab, words=["x"])]).to_disk(tmp_path / "long.spacy")
    reader = create_multi_corpus({"long": str(tmp_path / "long.spacy")}, max_length=5)
    assert sorted(texts(reader, nlp)) == ["a b c ", "d e f ", "x "]


def test_max_length_counts_what_it_leaves_out(tmp_path, nlp):
    docs = [
        Doc(nlp.vocab, words=list("abcdefgh"), sent_starts=[1, 0, 0, 1, 0, 0, 0, 0]),
        Doc(nlp.vocab, words=list("ijklmn")),  # no sentences: cannot be split
        Doc(nlp.vocab, words=["x"]),
    ]
    DocBin(docs=docs).to_disk(tmp_path / "long.spacy")
    reader = create_multi_corpus({"long": tmp_path / "long.spacy"}, max_length=5)
    with pytest.warns(UserWarning, match="1 longer docs were split.*2 sentences .* left out"):
        assert sorted(texts(reader, nlp)) == ["a b c ", "x "]


def test_missing_path_names_corpus(paths, nlp, tmp_path):
    missing = tmp_path / "nope.spacy"
    reader = create_multi_corpus({**paths, "conll2000": missing})
    with pytest.raises(FileNotFoundError, match=f"Corpus 'conll2000'.*{missing}"):
        list(reader(nlp))


def test_empty_corpus_names_it(paths, nlp, tmp_path):
    DocBin().to_disk(tmp_path / "empty.spacy")
    reader = create_multi_corpus({**paths, "hollow": tmp_path / "empty.spacy"})
    with pytest.raises(ValueError, match="Corpus 'hollow' has no examples"):
        list(reader(nlp))


@pytest.mark.parametrize("cut", [0.5, 0.0])
def test_damaged_corpus_names_it(paths, nlp, tmp_path, cut):
    data = Path(paths["big"]).read_bytes()
    damaged = tmp_path / "damaged.spacy"
    damaged.write_bytes(data[: int(len(data) * cut)] if cut else b"not a DocBin")
    reader = create_multi_corpus({**paths, "big": damaged})
    with pytest.raises(ValueError, match=f"Corpus 'big': cannot read {damaged}"):
        list(reader(nlp))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"paths": {}}, "at least one corpus"),
        ({"paths": {"a": None}}, "at least one corpus"),
        ({"paths": {"a": "a.spacy"}, "schedule": "mixed"}, "Unknown schedule"),
        ({"paths": {"a": "a.spacy"}, "epoch_size": -1}, "epoch_size"),
        ({"paths": {"a": "a.spacy"}, "unit": "tokens"}, "Unknown unit 'tokens'"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_multi_corpus(**kwargs)


def test_spacy_config(paths, nlp):
    config = load_config_from_str(
        f"""
        [corpora]

        [corpora.train]
        @readers = "spacy-jmt.MultiCorpus.v1"
        paths = {{"big": "{paths["big"]}", "small": "{paths["small"]}"}}
        schedule = "temperature"
        temperature = 2.0
        epoch_size = 40
        shuffle = true
        max_length = 0

        [corpora.dev]
        @readers = "spacy-jmt.MultiCorpus.v1"
        paths = {{"big": "{paths["big"]}", "small": "{paths["small"]}"}}
        shuffle = false
        """
    )
    corpora = registry.resolve(config)["corpora"]
    fix_random_seed(0)
    train = texts(corpora["train"], nlp)
    assert len(train) == 40
    assert {text.split()[0] for text in train} == {"big", "small"}
    dev = texts(corpora["dev"], nlp)
    assert dev == [f"big {i}" for i in range(30)] + [f"small {i}" for i in range(3)]


@pytest.mark.parametrize("gold_tokens", [False, True])
def test_gold_tokens(tmp_path, nlp, gold_tokens):
    words = ["An", "anti-takeover", "plan", "does", "n't", "help", "."]
    spaces = [True, True, True, False, True, False, False]
    path = tmp_path / "gold.spacy"
    DocBin(docs=[Doc(nlp.vocab, words=words, spaces=spaces)]).to_disk(path)
    reader = create_multi_corpus({"gold": path}, shuffle=False, gold_tokens=gold_tokens)
    (example,) = list(reader(nlp))
    predicted = [token.text for token in example.predicted]
    if gold_tokens:
        assert predicted == words
        # The norms are the tokenizer's, as on raw text ("n't" -> "not").
        assert example.predicted[4].norm_ == nlp.make_doc("n't")[0].norm_
    else:
        assert predicted == [token.text for token in nlp.make_doc(example.reference.text)]
        assert predicted != words  # spaCy's tokenizer splits the hyphen


def test_gold_tokens_tokenize_each_word_once(tmp_path, nlp):
    """Epochs after the first reuse the norms instead of tokenizing the same words again;
    a new tokenizer starts a new cache."""
    words = ["The", "plan", "does", "n't", "help", "the", "plan", "."]
    path = tmp_path / "gold.spacy"
    DocBin(docs=[Doc(nlp.vocab, words=words)] * 3).to_disk(path)
    reader = create_multi_corpus({"gold": path}, shuffle=False, gold_tokens=True)
    tokenizer = nlp.tokenizer
    norms = [nlp.make_doc(word)[0].norm_ for word in words]

    def counting(texts):
        def tokenize(text):
            texts.append(text)
            return tokenizer(text)

        return tokenize

    first: list = []
    nlp.tokenizer = counting(first)
    assert [[t.norm_ for t in eg.predicted] for eg in reader(nlp)] == [norms] * 3
    assert sorted(first) == sorted(set(words))  # once a word, over the three docs
    assert [[t.norm_ for t in eg.predicted] for eg in reader(nlp)] == [norms] * 3
    assert len(first) == len(set(words))  # the second epoch tokenized nothing
    second: list = []
    nlp.tokenizer = counting(second)
    list(reader(nlp))
    assert sorted(second) == sorted(set(words))


def corpus_counts(batches) -> Counter:
    return Counter(eg.reference.text.split()[0] for batch in batches for eg in batch)


def test_annealed_batcher_moves_the_shares_towards_uniform(paths, nlp):
    fix_random_seed(0)
    reader = create_multi_corpus(paths)  # proportional: every doc once per epoch
    batch_by_5 = registry.batchers.get("spacy.batch_by_sequence.v1")(size=5)
    batcher = registry.batchers.get("spacy-jmt.annealed_batcher.v1")(
        batch_by_5, max_steps=9, start=1.0, end=0.2
    )
    assert isinstance(batcher, AnnealedBatcher)
    epoch = list(reader(nlp))
    first = corpus_counts(batcher(epoch))  # alpha 1: the reader's own shares
    assert first == Counter(SIZES)
    assert batcher.steps == 9 and batcher.alpha == pytest.approx(0.2)
    last = corpus_counts(batcher(epoch))  # alpha 0.2: the small corpus repeats
    docs = {name: [None] * size for name, size in SIZES.items()}
    probs = draw_probabilities(docs, "temperature", 1 / 0.2)  # type: ignore[arg-type]
    assert last == Counter(epoch_counts(SIZES, probs, sum(SIZES.values())))
    assert last["small"] > SIZES["small"] and last["big"] < SIZES["big"]
    assert sum(last.values()) == sum(SIZES.values())


def test_annealed_batcher_passes_one_corpus_through(nlp):
    docs = [Doc(nlp.vocab, words=["a", str(i)]) for i in range(4)]
    examples = [Example(doc, doc) for doc in docs]  # no MultiCorpus: one corpus
    batcher = AnnealedBatcher(lambda egs: [[eg] for eg in egs], max_steps=2)
    assert [batch[0] for batch in batcher(examples)] == examples


@pytest.mark.parametrize(
    "kwargs,match",
    [({"max_steps": 0}, "max_steps must be > 0"), ({"max_steps": 5, "end": 0.0}, "> 0"),
     ({"max_steps": 5, "unit": "tokens"}, "Unknown unit")],
)  # fmt: skip
def test_annealed_batcher_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AnnealedBatcher(lambda egs: egs, **kwargs)


def test_sequential_batcher_passes_over_one_corpus_after_another(paths, nlp):
    fix_random_seed(0)
    epoch = list(create_multi_corpus(paths)(nlp))  # every doc once, the corpora mixed
    batch_by_4 = registry.batchers.get("spacy.batch_by_sequence.v1")(size=4)
    batcher = registry.batchers.get("spacy-jmt.sequential_batcher.v1")(
        batch_by_4, order=["small", "big"]
    )
    assert isinstance(batcher, SequentialBatcher)
    batches = list(batcher(epoch))
    corpora = [{eg.reference.text.split()[0] for eg in batch} for batch in batches]
    assert all(len(names) == 1 for names in corpora)  # no batch mixes corpora
    passes = [names.pop() for names in corpora]
    # Each corpus whole, in one pass: "small" and "big" in the given order, then "mid".
    assert corpus_counts(batches) == Counter(SIZES)
    assert passes == sorted(passes, key=["small", "big", "mid"].index)


def test_sequential_batcher_names_each_corpus_once():
    with pytest.raises(ValueError, match="twice"):
        SequentialBatcher(lambda egs: egs, order=["a", "a"])
