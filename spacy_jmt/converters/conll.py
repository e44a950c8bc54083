"""CoNLL-2000 (word POS chunk) and CoNLL-U converters."""

from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

from spacy.parts_of_speech import IDS as UPOS_IDS
from spacy.tokens import Doc, DocBin, Span
from spacy.training.converters import conllu_to_docs
from spacy.vocab import Vocab

from .base import (
    CHUNK_TAG,
    CHUNKS_KEY,
    CONLLU_EMPTY_ID,
    CONLLU_FEATS,
    CONLLU_HEAD,
    CONLLU_RANGE_ID,
    CONLLU_WORD_ID,
    SENT_ID,
    DataFormatError,
    Line,
    _blocks,
    _check_n_sents,
    _group,
)


class _Sentence(NamedTuple):
    words: List[str]
    tags: List[str]
    chunks: List[Tuple[int, int, str]]


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
        blank = [i + 1 for i, column in enumerate(columns) if not column.strip()]
        if blank:
            raise DataFormatError(
                path, line_no, f"column {blank[0]} is blank (CoNLL-U writes _ for no value)"
            )
        token_id, form, upos, feats, head = (columns[i] for i in (0, 1, 3, 5, 6))
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
            if upos != "_" and upos not in UPOS_IDS:
                raise DataFormatError(path, line_no, f"invalid UPOS {upos!r}")
            if not CONLLU_FEATS.match(feats):
                raise DataFormatError(
                    path, line_no, f"FEATS must be _ or Name=Value pairs joined by |, got {feats!r}"
                )
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
    sentences = [lines for _, _, lines in _conllu_blocks(Path(path))]
    return _conllu_docs(sentences, vocab, n_sents)


def _conllu_blocks(path: Path) -> List[Tuple[Optional[str], int, List[str]]]:
    """Validate the sentences of a CoNLL-U file.

    path (Path): The file to read.
    RETURNS (List[Tuple[Optional[str], int, List[str]]]): Per sentence: its sent_id (None
        if it has no `# sent_id` comment), its first line number, and the kept lines.
    """
    sentences = []
    for block in _blocks(path):
        sent_id = None
        for _, line in block:
            match = SENT_ID.match(line)
            if match:
                sent_id = match.group(1)
        sentences.append((sent_id, block[0][0], _conllu_sentence(path, block)))
    return sentences


def _conllu_docs(sentences: List[List[str]], vocab: Vocab, n_sents: int) -> List[Doc]:
    """Convert validated CoNLL-U sentences with spaCy's converter.

    sentences (List[List[str]]): The kept lines of each sentence.
    vocab (Vocab): The vocab of the Docs.
    n_sents (int): Sentences per Doc.
    RETURNS (List[Doc]): The Docs, in order.
    """
    text = "\n\n".join("\n".join(lines) for lines in sentences) + "\n"
    converted = conllu_to_docs(text, n_sents=n_sents, no_print=True)
    # spaCy's converter uses a vocab of its own: move the Docs into ours.
    return list(DocBin(docs=converted).get_docs(vocab))
