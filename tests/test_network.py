"""The torch side: packing, the level wiring, and successive regularization."""

import pytest
import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example
from tiny_data import TINY_MODEL

from spacy_jmt.heads import arc_blocks, bilinear_scores
from spacy_jmt.layers.encoder import BiLSTM, Packing
from spacy_jmt.layers.network import JMTNetwork, sentence_groups
from spacy_jmt.model import get_torch_network
from spacy_jmt.tasks import build_tasks


def specs(tasks, n_labels):
    """The network specs of these task settings, with n_labels[name] labels each."""
    labels = {name: [f"L{i}" for i in range(n)] for name, n in n_labels.items()}
    return [task.spec() for task in build_tasks(tasks, labels)]


HEAD_SIZES = {"arc_width": 8, "label_width": 8}

TASKS = {
    "tag": {"kind": "tagging", "attr": "TAG", "level": 1},
    "dep": {"kind": "parsing", "level": 2},
}


def test_packing_round_trips():
    segments = [(0, 0, 3), (0, 3, 4), (1, 0, 5), (2, 1, 2)]
    T = 5
    packing = Packing(segments, T)
    X = torch.arange(3 * T, dtype=torch.float32).view(3, T, 1)
    rows = packing.pack(X)
    assert packing.n_rows == 3 + 1 + 5 + 1
    # Packed order is time-major over sentences sorted by length.
    assert packing.batch_sizes.tolist() == [4, 2, 2, 1, 1]
    back = packing.unpack(rows, 3, T)
    covered = torch.zeros(3 * T, dtype=torch.bool)
    covered[[b * T + i for b, s, e in segments for i in range(s, e)]] = True
    assert torch.equal(back.view(-1)[covered], X.view(-1)[covered])
    assert (back.view(-1)[~covered] == 0).all()
    padded = packing.pad(rows)[..., 0]
    assert padded[0].tolist() == [0, 1, 2, 0, 0]
    assert padded[2].tolist() == [5, 6, 7, 8, 9]
    assert padded[3].tolist() == [11, 0, 0, 0, 0]


def test_bilstm_on_packed_rows_matches_per_sentence_runs():
    torch.manual_seed(0)
    lstm = BiLSTM(3, 4, depth=2)
    segments = [(0, 0, 4), (0, 4, 6), (1, 0, 3)]
    X = torch.randn(2, 6, 3)
    packing = Packing(segments, 6)
    together = packing.pad(lstm(packing.pack(X), packing))
    for s, (b, start, end) in enumerate(segments):
        alone = Packing([(0, 0, end - start)], end - start)
        single = lstm(alone.pack(X[b : b + 1, start:end]), alone)
        assert torch.allclose(together[s, : end - start], single, atol=1e-6)


@pytest.mark.parametrize("shortcut,label_width", [(True, 8), (False, 8), (True, 0)])
def test_level_inputs_follow_shortcuts_and_label_embeddings(shortcut, label_width):
    tasks = specs(
        {
            "sents": {"kind": "tagging", "attr": "SENT_START", "level": 0},
            "pos": {"kind": "tagging", "attr": "POS", "level": 1},
            "chunks": {"kind": "chunking", "level": 2, "depth": 1},  # 3 labels: 7 IOB tags
            "dep": {"kind": "parsing", "level": 3},
        },
        {"sents": 2, "pos": 5, "chunks": 3, "dep": 4},
    )
    net = JMTNetwork(10, 6, tasks, label_width, shortcut, 0.0, head_sizes=HEAD_SIZES)
    in_sizes = [level.layers[0].input_size for level in net.levels]
    words = 10
    assert in_sizes[0] == words + label_width  # words + the level-0 task's labels
    assert in_sizes[1] == (words if shortcut else 0) + 6 + 2 * label_width
    assert in_sizes[2] == (words if shortcut else 0) + 6 + 3 * label_width
    out = net(torch.randn(7, 10), [4, 3], lambda outputs: [(0, 0, 2), (0, 2, 4), (1, 0, 3)])
    assert out["pos"]["logits"].shape == (2, 4, 5)
    blocks = list(arc_blocks(out["dep"]))  # one bucket of the three sentences, longest first
    assert [(group.tolist(), block.shape) for group, block in blocks] == [([2, 0, 1], (3, 3, 4))]
    assert out["dep"]["arc"].shape == (3 * 3 * 4,)
    assert out["dep"]["segments"] == [(0, 0, 2), (0, 2, 4), (1, 0, 3)]


def test_sentence_groups_hold_about_size_tokens_and_keep_pairs_together():
    segments = [(0, 0, 3), (0, 3, 6), (0, 6, 8), (1, 0, 4), (1, 4, 9), (2, 0, 1)]
    assert sentence_groups(segments, 5) == [(0, 2), (2, 5), (5, 6)]  # doc 1 is a pair
    assert sentence_groups(segments, 100) == [(0, 6)]
    assert sentence_groups(segments, 1) == [(0, 1), (1, 2), (2, 3), (3, 5), (5, 6)]


ALL_KINDS = {
    "sents": {"kind": "tagging", "attr": "SENT_START", "level": 0},
    "pos": {"kind": "tagging", "attr": "POS", "level": 1},
    "ents": {"kind": "spans", "level": 1},
    "chunks": {"kind": "chunking", "level": 2, "depth": 1},
    "rel": {"kind": "relation", "level": 2, "depth": 1, "spans_task": "ents"},
    "dep": {"kind": "parsing", "level": 3},
    "sim": {"kind": "relatedness", "level": 4, "depth": 1},
    "nli": {"kind": "entailment", "level": 4, "relatedness_task": "sim"},
}
ALL_LABELS = {"sents": 2, "pos": 5, "ents": 3, "chunks": 3, "rel": 3, "dep": 4, "sim": 5, "nli": 3}


def _per_sentence_arcs(out):
    arcs = {}
    for group, block in arc_blocks(out["dep"]):
        for k, s in enumerate(group.tolist()):
            b, start, end = out["dep"]["segments"][s]
            n = end - start
            arcs[s] = block[k, :n, : n + 1]
    return arcs


@pytest.mark.parametrize("communication", ["none", "complete"])
def test_sentence_groups_give_the_same_outputs(communication):
    """Levels above 0 over groups of sentences (inference on long docs) give exactly what
    they give over all sentences at once, for every kind of task."""
    torch.manual_seed(0)
    tasks = specs(ALL_KINDS, ALL_LABELS)
    net = JMTNetwork(10, 6, tasks, 4, True, 0.0, communication, HEAD_SIZES).eval()
    lengths = [9, 5, 1, 7]  # docs 1 and 3 are sentence pairs
    segments = [(0, 0, 3), (0, 3, 6), (0, 6, 9), (1, 0, 2), (1, 2, 5), (2, 0, 1),
                (3, 0, 4), (3, 4, 7)]  # fmt: skip
    X = torch.randn(sum(lengths), 10)
    with torch.no_grad():
        whole = net(X, lengths, lambda outputs: segments)
        grouped = net(X, lengths, lambda outputs: segments, group_length=4)
    assert len(sentence_groups(segments, 4)) > 2
    assert set(grouped) == set(whole)
    for name, out in whole.items():
        for key, value in out.items():
            if torch.is_tensor(value) and key != "arc":
                assert torch.allclose(grouped[name][key], value, atol=1e-6), (name, key)
    assert grouped["sim"]["docs"] == whole["sim"]["docs"] == [1, 3]
    assert grouped["dep"]["segments"] == whole["dep"]["segments"] == segments
    whole_arcs, grouped_arcs = _per_sentence_arcs(whole), _per_sentence_arcs(grouped)
    assert sorted(grouped_arcs) == list(range(len(segments)))
    for s, scores in whole_arcs.items():
        assert torch.allclose(grouped_arcs[s], scores, atol=1e-6)


def _trained_nlp(successive_regularization: float):
    nlp = spacy.blank("en")
    jmt = nlp.add_pipe(
        "jmt",
        config={
            "tasks": TASKS,
            "model": TINY_MODEL,
            "successive_regularization": successive_regularization,
        },
    )
    ref = Doc(
        nlp.vocab,
        words=["She", "reads", "books", "."],
        tags=["PRP", "VBZ", "NNS", "."],
        heads=[1, 1, 1, 1],
        deps=["nsubj", "ROOT", "obj", "punct"],
    )
    examples = [Example(nlp.make_doc(ref.text), ref)]
    optimizer = nlp.initialize(lambda: examples)
    return nlp, jmt, examples, optimizer


def test_drift_penalty_is_zero_at_the_anchor_and_grows_with_training():
    nlp, jmt, examples, optimizer = _trained_nlp(0.0)
    jmt.set_anchor()
    assert jmt.drift_penalty() == 0.0
    previous = 0.0
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
        drift = jmt.drift_penalty()
        assert drift > previous
        previous = drift


def test_successive_regularization_pulls_towards_the_anchor():
    drifts = []
    for strength in (0.0, 100.0):
        torch.manual_seed(0)
        nlp, jmt, examples, optimizer = _trained_nlp(strength)
        nlp.update(examples, sgd=optimizer)  # the first update takes the anchor
        anchor = {
            n: p.detach().clone() for n, p in get_torch_network(jmt.model).levels.named_parameters()
        }
        for _ in range(10):
            nlp.update(examples, sgd=optimizer)
        levels = get_torch_network(jmt.model).levels
        drifts.append(
            sum(((p - anchor[n]) ** 2).sum().item() for n, p in levels.named_parameters())
        )
    assert drifts[1] < drifts[0]


def test_pair_scoring_in_blocks_equals_scoring_at_once(monkeypatch):
    """Without gradients the relation head scores pairs in blocks (bounded memory for the
    many pairs of an untrained span level); the logits are those of one pass."""
    import spacy_jmt.heads as heads

    torch.manual_seed(0)
    head = heads.SpanPairHead(8, 3, 4, 0, 8, 6, 5, 0.0)
    torch.nn.init.normal_(head.W)
    features = torch.randn(2, 10, 8)
    starts = torch.randint(0, 9, (12,))
    spans = torch.stack([torch.randint(0, 2, (12,)), starts, starts + 1], dim=1)
    types = torch.randint(0, 5, (12,))
    pairs = torch.tensor([(h, t) for h in range(12) for t in range(12) if h != t])
    with torch.no_grad():
        whole = head.score_pairs(features, spans, types, pairs)
        monkeypatch.setattr(heads, "PAIR_BLOCK", 10)
        blocked = head.score_pairs(features, spans, types, pairs)
    assert whole.shape == (132, 3)
    assert torch.allclose(blocked, whole, atol=1e-6)
    assert head.score_pairs(features, spans, types, pairs[:0]).shape == (0, 3)


def test_span_pooling_in_blocks_equals_pooling_at_once(monkeypatch):
    import spacy_jmt.heads as heads

    torch.manual_seed(0)
    features = torch.randn(3, 12, 5)
    starts = torch.randint(0, 12, (40,))
    ends = torch.minimum(starts + torch.randint(0, 6, (40,)), torch.tensor(12))
    spans = torch.stack([torch.randint(0, 3, (40,)), starts, ends], dim=1)
    whole = heads.max_pool_spans(features, spans)
    monkeypatch.setattr(heads, "POOL_ROWS", 7)  # blocks of one span
    assert torch.equal(heads.max_pool_spans(features, spans), whole)
    empty = spans[:, 1] == spans[:, 2]
    assert bool(empty.any()) and bool((whole[empty] == 0).all())
    inside = spans[0]
    assert torch.equal(whole[0], features[inside[0], inside[1] : inside[2]].max(0).values) or (
        inside[1] == inside[2]
    )


def test_bilinear_scores_are_the_same_with_and_without_gradients():
    """Inference takes torch's bilinear, training the einsum: both are x @ W[l] @ y."""
    torch.manual_seed(0)
    x, W, y = torch.randn(7, 5), torch.randn(3, 5, 4), torch.randn(7, 4)
    with torch.no_grad():
        fast = bilinear_scores(x, W, y)
    trained = bilinear_scores(x, W.requires_grad_(), y)
    assert trained.requires_grad
    expected = torch.stack([torch.stack([x[i] @ W[k] @ y[i] for k in range(3)]) for i in range(7)])
    assert torch.allclose(fast, expected, atol=1e-5)
    assert torch.allclose(trained, expected, atol=1e-5)
