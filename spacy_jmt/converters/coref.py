"""Readers for mentions and coreference: LitBank coreference (CoNLL-2012 brackets), LitBank
entities (brat standoff, nested) and GAP (TSV).

What they write, for every reader:
- one Doc per document (LitBank: a ~2,000-word excerpt; GAP: one row), sentences from the
  file (LitBank) or from spaCy's rule-based sentencizer (GAP);
- coreference clusters in spaCy's convention: `doc.spans["coref_clusters_1"]`,
  `coref_clusters_2`, ... numbered from 1 in the order of their first mention, singletons
  included as clusters of one (LitBank annotates them);
- every gold mention: LitBank entities in `doc.spans[MENTIONS_KEY]` with their ACE type; the
  mentions of the coreference readers in `doc.spans[COREF_MENTIONS_KEY]` (label "MENTION"),
  apart from the typed ones, so that a corpus of each can train its own task;
- the document's name in `doc.user_data["doc_id"]`, so that split lists can select documents.
"""

import re
import warnings
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple, Union

import spacy
from spacy.tokens import Doc, Span, SpanGroup
from spacy.vocab import Vocab

from ..keys import CLUSTER_PREFIX, COREF_MENTIONS_KEY, MENTIONS_KEY
from .base import DataFormatError, DataWarning, _read_lines

BEGIN = re.compile(r"^#begin document \((.+)\); part (\S+)\s*$")
BRACKET = re.compile(r"^\((\d+)\)$|^\((\d+)$|^(\d+)\)$")
BRAT_ENTITY = re.compile(r"^(T\d+)\t(\S+) (\d+) (\d+)\t(.*)$")
GAP_COLUMNS = (
    "ID", "Text", "Pronoun", "Pronoun-offset", "A", "A-offset", "A-coref",
    "B", "B-offset", "B-coref", "URL",
)  # fmt: skip
GAP_FEMININE = {"she", "her", "hers", "herself"}
GAP_MASCULINE = {"he", "him", "his", "himself"}
GAP_KEY = "gap"  # the three GAP spans: labels "A", "B", "PRONOUN"


def set_clusters(doc: Doc, clusters: Iterable[List[Tuple[int, int]]]) -> None:
    """Write clusters of (start, end) token spans as `coref_clusters_1`, `_2`, ... in the
    order of their first mention (any earlier cluster groups are removed)."""
    for key in [key for key in doc.spans if key.startswith(CLUSTER_PREFIX)]:
        del doc.spans[key]
    ordered = sorted((sorted(set(c)) for c in clusters if c), key=lambda c: c[0])
    for i, cluster in enumerate(ordered, start=1):
        doc.spans[f"{CLUSTER_PREFIX}{i}"] = [doc[s:e] for s, e in cluster]


def get_clusters(doc: Doc) -> List[List[Tuple[int, int]]]:
    """RETURNS (List[List[Tuple[int, int]]]): The doc's clusters as (start, end) spans, in
    the numeric order of their `coref_clusters_N` keys."""
    keys = [
        k for k in doc.spans if k.startswith(CLUSTER_PREFIX) and k[len(CLUSTER_PREFIX) :].isdigit()
    ]
    keys.sort(key=lambda k: int(k[len(CLUSTER_PREFIX) :]))
    return [[(span.start, span.end) for span in doc.spans[k]] for k in keys]


def select_documents(docs: List[Doc], ids_path: Optional[Path]) -> List[Doc]:
    """Keep the docs named in a split list (one id a line, e.g. `105_persuasion_brat.tsv`;
    the extension is ignored), in the list's order. Ids without a document are skipped (the
    held-out documents are named by the official splits but absent here)."""
    if ids_path is None:
        return docs
    by_id = {doc.user_data.get("doc_id"): doc for doc in docs}
    wanted = [Path(line.strip()).stem for line in _read_lines(Path(ids_path)) if line.strip()]
    return [by_id[name] for name in wanted if name in by_id]


def _conll_files(path: Path, suffix: str) -> List[Path]:
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob(f"*{suffix}"))
        if not files:
            raise ValueError(f"{path}: no *{suffix} file in this folder")
        return files
    return [path]


def read_litbank_coref(path: Path, vocab: Vocab, n_sents: int = 0) -> List[Doc]:
    """Read LitBank coreference files (CoNLL-2012 style: 13 tab-separated columns, the word
    in the 4th, the coreference brackets in the last; `#begin document (<name>); part N` ...
    `#end document`; blank lines between sentences), a file or a folder of `*.conll`.

    n_sents (int): Ignored: a document is one Doc (coreference is document-level).
    RAISES (DataFormatError): Naming file and line, for a line outside a document, a wrong
        column count, a malformed bracket, a mention closed but never opened (or left open
        at the end of its document) or an empty document.
    """
    docs = []
    for file in _conll_files(path, ".conll"):
        docs.extend(_read_coref_file(file, vocab))
    return docs


def _read_coref_file(path: Path, vocab: Vocab) -> List[Doc]:
    docs: List[Doc] = []
    name: Optional[str] = None
    words: List[str] = []
    starts: List[Union[bool, int, None]] = []
    open_: Dict[int, List[Tuple[int, int]]] = {}  # cluster id -> stack of (start, line)
    clusters: Dict[int, List[Tuple[int, int]]] = {}
    begin_line = 0
    new_sentence = True
    for line_no, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            new_sentence = True
            continue
        match = BEGIN.match(line)
        if match:
            if name is not None:
                raise DataFormatError(path, line_no, f"document {name!r} was never ended")
            name, words, starts, open_, clusters = match.group(1), [], [], {}, {}
            begin_line, new_sentence = line_no, True
            continue
        if line.startswith("#end document"):
            if name is None:
                raise DataFormatError(path, line_no, "#end document without #begin document")
            for cid, stack in open_.items():
                if stack:
                    raise DataFormatError(
                        path, stack[-1][1], f"mention of cluster {cid} is never closed"
                    )
            if not words:
                raise DataFormatError(path, begin_line, f"document {name!r} has no tokens")
            doc = Doc(vocab, words=words, sent_starts=starts)
            doc.user_data["doc_id"] = name
            set_clusters(doc, clusters.values())
            doc.spans[COREF_MENTIONS_KEY] = [
                Span(doc, s, e, label="MENTION")
                for c in clusters.values()
                for s, e in sorted(set(c))
            ]
            docs.append(doc)
            name = None
            continue
        if name is None:
            raise DataFormatError(path, line_no, "token line outside #begin/#end document")
        columns = line.split("\t")
        if len(columns) < 5:
            raise DataFormatError(
                path, line_no, f"expected at least 5 tab-separated columns, got {len(columns)}"
            )
        i = len(words)
        words.append(columns[3])
        starts.append(new_sentence)
        new_sentence = False
        coref = columns[-1].strip()
        if coref in ("", "_", "-"):
            continue
        for part in coref.split("|"):
            bracket = BRACKET.match(part)
            if not bracket:
                raise DataFormatError(path, line_no, f"malformed coreference bracket {part!r}")
            single, opening, closing = bracket.groups()
            if single is not None:
                clusters.setdefault(int(single), []).append((i, i + 1))
            elif opening is not None:
                open_.setdefault(int(opening), []).append((i, line_no))
            else:
                stack = open_.get(int(closing), [])
                if not stack:
                    raise DataFormatError(
                        path, line_no, f"cluster {closing} closes a mention it never opened"
                    )
                start, _ = stack.pop()
                clusters.setdefault(int(closing), []).append((start, i + 1))
    if name is not None:
        raise DataFormatError(path, begin_line, f"document {name!r} has no #end document")
    if not docs:
        raise DataFormatError(path, 1, "file contains no document (#begin document ...)")
    return docs


def read_litbank_entities(path: Path, vocab: Vocab, n_sents: int = 0) -> List[Doc]:
    """Read LitBank's entity layer: brat standoff (`<doc>.ann` beside `<doc>.txt`, the text
    tokenized, tokens separated by single spaces, one sentence a line), a `.ann` file or a
    folder of them. Every mention, nested ones included, goes to `doc.spans[MENTIONS_KEY]`
    with its type (PER, LOC, FAC, GPE, VEH, ORG); `doc.ents` stays empty (the mentions nest).

    n_sents (int): Ignored: a document is one Doc.
    RAISES (DataFormatError): Naming the .ann file and line, for a malformed line or offsets
        that are not on token boundaries or do not match the mention's text.
    """
    docs = []
    cut: Dict[str, int] = {}
    for ann in _conll_files(path, ".ann"):
        doc, cut[ann.name] = _read_brat(ann, ann.with_suffix(".txt"), vocab)
        docs.append(doc)
    if any(cut.values()):  # upstream slips such as "a desolate coas"
        files = ", ".join(f"{name} ({n})" for name, n in cut.items() if n)
        warnings.warn(
            f"{sum(cut.values())} mention(s) cut a token short, each extended to the whole "
            f"token: {files}",
            DataWarning,
            stacklevel=2,
        )
    return docs


def _read_brat(ann: Path, txt: Path, vocab: Vocab) -> Tuple[Doc, int]:
    """RETURNS (Tuple[Doc, int]): The doc and how many mentions cut a token short."""
    if not txt.exists():
        raise ValueError(f"{ann}: its text {txt.name} is not beside it")
    text = "\n".join(_read_lines(txt))
    words: List[str] = []
    starts: List[Union[bool, int, None]] = []
    token_at: List[int] = []  # character offset -> the token there (-1: a space or newline)
    for line in text.split("\n"):
        for token in line.split(" "):
            if token:
                starts.append(not token_at or token_at[-1] == -2)
                token_at.extend([len(words)] * len(token))
                words.append(token)
            token_at.append(-1)
        token_at[-1] = -2  # the end of a line: the next token starts a sentence
    if not words:
        raise DataFormatError(txt, 1, "the text has no tokens")
    starts[0] = True
    doc = Doc(vocab, words=words, sent_starts=starts)
    doc.user_data["doc_id"] = ann.stem
    mentions: List[Span] = []
    cut = 0
    for line_no, line in enumerate(_read_lines(ann), start=1):
        if not line.strip():
            continue
        match = BRAT_ENTITY.match(line)
        if not match:
            raise DataFormatError(
                ann, line_no, f"not a brat entity line (T<n> TYPE start end): {line[:80]!r}"
            )
        _, label, start, end, surface = match.groups()
        s, e = int(start), int(end)
        if not 0 <= s < e <= len(text) or text[s:e] != surface:
            raise DataFormatError(
                ann, line_no, f"offsets {s}-{e} read {text[s:e]!r}, the line says {surface!r}"
            )
        first, last = token_at[s], token_at[e - 1]
        if first < 0 or last < 0:
            raise DataFormatError(ann, line_no, f"offsets {s}-{e} start or end on a space")
        span = Span(doc, first, last + 1, label=label)
        cut += span.start_char != s or span.end_char != e
        mentions.append(span)
    doc.spans[MENTIONS_KEY] = sorted(set(mentions), key=lambda m: (m.start, -m.end, m.label_))
    return doc, cut


def read_gap(path: Path, vocab: Vocab, n_sents: int = 0) -> List[Doc]:
    """Read a GAP file (gap-development.tsv, gap-validation.tsv, gap-test.tsv): one Doc per
    row, tokenized by spaCy's tokenizer, sentences by its rule-based sentencizer. The
    pronoun and the names A and B are gold mentions (`doc.spans[COREF_MENTIONS_KEY]`, whose
    attrs say "partial": the other mentions of the text are not annotated; and
    `doc.spans["gap"]` labelled "PRONOUN", "A", "B"); the pronoun is one cluster with each
    name marked coreferent (A-coref / B-coref TRUE), every other mention a cluster of one.
    The row's ID and the pronoun's gender (F/M) are in `doc.user_data`.

    n_sents (int): Ignored: a row is one Doc.
    RAISES (DataFormatError): Naming file and line, for a wrong header or column count, an
        offset that is not a number or does not point at the mention's text, or a coref
        value other than TRUE/FALSE.
    """
    path = Path(path)
    nlp = spacy.blank(vocab.lang)
    nlp.vocab = vocab
    nlp.add_pipe("sentencizer")
    lines = _read_lines(path)
    if tuple(c.strip() for c in lines[0].split("\t")) != GAP_COLUMNS:
        raise DataFormatError(path, 1, f"expected the GAP header {' '.join(GAP_COLUMNS)}")
    docs: List[Doc] = []
    seen: Set[str] = set()
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = line.split("\t")
        if len(row) != len(GAP_COLUMNS):
            raise DataFormatError(
                path, line_no, f"expected {len(GAP_COLUMNS)} columns, got {len(row)}"
            )
        fields = dict(zip(GAP_COLUMNS, row))
        if fields["ID"] in seen:
            raise DataFormatError(path, line_no, f"duplicate ID {fields['ID']!r}")
        seen.add(fields["ID"])
        doc = nlp(fields["Text"])
        spans = {}
        for role, column in (("PRONOUN", "Pronoun"), ("A", "A"), ("B", "B")):
            spans[role] = _gap_span(doc, fields, column, role, path, line_no)
        corefs = {}
        for role in ("A", "B"):
            value = fields[f"{role}-coref"].strip().upper()
            if value not in ("TRUE", "FALSE"):
                raise DataFormatError(
                    path, line_no, f"{role}-coref must be TRUE or FALSE, got {value!r}"
                )
            corefs[role] = value == "TRUE"
        pronoun = spans["PRONOUN"]
        chain = [(pronoun.start, pronoun.end)] + [
            (spans[r].start, spans[r].end) for r in ("A", "B") if corefs[r]
        ]
        others = [[(spans[r].start, spans[r].end)] for r in ("A", "B") if not corefs[r]]
        set_clusters(doc, [chain] + others)
        doc.spans[GAP_KEY] = [spans["PRONOUN"], spans["A"], spans["B"]]
        doc.spans[COREF_MENTIONS_KEY] = SpanGroup(
            doc,
            name=COREF_MENTIONS_KEY,
            spans=[Span(doc, s.start, s.end, label="MENTION") for s in spans.values()],
            attrs={"partial": True},  # GAP marks three mentions, not every mention
        )
        word = pronoun.text.lower()
        doc.user_data["doc_id"] = fields["ID"]
        doc.user_data["gap_gender"] = (
            "F" if word in GAP_FEMININE else "M" if word in GAP_MASCULINE else ""
        )
        docs.append(doc)
    return docs


def _gap_span(
    doc: Doc, fields: Dict[str, str], column: str, role: str, path: Path, line_no: int
) -> Span:
    text = fields[column]
    try:
        start = int(fields[f"{column}-offset"])
    except ValueError:
        raise DataFormatError(path, line_no, f"{column}-offset is not a number") from None
    if doc.text[start : start + len(text)] != text or not text:
        raise DataFormatError(
            path, line_no, f"{column}-offset {start} does not point at {text!r} in the text"
        )
    span = doc.char_span(start, start + len(text), label=role, alignment_mode="expand")
    if span is None:
        raise DataFormatError(path, line_no, f"{column} {text!r} is not on token boundaries")
    return span
