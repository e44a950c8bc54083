"""Accuracy, speed and memory of spaCy pipelines on the same texts (`spacy-jmt benchmark`).

Every pipeline runs in its own worker process (`python -m spacy_jmt.benchmark --worker JOB
OUT`), so that its load time and peak memory are its own. A worker loads the pipeline, times
`nlp.pipe` over the raw texts of all corpora, reads its peak resident memory, and only then
reads the gold docs and scores the pipeline on them with gold tokenization. All pipelines are
scored by the same function (`score_examples`), with spaCy's `Scorer`.

A pipeline is given as anything `spacy.load` accepts, optionally followed by `?enable=a,b`,
`?disable=a,b` or `?exclude=a,b` (component names), e.g. "en_core_web_sm?disable=ner".
"""

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

import spacy
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.util import dot_to_dict
from spacy.vocab import Vocab
from tqdm import tqdm

from .keys import CHUNKS_KEY, ENTS_KEY, NOUN_CHUNK_LABEL
from .readers import set_tokenizer_norms
from .tasks.parsing import dep_label_getter
from .tasks.tagging import morph_key

_NP_KEY = "_benchmark_noun_chunks"  # scratch span groups for scoring noun chunks, entities
_ENTS_KEY = "_benchmark_ents"
WARMUP_TEXTS = 16  # texts run through the pipeline before timing
# LAS is only reported where the pipeline's dependency labels cover this share of gold arcs.
MIN_DEP_LABEL_COVERAGE = 0.9
# The components of spaCy's trained pipelines that tagging and parsing need.
TAGGER_PARSER = ("tok2vec", "tagger", "parser", "attribute_ruler")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# (key, label) of the accuracy metrics, in table order; a corpus gets the rows its gold has.
METRICS: List[Tuple[str, str]] = [
    ("pos_acc", "UPOS acc"),
    ("tag_acc", "XPOS acc"),
    ("morph_acc", "UFeats acc (exact)"),
    ("lemma_acc", "lemma acc"),
    ("dep_uas", "UAS"),
    ("dep_las", "LAS"),
    ("sents_f", "sentence F1"),
    ("chunks_f", "chunk F1"),
    ("noun_chunks_f", "noun-chunk F1"),
    ("ents_f", "entity F1"),
    ("rel_micro_f", "relation F1 (strict, micro)"),
    ("rel_macro_f", "relation F1 (strict, macro)"),
    ("rel_boundaries_micro_f", "relation F1 (boundaries, micro)"),
    ("pairs_found", "sentence pairs found"),
    ("relatedness_pearson", "relatedness Pearson"),
    ("relatedness_mse", "relatedness MSE (lower is better)"),
    ("entailment_acc", "entailment acc"),
]
# Metrics printed as they are, not as percentages.
RAW_METRICS = ("relatedness_pearson", "relatedness_mse")

Log = Callable[[str], None]


# -- driver ------------------------------------------------------------------------------------


def run_benchmark(
    pipelines: Dict[str, str],
    corpora: Dict[str, Path],
    n_texts: int = 0,
    batch_size: int = 64,
    repeats: int = 1,
    *,
    n_threads: int = 1,
    peers: Optional[List[str]] = None,
    long_doc: int = 0,
    log: Optional[Log] = None,
) -> Dict[str, Any]:
    """Measure speed, memory and accuracy of each pipeline, each in its own process.

    pipelines (Dict[str, str]): Display name -> what `spacy.load` accepts (a directory or a
        package name), optionally with "?enable=...", "?disable=..." or "?exclude=...".
    corpora (Dict[str, Path]): Corpus name -> DocBin (.spacy) file with gold annotation.
    n_texts (int): Use only the first N docs of each corpus (0: all).
    batch_size (int): The batch size of `nlp.pipe`.
    repeats (int): Timed passes over the texts; the fastest counts.
    n_threads (int): CPU threads of torch (and OpenMP/BLAS) in the workers. 1 by default,
        like spaCy's CPU pipelines; 0: the libraries' defaults (all cores). On a busy machine
        more threads than free cores can make torch many times slower.
    peers (Optional[List[str]]): The rows to compare words/s with (`ratio_to_peer`). None:
        the pipelines without a `jmt` component.
    long_doc (int): Also annotate one doc of at least this many tokens (the texts joined,
        repeated as needed) in a fresh process per pipeline, and record its time and peak
        memory under "long_doc" (0: skip).
    log (Optional[Callable[[str], None]]): Called with a line per stage (workers write
        theirs to stderr). None: quiet.
    RETURNS (Dict[str, Any]): "settings" and, per display name under "pipelines": pipeline,
        components (those that ran), disabled, has_jmt, load_s, words_per_s, n_words
        (tokens per pass), n_texts, speed_s, rss_after_load_mb, peak_rss_mb, torch_threads,
        ratio_to_peer ({peer: words/s ratio}), accuracy ({corpus: {n_docs, n_words, metric:
        value in [0, 1] or None}}), notes ({corpus or "speed": {metric: why}}) and, with
        long_doc, "long_doc" ({n_words, seconds, rss_after_load_mb, peak_rss_mb, n_sents}).
    """
    if not pipelines:
        raise ValueError("no pipelines to benchmark")
    if not corpora:
        raise ValueError("no corpora given")
    if batch_size < 1 or repeats < 1 or min(n_texts, n_threads, long_doc) < 0:
        raise ValueError(
            "batch_size and repeats must be >= 1, n_texts, n_threads and long_doc >= 0"
        )
    say: Log = log or (lambda line: None)
    paths = {name: Path(path).resolve() for name, path in corpora.items()}
    for name, path in paths.items():
        if not path.is_file():
            raise ValueError(f"corpus '{name}': file not found: {path}")
    texts = read_texts(paths.values(), n_texts)
    if not texts:
        raise ValueError("the corpora contain no texts")
    n_chars = sum(len(text) for text in texts)
    say(f"{len(texts)} texts ({n_chars} characters) from {len(paths)} corpora")
    results: Dict[str, Dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="spacy-jmt-benchmark-") as tmp:
        texts_path = Path(tmp) / "texts.json"
        texts_path.write_text(json.dumps(texts), encoding="utf8")
        for i, (name, spec) in enumerate(pipelines.items()):
            say(f"[{i + 1}/{len(pipelines)}] {name}: {spec}")
            job = {
                "name": name,
                "pipeline": _resolve_spec(spec),
                "texts": str(texts_path),
                "corpora": {key: str(path) for key, path in paths.items()},
                "n_texts": n_texts,
                "batch_size": batch_size,
                "repeats": repeats,
                "n_threads": n_threads,
                "verbose": log is not None,
            }
            results[name] = _run_worker(job, Path(tmp) / f"job{i}", verbose=log is not None)
            if long_doc:
                say(f"[{i + 1}/{len(pipelines)}] {name}: one doc of {long_doc:,} tokens")
                long_job = {**job, "long_doc": long_doc}
                stem = Path(tmp) / f"long{i}"
                results[name]["long_doc"] = _run_worker(long_job, stem, log is not None)
    peer_names = [n for n in results if not results[n]["has_jmt"]] if peers is None else peers
    for name, row in results.items():
        row["ratio_to_peer"] = {
            peer: row["words_per_s"] / results[peer]["words_per_s"]
            for peer in peer_names
            if peer != name and peer in results and results[peer]["words_per_s"] > 0
        }
    settings = {
        "corpora": {key: str(path) for key, path in paths.items()},
        "n_texts": n_texts,
        "speed_texts": len(texts),
        "speed_chars": n_chars,
        "batch_size": batch_size,
        "repeats": repeats,
        "n_threads": n_threads,
        "long_doc": long_doc,
        "peers": peer_names,
        "spacy_version": spacy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    return {"settings": settings, "pipelines": results}


def peer_pipelines(peer: str) -> Dict[str, str]:
    """The two rows of a peer pipeline: as users run it, and with only the components that
    tagging and parsing need (tok2vec, tagger, parser, attribute_ruler): the fair comparison.

    peer (str): A spaCy pipeline (package name or directory); "" for none.
    RETURNS (Dict[str, str]): Display name -> pipeline spec, for `run_benchmark`.
    """
    if not peer:
        return {}
    return {peer: peer, f"{peer} (tagger+parser only)": f"{peer}?enable={','.join(TAGGER_PARSER)}"}


def read_texts(paths: Iterable[Path], n_texts: int = 0) -> List[str]:
    """RETURNS (List[str]): The texts of the docs of the DocBin files, in order (the first
    n_texts of each file; 0: all)."""
    vocab = Vocab()
    texts: List[str] = []
    for path in paths:
        docs = DocBin().from_disk(path).get_docs(vocab)
        texts.extend(doc.text for i, doc in enumerate(docs) if not n_texts or i < n_texts)
    return texts


def _resolve_spec(spec: str) -> str:
    """An existing relative directory becomes absolute (workers may run elsewhere)."""
    name, _, options = spec.partition("?")
    if Path(name).exists():
        name = str(Path(name).resolve())
    return f"{name}?{options}" if options else name


def _run_worker(job: Dict[str, Any], stem: Path, verbose: bool) -> Dict[str, Any]:
    job_path, out_path = stem.with_suffix(".job.json"), stem.with_suffix(".out.json")
    job_path.write_text(json.dumps(job), encoding="utf8")
    cmd = [sys.executable, "-m", "spacy_jmt.benchmark", "--worker", str(job_path), str(out_path)]
    # verbose: the worker's progress and errors go straight to our stderr
    env = dict(os.environ)
    if job["n_threads"]:  # read when the libraries start, so set before the worker does
        env.update({var: str(job["n_threads"]) for var in THREAD_VARIABLES})
    stderr = None if verbose else subprocess.PIPE
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    if proc.returncode != 0:
        detail = "see above" if verbose else (proc.stderr or b"").decode("utf8", "replace")[-3000:]
        raise RuntimeError(
            f"benchmark worker for '{job['name']}' ({job['pipeline']}) failed with exit "
            f"status {proc.returncode}: {detail}"
        )
    return json.loads(out_path.read_text(encoding="utf8"))


# -- worker ------------------------------------------------------------------------------------


def config_overrides(settings: Dict[str, str]) -> Dict[str, Any]:
    """RETURNS (Dict[str, Any]): `spacy.load`'s nested config for dotted keys and their
    values as text (each read as JSON where it parses, else kept as a string)."""
    values: Dict[str, Any] = {}
    for key, value in settings.items():
        try:
            values[key] = json.loads(value)
        except ValueError:
            values[key] = value
    return dot_to_dict(values)


def load_pipeline(spec: str) -> Language:
    """Load a pipeline spec: a `spacy.load` argument, optionally followed by "?" and options
    joined by "&": "enable=a,b", "disable=..." or "exclude=..." (component names), or a
    config override with a dotted key, e.g. "components.jmt.quantize=false"
    (`config_overrides`)."""
    name, _, options = spec.partition("?")
    kwargs: Dict[str, Any] = {}
    settings: Dict[str, str] = {}
    for option in filter(None, options.split("&")):
        key, _, value = option.partition("=")
        if "." in key:
            settings[key] = value
        elif key in ("enable", "disable", "exclude"):
            kwargs[key] = [v for v in value.split(",") if v]
        else:
            raise ValueError(f"unknown pipeline option '{key}' in '{spec}'")
    return spacy.load(name, config=config_overrides(settings), **kwargs)


def peak_rss_mb() -> Optional[float]:
    """RETURNS (Optional[float]): The peak resident memory of this process in MB (None where
    the `resource` module is missing, as on Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def _worker(job_path: Path, out_path: Path) -> None:
    job = json.loads(Path(job_path).read_text(encoding="utf8"))
    name, batch_size = job["name"], job["batch_size"]

    def say(line: str) -> None:
        if job["verbose"]:
            print(f"  {name}: {line}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    nlp = load_pipeline(job["pipeline"])
    load_s = time.perf_counter() - start
    if job["n_threads"]:  # after loading: a pipeline may set its own (spacy-jmt.torch_threads)
        try:
            import torch

            torch.set_num_threads(job["n_threads"])
        except ImportError:
            pass
    rss_after_load = peak_rss_mb()
    say(f"loaded in {load_s:.2f} s; running {', '.join(nlp.pipe_names)}")
    texts = json.loads(Path(job["texts"]).read_text(encoding="utf8"))
    if job.get("long_doc"):
        result = annotate_long_doc(nlp, texts, job["long_doc"])
        result["rss_after_load_mb"] = rss_after_load
        say(f"{result['n_words']:,} tokens in {result['seconds']:.1f} s")
        Path(out_path).write_text(json.dumps(result, indent=2), encoding="utf8")
        return
    for _ in nlp.pipe(texts[:WARMUP_TEXTS], batch_size=batch_size):
        pass
    best, n_words = math.inf, 0
    for r in range(job["repeats"]):
        start = time.perf_counter()
        n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
        seconds = time.perf_counter() - start
        best = min(best, seconds)
        say(f"speed pass {r + 1}/{job['repeats']}: {n_words / seconds:,.0f} words/s")
    peak = peak_rss_mb()  # before the gold docs are read: the memory of load + annotation
    accuracy: Dict[str, Dict[str, Any]] = {}
    notes: Dict[str, Dict[str, str]] = {}
    for corpus, path in job["corpora"].items():
        say(f"scoring on {corpus}")
        bar = f"  {name}: {corpus}" if job["verbose"] else None
        accuracy[corpus], notes[corpus] = score_corpus(
            nlp, Path(path), job["n_texts"], batch_size, progress=bar
        )
        if accuracy[corpus].get("dep_uas") is not None:  # parsing within the gold sentences
            key = f"{corpus} (gold sentences)"
            say(f"scoring on {key}")
            accuracy[key], notes[key] = score_corpus(
                nlp, Path(path), job["n_texts"], batch_size, gold_sentences=True,
                progress=None if bar is None else f"{bar} (gold sentences)",
            )  # fmt: skip
    torch_module = sys.modules.get("torch")  # thinc imports it where installed
    result = {
        "pipeline": job["pipeline"],
        "components": list(nlp.pipe_names),
        "disabled": list(nlp.disabled),
        "has_jmt": any(nlp.get_pipe_meta(n).factory == "jmt" for n in nlp.component_names),
        "load_s": load_s,
        "words_per_s": n_words / best if best > 0 else 0.0,
        "n_words": n_words,
        "n_texts": len(texts),
        "speed_s": best,
        "rss_after_load_mb": rss_after_load,
        "peak_rss_mb": peak,
        "torch_threads": torch_module.get_num_threads() if torch_module else None,
        "accuracy": accuracy,
        "notes": {key: value for key, value in notes.items() if value},
    }
    Path(out_path).write_text(json.dumps(result, indent=2), encoding="utf8")


def annotate_long_doc(nlp: Language, texts: List[str], n_words: int) -> Dict[str, Any]:
    """Annotate one doc of at least n_words tokens: the texts joined by spaces, repeated
    until long enough (tokenized first, so the time is the pipeline's alone).

    RETURNS (Dict[str, Any]): n_words, seconds, n_sents and peak_rss_mb (of the process).
    """
    lengths = [len(nlp.make_doc(text)) for text in texts]
    if not sum(lengths):
        raise ValueError("the texts have no tokens to build a long doc from")
    parts, total = [], 0
    while total < n_words:
        for text, length in zip(texts, lengths):
            parts.append(text)
            total += length
            if total >= n_words:
                break
    text = " ".join(parts)
    nlp.max_length = max(nlp.max_length, len(text))  # spaCy's guard: 1M characters
    doc = nlp.make_doc(text)
    start = time.perf_counter()
    doc = nlp(doc)
    seconds = time.perf_counter() - start
    n_sents = sum(1 for _ in doc.sents) if doc.has_annotation("SENT_START") else None
    return {
        "n_words": len(doc),
        "seconds": seconds,
        "n_sents": n_sents,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- scoring -----------------------------------------------------------------------------------


def score_corpus(
    nlp: Language,
    path: Path,
    n_texts: int = 0,
    batch_size: int = 64,
    gold_sentences: bool = False,
    progress: Optional[str] = None,
) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """Run the pipeline over the gold-tokenized docs of a DocBin file and score it.

    nlp (Language): The pipeline.
    path (Path): DocBin (.spacy) file with gold annotation.
    n_texts (int): Score only the first N docs (0: all).
    batch_size (int): The batch size of `nlp.pipe`.
    gold_sentences (bool): Give the pipeline the gold sentence boundaries too (both jmt and
        spaCy's parser keep preset boundaries), to score parsing apart from segmentation.
    progress (Optional[str]): Show a progress bar (on stderr) with this description.
    RETURNS (Tuple[Dict[str, Any], Dict[str, str]]): The scores (see `score_examples`) and
        the notes.
    """
    gold = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    if n_texts:
        gold = gold[:n_texts]
    inputs = [
        Doc(
            nlp.vocab,
            words=[t.text for t in doc],
            spaces=[bool(t.whitespace_) for t in doc],
            sent_starts=[bool(t.is_sent_start) for t in doc] if gold_sentences else None,
        )
        for doc in gold
    ]
    set_tokenizer_norms(nlp, inputs)
    predicted = nlp.pipe(inputs, batch_size=batch_size)
    if progress is not None:
        predicted = tqdm(predicted, total=len(inputs), desc=progress, unit="doc", leave=False)
    examples = [Example(pred, ref) for pred, ref in zip(predicted, gold)]
    return score_examples(examples, dep_labels=dependency_labels(nlp))


def score_examples(
    examples: List[Example], dep_labels: Optional[Set[str]] = None
) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """Score predicted docs with the same tokens as their references, the same way for every
    pipeline. Only what the references annotate is scored; what the pipeline does not predict
    is None, with a note. Dependency labels are compared lowercased, punctuation included.

    examples (List[Example]): Predicted and gold docs, tokenized alike.
    dep_labels (Optional[Set[str]]): The dependency labels the pipeline can predict
        (lowercase). LAS is None unless they cover MIN_DEP_LABEL_COVERAGE of the gold arcs.
        None: the labels seen in the predictions.
    RETURNS (Tuple[Dict[str, Any], Dict[str, str]]): n_docs, n_words and the metrics of
        METRICS that the gold has (values in [0, 1] or None), and notes per metric.
    """
    refs = [eg.reference for eg in examples]
    preds = [eg.predicted for eg in examples]
    scores: Dict[str, Any] = {"n_docs": len(refs), "n_words": sum(len(d) for d in refs)}
    notes: Dict[str, str] = {}

    def missing(key: str, why: str) -> None:
        scores[key] = None
        notes[key] = why

    for attr, key, getter in (
        ("POS", "pos_acc", getattr),
        ("TAG", "tag_acc", getattr),
        ("MORPH", "morph_acc", morph_key),
        ("LEMMA", "lemma_acc", getattr),
    ):
        if _annotates(refs, attr):
            if _annotates(preds, attr):
                found = Scorer.score_token_attr(examples, attr.lower(), getter=getter)
                scores[key] = found[key]
            else:
                missing(key, f"the pipeline does not predict {attr}")
    dep_examples = [eg for eg in examples if eg.reference.has_annotation("DEP")]
    if dep_examples:
        if _annotates([eg.predicted for eg in dep_examples], "DEP"):
            deps = Scorer.score_deps(dep_examples, "dep", getter=dep_label_getter)
            scores["dep_uas"], scores["dep_las"] = deps["dep_uas"], deps["dep_las"]
            coverage = _label_coverage(dep_examples, dep_labels)
            scores["dep_label_coverage"] = coverage
            if coverage < MIN_DEP_LABEL_COVERAGE:
                unknown = f"{1 - coverage:.0%} of the gold arcs have labels it cannot predict"
                missing("dep_las", f"different dependency label scheme: {unknown}")
                notes["dep_uas"] = "heads follow a different annotation scheme: not comparable"
        else:
            missing("dep_uas", "the pipeline does not predict a parse")
            missing("dep_las", "the pipeline does not predict a parse")
    if _annotates(refs, "SENT_START"):
        if _annotates(preds, "SENT_START"):
            scores["sents_f"] = Scorer.score_spans(
                examples, "sents", has_annotation=lambda doc: doc.has_annotation("SENT_START")
            )["sents_f"]
        else:
            missing("sents_f", "the pipeline does not predict sentences")
    chunk_examples = [eg for eg in examples if CHUNKS_KEY in eg.reference.spans]
    if chunk_examples:
        if any(CHUNKS_KEY in eg.predicted.spans for eg in chunk_examples):
            scores["chunks_f"] = Scorer.score_spans(
                chunk_examples,
                CHUNKS_KEY,
                getter=lambda doc, _: doc.spans.get(CHUNKS_KEY, []),
                has_annotation=lambda doc: CHUNKS_KEY in doc.spans,
            )[f"{CHUNKS_KEY}_f"]
        else:
            missing("chunks_f", f"the pipeline does not write doc.spans['{CHUNKS_KEY}']")
        scores["noun_chunks_f"] = _noun_chunks_f(chunk_examples)
        if scores["noun_chunks_f"] is None:
            notes["noun_chunks_f"] = "the pipeline has no doc.noun_chunks (needs a parse)"
    _score_entities(examples, scores, missing)
    _score_pairs(examples, scores, missing)
    return scores, notes


def _score_entities(
    examples: List[Example], scores: Dict[str, Any], missing: Callable[[str, str], None]
) -> None:
    """Entity F1 (predicted doc.ents against the gold doc.spans['ents'], else doc.ents) and
    relation P/R/F (doc._.relations with the labels the gold uses), for the examples whose
    gold has them."""
    from .relations import get_relations, has_relations
    from .tasks.relation import score_relations

    def gold_ents(doc: Doc) -> List[Span]:
        return list(doc.spans[ENTS_KEY]) if ENTS_KEY in doc.spans else list(doc.ents)

    ent_examples = [
        eg for eg in examples
        if ENTS_KEY in eg.reference.spans or eg.reference.has_annotation("ENT_IOB")
    ]  # fmt: skip
    if ent_examples:
        gold_labels = {span.label_ for eg in ent_examples for span in gold_ents(eg.reference)}
        pred_labels = {span.label_ for eg in ent_examples for span in eg.predicted.ents}
        if not any(eg.predicted.has_annotation("ENT_IOB") for eg in ent_examples):
            missing("ents_f", "the pipeline does not predict doc.ents")
        elif pred_labels and not pred_labels & gold_labels:
            missing("ents_f", "different entity label scheme")
        else:  # spaCy's span scorer, on the predicted doc.ents and the gold entities
            for eg in ent_examples:
                eg.predicted.spans[_ENTS_KEY] = list(eg.predicted.ents)
                eg.reference.spans[_ENTS_KEY] = gold_ents(eg.reference)
            scores["ents_f"] = Scorer.score_spans(
                ent_examples, _ENTS_KEY, getter=lambda doc, key: doc.spans.get(key, [])
            )[f"{_ENTS_KEY}_f"]
    rel_examples = [eg for eg in examples if has_relations(eg.reference)]
    if rel_examples:
        keys = ("rel_micro_f", "rel_macro_f", "rel_boundaries_micro_f")
        if any(has_relations(eg.predicted) for eg in rel_examples):
            # Only relations of the corpus's types count: a pipeline may also extract
            # relations of other schemes (one relation task per corpus).
            labels = {r.label for eg in rel_examples for r in get_relations(eg.reference)}
            rel = score_relations(
                rel_examples, "rel", lambda d: [r for r in get_relations(d) if r.label in labels]
            )
            scores.update({key: rel[key] for key in keys})
        else:
            for key in keys:
                missing(key, "the pipeline does not predict doc._.relations")


def _score_pairs(
    examples: List[Example], scores: Dict[str, Any], missing: Callable[[str, str], None]
) -> None:
    """For sentence-pair corpora: the share of gold pairs that the pipeline scored as pairs
    (found both sentences, from raw text unless the benchmark gives gold sentences), and
    the relatedness and entailment scores over those pairs."""
    from .pair_scores import score_pairs
    from .pairs import entailment_probs, is_pair_data

    pair_examples = [eg for eg in examples if is_pair_data(eg.reference)]
    if not pair_examples:
        return
    found = [
        eg for eg in pair_examples
        if eg.predicted._.relatedness is not None or entailment_probs(eg.predicted)
    ]  # fmt: skip
    if not found:
        for key in ("pairs_found", "relatedness_pearson", "relatedness_mse", "entailment_acc"):
            missing(key, "the pipeline does not score sentence pairs")
        return
    scores["pairs_found"] = len(found) / len(pair_examples)
    pairs = score_pairs(found)
    for key in ("relatedness_pearson", "relatedness_mse", "entailment_acc"):
        scores[key] = pairs[key]


def dependency_labels(nlp: Language) -> Optional[Set[str]]:
    """RETURNS (Optional[Set[str]]): The dependency labels (lowercase) of the components that
    set token.dep (of a `jmt` component: its parsing tasks' labels); None if unknown."""
    labels: Set[str] = set()
    for name, pipe in nlp.pipeline:
        if "token.dep" not in nlp.get_pipe_meta(name).assigns:
            continue
        found: Any = getattr(pipe, "labels", None)
        if isinstance(found, dict):  # jmt: labels per task, of the tasks that write token.dep
            tasks = getattr(pipe, "tasks", [])
            parsing = [t.name for t in tasks if "token.dep" in getattr(t, "assigns", ())]
            found = [label for key in (parsing or found) for label in found.get(key, [])]
        labels.update(str(label).lower() for label in found or ())
    return labels or None


def _annotates(docs: List[Doc], attr: str) -> bool:
    # Empty docs count as annotated and one-token docs as sentence-split: ignore them.
    return any(len(doc) > 1 and doc.has_annotation(attr) for doc in docs)


def _label_coverage(examples: List[Example], labels: Optional[Set[str]]) -> float:
    """RETURNS (float): The share of gold arcs whose label is among `labels` (None: the
    labels of the predictions)."""
    if labels is None:
        labels = {t.dep_.lower() for eg in examples for t in eg.predicted}
    gold = [t.dep_.lower() for eg in examples for t in eg.reference if t.dep_]
    return sum(label in labels for label in gold) / len(gold) if gold else 1.0


def _noun_chunks_f(examples: List[Example]) -> Optional[float]:
    """F1 of the predicted `doc.noun_chunks` against the gold NP chunks (unlabelled spans)."""
    for eg in examples:
        ref, pred = eg.reference, eg.predicted
        ref.spans[_NP_KEY] = [s for s in ref.spans[CHUNKS_KEY] if s.label_ == NOUN_CHUNK_LABEL]
        try:
            pred.spans[_NP_KEY] = list(pred.noun_chunks) if len(pred) else []
        except (ValueError, NotImplementedError):  # E029: no parse; no noun-chunk iterator
            return None
    scores = Scorer.score_spans(
        examples,
        "noun_chunks",
        getter=lambda doc, _: doc.spans.get(_NP_KEY, []),
        has_annotation=lambda doc: _NP_KEY in doc.spans,
        labeled=False,
    )
    return scores["noun_chunks_f"]


# -- report ------------------------------------------------------------------------------------


def markdown_report(results: Dict[str, Any]) -> str:
    """A markdown table of `run_benchmark` results: a row per metric, a column per pipeline,
    then the notes (why a value is missing or not comparable) and the settings.

    results (Dict[str, Any]): What `run_benchmark` returned.
    RETURNS (str): The markdown text.
    """
    rows = results["pipelines"]
    names = list(rows)
    settings = results["settings"]
    footnotes: List[str] = []

    def cell(value: str, note: Optional[str] = None) -> str:
        if note is None:
            return value
        if note not in footnotes:
            footnotes.append(note)
        return f"{value} [{footnotes.index(note) + 1}]"

    def number(value: Optional[float], fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    table = [
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]

    def add(label: str, cells: List[str]) -> None:
        table.append(f"| {label} | " + " | ".join(cells) + " |")

    add("components run", [", ".join(rows[n]["components"]) or "(none)" for n in names])
    add("load time (s)", [number(rows[n]["load_s"], ".2f") for n in names])
    add("words/s", [number(rows[n]["words_per_s"], ",.0f") for n in names])
    for peer in settings.get("peers", []):
        if peer in rows:
            add(
                f"words/s ÷ {peer}",
                [
                    "—" if n == peer else number(rows[n]["ratio_to_peer"].get(peer), ".2f")
                    for n in names
                ],
            )
    add("peak RSS (MB)", [number(rows[n]["peak_rss_mb"], ",.0f") for n in names])
    if settings.get("long_doc"):
        longs = [rows[n].get("long_doc", {}) for n in names]
        size = f"{longs[0].get('n_words', settings['long_doc']):,}-token doc"
        add(f"one {size}: seconds", [number(r.get("seconds"), ".1f") for r in longs])
        add(f"one {size}: peak RSS (MB)", [number(r.get("peak_rss_mb"), ",.0f") for r in longs])
    corpora = list(settings["corpora"])
    # Corpora as scored: each corpus, then its gold-sentence variant where there is one.
    scored = list(dict.fromkeys(c for n in names for c in rows[n]["accuracy"]))
    for corpus in sorted(scored, key=lambda c: (corpora.index(c.split(" (")[0]), c)):
        for key, label in METRICS:
            if not any(key in rows[n]["accuracy"].get(corpus, {}) for n in names):
                continue
            cells = []
            for n in names:
                value = rows[n]["accuracy"].get(corpus, {}).get(key)
                note = rows[n].get("notes", {}).get(corpus, {}).get(key)
                if key in RAW_METRICS:
                    text = number(value, ".3f")
                else:
                    text = number(None if value is None else 100 * value, ".2f")
                cells.append(cell(text, None if note is None else f"{n}, {corpus}: {note}"))
            add(f"{corpus}: {label}" + ("" if key in RAW_METRICS else " (%)"), cells)
    lines = [
        f"Speed: {settings['speed_texts']} texts ({rows[names[0]]['n_words']:,} tokens) from "
        f"{', '.join(corpora)}, `nlp.pipe(batch_size={settings['batch_size']})`, the full "
        f"pipeline as loaded, best of {settings['repeats']} after a warm-up; each pipeline "
        f"in its own process, peak RSS after load + annotation. Accuracy: gold tokenization, "
        f"scored with spaCy's Scorer (dependency labels lowercased, punctuation included).",
    ]
    if settings.get("long_doc"):
        lines.append(
            "Long doc: the texts joined (and repeated) into one doc, tokenized first, then "
            "`nlp(doc)` once, in a fresh process per pipeline; peak RSS of that process."
        )
    lines += ["", *table]
    if footnotes:
        lines += ["", *(f"[{i + 1}] {note}" for i, note in enumerate(footnotes))]
    threads = {rows[n].get("torch_threads") for n in names} - {None}
    env = f"spaCy {settings['spacy_version']}, Python {settings['python']}, "
    env += f"{settings['cpu_count']} CPUs, {settings['platform']}; "
    env += f"torch threads: {', '.join(map(str, sorted(threads))) or 'n/a'}"
    lines += ["", env]
    return "\n".join(lines) + "\n"


def _main(argv: List[str]) -> int:
    if len(argv) != 3 or argv[0] != "--worker":
        print("usage: python -m spacy_jmt.benchmark --worker JOB.json OUT.json", file=sys.stderr)
        print("(the command line is `spacy-jmt benchmark`)", file=sys.stderr)
        return 2
    _worker(Path(argv[1]), Path(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
