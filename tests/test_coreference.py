"""The coreference kind: end-to-end span ranking over a whole doc -> coref_clusters_N."""

import pickle

import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Adam
from tiny_data import TINY_MODEL

from spacy_jmt.converters.coref import get_clusters, set_clusters
from spacy_jmt.heads import CoreferenceHead, distance_buckets, match_codes

WORDS = ["Anne", "saw", "Walter", ".", "She", "smiled", "at", "him", "."]
STARTS = [True, False, False, False, True, False, False, False, False]
CLUSTERS = [[(0, 1), (4, 5)], [(2, 3), (7, 8)]]


def make_examples(nlp, n=4):
    examples = []
    for _ in range(n):
        ref = Doc(nlp.vocab, words=WORDS, sent_starts=STARTS)
        set_clusters(ref, CLUSTERS)
        examples.append(Example(Doc(nlp.vocab, words=WORDS, sent_starts=STARTS), ref))
    return examples


def blank(tasks):
    """A pipeline with a tiny network and these tasks, from seed 0."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("jmt", config={"tasks": tasks, "model": TINY_MODEL})
    return nlp


def fit(nlp, examples, n_iter):
    optimizer = Adam(0.01)
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer)


@pytest.mark.parametrize(
    "settings",
    [{}, {"string_match": True}, {"string_match": True, "fine_antecedents": 2}],
)
def test_coreference_learns_cross_sentence_clusters_and_round_trips(tmp_path, settings):
    tasks = {
        "coref": {"kind": "coreference", "level": 1, "max_width": 3, "top_ratio": 0.5, **settings}
    }
    nlp = blank(tasks)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    fit(nlp, examples, 60)
    doc = nlp(Doc(nlp.vocab, words=WORDS, sent_starts=STARTS))
    assert get_clusters(doc) == CLUSTERS  # the pronouns link across the sentence boundary
    assert 0.5 < doc.spans["coref_clusters_1"].attrs["score"] <= 1.0
    scores = nlp.evaluate(examples)
    assert scores["coref_f"] == 1.0 and scores["coref_lea_f"] == 1.0
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    again = loaded(Doc(loaded.vocab, words=WORDS, sent_starts=STARTS))
    assert get_clusters(again) == CLUSTERS
    restored = list(DocBin(docs=[again]).get_docs(loaded.vocab))[0]
    assert get_clusters(restored) == CLUSTERS
    assert get_clusters(pickle.loads(pickle.dumps(again))) == CLUSTERS
    assert again.to_json()["spans"]["coref_clusters_2"][0]["start"] == again[2].idx
    assert get_clusters(nlp("")) == []

    # the decision thresholds are inference settings, taken from the config at load time
    def clusters_with(**settings):
        config = {"components": {"jmt": {"tasks": {"coref": settings}}}}
        reloaded = spacy.load(tmp_path / "p", config=config)
        return get_clusters(reloaded(Doc(reloaded.vocab, words=WORDS, sent_starts=STARTS)))

    unlinked = clusters_with(link_threshold=1e9, singleton_threshold=0.0)  # no link
    assert unlinked and all(len(cluster) == 1 for cluster in unlinked)
    assert {m for c in CLUSTERS for m in c} <= {c[0] for c in unlinked}
    assert clusters_with(link_threshold=1e9, singleton_threshold=0.999999) == []
    # so is the antecedent window (no weights depend on it): "She" no longer sees "Anne"
    assert clusters_with(max_antecedents=1) != CLUSTERS
    texts = ["Anne saw Walter. She smiled at him.", "Walter saw Anne."] * 2
    single = [get_clusters(doc) for doc in nlp.pipe(texts)]
    assert single == [get_clusters(doc) for doc in nlp.pipe(texts, n_process=2, batch_size=1)]
    assert any(single)


def test_antecedent_scores_look_back_a_bounded_window():
    torch.manual_seed(0)
    head = CoreferenceHead(8, 0, 16, 3, 4, 8, 0.0)
    n, k = 7, 3
    g = head.project(torch.randn(n, head.span_width))
    index = torch.arange(n)[:, None] - 1 - torch.arange(k)[None, :]
    antecedents = index.masked_fill(index < 0, -1)
    scores = head.antecedent_scores(g, torch.zeros(n), torch.arange(n), antecedents)
    assert scores.shape == (n, k + 1)
    assert torch.isinf(scores[0, 1:]).all() and (scores[:, 0] == 0).all()
    assert torch.isfinite(scores[3:, 1:]).all()
    block = head.antecedent_scores(
        g, torch.zeros(n), torch.arange(n), antecedents[4:], slice(4, None)
    )
    assert torch.allclose(block, scores[4:])
    assert distance_buckets(torch.tensor([1, 4, 5, 8, 64, 10**6])).tolist() == [0, 3, 4, 5, 8, 8]


@pytest.mark.parametrize("string_match", [False, True])
def test_coarse_to_fine_scores_the_best_of_the_window(string_match):
    """prune keeps, per span, the k antecedents of its window with the best coarse score
    (s_m(j) + s_c(i, j)); the fine scores of those are the full window's scores of the
    same pairs."""
    from spacy_jmt.tasks.coreference import span_words

    torch.manual_seed(0)
    head = CoreferenceHead(8, 0, 16, 3, 4, 8, 0.0, string_match=string_match, coarse=True)
    torch.nn.init.normal_(head.coarse_bias.weight)
    n, window, k = 9, 6, 2
    doc = Doc(spacy.blank("en").vocab, words="a b a c b a d a b".split())
    words = span_words(doc, [(i, i + 1) for i in range(n)]) if string_match else None
    g = head.project(torch.randn(n, head.span_width))
    mention, starts = torch.randn(n), torch.arange(n)
    index = torch.arange(n)[:, None] - 1 - torch.arange(window)[None, :]
    antecedents = index.masked_fill(index < 0, -1)
    pruned = head.prune(g, mention, starts, antecedents, k, words=words)
    assert pruned.shape == (n, k)
    coarse = (
        head.coarse_scores(g, starts, antecedents, words=words) + mention[antecedents]
    ).detach()
    full = head.antecedent_scores(g, mention, starts, antecedents, words=words)
    fine = head.antecedent_scores(g, mention, starts, pruned, words=words)
    for i in range(n):
        valid = [c for c in range(window) if antecedents[i, c] >= 0]
        best = sorted(valid, key=lambda c: -float(coarse[i, c]))[:k]
        assert sorted(pruned[i][pruned[i] >= 0].tolist()) == sorted(
            int(antecedents[i, c]) for c in best
        )
        for c, j in enumerate(pruned[i].tolist()):
            if j >= 0:
                column = antecedents[i].tolist().index(j)
                assert torch.isclose(fine[i, c + 1], full[i, column + 1])
    assert pruned[0].tolist() == [-1, -1] and pruned[1].tolist()[1] == -1
    assert head.prune(g, mention, starts, antecedents, None) is antecedents
    block = head.prune(g, mention, starts, antecedents[4:], k, slice(4, None), words)
    assert block.tolist() == pruned[4:].tolist()


def test_string_match_codes_compare_whole_texts_and_last_words():
    from spacy_jmt.tasks.coreference import span_words

    doc = Doc(spacy.blank("en").vocab, words="Mary Smith met Smith and mary smith .".split())
    spans = [(0, 2), (1, 2), (3, 4), (4, 5), (5, 7)]  # Mary Smith, Smith, Smith, and, mary smith
    words = span_words(doc, spans)
    antecedents = torch.tensor([[-1, -1], [0, -1], [1, 0], [2, 1], [0, 2]])
    codes = match_codes(words, antecedents)
    assert codes[1, 0] == 1  # "Smith" .. "Mary Smith": the last words match
    assert codes[2:].tolist() == [[2, 1], [0, 0], [2, 1]]  # the same text, in any case: 2
    assert match_codes(words, antecedents[3:], slice(3, None)).tolist() == codes[3:].tolist()
    head = CoreferenceHead(8, 0, 16, 3, 4, 8, 0.0, string_match=True)
    g = head.project(torch.randn(len(spans), head.span_width))
    args = (g, torch.zeros(len(spans)), torch.tensor([s for s, _ in spans]), antecedents)
    with pytest.raises(ValueError, match="string matches"):
        head.antecedent_scores(*args)
    assert torch.isfinite(head.antecedent_scores(*args, words=words)[1:, 1]).all()


def test_the_mentions_task_feeds_coreference_candidates():
    """HMTL's stack: with a top_ratio that keeps a single scored candidate per doc, the
    clusters are only right because the mentions task's spans are candidates too."""
    tasks = {
        "mentions": {"kind": "mentions", "level": 1, "max_width": 3},
        "coref": {"kind": "coreference", "level": 2, "max_width": 3, "top_ratio": 0.05,
                  "mentions_task": "mentions"},
    }  # fmt: skip
    nlp = blank(tasks)
    examples = make_examples(nlp)
    for eg in examples:
        ref = eg.reference
        ref.spans["mentions"] = [Span(ref, s, e, "PER") for cluster in CLUSTERS for s, e in cluster]
    nlp.initialize(lambda: examples)
    fit(nlp, examples, 60)
    doc = nlp(Doc(nlp.vocab, words=WORDS, sent_starts=STARTS))
    assert sorted((s.start, s.end) for s in doc.spans["mentions"]) == sorted(sum(CLUSTERS, []))
    assert get_clusters(doc) == CLUSTERS
    alone = next(t for t in nlp.get_pipe("jmt").tasks if t.name == "coref")
    alone.mention_task = None  # the same network without its mention level: one candidate
    assert len(sum(get_clusters(nlp(Doc(nlp.vocab, words=WORDS, sent_starts=STARTS))), [])) <= 1


def test_mentions_task_must_be_a_mentions_task_below():
    nlp = spacy.blank("en")
    tasks = {
        "tag": {"kind": "tagging", "attr": "TAG", "level": 1},
        "coref": {"kind": "coreference", "level": 2, "mentions_task": "tag"},
    }
    with pytest.raises(ValueError, match="mentions_task 'tag' is not a mentions task"):
        nlp.add_pipe("jmt", config={"tasks": tasks, "model": TINY_MODEL})
    tasks = {
        "mentions": {"kind": "mentions", "level": 3},
        "coref": {"kind": "coreference", "level": 2, "mentions_task": "mentions"},
    }
    with pytest.raises(ValueError, match="must not sit below its mentions_task"):
        spacy.blank("en").add_pipe("jmt", config={"tasks": tasks, "model": TINY_MODEL})


@pytest.mark.parametrize("partial_mentions", [True, False])
def test_partial_gold_mentions_teach_the_links_they_annotate(monkeypatch, partial_mentions):
    """GAP-style docs: three gold mentions (marked partial), the pronoun linked to one
    name; the rest of the text is not annotated and is not learned as non-mentions. With
    partial_mentions off, such docs train the antecedent ranking alone."""
    from spacy.tokens import SpanGroup

    from spacy_jmt.keys import COREF_MENTIONS_KEY
    from spacy_jmt.tasks.coreference import is_partial

    words = ["Anne", "met", "Mary", "and", "then", "she", "left", "."]
    clusters = [[(0, 1), (5, 6)], [(2, 3)]]
    tasks = {"coref": {"kind": "coreference", "level": 1, "max_width": 2, "top_ratio": 1.0,
                       "partial_mentions": partial_mentions}}  # fmt: skip
    nlp = blank(tasks)
    examples = []
    for _ in range(4):
        starts = [True] + [False] * (len(words) - 1)
        ref = Doc(nlp.vocab, words=words, sent_starts=starts)
        set_clusters(ref, clusters)
        spans = [ref[0:1], ref[2:3], ref[5:6]]
        ref.spans[COREF_MENTIONS_KEY] = SpanGroup(ref, spans=spans, attrs={"partial": True})
        examples.append(Example(Doc(nlp.vocab, words=words, sent_starts=starts), ref))
    assert is_partial(examples[0].reference) and not is_partial(examples[0].predicted)
    nlp.initialize(lambda: examples)
    from spacy_jmt.tasks import coreference

    scored = []  # the candidates the mention loss reads, per doc
    real_loss = coreference.weighted_loss
    monkeypatch.setattr(
        coreference, "weighted_loss", lambda x, *a: scored.append(len(x)) or real_loss(x, *a)
    )
    fit(nlp, examples, 40)
    # the three gold mentions, not the 15 spans of the text; or no mention loss at all
    assert set(scored) == ({3} if partial_mentions else set())
    found = get_clusters(nlp(Doc(nlp.vocab, words=words, sent_starts=starts)))
    she = next(cluster for cluster in found if (5, 6) in cluster)
    assert (0, 1) in she and (2, 3) not in she
    # partial docs are no coreference test set: their clusters do not count in coref_f
    assert nlp.evaluate(examples)["coref_f"] is None


def test_decoding_gives_disjoint_clusters_of_valid_spans_on_long_and_empty_docs(monkeypatch):
    """Any doc (empty, one word, no mention-like words, far longer than the antecedent
    window) decodes to disjoint clusters of valid spans inside one sentence each; a doc
    without gold clusters adds no coreference loss. A long doc is scored in blocks of rows
    that give the same clusters, with its spans projected once (not once per block, which
    made a 100k-token doc quadratic)."""
    tasks = {"coref": {"kind": "coreference", "level": 1, "max_width": 3, "top_ratio": 0.5,
                       "max_antecedents": 4}}  # fmt: skip
    nlp = blank(tasks)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    fit(nlp, examples, 30)
    long_words = (WORDS * 25)[:220]  # 220 tokens, 24 sentences: far past 4 antecedents
    docs = [
        Doc(nlp.vocab, words=long_words, sent_starts=[w == "Anne" or i == 0 for i, w in
                                                      enumerate(long_words)]),
        Doc(nlp.vocab, words=[], sent_starts=[]),
        Doc(nlp.vocab, words=["."], sent_starts=[True]),
        Doc(nlp.vocab, words=["of", "the", "and", "."], sent_starts=[True, False, False, False]),
    ]  # fmt: skip
    for doc in nlp.pipe(docs):
        clusters = get_clusters(doc)
        spans = [span for cluster in clusters for span in cluster]
        assert len(spans) == len(set(spans))  # disjoint
        for s, e in spans:
            assert 0 <= s < e <= len(doc) and e - s <= 3
            assert doc[s].sent.start == doc[e - 1].sent.start
    assert len(get_clusters(nlp(docs[0]))) > 1  # links found along the whole doc
    from spacy_jmt.tasks import coreference

    whole = get_clusters(nlp(docs[0]))
    monkeypatch.setattr(coreference, "BLOCK", 2)  # rows in blocks of 5: many per doc
    projected = []
    project = nlp.get_pipe("jmt").tasks[0].head.project
    hook = project.register_forward_hook(lambda module, x, out: projected.append(len(out)))
    assert get_clusters(nlp(docs[0])) == whole
    hook.remove()
    assert len(projected) == 1 and projected[0] > 5
    losses = nlp.update([Example(Doc(nlp.vocab, words=WORDS, sent_starts=STARTS),
                                 Doc(nlp.vocab, words=WORDS, sent_starts=STARTS))])  # fmt: skip
    assert "jmt:coref" not in losses or losses["jmt:coref"] == 0.0


@pytest.mark.parametrize(
    "setting,match",
    [
        ({"link_threshold": "high"}, "link_threshold must be a number"),
        ({"singleton_threshold": 1.0}, r"singleton_threshold must be in \[0, 1\)"),
        ({"train_antecedents": 0}, "train_antecedents must be an integer >= 1"),
        ({"fine_antecedents": 0.5}, "fine_antecedents must be an integer >= 1"),
    ],
)
def test_decision_thresholds_are_checked(setting, match):
    with pytest.raises(ValueError, match=match):
        blank({"coref": {"kind": "coreference", "level": 1, **setting}})


def test_training_can_look_back_a_shorter_window_than_inference():
    nlp = blank({"coref": {"kind": "coreference", "level": 1, "max_antecedents": 3}})
    task = nlp.get_pipe("jmt").tasks[0]
    assert task._antecedents(5, training=True).shape == task._antecedents(5).shape == (5, 3)
    nlp = blank(
        {"coref": {"kind": "coreference", "level": 1, "max_antecedents": 3, "train_antecedents": 1}}
    )
    task = nlp.get_pipe("jmt").tasks[0]
    assert task._antecedents(5, training=True).tolist() == [[-1], [0], [1], [2], [3]]
    assert task._antecedents(5).shape == (5, 3)
