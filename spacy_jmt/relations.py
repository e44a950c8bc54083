"""Relations between spans on the Doc: `doc._.relations`.

A relation is a labelled, scored, directed link from a head span to a tail span. The
relations of a Doc are read and written through the `doc._.relations` extension, a list
of `Relation(head, tail, label, score)` records whose head and tail are `Span`s carrying
their entity labels (and kb_ids).

Storage. The relations are not kept in `doc.user_data` but in two span groups and the
attrs of the first one:
    doc.spans["relation_heads"]  the head span of relation i at position i
    doc.spans["relation_tails"]  the tail span of relation i at position i
    doc.spans["relation_heads"].attrs == {"labels": [str, ...], "scores": [float, ...]}
`doc._.relations` is a getter/setter over them. Span groups (with their attrs) are part of
`Doc.to_bytes`, so relations survive every route built on it: `DocBin` with *and without*
user data, pickling, `Doc.copy` and `nlp.pipe(n_process=N)` (its workers send docs back
as `Doc.to_bytes`). A user-data extension would be lost by `DocBin(store_user_data=False)`,
and a Span-valued one cannot be serialized at all. The argument spans keep their own label
and kb_id, so `relation.head.label_` is the entity type and `relation.head.kb_id_` a link
to a knowledge base if the entity had one. (Encoding the relation label in the argument
spans' kb_id would let plain `Doc.to_json` keep it, but would misuse kb_id and still lose
the scores.) `Span.as_doc` copies no span groups: a slice has no relation annotation.

Presence is meaningful: no span groups means "relations not annotated" (missing gold), two
empty groups mean "annotated: no relations". `has_relations(doc)` tells which.

Two routes drop span group attrs, and the getter raises a ValueError (never a silent empty
list) when it finds the groups without them:
- `Doc.to_json()` keeps span groups but not their attrs. Ask for the extension
  `relations_json` (the relations as JSON-ready dicts, `None` if not annotated):
  `data = doc.to_json(underscore=["relations_json"])`; `Doc(vocab).from_json(data)` then
  restores them (its setter runs after the span groups are rebuilt). `relations_to_json`
  and `relations_from_json` are the same as functions.
- `Doc.from_docs()` concatenates span groups without attrs: use `concat_docs`.

The extensions are registered when this module is imported (and by
`register_relations_extension()`, which is idempotent).
"""

import math
from numbers import Real
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Union

from spacy.tokens import Doc, Span, SpanGroup

from .extensions import register_doc_extension

HEADS_KEY = "relation_heads"
TAILS_KEY = "relation_tails"
EXTENSION = "relations"
JSON_EXTENSION = "relations_json"

JSONRelation = Dict[str, Any]


class Relation(NamedTuple):
    """A directed, labelled and scored relation between two spans of one Doc.

    head (Span): The first argument, with its entity label.
    tail (Span): The second argument, with its entity label.
    label (str): The relation type.
    score (float): The confidence; 1.0 for gold relations.
    """

    head: Span
    tail: Span
    label: str
    score: float = 1.0

    def to_dict(self) -> JSONRelation:
        """Convert the relation to JSON-ready data, spans as character offsets (as in
        `Doc.to_json`).

        RETURNS (Dict[str, Any]): {"head": {"start", "end", "label", "kb_id"}, "tail": {...},
            "label": str, "score": float}.
        """
        return {
            "head": _span_to_dict(self.head),
            "tail": _span_to_dict(self.tail),
            "label": self.label,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, doc: Doc, data: JSONRelation) -> "Relation":
        """Build a relation of `doc` from the data of `Relation.to_dict`.

        doc (Doc): The Doc that the character offsets refer to.
        data (Dict[str, Any]): The relation data.
        RETURNS (Relation): The relation.
        RAISES (ValueError): If a key is missing or the offsets are not token boundaries.
        """
        if not isinstance(data, dict) or not {"head", "tail", "label"} <= set(data):
            raise ValueError(f"relation data must be a dict with head, tail, label: {data!r}")
        return cls(
            _span_from_dict(doc, data["head"]),
            _span_from_dict(doc, data["tail"]),
            data["label"],
            data.get("score", 1.0),
        )


class RelationList(List[Relation]):
    """The value of `doc._.relations`: a list that refuses in-place changes.

    Changing the list would not change the Doc; assign a new list instead:
    `doc._.relations = doc._.relations + [relation]`.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "doc._.relations is read-only: assign a new list to change it, e.g. "
            "doc._.relations = doc._.relations + [relation]"
        )

    def __reduce__(self) -> Any:  # copy.copy and pickle rebuild it without append()
        return (RelationList, (list(self),))

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse  # type: ignore
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore


RelationLike = Union[Relation, Sequence[Any]]


def _span_to_dict(span: Span) -> Dict[str, Any]:
    return {
        "start": span.start_char,
        "end": span.end_char,
        "label": span.label_,
        "kb_id": span.kb_id_,
    }


def _span_from_dict(doc: Doc, data: Any) -> Span:
    if not isinstance(data, dict) or not {"start", "end"} <= set(data):
        raise ValueError(f"relation argument must be a dict with start and end: {data!r}")
    span = doc.char_span(
        data["start"], data["end"], label=data.get("label", ""), kb_id=data.get("kb_id", "")
    )
    if span is None:
        raise ValueError(
            f"relation argument [{data['start']}:{data['end']}] does not fall on token "
            f"boundaries of the doc {doc.text[:50]!r}"
        )
    return span


def has_relations(doc: Doc) -> bool:
    """Whether the Doc has relation annotation (possibly an empty list).

    doc (Doc): The Doc.
    RETURNS (bool): True if the relation span groups are present.
    """
    return HEADS_KEY in doc.spans or TAILS_KEY in doc.spans


def get_relations(doc: Doc) -> RelationList:
    """Read the relations of a Doc (the getter of `doc._.relations`).

    doc (Doc): The Doc.
    RETURNS (RelationList): The relations, in stored order; empty if not annotated.
    RAISES (ValueError): If the relation span groups are incomplete or lack their attrs.
    """
    if not has_relations(doc):
        return RelationList()
    if HEADS_KEY not in doc.spans or TAILS_KEY not in doc.spans:
        raise ValueError(
            f"doc.spans has only one of {HEADS_KEY!r} and {TAILS_KEY!r}: the relations of "
            "this doc are incomplete"
        )
    heads, tails = doc.spans[HEADS_KEY], doc.spans[TAILS_KEY]
    labels, scores = heads.attrs.get("labels"), heads.attrs.get("scores")
    if len(heads) == len(tails) == 0:  # e.g. empty groups rebuilt by Doc.from_json
        return RelationList()
    if not isinstance(labels, list) or not isinstance(scores, list):
        raise ValueError(
            f"doc.spans[{HEADS_KEY!r}] holds {len(heads)} relation heads but its attrs have no "
            "relation labels and scores. Span group attrs are dropped by Doc.to_json (use "
            f"doc.to_json(underscore=[{JSON_EXTENSION!r}])) and by Doc.from_docs (use "
            "spacy_jmt.relations.concat_docs)."
        )
    if not len(heads) == len(tails) == len(labels) == len(scores):
        raise ValueError(
            f"relation storage is inconsistent: {len(heads)} heads, {len(tails)} tails, "
            f"{len(labels)} labels, {len(scores)} scores"
        )
    return RelationList(
        Relation(head, tail, label, score)
        for head, tail, label, score in zip(heads, tails, labels, scores)
    )


def _check_relation(doc: Doc, i: int, relation: RelationLike) -> Relation:
    """Validate one relation for `set_relations`."""
    if not isinstance(relation, Relation):
        if not isinstance(relation, (tuple, list)) or len(relation) not in (3, 4):
            raise ValueError(
                f"relation {i}: expected a Relation or a (head, tail, label[, score]) tuple, "
                f"got {relation!r}"
            )
        relation = Relation(*relation)
    head, tail, label, score = relation
    for name, span in (("head", head), ("tail", tail)):
        if not isinstance(span, Span):
            raise ValueError(f"relation {i}: {name} must be a Span, got {type(span).__name__}")
        if span.doc is not doc:
            raise ValueError(f"relation {i}: {name} {span.text!r} is a span of another Doc")
        if len(span) == 0:
            raise ValueError(f"relation {i}: {name} is an empty span")
    if not isinstance(label, str) or not label:
        raise ValueError(f"relation {i}: label must be a non-empty string, got {label!r}")
    if isinstance(score, bool) or not isinstance(score, Real) or not math.isfinite(score):
        raise ValueError(f"relation {i}: score must be a finite number, got {score!r}")
    return Relation(head, tail, label, float(score))


def set_relations(doc: Doc, relations: Optional[Iterable[RelationLike]]) -> None:
    """Write the relations of a Doc (the setter of `doc._.relations`), replacing any.

    doc (Doc): The Doc.
    relations (Optional[Iterable[RelationLike]]): Relations, or (head, tail, label[, score])
        tuples (score defaults to 1.0); None removes the relation annotation altogether.
    RAISES (ValueError): If a relation is malformed or its spans belong to another Doc.
    """
    if relations is None:
        remove_relations(doc)
        return
    checked = [_check_relation(doc, i, rel) for i, rel in enumerate(relations)]
    attrs = {"labels": [r.label for r in checked], "scores": [r.score for r in checked]}
    doc.spans[HEADS_KEY] = SpanGroup(
        doc, name=HEADS_KEY, attrs=attrs, spans=[r.head for r in checked]
    )
    doc.spans[TAILS_KEY] = SpanGroup(doc, name=TAILS_KEY, spans=[r.tail for r in checked])


def remove_relations(doc: Doc) -> None:
    """Remove the relation annotation (afterwards `has_relations(doc)` is False).

    doc (Doc): The Doc.
    """
    for key in (HEADS_KEY, TAILS_KEY):
        if key in doc.spans:
            del doc.spans[key]


def relations_to_json(doc: Doc) -> Optional[List[JSONRelation]]:
    """The relations as JSON-ready dicts (the getter of `doc._.relations_json`).

    doc (Doc): The Doc.
    RETURNS (Optional[List[Dict[str, Any]]]): One `Relation.to_dict()` per relation, or None
        if the Doc has no relation annotation.
    """
    if not has_relations(doc):
        return None
    return [relation.to_dict() for relation in get_relations(doc)]


def relations_from_json(doc: Doc, data: Optional[List[JSONRelation]]) -> None:
    """Set the relations from the output of `relations_to_json` (the setter of
    `doc._.relations_json`, which `Doc.from_json` calls).

    doc (Doc): The Doc, with the same text as the one the data came from.
    data (Optional[List[Dict[str, Any]]]): The relations; None removes the annotation.
    RAISES (ValueError): If the data is malformed or does not fit the Doc's tokens.
    """
    if data is None:
        remove_relations(doc)
        return
    if not isinstance(data, list):
        raise ValueError(f"relations JSON must be a list or None, got {type(data).__name__}")
    set_relations(doc, [Relation.from_dict(doc, item) for item in data])


def concat_docs(docs: List[Doc], ensure_whitespace: bool = True) -> Doc:
    """Concatenate Docs like `Doc.from_docs`, keeping their relations.

    `Doc.from_docs` concatenates the relation span groups but drops their attrs (the labels
    and scores); this puts them back. If some Docs have relation annotation and others
    not, the result has it (as for every span group key in `Doc.from_docs`).

    docs (List[Doc]): The Docs, with a shared Vocab.
    ensure_whitespace (bool): As in `Doc.from_docs`.
    RETURNS (Doc): The concatenated Doc.
    """
    relations = [get_relations(doc) for doc in docs]
    annotated = any(has_relations(doc) for doc in docs)
    concat = Doc.from_docs(docs, ensure_whitespace=ensure_whitespace)
    if annotated:
        # from_docs keeps the order of the spans: doc by doc, then within each doc.
        heads, tails = concat.spans.get(HEADS_KEY, []), concat.spans.get(TAILS_KEY, [])
        flat = [rel for doc_relations in relations for rel in doc_relations]
        concat._.relations = [
            Relation(head, tail, rel.label, rel.score)
            for head, tail, rel in zip(heads, tails, flat)
        ]
    return concat


def register_relations_extension() -> None:
    """Register `Doc._.relations` and `Doc._.relations_json` (idempotent).

    If another package registered an extension of the same name, it is replaced with a
    warning.
    """
    for name, getter, setter in (
        (EXTENSION, get_relations, set_relations),
        (JSON_EXTENSION, relations_to_json, relations_from_json),
    ):
        register_doc_extension(name, getter, setter)


register_relations_extension()
