"""The sentences that levels 1..K run over: a doc's own boundaries, else those of the
component's sentence splitter (a level-0 task), else the whole doc, cut into windows of at
most `max_sentence_length` tokens. Training docs take the reference's boundaries."""

from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy
from spacy.attrs import SENT_START
from spacy.tokens import Doc
from spacy.training import Example

from .tasks.base import Task
from .tasks.tagging import aligned_sent_starts, set_sent_starts

# A sentence: (doc index in the batch, first token, end token).
Segment = Tuple[int, int, int]


class Segmenter:
    """The model's `get_segments` attr: called with a batch, it returns the function that
    finds the batch's sentences once the level-0 tasks have run. (A class, not a closure,
    so that the component pickles.)

    tasks (Sequence[Task]): The component's tasks (the first level-0 task that splits
        sentences is the splitter).
    max_length (int): The longest segment; longer sentences are cut into windows.
    """

    def __init__(self, tasks: Sequence[Task], max_length: int):
        self.splitter = next((t for t in tasks if t.level == 0 and t.splits_sentences), None)
        self.max_length = max_length

    def __call__(
        self, docs: List[Doc], lengths: List[int]
    ) -> Callable[[Dict[str, Dict[str, Any]]], List[Segment]]:
        def get_segments(outputs: Dict[str, Dict[str, Any]]) -> List[Segment]:
            predicted = None
            splitter = self.splitter
            if splitter is not None and splitter.name in outputs:
                predicted = splitter.sentence_starts(outputs[splitter.name])  # type: ignore[attr-defined]
            starts = []
            for b, doc in enumerate(docs):
                if doc.has_annotation("SENT_START"):
                    starts.append(doc.to_array(SENT_START).astype("int64") == 1)
                elif predicted is not None:
                    starts.append(predicted[b, : lengths[b]])
                else:
                    starts.append(numpy.zeros(lengths[b], dtype=bool))
            return sentence_segments(starts, self.max_length)

        return get_segments


def sentence_segments(starts: List[numpy.ndarray], max_length: int) -> List[Segment]:
    """Turn sentence-start flags per doc into (doc index, start, end) segments of at most
    max_length tokens.

    starts (List[numpy.ndarray]): Per doc, a bool array with True where a sentence starts.
    max_length (int): The longest segment.
    RETURNS (List[Tuple[int, int, int]]): The segments of all docs, in order.
    """
    segments = []
    for b, flags in enumerate(starts):
        n = len(flags)
        bounds = [i for i in range(1, n) if flags[i]] + [n]
        begin = 0
        for end in bounds:
            for s in range(begin, end, max_length):
                segments.append((b, s, min(s + max_length, end)))
            begin = end
    return segments


def copy_gold_sentences(example: Example) -> None:
    """Give a training doc the reference's sentence boundaries, so that the levels above 0
    are trained on gold sentences (predicted docs of an Example carry none)."""
    doc = example.predicted
    if doc.has_annotation("SENT_START") or not example.reference.has_annotation("SENT_START"):
        return
    set_sent_starts(doc, numpy.asarray(aligned_sent_starts(example)) == 1)
