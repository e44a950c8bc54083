"""Render Docs with displaCy: the relations (`doc._.relations`) as labelled arcs between
their spans (`relation_figures`, `render_relations`: HTML or SVG), and every layer of each
Doc on one page (`doc_sections`, `render_docs`: the `render` command; `serve` shows the same
sections). The figures of the other layers are in spacy_jmt.figures.
"""

from html import escape
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from spacy import displacy
from spacy.displacy.templates import TPL_FIGURE, TPL_PAGE
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from .figures import (
    Section,
    cluster_keys,
    communicates,
    coref_section,
    entities_section,
    figure_html,
    fit_words,
    jmt_components,
    note_html,
    pair_section,
    parse_section,
    span_group_keys,
    span_group_section,
    tokens_section,
    weights_section,
)
from .relations import Relation, get_relations, has_relations

STYLES = ("dep", "span")
# The look of the `render` page: the figure styles it shares with the `serve` page, and its own.
FIGURES_CSS = Path(__file__).parent / "static" / "figures.css"
PAGE_STYLE = f"""<style>
{FIGURES_CSS.read_text(encoding="utf8")}
  article.spacy-jmt-doc {{ margin: 0 0 4rem 0; }}
  article.spacy-jmt-doc > h2 {{ border-bottom: 2px solid #888; }}
  section {{ margin: 1rem 0; border-top: 1px solid #ddd; }}
  section summary {{ font-size: 1.05rem; font-weight: bold; margin: 0.8rem 0; cursor: pointer; }}
</style>"""


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


def relations_section(
    doc: Doc,
    style: str = "dep",
    spans_key: str = "ents",
    show_scores: bool = True,
    per_sentence: bool = True,
) -> str:
    """The relations of a Doc drawn by `relation_figures` and, for style "dep", a table of
    them (style "span" has one under each figure). The settings are `render_relations`'.

    RETURNS (str): The HTML fragment.
    """
    relations = get_relations(doc)
    if not relations:
        return note_html("No relations.")
    figures = relation_figures(doc, style, spans_key, show_scores, per_sentence)
    markup = "".join(figure_html(figure) for figure in figures)
    if style != "dep":
        return markup
    rows = "".join(
        f"<tr><td>{escape(r.head.text)} <small>{escape(r.head.label_)}</small></td>"
        f"<td>{escape(r.label)}</td><td>{escape(r.tail.text)} <small>{escape(r.tail.label_)}"
        "</small></td>" + (f"<td>{r.score:.3f}</td>" if show_scores else "") + "</tr>"
        for r in relations
    )
    score = "<th>score</th>" if show_scores else ""
    return (
        f'{markup}<table class="relations"><tr><th>head</th><th>relation</th><th>tail</th>'
        f"{score}</tr>{rows}</table>"
    )


def doc_sections(
    doc: Doc,
    nlp: Optional[Language] = None,
    style: str = "dep",
    spans_key: str = "ents",
    show_scores: bool = True,
    per_sentence: bool = True,
) -> List[Section]:
    """The figures of one annotated Doc, one section per layer it has: the dependency parse,
    doc.ents, every span group (mentions, chunks... with their scores), the relations, the
    coreference clusters (a colour per cluster), the sentence-pair scores and the tokens.

    doc (Doc): The Doc, annotated (by a pipeline or by hand).
    nlp (Optional[Language]): The pipeline that annotated it, if any: then also a note where
        it has pair tasks and the doc is not a pair, and the task-to-task weights of each
        jmt component whose tasks talk, averaged over the doc's tokens.
    style (str): The relations' figures, "dep" or "span" (see `render_relations`).
    spans_key (str): The span group with the entities of the relation figures.
    show_scores (bool): Write each relation's score.
    per_sentence (bool): One relation figure per sentence where possible.
    RETURNS (List[Section]): The sections, lowest layer first.
    """
    sections: List[Section] = []

    def add(key: str, title: str, markup: Optional[str]) -> None:
        if markup is not None:
            sections.append(Section(key, title, markup))

    jmts = jmt_components(nlp) if nlp is not None else []
    if len(doc) and doc.has_annotation("DEP"):
        add("parse", "Dependency parse", parse_section(doc))
    if len(doc) and doc.has_annotation("ENT_IOB"):
        add("ents", "Entities (doc.ents)", entities_section(doc))
    for key in span_group_keys(doc):
        add(f"spans:{key}", f"Span group doc.spans[{key!r}]", span_group_section(doc, key))
    if has_relations(doc):
        relations = relations_section(doc, style, spans_key, show_scores, per_sentence)
        add("relations", "Relations (doc._.relations)", relations)
    if cluster_keys(doc):
        add("coref", "Coreference clusters", coref_section(doc))
    pairs = any(task.pair_level for pipe in jmts for task in pipe.tasks)
    add("pair", "Sentence-pair scores (doc._.relatedness, doc.cats)", pair_section(doc, pairs))
    add("tokens", "Tokens", tokens_section(doc))
    for pipe in jmts:
        if nlp is not None and len(doc) and communicates(pipe):
            weights = weights_section(nlp, pipe, doc.text)
            add(f"weights:{pipe.name}", f"Task-to-task weights ({pipe.name})", weights)
    return sections


def render_docs(
    docs: Union[Doc, Iterable[Doc]],
    nlp: Optional[Language] = None,
    style: str = "dep",
    spans_key: str = "ents",
    show_scores: bool = True,
    per_sentence: bool = True,
    lang: str = "en",
) -> str:
    """An HTML page with every layer of each Doc (`doc_sections`, the sections that `serve`
    shows): its parse, entities, span groups, relations, coreference clusters, pair scores
    and tokens, each section open but the token table (click a heading to fold it).

    docs (Union[Doc, Iterable[Doc]]): The Docs.
    nlp (Optional[Language]): The pipeline that annotated them, if any (see `doc_sections`).
    style (str): The relations' figures, "dep" or "span" (see `render_relations`).
    spans_key (str): The span group with the entities of the relation figures.
    show_scores (bool): Write each relation's score.
    per_sentence (bool): One relation figure per sentence where possible.
    lang (str): The language code of the page.
    RETURNS (str): The page.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    articles = []
    for n, doc in enumerate([docs] if isinstance(docs, Doc) else docs, start=1):
        if not isinstance(doc, Doc):
            raise TypeError(f"render_docs takes Docs, got {type(doc).__name__}")
        sections = "".join(
            f'<section data-key="{escape(s.key)}"><details{"" if s.key == "tokens" else " open"}>'
            f'<summary>{escape(s.title)}</summary><div class="figures">{s.html}</div>'
            "</details></section>"
            for s in doc_sections(doc, nlp, style, spans_key, show_scores, per_sentence)
        )
        articles.append(f'<article class="spacy-jmt-doc"><h2>Doc {n}</h2>{sections}</article>')
    return TPL_PAGE.format(content=PAGE_STYLE + "".join(articles), lang=lang, dir="ltr")
