"""Tiny hand-annotated data shared by the tests."""

from typing import Any, Dict, List

# (words, spaces, tags, pos, heads, deps, chunks) per doc; the first doc has two sentences.
SENTENCES: List[Dict[str, Any]] = [
    {
        "words": ["I", "like", "green", "apples", ".", "She", "eats", "bread", "."],
        "spaces": [True, True, True, False, True, True, True, False, False],
        "tags": ["PRP", "VBP", "JJ", "NNS", ".", "PRP", "VBZ", "NN", "."],
        "pos": ["PRON", "VERB", "ADJ", "NOUN", "PUNCT", "PRON", "VERB", "NOUN", "PUNCT"],
        "heads": [1, 1, 3, 1, 1, 6, 6, 6, 6],
        "deps": ["nsubj", "ROOT", "amod", "obj", "punct", "nsubj", "ROOT", "obj", "punct"],
        "chunks": [(0, 1, "NP"), (1, 2, "VP"), (2, 4, "NP"), (5, 6, "NP"), (6, 7, "VP"),
                   (7, 8, "NP")],
    },
    {
        "words": ["The", "dog", "sleeps", "."],
        "spaces": [True, True, False, False],
        "tags": ["DT", "NN", "VBZ", "."],
        "pos": ["DET", "NOUN", "VERB", "PUNCT"],
        "heads": [1, 2, 2, 2],
        "deps": ["det", "nsubj", "ROOT", "punct"],
        "chunks": [(0, 2, "NP"), (2, 3, "VP")],
    },
]  # fmt: skip


# A tiny jmt network, so that tests that do not need to overfit stay fast.
TINY_MODEL: Dict[str, Any] = {
    "hidden_width": 32,
    "label_embedding_width": 8,
    "arc_width": 32,
    "label_width": 16,
    "dropout": 0.0,
    "tok2vec": {
        "embed": {"width": 32, "rows": [500, 200, 200, 200]},
        "encode": {"width": 32, "depth": 1},
    },
}
