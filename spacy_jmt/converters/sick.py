"""The SICK converter (SemEval-2014 Task 1 files): one pair doc per sentence pair."""

import math
from functools import lru_cache
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..pairs import ENTAILMENT_LABELS, RELATEDNESS_MAX, RELATEDNESS_MIN, make_pair_doc
from .base import DataFormatError, _read_lines

SICK_COLUMNS = (
    "pair_ID",
    "sentence_A",
    "sentence_B",
    "relatedness_score",
    "entailment_judgment",
)


def read_sick(path: Path, vocab: Vocab, n_sents: int = 1) -> List[Doc]:
    """Read a SICK file of the SemEval-2014 split (SICK_train.txt, SICK_trial.txt,
    SICK_test_annotated.txt) into pair docs.

    The file is tab-separated with the header `pair_ID sentence_A sentence_B
    relatedness_score entailment_judgment` (LF or CRLF line endings; blank lines are
    skipped). Each pair becomes one Doc made by `spacy_jmt.pairs.make_pair_doc` with the
    tokenizer of `spacy.blank(vocab.lang)`: sentence A then sentence B, `doc._.relatedness`
    (1-5), one-hot `doc.cats` over ENTAILMENT / NEUTRAL / CONTRADICTION, and the pair_ID in
    `doc.spans["pair"].attrs["pair_id"]`. The full release `SICK.txt` (12 columns, another
    order) is refused by the header check.

    path (Path): The file to read.
    vocab (Vocab): The vocab of the Docs; its language picks the tokenizer.
    n_sents (int): Ignored (kept for the converters' common signature): a pair doc holds
        exactly one pair.
    RETURNS (List[Doc]): The pair docs, in file order.
    RAISES (DataFormatError): Naming file and line, for a missing or wrong header, a wrong
        column count, an empty pair_ID or sentence, a duplicate pair_ID, a relatedness that
        is not a number in [1, 5], or an unknown entailment label.
    """
    path = Path(path)
    nlp = _blank(vocab)
    lines = _read_lines(path)  # at least one (possibly empty) line
    if tuple(column.strip() for column in lines[0].split("\t")) != SICK_COLUMNS:
        raise DataFormatError(
            path,
            1,
            "missing or unexpected header: expected the tab-separated columns "
            f"{' '.join(SICK_COLUMNS)} (the SemEval-2014 SICK files), got {lines[0][:80]!r}",
        )
    docs: List[Doc] = []
    seen: Dict[str, int] = {}
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != len(SICK_COLUMNS):
            raise DataFormatError(
                path,
                line_no,
                f"expected {len(SICK_COLUMNS)} tab-separated columns ({', '.join(SICK_COLUMNS)}), "
                f"got {len(columns)}: {line[:80]!r}",
            )
        pair_id, text_a, text_b, score, label = columns
        pair_id = pair_id.strip()
        if not pair_id:
            raise DataFormatError(path, line_no, "empty pair_ID")
        if pair_id in seen:
            raise DataFormatError(
                path, line_no, f"duplicate pair_ID {pair_id!r} (first on line {seen[pair_id]})"
            )
        seen[pair_id] = line_no
        for name, text in (("sentence_A", text_a), ("sentence_B", text_b)):
            if not text.strip():
                raise DataFormatError(path, line_no, f"empty {name} in pair {pair_id}")
        try:
            relatedness = float(score)
        except ValueError:
            raise DataFormatError(
                path, line_no, f"relatedness_score {score!r} of pair {pair_id} is not a number"
            ) from None
        if not (math.isfinite(relatedness) and RELATEDNESS_MIN <= relatedness <= RELATEDNESS_MAX):
            raise DataFormatError(
                path,
                line_no,
                f"relatedness_score {score!r} of pair {pair_id} is outside "
                f"[{RELATEDNESS_MIN:g}, {RELATEDNESS_MAX:g}]",
            )
        label = label.strip()
        if label not in ENTAILMENT_LABELS:
            raise DataFormatError(
                path,
                line_no,
                f"unknown entailment_judgment {label!r} of pair {pair_id}; expected one of "
                f"{', '.join(ENTAILMENT_LABELS)}",
            )
        docs.append(
            make_pair_doc(
                nlp, text_a, text_b, relatedness=relatedness, entailment=label, pair_id=pair_id
            )
        )
    if not docs:
        raise DataFormatError(path, 1, "file contains a header but no pairs")
    return docs


@lru_cache(maxsize=4)
def _blank(vocab: Vocab) -> spacy.Language:
    """A blank pipeline on this vocab, for its tokenizer (made once: it takes ~50 ms)."""
    return spacy.blank(vocab.lang or "en", vocab=vocab)
