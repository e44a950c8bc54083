"""Entity and relation converters: Universal NER (IOB2), its merge into UD, SpERT JSON."""

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple, Union

from spacy.tokens import Doc, Span
from spacy.util import filter_spans
from spacy.vocab import Vocab

from ..relations import Relation, concat_docs
from .base import (
    CHUNK_TAG,
    ENTS_KEY,
    SENT_ID,
    UNER_INDEX,
    DataFormatError,
    DataWarning,
    Line,
    _blocks,
    _check_n_sents,
    _group,
)
from .conll import _chunks_from_iob, _conllu_blocks, _conllu_docs


class _UnerSentence(NamedTuple):
    sent_id: Optional[str]
    line: int  # the line of its sent_id (the first line if it has none)
    words: List[str]
    spaces: List[bool]
    ents: List[Tuple[int, int, str]]


def _spaces_from_text(words: List[str], text: Optional[str]) -> List[bool]:
    """Recover SpaceAfter from a sentence's `# text` comment.

    words (List[str]): The tokens.
    text (Optional[str]): The sentence text, or None.
    RETURNS (List[bool]): Whether each token is followed by a space; single spaces
        (and none after the last token) if the text does not spell out the tokens.
    """
    default = [True] * (len(words) - 1) + [False]
    if text is None:
        return default
    spaces, pos = [], 0
    for word in words:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith(word, pos):
            return default
        pos += len(word)
        spaces.append(pos < len(text) and text[pos].isspace())
    return spaces if not text[pos:].strip() else default


def _uner_sentence(path: Path, block: List[Line]) -> _UnerSentence:
    """Parse and validate the lines of one Universal NER IOB2 sentence.

    path (Path): The file, for error messages.
    block (List[Tuple[int, str]]): The numbered lines of the sentence.
    RETURNS (_UnerSentence): sent_id, first line, words, spaces and decoded entities.
    """
    sent_id, text, sent_id_line = None, None, block[0][0]
    words: List[str] = []
    tags: List[str] = []
    for line_no, line in block:
        if line.startswith("#"):
            match = SENT_ID.match(line)
            if match:
                sent_id, sent_id_line = match.group(1), line_no
            elif line.startswith("# text = "):
                text = line[len("# text = ") :]
            continue
        columns = line.split("\t")
        if len(columns) < 3:
            raise DataFormatError(
                path,
                line_no,
                "expected tab-separated columns (index, token, IOB2 tag, ...), "
                f"got {len(columns)}: {line!r}",
            )
        index, word, tag = columns[0], columns[1], columns[2]
        if not UNER_INDEX.match(index) or int(index) != len(words) + 1:
            raise DataFormatError(
                path, line_no, f"expected token index {len(words) + 1}, got {index!r}"
            )
        if not word.strip():
            raise DataFormatError(path, line_no, "empty token")
        if not CHUNK_TAG.match(tag):
            raise DataFormatError(
                path, line_no, f"invalid IOB2 tag {tag!r} (expected O, B-<type> or I-<type>)"
            )
        words.append(word)
        tags.append(tag)
    if not words:
        raise DataFormatError(path, block[0][0], "sentence has no tokens")
    spaces = _spaces_from_text(words, text)
    return _UnerSentence(sent_id, sent_id_line, words, spaces, _chunks_from_iob(tags))


def _entity_doc(
    vocab: Vocab, words: List[str], spaces: List[bool], ents: List[Tuple[int, int, str]]
) -> Doc:
    """Build a one-sentence Doc whose entities are doc.ents and doc.spans["ents"].

    vocab (Vocab): The vocab of the Doc.
    words (List[str]): The tokens.
    spaces (List[bool]): Whether each token is followed by a space.
    ents (List[Tuple[int, int, str]]): Non-overlapping (start, end, label) token spans.
    RETURNS (Doc): The Doc; tokens outside the entities are O (annotated, not missing).
    """
    sent_starts: List[Union[bool, int, None]] = [i == 0 for i in range(len(words))]
    doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
    spans = [Span(doc, start, end, label=label) for start, end, label in ents]
    doc.set_ents(spans, default="outside")
    doc.spans[ENTS_KEY] = spans
    return doc


def read_uner(path: Path, vocab: Vocab, n_sents: int = 10) -> List[Doc]:
    """Read a Universal NER IOB2 file (`index token tag - annotator` per line) into Docs.

    Each Doc holds n_sents sentences with sentence starts set; the entities (PER, ORG, LOC,
    or whatever types the file has) are doc.ents, with every other token O, and the
    labelled spans of doc.spans["ents"]. A stray I-X starts a new entity, as conlleval
    does. SpaceAfter comes from each sentence's `# text` comment where it spells out the
    tokens (UNER writes multiword tokens split: "do n't"), single spaces otherwise.

    path (Path): The file to read.
    vocab (Vocab): The vocab of the Docs.
    n_sents (int): Sentences per Doc.
    RETURNS (List[Doc]): The Docs, in file order.
    RAISES (DataFormatError): On a malformed line, naming file and line.
    """
    _check_n_sents(n_sents)
    path = Path(path)
    sentences = [_uner_sentence(path, block) for block in _blocks(path)]
    docs = [_entity_doc(vocab, s.words, s.spaces, s.ents) for s in sentences]
    return _group(docs, n_sents)


@dataclass
class MergeReport:
    """What `merge_uner` did, sentence by sentence (sent_ids).

    n_conllu (int): Sentences in the CoNLL-U file.
    n_uner (int): Sentences in the UNER file.
    n_identical (int): Sentences whose tokens are identical in both: entities copied.
    projected (List[str]): Tokens differ, entities mapped through the characters.
    unannotated (List[str]): CoNLL-U sentences left without entity annotation (missing,
        not O): no UNER sentence with that sent_id, or one that could not be projected.
    unused (List[str]): UNER sentences whose sent_id is not in the CoNLL-U file (their
        entities are not in the output).
    lost_entities (int): UNER entities not in the output (unused or unprojectable).
    """

    n_conllu: int = 0
    n_uner: int = 0
    n_identical: int = 0
    projected: List[str] = field(default_factory=list)
    unannotated: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)
    lost_entities: int = 0


def _project_ents(
    source: List[str], target: List[str], ents: List[Tuple[int, int, str]]
) -> Optional[List[Tuple[int, int, str]]]:
    """Map token spans from one tokenization of a text to another through its characters.

    source (List[str]): The tokens the spans refer to.
    target (List[str]): Another tokenization of the same characters (whitespace ignored).
    ents (List[Tuple[int, int, str]]): The spans over `source`.
    RETURNS (Optional[List[Tuple[int, int, str]]]): The spans over `target`, or None if the
        characters differ or a span boundary falls inside a target token.
    """
    if "".join(source).replace(" ", "") != "".join(target).replace(" ", ""):
        return None
    offsets, pos = [], 0
    for word in source:
        n_chars = len(word.replace(" ", ""))
        offsets.append((pos, pos + n_chars))
        pos += n_chars
    starts, ends, pos = {}, {}, 0
    for i, word in enumerate(target):
        starts[pos] = i
        pos += len(word.replace(" ", ""))
        ends[pos] = i + 1
    projected = []
    for start, end, label in ents:
        char_start, char_end = offsets[start][0], offsets[end - 1][1]
        if char_start not in starts or char_end not in ends:
            return None
        projected.append((starts[char_start], ends[char_end], label))
    return projected


def merge_uner(
    conllu_path: Path,
    uner_path: Path,
    vocab: Vocab,
    n_sents: int = 10,
    on_mismatch: str = "error",
) -> Tuple[List[Doc], MergeReport]:
    """Add the Universal NER entities of `uner_path` to the UD sentences of `conllu_path`,
    joined on `# sent_id` (UNER EWT annotates the UD EWT sentences, in another order).

    The Docs are those of `read_conllu` (UD order, n_sents sentences per Doc, tags, POS,
    morphology, lemmas, heads, deps) plus the entities as doc.ents and doc.spans["ents"].
    Tokens of a sentence without UNER annotation have no entity annotation (ENT_IOB
    missing, so they give no NER loss), not O.

    conllu_path (Path): The CoNLL-U file; every sentence needs a `# sent_id`.
    uner_path (Path): The UNER IOB2 file.
    vocab (Vocab): The vocab of the Docs.
    n_sents (int): Sentences per Doc.
    on_mismatch (str): "error": a UNER sentence whose tokens differ from the UD sentence
        with its sent_id, or whose sent_id is not in the CoNLL-U file, is an error.
        "project": map its entities through the characters if the two tokenizations spell
        the same text and the entity boundaries fall on UD token boundaries; otherwise
        leave that UD sentence unannotated. Everything is listed in the report.
    RETURNS (Tuple[List[Doc], MergeReport]): The Docs and what was merged how.
    RAISES (DataFormatError): On malformed input, duplicate sent_ids, no sent_id in common,
        or (on_mismatch="error") a mismatch, naming the file, line and sent_id.
    """
    if on_mismatch not in ("error", "project"):
        raise ValueError(f"on_mismatch must be 'error' or 'project', got {on_mismatch!r}")
    _check_n_sents(n_sents)
    conllu_path, uner_path = Path(conllu_path), Path(uner_path)
    ud_sentences = _conllu_blocks(conllu_path)
    uner: Dict[str, _UnerSentence] = {}
    for block in _blocks(uner_path):
        sentence = _uner_sentence(uner_path, block)
        if sentence.sent_id is None:
            raise DataFormatError(uner_path, sentence.line, "sentence has no '# sent_id' comment")
        if sentence.sent_id in uner:
            raise DataFormatError(uner_path, sentence.line, f"duplicate sent_id {sentence.sent_id}")
        uner[sentence.sent_id] = sentence
    seen: Set[str] = set()
    for sent_id, line_no, _ in ud_sentences:
        if sent_id is None:
            raise DataFormatError(conllu_path, line_no, "sentence has no '# sent_id' comment")
        if sent_id in seen:
            raise DataFormatError(conllu_path, line_no, f"duplicate sent_id {sent_id}")
        seen.add(sent_id)
    if not seen & set(uner):
        raise DataFormatError(
            uner_path, 1, f"no sent_id in common with {conllu_path}: wrong pair of files?"
        )
    report = MergeReport(n_conllu=len(ud_sentences), n_uner=len(uner))
    for sent_id, sentence in uner.items():
        if sent_id not in seen:
            if on_mismatch == "error":
                raise DataFormatError(
                    uner_path, sentence.line, f"sent_id {sent_id} is not in {conllu_path}"
                )
            report.unused.append(sent_id)
            report.lost_entities += len(sentence.ents)
    docs = _conllu_docs([lines for _, _, lines in ud_sentences], vocab, n_sents=1)
    for (sent_id, line_no, _), doc in zip(ud_sentences, docs):
        assert sent_id is not None
        ents = _merged_ents(conllu_path, line_no, uner_path, uner.get(sent_id), doc, on_mismatch)
        if ents is None:
            report.unannotated.append(sent_id)
            if sent_id in uner:
                report.lost_entities += len(uner[sent_id].ents)
            doc.set_ents([], default="missing")
            continue
        if [t.text for t in doc] == uner[sent_id].words:
            report.n_identical += 1
        else:
            report.projected.append(sent_id)
        spans = [Span(doc, start, end, label=label) for start, end, label in ents]
        doc.set_ents(spans, default="outside")
        doc.spans[ENTS_KEY] = spans
    return _group(docs, n_sents), report


def _merged_ents(
    conllu_path: Path,
    line_no: int,
    uner_path: Path,
    sentence: Optional[_UnerSentence],
    doc: Doc,
    on_mismatch: str,
) -> Optional[List[Tuple[int, int, str]]]:
    """The UNER entities of one UD sentence as spans over its tokens, or None if there are
    none to give (no UNER sentence, or on_mismatch="project" and projection failed)."""
    if sentence is None:
        return None
    words = [t.text for t in doc]
    if words == sentence.words:
        return sentence.ents
    if on_mismatch == "error":
        diff = next(
            (i for i, (a, b) in enumerate(zip(words, sentence.words)) if a != b),
            min(len(words), len(sentence.words)),
        )
        raise DataFormatError(
            uner_path,
            sentence.line,
            f"sent_id {sentence.sent_id}: tokens differ from {conllu_path} (line {line_no}) "
            f"at token {diff + 1}: UNER {sentence.words[diff : diff + 3]!r} vs UD "
            f"{words[diff : diff + 3]!r} ({len(sentence.words)} vs {len(words)} tokens); "
            "use on_mismatch='project' to map entities through the characters",
        )
    return _project_ents(sentence.words, words, sentence.ents)


def merge_uner_into_conllu(
    conllu_path: Path,
    uner_path: Path,
    vocab: Vocab,
    n_sents: int = 10,
    on_mismatch: str = "error",
) -> List[Doc]:
    """`merge_uner`, with a DataWarning summarizing any sentence that was not merged as is.

    conllu_path (Path): The CoNLL-U file.
    uner_path (Path): The UNER IOB2 file.
    vocab (Vocab): The vocab of the Docs.
    n_sents (int): Sentences per Doc.
    on_mismatch (str): "error" or "project", as in `merge_uner`.
    RETURNS (List[Doc]): The Docs with syntax and entities.
    """
    docs, report = merge_uner(conllu_path, uner_path, vocab, n_sents, on_mismatch)
    if report.projected or report.unannotated or report.unused:
        warnings.warn(
            f"{uner_path} into {conllu_path}: {report.n_identical} sentences merged as is, "
            f"{len(report.projected)} projected through characters {report.projected[:5]}, "
            f"{len(report.unannotated)} UD sentences left without entity annotation "
            f"{report.unannotated[:5]}, {len(report.unused)} UNER sentences not in the "
            f"CoNLL-U file {report.unused[:5]}; {report.lost_entities} UNER entities not merged",
            DataWarning,
            stacklevel=2,
        )
    return docs


class EntityOverlap(NamedTuple):
    """Two distinct gold entities of one SpERT item that share tokens.

    item (int): The 1-based index of the item in the file.
    first (Tuple[int, int, str]): (start, end, type) of the first entity, in file order.
    second (Tuple[int, int, str]): The same for the second.
    """

    item: int
    first: Tuple[int, int, str]
    second: Tuple[int, int, str]


SPERT_KEYS = {"tokens", "entities", "relations"}
SPERT_OPTIONAL_KEYS = {"orig_id"}
SPERT_ENTITY_KEYS = {"type", "start", "end"}
SPERT_RELATION_KEYS = {"type", "head", "tail"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_keys(path: Path, item_no: int, what: str, data: Any, keys: Set[str]) -> None:
    """Require a dict with exactly `keys` (SpERT allows `orig_id` besides, at item level)."""
    if not isinstance(data, dict):
        raise DataFormatError(path, item_no, f"{what} must be an object, got {data!r}", "item")
    optional = SPERT_OPTIONAL_KEYS if what == "item" else set()
    missing, unknown = keys - set(data), set(data) - keys - optional
    if missing or unknown:
        problems = [f"missing key(s) {sorted(missing)}"] if missing else []
        problems += [f"unknown key(s) {sorted(unknown)}"] if unknown else []
        expected = sorted(keys | optional)
        raise DataFormatError(
            path, item_no, f"{what}: {', '.join(problems)} (expected {expected})", "item"
        )


def _spert_item(
    path: Path, item_no: int, item: Any
) -> Tuple[List[str], List[Tuple[int, int, str]], List[Tuple[int, int, str]]]:
    """Validate one SpERT item.

    path (Path): The file, for error messages.
    item_no (int): The 1-based index of the item.
    item (Any): The item.
    RETURNS (Tuple[List[str], List[Tuple[int, int, str]], List[Tuple[int, int, str]]]):
        Tokens, entities (start, end, type) and relations (head, tail, type).
    """
    _check_keys(path, item_no, "item", item, SPERT_KEYS)

    def fail(message: str) -> DataFormatError:
        orig_id = f" (orig_id {item['orig_id']})" if "orig_id" in item else ""
        return DataFormatError(path, item_no, message + orig_id, "item")

    tokens = item["tokens"]
    if not isinstance(tokens, list) or not tokens:
        raise fail("tokens must be a non-empty list")
    for i, token in enumerate(tokens):
        if not isinstance(token, str) or not token or any(c.isspace() for c in token):
            raise fail(f"token {i} must be a non-empty string without whitespace: {token!r}")
    for key in ("entities", "relations"):
        if not isinstance(item[key], list):
            raise fail(f"{key} must be a list")
    entities = []
    for i, ent in enumerate(item["entities"]):
        _check_keys(path, item_no, f"entity {i}", ent, SPERT_ENTITY_KEYS)
        start, end, label = ent["start"], ent["end"], ent["type"]
        if not (_is_int(start) and _is_int(end) and 0 <= start < end <= len(tokens)):
            raise fail(
                f"entity {i}: span [{start}, {end}) is not within the {len(tokens)} tokens "
                "(start < end <= number of tokens, end exclusive)"
            )
        if not isinstance(label, str) or not label:
            raise fail(f"entity {i}: type must be a non-empty string, got {label!r}")
        entities.append((start, end, label))
    relations = []
    for i, rel in enumerate(item["relations"]):
        _check_keys(path, item_no, f"relation {i}", rel, SPERT_RELATION_KEYS)
        for role in ("head", "tail"):
            if not _is_int(rel[role]) or not 0 <= rel[role] < len(entities):
                raise fail(
                    f"relation {i}: {role} {rel[role]!r} is not an index into the "
                    f"{len(entities)} entities"
                )
        if not isinstance(rel["type"], str) or not rel["type"]:
            raise fail(f"relation {i}: type must be a non-empty string, got {rel['type']!r}")
        relations.append((rel["head"], rel["tail"], rel["type"]))
    return tokens, entities, relations


def _spert_doc(
    vocab: Vocab,
    item_no: int,
    tokens: List[str],
    entities: List[Tuple[int, int, str]],
    relations: List[Tuple[int, int, str]],
) -> Tuple[Doc, List[EntityOverlap]]:
    """Build the one-sentence Doc of a validated SpERT item.

    RETURNS (Tuple[Doc, List[EntityOverlap]]): The Doc and the overlapping entity pairs.
    """
    doc = _entity_doc(vocab, tokens, [True] * (len(tokens) - 1) + [False], [])
    unique = list(dict.fromkeys(entities))  # exact duplicates are one entity
    spans = {ent: Span(doc, ent[0], ent[1], label=ent[2]) for ent in unique}
    overlaps = [
        EntityOverlap(item_no, a, b)
        for i, a in enumerate(unique)
        for b in unique[i + 1 :]
        if a[0] < b[1] and b[0] < a[1]
    ]
    doc.set_ents(filter_spans(list(spans.values())), default="outside")
    doc.spans[ENTS_KEY] = list(spans.values())
    doc._.relations = [
        Relation(spans[entities[head]], spans[entities[tail]], label, 1.0)
        for head, tail, label in relations
    ]
    return doc, overlaps


def spert_to_docs(
    path: Path, vocab: Vocab, n_sents: int = 1
) -> Tuple[List[Doc], List[EntityOverlap]]:
    """Read a SpERT JSON file (CoNLL04, ADE, ...) into Docs and list the overlapping
    gold entities.

    Each item is a sentence (tokens joined by single spaces, sentence start set). Its
    entities are the labelled spans of doc.spans["ents"], all of them (exact duplicates
    once), in file order; doc.ents holds a non-overlapping subset (spacy.util.filter_spans:
    longest first), with every other token O. Its relations are doc._.relations, with
    score 1.0, between the spans of doc.spans["ents"]. Docs of n_sents items are
    concatenated with the relations kept.

    path (Path): The JSON file: a list of {"tokens", "entities": [{"type", "start", "end"}],
        "relations": [{"type", "head", "tail"}], "orig_id" (optional)}, end exclusive,
        head and tail indices into the entities.
    vocab (Vocab): The vocab of the Docs.
    n_sents (int): Items per Doc.
    RETURNS (Tuple[List[Doc], List[EntityOverlap]]): The Docs, in file order, and every
        pair of distinct gold entities of an item that share a token.
    RAISES (DataFormatError): On invalid JSON (file and line) or a malformed item (file
        and 1-based item index).
    """
    _check_n_sents(n_sents)
    path = Path(path)
    try:
        data = json.loads(Path(path).read_bytes())
    except UnicodeDecodeError as err:
        raise DataFormatError(path, 1, f"not valid UTF-8 ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid JSON: {err.msg}") from None
    if not isinstance(data, list) or not data:
        raise DataFormatError(path, 1, "expected a non-empty JSON list of items")
    docs, overlaps = [], []
    for item_no, item in enumerate(data, start=1):
        doc, item_overlaps = _spert_doc(vocab, item_no, *_spert_item(path, item_no, item))
        docs.append(doc)
        overlaps.extend(item_overlaps)
    if n_sents > 1:
        docs = [concat_docs(docs[i : i + n_sents]) for i in range(0, len(docs), n_sents)]
    return docs, overlaps


def read_spert(path: Path, vocab: Vocab, n_sents: int = 1) -> List[Doc]:
    """`spert_to_docs`, with a DataWarning naming the file and items with overlapping
    gold entities (all of them are kept in doc.spans["ents"]).

    path (Path): The JSON file.
    vocab (Vocab): The vocab of the Docs.
    n_sents (int): Items per Doc.
    RETURNS (List[Doc]): The Docs, in file order.
    """
    docs, overlaps = spert_to_docs(path, vocab, n_sents)
    if overlaps:
        items = sorted({overlap.item for overlap in overlaps})
        n_ents = sum(len(doc.spans[ENTS_KEY]) for doc in docs)
        n_in_ents = sum(len(doc.ents) for doc in docs)
        warnings.warn(
            f"{path}: {len(overlaps)} pairs of overlapping gold entities in {len(items)} items "
            f"(items {', '.join(map(str, items[:10]))}{', ...' if len(items) > 10 else ''}). "
            f"All {n_ents} entities are in doc.spans['ents']; doc.ents holds a non-overlapping "
            f"subset of {n_in_ents} ({n_ents - n_in_ents} left out).",
            DataWarning,
            stacklevel=2,
        )
    return docs
