"""Shared pieces of the converters: errors that name file and line, line reading, grouping."""

import gzip
import re
from pathlib import Path
from typing import Iterator, List, Tuple, Union

from spacy.tokens import Doc

from ..keys import CHUNKS_KEY, ENTS_KEY

__all__ = ["CHUNKS_KEY", "ENTS_KEY", "DataFormatError", "DataWarning"]
CHUNK_TAG = re.compile(r"^(?:O|[BI]-\S+)$")
CONLLU_WORD_ID = re.compile(r"^[1-9][0-9]*$")
CONLLU_RANGE_ID = re.compile(r"^([1-9][0-9]*)-([1-9][0-9]*)$")
CONLLU_EMPTY_ID = re.compile(r"^[0-9]+\.[1-9][0-9]*$")
CONLLU_HEAD = re.compile(r"^[0-9]+$")
CONLLU_FEATS = re.compile(r"^(?:_|[^\s=|]+=[^\s=|]+(?:\|[^\s=|]+=[^\s=|]+)*)$")
SENT_ID = re.compile(r"^#\s*sent_id\s*=\s*(\S(?:.*\S)?)\s*$")
UNER_INDEX = re.compile(r"^[1-9][0-9]*$")

Line = Tuple[int, str]


class DataFormatError(ValueError):
    """Malformed input data. The message starts with `file:line: ` (1-based line), or with
    `file: item N: ` for the 1-based N-th item of a JSON list (unit="item")."""

    def __init__(self, path: Union[str, Path], line: int, message: str, unit: str = "line") -> None:
        """Initialize the error.

        path (Union[str, Path]): The file with the malformed data.
        line (int): The 1-based line number (or item number) of the problem.
        message (str): What is wrong.
        unit (str): "line", or what `line` counts otherwise (e.g. "item").
        """
        where = f"{path}:{line}" if unit == "line" else f"{path}: {unit} {line}"
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line
        self.unit = unit


class DataWarning(UserWarning):
    """Input data that was converted but has something the user should know about."""


def _read_lines(path: Path) -> List[str]:
    """Read a UTF-8 file (gzipped if its name ends in .gz, as upstream CoNLL-2000 is) as
    lines split on "\\n" only, without line endings.

    path (Path): The file to read.
    RETURNS (List[str]): The lines; line i (0-based) is line i + 1 of the file.
    """
    lines = []
    data = Path(path).read_bytes()
    if Path(path).suffix == ".gz":
        data = gzip.decompress(data)
    for i, raw in enumerate(data.split(b"\n")):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataFormatError(path, i + 1, f"not valid UTF-8 ({err.reason})") from None
        lines.append(line.lstrip("\ufeff") if i == 0 else line)
    return [line.rstrip("\r") for line in lines]


def _blocks(path: Path) -> Iterator[List[Line]]:
    """Split a file into blocks of non-blank lines (sentences).

    path (Path): The file to read.
    YIELDS (List[Tuple[int, str]]): The (1-based line number, text) pairs of one block.
    RAISES (DataFormatError): If the file has no non-blank line.
    """
    block: List[Line] = []
    found = False
    for i, line in enumerate(_read_lines(path), start=1):
        if line.strip():
            block.append((i, line))
        elif block:
            found = True
            yield block
            block = []
    if block:
        found = True
        yield block
    if not found:
        raise DataFormatError(path, 1, "file contains no sentences (empty or blank)")


def _group(items: List[Doc], n_sents: int) -> List[Doc]:
    """Concatenate one-sentence Docs into Docs of n_sents sentences each.

    items (List[Doc]): The one-sentence Docs, in order.
    n_sents (int): Sentences per output Doc.
    RETURNS (List[Doc]): The concatenated Docs.
    """
    return [Doc.from_docs(items[i : i + n_sents]) for i in range(0, len(items), n_sents)]


def _check_n_sents(n_sents: int) -> None:
    """Raise a ValueError unless n_sents >= 1."""
    if n_sents < 1:
        raise ValueError(f"n_sents must be at least 1, got {n_sents}")
