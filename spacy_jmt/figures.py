"""The figures of a Doc's layers, drawn with displaCy: one HTML fragment per layer.

The `render` command's page (spacy_jmt.render) and the `serve` page (spacy_jmt.serve) are
both made of these sections; spacy_jmt.render adds the relations and assembles them. Every
text and label is HTML-escaped here or by displaCy, so a fragment can be put in a page as is.
"""

import colorsys
import math
import unicodedata
from html import escape, unescape
from typing import Any, Dict, List, NamedTuple, Optional

from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc

from .keys import CLUSTER_PREFIX
from .pairs import PAIR_KEY
from .relations import HEADS_KEY, TAILS_KEY

# Span groups that store other layers (relations, the sentence pair), each shown in its own
# section instead of as a span group; the coreference clusters (CLUSTER_PREFIX) likewise.
STORAGE_KEYS = (HEADS_KEY, TAILS_KEY, PAIR_KEY)
# displaCy's "dep" layout: the default distance between word centres (compact or not), the
# default left margin, and the font size of its page (TPL_PAGE) and of the `serve` page.
DEP_DISTANCE = {False: 175, True: 150}
DEP_OFFSET_X = 50
FONT_SIZE = 16
WORD_GAP = 24  # pixels kept free between neighbouring words and at the edges
# One colour per coreference cluster: hues around the circle, light enough for black text.
N_COLOURS = 12
CLUSTER_COLOURS = [
    "#" + "".join(f"{round(255 * c):02x}" for c in colorsys.hls_to_rgb(i / N_COLOURS, 0.78, 0.75))
    for i in range(N_COLOURS)
]


class Section(NamedTuple):
    """One layer of a doc, drawn.

    key (str): "parse", "ents", "spans:<key>", "relations", "coref", "pair", "tokens" or
        "weights:<component>".
    title (str): The heading, plain text (not escaped).
    html (str): The HTML fragment.
    """

    key: str
    title: str
    html: str


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


def figure_html(markup: str) -> str:
    """RETURNS (str): `markup` in a <figure> of its own."""
    return f'<figure class="spacy-jmt-figure">{markup}</figure>'


def note_html(what: str) -> str:
    """RETURNS (str): A note in place of a figure ("No entities."), escaped."""
    return f'<p class="none">{escape(what)}</p>'


def _spans_markup(doc: Doc, spans: List[Dict[str, Any]], colours: Dict[str, str]) -> str:
    data = {"text": doc.text, "tokens": [t.text for t in doc], "spans": spans}
    return displacy.render(
        data, style="span", manual=True, page=False, jupyter=False, options={"colors": colours}
    )


def parse_section(doc: Doc) -> str:
    """The dependency tree of each sentence (displaCy "dep", every token a word)."""
    figures = []
    for sent in doc.sents:
        data = displacy.parse_deps(sent, {"collapse_punct": False, "fine_grained": False})
        options = fit_words(data["words"], {"collapse_punct": False})
        figures.append(
            figure_html(
                displacy.render(
                    data, style="dep", manual=True, page=False, jupyter=False, options=options
                )
            )
        )
    return "".join(figures)


def entities_section(doc: Doc) -> str:
    """doc.ents with displaCy "ent"."""
    if not doc.ents:
        return note_html("No entities.")
    ents = [{"start": e.start_char, "end": e.end_char, "label": escape(e.label_)} for e in doc.ents]
    data = {"text": doc.text, "ents": ents, "title": None}
    return displacy.render(data, style="ent", manual=True, page=False, jupyter=False)


def span_group_keys(doc: Doc) -> List[str]:
    """RETURNS (List[str]): The keys of the span groups shown as such (mentions, chunks,
    the span tasks' groups...): all but those that store relations, the sentence pair and
    the coreference clusters."""
    return [k for k in doc.spans if k not in STORAGE_KEYS and not k.startswith(CLUSTER_PREFIX)]


def span_group_section(doc: Doc, key: str) -> str:
    """One span group with displaCy "span" (overlaps shown), with each span's score if the
    group has them (`attrs["scores"]`)."""
    group = doc.spans[key]
    if not len(group):
        return note_html(f"No spans in doc.spans[{key!r}].")
    scores = group.attrs.get("scores")
    if not isinstance(scores, list) or len(scores) != len(group):
        scores = None
    spans = [
        {"start_token": span.start, "end_token": span.end,
         "label": escape(span.label_ + (f" {scores[i]:.2f}" if scores else ""))}
        for i, span in enumerate(group)
    ]  # fmt: skip
    return _spans_markup(doc, spans, {})


def cluster_keys(doc: Doc) -> List[str]:
    """RETURNS (List[str]): The doc's `coref_clusters_N` keys, in numeric order."""
    keys = [
        k for k in doc.spans if k.startswith(CLUSTER_PREFIX) and k[len(CLUSTER_PREFIX) :].isdigit()
    ]
    return sorted(keys, key=lambda k: int(k[len(CLUSTER_PREFIX) :]))


def coref_section(doc: Doc) -> str:
    """The coreference clusters: each mention marked in its cluster's colour (displaCy
    "span"), and each chain listed with its score."""
    colours, spans, chains = {}, [], []
    for n, key in enumerate(cluster_keys(doc), start=1):
        label = f"#{n}"
        colours[label] = CLUSTER_COLOURS[(n - 1) % N_COLOURS]
        group = doc.spans[key]
        spans += [{"start_token": s.start, "end_token": s.end, "label": label} for s in group]
        score = group.attrs.get("score")
        shown = f" ({score:.2f})" if isinstance(score, (int, float)) else ""
        mentions = " → ".join(escape(s.text) for s in group)
        chains.append(
            f'<li data-cluster="{n}"><span class="swatch" style="background: {colours[label]}">'
            f"cluster {label}</span>{shown}: {mentions}</li>"
        )
    return _spans_markup(doc, spans, colours) + f'<ul class="chains">{"".join(chains)}</ul>'


def pair_section(doc: Doc, has_pair_tasks: bool) -> Optional[str]:
    """The sentence-pair scores (doc._.relatedness, doc.cats), or a note when the pipeline has
    pair tasks and the text is not two sentences; None if there is nothing to say."""
    relatedness = doc._.relatedness
    if relatedness is None and not doc.cats:
        if not has_pair_tasks or not len(doc):
            return None
        n = len(list(doc.sents)) if doc.has_annotation("SENT_START") else 1
        return note_html(
            f"Pair scores are given for a text of exactly two sentences; this one has {n}."
        )
    rows = []
    if relatedness is not None:
        rows.append(f"<tr><td>relatedness (1-5)</td><td>{relatedness:.3f}</td></tr>")
    for label, score in sorted(doc.cats.items(), key=lambda item: -item[1]):
        rows.append(f"<tr><td>{escape(label)}</td><td>{score:.3f}</td></tr>")
    return f'<table class="pair"><tr><th>score</th><th>value</th></tr>{"".join(rows)}</table>'


def tokens_section(doc: Doc) -> str:
    """A table of the tokens with the attributes the doc has annotated."""
    if not len(doc):
        return note_html("No tokens.")
    columns: List[tuple] = [("text", lambda t: t.text)]
    for attr, name, get in (
        ("LEMMA", "lemma", lambda t: t.lemma_),
        ("TAG", "tag", lambda t: t.tag_),
        ("POS", "pos", lambda t: t.pos_),
        ("MORPH", "morph", lambda t: str(t.morph)),
    ):
        if doc.has_annotation(attr):
            columns.append((name, get))
    if doc.has_annotation("DEP"):
        columns.append(("head", lambda t: f"{t.head.i} {t.head.text}"))
        columns.append(("dep", lambda t: t.dep_))
    if doc.has_annotation("ENT_IOB"):
        columns.append(
            ("ent", lambda t: f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else t.ent_iob_)
        )
    head = "".join(f"<th>{name}</th>" for name, _ in columns)
    body = "".join(
        f"<tr><td>{t.i}</td>"
        + "".join(f"<td>{escape(get(t))}</td>" for _, get in columns)
        + "</tr>"
        for t in doc
    )
    return f'<table class="tokens"><tr><th>i</th>{head}</tr>{body}</table>'


def jmt_components(nlp: Language) -> List[Any]:
    """RETURNS (List[JMT]): The pipeline's jmt components, in order."""
    from .component import JMT

    return [pipe for _, pipe in nlp.pipeline if isinstance(pipe, JMT)]


def communicates(component: Any) -> bool:
    """RETURNS (bool): Whether a jmt component's tasks talk (it has a communication graph)."""
    from .model import get_torch_network

    return component.is_initialized and get_torch_network(component.model).graph is not None


def weights_section(nlp: Language, component: Any, text: str) -> str:
    """The task-to-task weights of a component's communication graph, averaged over the
    tokens of this text (spacy_jmt.heatmap, as `spacy-jmt weights --corpus`)."""
    from .heatmap import heatmap_svg

    found = component.task_weights([nlp.make_doc(text)])
    names = found["tasks"]
    title = f"{component.name}: task-to-task weights, mean over {found['n_tokens']} tokens"
    return heatmap_svg(found["mean"].tolist(), names, names, title)
