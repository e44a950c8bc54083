"""Converters from CoNLL-2000 and CoNLL-U files to spaCy Docs and DocBin files."""

import gzip
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Tuple, Union

import spacy
from spacy.parts_of_speech import IDS as UPOS_IDS
from spacy.tokens import Doc, DocBin, Span
from spacy.training.converters import conllu_to_docs
from spacy.vocab import Vocab

CHUNKS_KEY = "chunks"
CHUNK_TAG = re.compile(r"^(?:O|[BI]-\S+)$")
CONLLU_WORD_ID = re.compile(r"^[1-9][0-9]*$")
CONLLU_RANGE_ID = re.compile(r"^([1-9][0-9]*)-([1-9][0-9]*)$")
CONLLU_EMPTY_ID = re.compile(r"^[0-9]+\.[1-9][0-9]*$")
CONLLU_HEAD = re.compile(r"^[0-9]+$")

Line = Tuple[int, str]


class DataFormatError(ValueError):
    """Malformed input data. The message starts with `file:line: ` (1-based line)."""

    def __init__(self, path: Union[str, Path], line: int, message: str) -> None:
        """Initialize the error.

        path (Union[str, Path]): The file with the malformed data.
        line (int): The 1-based line number of the problem.
        message (str): What is wrong.
        """
        super().__init__(f"{path}:{line}: {message}")
        self.path = Path(path)
        self.line = line


class _Sentence(NamedTuple):
    words: List[str]
    tags: List[str]
    chunks: List[Tuple[int, int, str]]


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


def _chunks_from_iob(tags: List[str]) -> List[Tuple[int, int, str]]:
    """Decode IOB2 chunk tags into (start, end, label) spans like conlleval.

    A stray I-X (after O or after a chunk of another type) starts a new chunk.

    tags (List[str]): Valid chunk tags: O, B-<type> or I-<type>.
    RETURNS (List[Tuple[int, int, str]]): Token offsets (end exclusive) and labels.
    """
    chunks: List[Tuple[int, int, str]] = []
    start, label = -1, ""
    for i, tag in enumerate(tags + ["O"]):
        prefix, _, tag_label = tag.partition("-")
        if label and (prefix != "I" or tag_label != label):
            chunks.append((start, i, label))
            label = ""
        if prefix in ("B", "I") and not label:
            start, label = i, tag_label
    return chunks


def _conll2000_sentence(path: Path, block: List[Line]) -> _Sentence:
    """Parse and validate the lines of one CoNLL-2000 sentence.

    path (Path): The file, for error messages.
    block (List[Tuple[int, str]]): The numbered lines of the sentence.
    RETURNS (_Sentence): Words, POS tags and decoded chunks.
    """
    words, tags, chunk_tags = [], [], []
    for line_no, line in block:
        columns = line.split()
        if len(columns) != 3:
            raise DataFormatError(
                path,
                line_no,
                "expected 3 space-separated columns (word POS chunk), "
                f"got {len(columns)}: {line!r}",
            )
        word, tag, chunk_tag = columns
        if not CHUNK_TAG.match(chunk_tag):
            raise DataFormatError(
                path,
                line_no,
                f"invalid chunk tag {chunk_tag!r} (expected O, B-<type> or I-<type>)",
            )
        words.append(word)
        tags.append(tag)
        chunk_tags.append(chunk_tag)
    return _Sentence(words, tags, _chunks_from_iob(chunk_tags))


def _conll2000_doc(vocab: Vocab, sentence: _Sentence) -> Doc:
    """Build a one-sentence Doc with tags, sentence starts and chunk spans.

    vocab (Vocab): The vocab of the Doc.
    sentence (_Sentence): The parsed sentence.
    RETURNS (Doc): The Doc; words are joined by single spaces.
    """
    n_words = len(sentence.words)
    sent_starts: List[Union[bool, int, None]] = [i == 0 for i in range(n_words)]
    doc = Doc(
        vocab,
        words=sentence.words,
        spaces=[True] * (n_words - 1) + [False],
        tags=sentence.tags,
        sent_starts=sent_starts,
    )
    doc.spans[CHUNKS_KEY] = [Span(doc, s, e, label=label) for s, e, label in sentence.chunks]
    return doc


def read_conll2000(path: Path, vocab: Vocab, n_sents: int = 10) -> List[Doc]:
    """Read a CoNLL-2000 chunking file (`word POS chunk` per line) into Docs.

    Each Doc holds n_sents sentences (the last one possibly fewer), words joined by
    single spaces. token.tag_ is the POS (XPOS) tag, every sentence's first token has
    is_sent_start True and the others False, and the IOB2 chunks are the labelled spans
    of doc.spans["chunks"]; a stray I-X starts a new chunk, as conlleval does.

    path (Path): The file to read.
    vocab (Vocab): The vocab of the Docs.
    n_sents (int): Sentences per Doc.
    RETURNS (List[Doc]): The Docs, in file order.
    RAISES (DataFormatError): On a malformed line, naming file and line.
    """
    _check_n_sents(n_sents)
    path = Path(path)
    sentences = [_conll2000_doc(vocab, _conll2000_sentence(path, block)) for block in _blocks(path)]
    return _group(sentences, n_sents)


def _conllu_sentence(path: Path, block: List[Line]) -> List[str]:
    """Validate one CoNLL-U sentence and return the lines spaCy's converter needs.

    Comment lines and empty nodes are dropped; word and multiword range lines are kept.

    path (Path): The file, for error messages.
    block (List[Tuple[int, str]]): The numbered lines of the sentence.
    RETURNS (List[str]): The word and range lines.
    """
    kept: List[str] = []
    heads: Dict[int, Tuple[int, int]] = {}  # word ID -> (head, line number)
    range_ends: List[Tuple[int, int]] = []  # (range end, line number)
    for line_no, line in block:
        if line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise DataFormatError(
                path, line_no, f"expected 10 tab-separated columns, got {len(columns)}"
            )
        token_id, form, upos, head = columns[0], columns[1], columns[3], columns[6]
        if CONLLU_EMPTY_ID.match(token_id):
            continue
        next_id = len(heads) + 1
        range_match = CONLLU_RANGE_ID.match(token_id)
        if range_match:
            start, end = int(range_match.group(1)), int(range_match.group(2))
            if start != next_id or end <= start:
                raise DataFormatError(
                    path, line_no, f"invalid multiword range {token_id!r} at word {next_id}"
                )
            range_ends.append((end, line_no))
        elif CONLLU_WORD_ID.match(token_id):
            if int(token_id) != next_id:
                raise DataFormatError(path, line_no, f"expected word ID {next_id}, got {token_id}")
            if not form:
                raise DataFormatError(path, line_no, "empty FORM")
            if upos != "_" and upos not in UPOS_IDS:
                raise DataFormatError(path, line_no, f"invalid UPOS {upos!r}")
            if not CONLLU_HEAD.match(head):
                raise DataFormatError(path, line_no, f"HEAD must be an integer, got {head!r}")
            heads[next_id] = (int(head), line_no)
        else:
            raise DataFormatError(path, line_no, f"invalid ID {token_id!r}")
        kept.append(line)
    if not heads:
        raise DataFormatError(path, block[0][0], "sentence has no words")
    _check_tree(path, heads, range_ends)
    return kept


def _check_tree(
    path: Path, heads: Dict[int, Tuple[int, int]], range_ends: List[Tuple[int, int]]
) -> None:
    """Check that heads and multiword ranges lie within the sentence and heads form trees.

    path (Path): The file, for error messages.
    heads (Dict[int, Tuple[int, int]]): Word ID -> (HEAD, line number).
    range_ends (List[Tuple[int, int]]): (last word ID, line number) of each range line.
    """
    n_words = len(heads)
    for end, line_no in range_ends:
        if end > n_words:
            raise DataFormatError(
                path, line_no, f"multiword range ends at {end}, sentence has {n_words} words"
            )
    for head, line_no in heads.values():
        if head > n_words:
            raise DataFormatError(
                path, line_no, f"HEAD {head} out of range (sentence has {n_words} words)"
            )
    for word_id in heads:
        seen = {word_id}
        head = heads[word_id][0]
        while head != 0:
            if head in seen:
                raise DataFormatError(path, heads[head][1], f"word {head} is part of a HEAD cycle")
            seen.add(head)
            head = heads[head][0]


def read_conllu(path: Path, vocab: Vocab, n_sents: int = 10) -> List[Doc]:
    """Read a CoNLL-U file into Docs with spaCy's own converter.

    Tokens are the syntactic words (multiword range lines and empty nodes are skipped),
    SpaceAfter=No is honoured, and token.tag_ (XPOS), token.pos_ (UPOS), lemmas,
    morphology, heads, deps and sentence starts are set. Lines are validated first.

    path (Path): The file to read.
    vocab (Vocab): The vocab of the Docs.
    n_sents (int): Sentences per Doc.
    RETURNS (List[Doc]): The Docs, in file order.
    RAISES (DataFormatError): On a malformed line, naming file and line.
    """
    _check_n_sents(n_sents)
    path = Path(path)
    sentences = ["\n".join(_conllu_sentence(path, block)) for block in _blocks(path)]
    converted = conllu_to_docs("\n\n".join(sentences) + "\n", n_sents=n_sents, no_print=True)
    # spaCy's converter uses a vocab of its own: move the Docs into ours.
    return list(DocBin(docs=converted).get_docs(vocab))


READERS: Dict[str, Callable[[Path, Vocab, int], List[Doc]]] = {
    "conll2000": read_conll2000,
    "conllu": read_conllu,
}


def read_docs(input_path: Path, fmt: str, n_sents: int = 10, lang: str = "en") -> List[Doc]:
    """Read a file in one of the supported formats into Docs.

    input_path (Path): The file to read.
    fmt (str): The format, one of READERS ("conll2000", "conllu").
    n_sents (int): Sentences per Doc.
    lang (str): The language code of the vocab.
    RETURNS (List[Doc]): The Docs, in file order.
    """
    if fmt not in READERS:
        raise ValueError(f"Unknown format {fmt!r}; accepted formats: {', '.join(READERS)}")
    return READERS[fmt](Path(input_path), spacy.blank(lang).vocab, n_sents)


def split_dev(docs: List[Doc], dev_fraction: float) -> Tuple[List[Doc], List[Doc]]:
    """Split off the last round(dev_fraction * len(docs)) Docs as a dev set.

    The dev set is a contiguous block at the end of the file, so that no text is split
    between train and dev (for CoNLL-2000: the end of WSJ section 18).

    docs (List[Doc]): The Docs, in file order.
    dev_fraction (float): The fraction of Docs for dev, 0 <= dev_fraction < 1.
    RETURNS (Tuple[List[Doc], List[Doc]]): The train Docs and the dev Docs.
    """
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
    n_dev = round(dev_fraction * len(docs))
    if dev_fraction > 0 and (n_dev == 0 or n_dev == len(docs)):
        raise ValueError(
            f"Cannot split {len(docs)} docs into non-empty train and dev sets "
            f"with dev_fraction {dev_fraction}"
        )
    return docs[: len(docs) - n_dev], docs[len(docs) - n_dev :]


def write_docbin(docs: List[Doc], output_path: Path) -> None:
    """Write Docs to a .spacy DocBin file, creating its directory if needed.

    docs (List[Doc]): The Docs to write.
    output_path (Path): The output file.
    """
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(output_path)


def convert(
    input_path: Path, output_path: Path, fmt: str, n_sents: int = 10, lang: str = "en"
) -> int:
    """Convert a 'conll2000' or 'conllu' file to a DocBin (.spacy) file.

    input_path (Path): The file to convert.
    output_path (Path): The .spacy file to write.
    fmt (str): The input format: "conll2000" or "conllu".
    n_sents (int): Sentences per Doc.
    lang (str): The language code of the vocab.
    RETURNS (int): The number of Docs written.
    """
    docs = read_docs(input_path, fmt, n_sents=n_sents, lang=lang)
    write_docbin(docs, output_path)
    return len(docs)
