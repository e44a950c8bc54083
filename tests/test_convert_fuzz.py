"""Fuzzing the data converters: valid files of every format with lines corrupted at random.

A converter must either convert the file (into docs that survive a DocBin round trip) or raise
a DataFormatError that names the file and a line (or JSON item) inside it; any other exception
is a crash. Each case corrupts 1-3 lines; the cases per format are `settings.max_examples`
(conftest.py: 150, or 10,000 under `HYPOTHESIS_PROFILE=fuzz`).
"""

import json
import tempfile
import warnings
from pathlib import Path
from typing import List

import pytest
import spacy
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from test_convert import CONLL2000, CONLLU
from test_convert_entities import SPERT, UNER

from spacy_jmt.convert import READERS, DataFormatError

VOCAB = spacy.blank("en").vocab  # shared: making a pipeline per case would cost most of the time
SICK = (
    "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
    "1\tA group of kids is playing in a yard\tA group of boys is playing\t4.5\tNEUTRAL\n"
    "2\tA man is playing a guitar\tNobody plays a guitar\t3.2\tCONTRADICTION\n"
    "3\tA dog runs\tAn animal runs\t4.9\tENTAILMENT\n"
)
# One JSON value per line, so that corrupting a line breaks the JSON or changes the data.
SAMPLES = {
    "conll2000": CONLL2000,
    "conllu": CONLLU,
    "uner": UNER,
    "spert": json.dumps(SPERT, indent=1),
    "sick": SICK,
}

JUNK = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "\t", " ", "_", "-", "0", "-1", "99999999999999999999", "1.5", "nan", "inf", "B-",
     "I-X", "O", "null", "[]", "{}", '"', ",", "}", "]", "# sent_id = s1", "\ufeff", "\r"]
)  # fmt: skip


@st.composite
def corrupted(draw, text: str) -> str:
    """The text with 1-3 of its lines corrupted: replaced, cut, grown, with a field dropped,
    doubled or replaced, removed, doubled, or the file cut off there."""
    lines = text.split("\n")
    n_corrupted = draw(st.integers(1, 3))
    event(f"{n_corrupted} lines corrupted")
    for _ in range(n_corrupted):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        sep = "\t" if "\t" in line else " "
        fields = line.split(sep)
        j = draw(st.integers(0, len(fields) - 1))
        k = draw(st.integers(0, len(line)))
        how = draw(st.sampled_from(
            ["replace", "insert", "cut", "drop_field", "double_field", "set_field",
             "remove", "double", "truncate"]
        ))  # fmt: skip
        if how == "replace":
            lines[i] = draw(JUNK)
        elif how == "insert":
            lines[i] = line[:k] + draw(JUNK) + line[k:]
        elif how == "cut":
            lines[i] = line[:k]
        elif how == "drop_field":
            lines[i] = sep.join(fields[:j] + fields[j + 1 :])
        elif how == "double_field":
            lines[i] = sep.join(fields[: j + 1] + fields[j:])
        elif how == "set_field":
            lines[i] = sep.join(fields[:j] + [draw(JUNK)] + fields[j + 1 :])
        elif how == "remove":
            del lines[i]
        elif how == "double":
            lines.insert(i, line)
        else:
            lines = lines[: i + 1]
            lines[i] = line[:k]
    return "\n".join(lines)


def check_converter(fmt: str, text: str) -> str:
    """Convert text in this format; RETURNS (str): what happened ("converted" or "refused")."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{fmt}"
        path.write_text(text, encoding="utf8")
        n_lines = len(text.split("\n"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # DataWarning: converted, with a report
                docs = READERS[fmt](path, VOCAB, 2)
        except DataFormatError as err:
            assert str(err).startswith(str(path)), str(err)
            limit = len(json.loads(text)) if err.unit == "item" else n_lines
            assert 1 <= err.line <= max(limit, 1), str(err)
            return "refused (DataFormatError naming file and line)"
        assert docs and all(len(doc) for doc in docs)
        data = DocBin(docs=docs, store_user_data=True).to_bytes()
        assert len(list(DocBin().from_bytes(data).get_docs(Vocab()))) == len(docs)
    return "converted"


@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_samples_convert(fmt):
    assert check_converter(fmt, SAMPLES[fmt]) == "converted"


@pytest.mark.parametrize("fmt", list(SAMPLES))
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_corrupted_lines(fmt, data):
    event(check_converter(fmt, data.draw(corrupted(SAMPLES[fmt]), label="text")))


def test_corruption_changes_the_text():
    """The strategy really corrupts: most drawn texts differ from the sample."""
    texts: List[str] = []

    @settings(max_examples=50)
    @given(text=corrupted(CONLLU))
    def collect(text: str) -> None:
        texts.append(text)

    collect()
    assert sum(text != CONLLU for text in texts) > len(texts) // 2
