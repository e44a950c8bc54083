"""Render entities and relations (`doc._.relations`) with displaCy as HTML or SVG."""

import math
import unicodedata
from html import escape, unescape
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from spacy import displacy
from spacy.displacy.templates import TPL_FIGURE, TPL_PAGE
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from .relations import Relation, get_relations

STYLES = ("dep", "span")
# displaCy's "dep" layout: the default distance between word centres (compact or not), the
# default left margin, and the font size of its page (TPL_PAGE) and of the `serve` page.
DEP_DISTANCE = {False: 175, True: 150}
DEP_OFFSET_X = 50
FONT_SIZE = 16
WORD_GAP = 24  # pixels kept free between neighbouring words and at the edges


def text_width(text: str, font_size: float = FONT_SIZE) -> float:
    """An upper estimate of the width of a line of text in a proportional sans-serif font
    (Arial, Liberation Sans, DejaVu Sans): wide East Asian characters take 1 em, capitals
    0.75 em, anything else 0.6 em (Arial's lowercase average is about 0.5 em).

    text (str): The text, without markup.
    font_size (float): The font size in pixels.
    RETURNS (float): The width in pixels.
    """
    ems = 0.0
    for char in text:
        if unicodedata.east_asian_width(char) in ("W", "F"):
            ems += 1.0
        elif unicodedata.combining(char):
            continue
        else:
            ems += 0.75 if char.isupper() else 0.6
    return ems * font_size


def fit_words(
    words: List[Dict[str, Any]], options: Optional[Dict[str, Any]] = None
) -> Dict[str, Any]:
    """The displaCy "dep" options under which no word of a figure is clipped at the edge of
    its SVG or runs into its neighbour.

    displaCy centres each word and its tag (`text-anchor="middle"`) at `offset_x + i *
    distance` and makes the SVG `offset_x + len(words) * distance` wide, with `offset_x`
    50 px and `distance` 175 px (150 compact) whatever the words. A first word wider than
    100 px (about a dozen characters at 16 px, e.g. the merged entity "Lee Harvey Oswald")
    so starts left of x = 0, where the browser cuts it off ("e Harvey Oswald"); a word
    wider than `distance` overlaps the next. Here `offset_x` is at least half the first
    word plus a gap (it lies `offset_x` from the left edge, or from the right one in
    right-to-left text, and the last word `distance` from the other edge), and `distance`
    at least the widest pair of neighbouring half-words plus a gap; what `options` sets is
    kept.

    words (List[Dict[str, Any]]): displaCy's words: "text", "tag" (and "lemma").
    options (Optional[Dict[str, Any]]): displaCy options.
    RETURNS (Dict[str, Any]): The options with "offset_x" and "distance" filled in.
    """
    options = dict(options or {})
    if not words:
        return options
    widths = [
        max(text_width(unescape(str(word.get(key) or ""))) for key in ("text", "tag", "lemma"))
        for word in words
    ]
    pairs = [(a + b) / 2 for a, b in zip(widths, widths[1:])] + [widths[-1] / 2]
    options.setdefault("offset_x", max(DEP_OFFSET_X, math.ceil(widths[0] / 2 + WORD_GAP)))
    default = DEP_DISTANCE[bool(options.get("compact", False))]
    options.setdefault("distance", max(default, math.ceil(max(pairs) + WORD_GAP)))
    return options


def _pieces(doc: Doc, relations: List[Relation], per_sentence: bool) -> List[Tuple[Span, list]]:
    """Split a Doc into the pieces to draw: its sentences (each with the relations inside
    it) if per_sentence, the Doc has sentence boundaries and no relation crosses them;
    otherwise the whole Doc."""
    whole = doc[0 : len(doc)]
    if not per_sentence or not doc.has_annotation("SENT_START") or len(doc) == 0:
        return [(whole, relations)]
    sents = list(doc.sents)
    sent_of = {token.i: k for k, sent in enumerate(sents) for token in sent}
    pieces: List[Tuple[Span, list]] = [(sent, []) for sent in sents]
    for rel in relations:
        k = sent_of[rel.head.start]
        if any(sent_of[t.i] != k for span in (rel.head, rel.tail) for t in span):
            return [(whole, relations)]
        pieces[k][1].append(rel)
    return pieces


def _entities(doc: Doc, spans_key: str) -> List[Span]:
    """The entity spans to show: doc.spans[spans_key] if present, else doc.ents."""
    return list(doc.spans[spans_key]) if spans_key in doc.spans else list(doc.ents)


def _label(rel: Relation, show_scores: bool) -> str:
    return escape(f"{rel.label} {rel.score:.2f}" if show_scores else rel.label)


def _dep_figure(
    piece: Span, relations: List[Relation], entities: List[Span], show_scores: bool
) -> Tuple[Dict[str, Any], List[str]]:
    """The manual displaCy "dep" data of one piece: each relation argument and entity is
    merged into one word (its label as the tag) and each relation is an arc from head to
    tail. Where arguments overlap, the longest span is drawn and the others attach to it;
    a relation whose two arguments fall into one word cannot be drawn and is listed.

    RETURNS (Tuple[Dict[str, Any], List[str]]): The data and the relations not drawn.
    """
    inside = [s for s in entities if s.start >= piece.start and s.end <= piece.end]
    args = [span for rel in relations for span in (rel.head, rel.tail)]
    units = {span.start: span for span in filter_spans(args + inside)}
    words: List[Dict[str, str]] = []
    word_of: Dict[int, int] = {}
    i = piece.start
    while i < piece.end:
        unit = units.get(i)
        end = unit.end if unit is not None else i + 1
        for j in range(i, end):
            word_of[j] = len(words)
        tag = escape(unit.label_) if unit is not None else ""
        words.append({"text": piece.doc[i:end].text, "tag": tag})
        i = end
    arcs, not_drawn = [], []
    for rel in relations:
        head, tail = word_of[rel.head.start], word_of[rel.tail.start]
        if head == tail:
            not_drawn.append(f"{rel.head.text} -[{rel.label}]-> {rel.tail.text}")
            continue
        start, end = sorted((head, tail))
        direction = "right" if head < tail else "left"  # the arrow points at the tail
        arcs.append(
            {"start": start, "end": end, "label": _label(rel, show_scores), "dir": direction}
        )
    return {"words": words, "arcs": arcs}, not_drawn


def _span_figure(
    piece: Span, relations: List[Relation], entities: List[Span], show_scores: bool
) -> Tuple[Dict[str, Any], str]:
    """The manual displaCy "span" data of one piece (all entities and relation arguments,
    overlaps included) and an HTML table of its relations.

    RETURNS (Tuple[Dict[str, Any], str]): The data and the table ("" if no relations).
    """
    args = [span for rel in relations for span in (rel.head, rel.tail)]
    shown = sorted({(s.start, s.end, s.label_) for s in entities + args})
    spans = [
        {"start_token": start - piece.start, "end_token": end - piece.start, "label": escape(label)}
        for start, end, label in shown
        if start >= piece.start and end <= piece.end
    ]
    data = {"text": piece.text, "tokens": [t.text for t in piece], "spans": spans}
    if not relations:
        return data, ""
    rows = "".join(
        f"<tr><td>{escape(r.head.text)} ({escape(r.head.label_)})</td><td>{_label(r, show_scores)}"
        f"</td><td>{escape(r.tail.text)} ({escape(r.tail.label_)})</td></tr>"
        for r in relations
    )
    table = (
        '<table class="spacy-jmt-relations" style="margin: 0 0 2rem 0">'
        "<tr><th>head</th><th>relation</th><th>tail</th></tr>" + rows + "</table>"
    )
    return data, table


def relation_figures(
    docs: Union[Doc, Iterable[Doc]],
    style: str = "dep",
    spans_key: str = "ents",
    show_scores: bool = True,
    per_sentence: bool = True,
    options: Optional[Dict[str, Any]] = None,
) -> List[str]:
    """Render each sentence (or Doc) on its own: see `render_relations`.

    RETURNS (List[str]): One markup string per figure: an SVG for style "dep" (preceded
        by a <p> listing the relations that could not be drawn, if any), HTML for "span".
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if isinstance(docs, Doc):
        docs = [docs]
    figures = []
    for doc in docs:
        if not isinstance(doc, Doc):
            raise TypeError(f"render_relations takes Docs, got {type(doc).__name__}")
        if len(doc) == 0:
            continue
        entities = _entities(doc, spans_key)
        for piece, relations in _pieces(doc, get_relations(doc), per_sentence):
            figure_options = {"spans_key": spans_key, **(options or {})}
            if style == "dep":
                data, not_drawn = _dep_figure(piece, relations, entities, show_scores)
                figure_options = fit_words(data["words"], figure_options)
                note = (
                    "<p>Not drawn (arguments in one word): " + escape("; ".join(not_drawn)) + "</p>"
                    if not_drawn
                    else ""
                )
            else:
                data, note = _span_figure(piece, relations, entities, show_scores)
            markup = displacy.render(
                data,
                style=style,
                manual=True,
                page=False,
                jupyter=False,
                options=figure_options,
            )
            figures.append(note + markup if style == "dep" else markup + note)
    return figures


def render_relations(
    docs: Union[Doc, Iterable[Doc]],
    page: bool = True,
    style: str = "dep",
    spans_key: str = "ents",
    show_scores: bool = True,
    per_sentence: bool = True,
    options: Optional[Dict[str, Any]] = None,
    lang: str = "en",
) -> str:
    """Render the entities and relations of Docs with displaCy.

    Style "dep": a displaCy dependency figure in which each entity and relation argument
    is one word with its label underneath, and each relation is a labelled arc from its
    head to its tail (the arrow points at the tail). Style "span": displaCy's span view
    (overlapping entities shown as such) with a table of the relations under each figure.
    Each sentence is its own figure when the Doc has sentence boundaries and no relation
    crosses them (per_sentence), else the whole Doc is one.

    docs (Union[Doc, Iterable[Doc]]): The Docs; relations are read from doc._.relations.
    page (bool): Return a complete HTML page; else the markup to embed (SVG for "dep").
    style (str): "dep" (relations as arcs) or "span" (entities as spans, relation table).
    spans_key (str): The span group with the entities to show; doc.ents if absent.
    show_scores (bool): Write the score after each relation label.
    per_sentence (bool): One figure per sentence where possible.
    options (Optional[Dict[str, Any]]): displaCy options (e.g. {"compact": True}, "colors").
    lang (str): The language code of the HTML page.
    RETURNS (str): The markup.
    """
    figures = relation_figures(docs, style, spans_key, show_scores, per_sentence, options)
    if not page:
        return "".join(figures)
    content = "".join(TPL_FIGURE.format(content=figure) for figure in figures)
    return TPL_PAGE.format(content=content, lang=lang, dir="ltr")
