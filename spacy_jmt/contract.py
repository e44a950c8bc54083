"""The Doc contract as JSON: what `annotate --format jsonl` writes and `serve` answers.

`doc_to_dict` is spaCy's own `Doc.to_json()` (text, tokens with tag, pos, morph, lemma,
head and dep, sentences, entities, every span group, cats) plus what `to_json` drops:
- `"_": {"relations_json": [...], "relatedness": float}`: the relations (head, tail, label,
  score) and the relatedness of a sentence pair, None where the doc has none;
- `"span_attrs": {key: {...}}`: the attrs of each span group that has any: `"scores"`, the
  confidence of each span in the group's order (span tasks, mentions), `"score"`, a
  cluster's confidence (coreference).
Coreference clusters are the span groups `coref_clusters_1`, `_2`, ... (spaCy's convention).
`doc_from_dict` reads it back: `doc_from_dict(vocab, doc_to_dict(doc))` has the same
annotations as `doc`, scores included.
"""

from typing import Any, Dict

from spacy.tokens import Doc
from spacy.vocab import Vocab

from .pairs import RELATEDNESS_EXTENSION  # importing them registers the extensions
from .relations import JSON_EXTENSION

UNDERSCORE = [JSON_EXTENSION, RELATEDNESS_EXTENSION]


def doc_to_dict(doc: Doc) -> Dict[str, Any]:
    """RETURNS (Dict[str, Any]): The doc's annotations, JSON-ready (see the module doc)."""
    data = doc.to_json(underscore=UNDERSCORE)
    data["span_attrs"] = {key: dict(group.attrs) for key, group in doc.spans.items() if group.attrs}
    return data


def doc_from_dict(vocab: Vocab, data: Dict[str, Any]) -> Doc:
    """RETURNS (Doc): The doc that `doc_to_dict` described, with its span group attrs.
    RAISES (ValueError): If the data do not describe a doc."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ValueError("a Doc contract needs an object with a 'text' string")
    doc = Doc(vocab).from_json(data)
    for key, attrs in (data.get("span_attrs") or {}).items():
        if key not in doc.spans or not isinstance(attrs, dict):
            raise ValueError(f"span_attrs[{key!r}] belongs to no span group of the doc")
        doc.spans[key].attrs.update(attrs)
    return doc
