"""`spacy-jmt annotate`: a corpus of shards through a pipeline, on one machine or on Dask.

The unit of work is the shard: input shard i (JSONL, plain text or parquet) becomes output
shard `part-0000i.spacy` (a DocBin, lossless) or `part-0000i.jsonl` (the Doc contract of
`spacy_jmt.contract`, one doc per line), i being the shard's place in the sorted inputs.
A shard is written to a temporary file and renamed, then its record `part-0000i.done.json`
(input, counts, skipped lines) is written the same way: an output shard with a record is
complete, and nothing else counts. So
- a rerun skips the shards that have a record (resume) and redoes the rest;
- a worker lost mid-shard leaves at most a temporary file; the engine runs the shard again
  (Dask reschedules a lost worker's tasks), and every input doc is in the output once;
- `manifest.json` (inputs, counts, model, engine, times) is written last, from the records.

Engines: `local` runs spaCy's own `nlp.pipe` over every pending shard in one stream
(`n_process` > 1 uses spaCy's worker processes); `dask` submits one task per shard to a
`distributed` cluster, a `LocalCluster` of `workers` processes or an existing scheduler.
Each worker process loads the pipeline once, from its path (the `Language` object never
travels through the engine), and pins its torch threads. `dask` and `pyarrow` (parquet)
are imported only where they are used: `pip install spacy-jmt[dask]`.
"""

import glob
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from .contract import doc_to_dict

INPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "text", ".parquet": "parquet"}
OUTPUT_SUFFIXES = {"spacy": ".spacy", "jsonl": ".jsonl"}
MANIFEST = "manifest.json"
MAX_REPORTED = 20  # skipped lines listed per shard (all are counted)


class AnnotateError(ValueError):
    """Bad input or options: the message names the shard and line where there is one."""


@dataclass
class Options:
    """What every shard is annotated with (travels to the workers; no Language object).

    model (str): The pipeline: a directory or an installed package name.
    output_format (str): "spacy" (DocBin) or "jsonl" (the Doc contract).
    input_format (str): "auto" (by suffix), "jsonl", "text" or "parquet".
    text_field, id_field (str): The JSONL / parquet fields with the text and the doc's id
        (id_field "" or missing: "<shard name>:<line>"); the other fields are kept as meta.
    text_unit (str): Plain text: "line" (one doc per non-empty line) or "file".
    on_error (str): "fail" (stop at the first bad line) or "skip" (count and report it).
    batch_size (int): nlp.pipe's batch size.
    threads (int): torch threads per worker process.
    """

    model: str
    output_format: str = "spacy"
    input_format: str = "auto"
    text_field: str = "text"
    id_field: str = "id"
    text_unit: str = "line"
    on_error: str = "fail"
    batch_size: int = 64
    threads: int = 1


@dataclass
class Record:
    """A doc read from a shard: its id, text, meta and line (row) in the shard."""

    id: str
    text: str
    meta: Dict[str, Any]
    line: int


@dataclass
class ShardResult:
    """The record of a finished shard (`part-NNNNN.done.json`)."""

    input: str
    output: str
    docs: int = 0
    words: int = 0
    skipped: int = 0
    skipped_lines: List[str] = field(default_factory=list)
    seconds: float = 0.0
    model: Dict[str, str] = field(default_factory=dict)


# -- finding and reading shards ---------------------------------------------------------------


def find_shards(source: str) -> List[Path]:
    """RETURNS (List[Path]): The input shards, sorted: the file itself, the files of a
    folder with a known suffix (.jsonl, .ndjson, .txt, .parquet), or a glob's matches.
    RAISES (AnnotateError): If there is none."""
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        shards = sorted(p for p in path.iterdir() if p.suffix in INPUT_SUFFIXES and p.is_file())
    elif glob.has_magic(source):
        shards = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
    else:
        raise AnnotateError(f"input {source!r} is no file, folder or glob")
    if not shards:
        raise AnnotateError(
            f"input {source!r} holds no shards (files ending in {', '.join(INPUT_SUFFIXES)})"
        )
    return shards


def shard_format(path: Path, input_format: str) -> str:
    if input_format != "auto":
        return input_format
    if path.suffix not in INPUT_SUFFIXES:
        raise AnnotateError(
            f"{path}: unknown suffix {path.suffix!r}; give --input-format "
            f"(one of {', '.join(sorted(set(INPUT_SUFFIXES.values())))})"
        )
    return INPUT_SUFFIXES[path.suffix]


def _from_fields(item: Any, where: str, line: int, opts: Options) -> Record:
    if not isinstance(item, dict):
        raise AnnotateError(f"{where}: expected an object, got {type(item).__name__}")
    if opts.text_field not in item:
        raise AnnotateError(f"{where}: no {opts.text_field!r} field")
    text = item[opts.text_field]
    if not isinstance(text, str):
        raise AnnotateError(f"{where}: {opts.text_field!r} is {type(text).__name__}, not a string")
    doc_id = item.get(opts.id_field) if opts.id_field else None
    meta = {k: v for k, v in item.items() if k not in (opts.text_field, opts.id_field)}
    return Record(str(doc_id) if doc_id is not None else "", text, meta, line)


def _from_json_line(raw: bytes, where: str, line: int, opts: Options) -> Record:
    try:
        item = json.loads(raw.decode("utf8"))
    except UnicodeDecodeError as err:
        raise AnnotateError(f"{where}: not UTF-8 ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise AnnotateError(f"{where}: malformed JSON ({err.msg})") from None
    return _from_fields(item, where, line, opts)


def _raw_records(path: Path, opts: Options) -> Iterator[Tuple[int, Callable[[], Record]]]:
    """Yield (line, make_record) per doc of the shard; make_record raises AnnotateError
    for a bad line, so that the caller decides whether to fail or to skip it."""
    fmt = shard_format(path, opts.input_format)
    if fmt == "jsonl":
        with path.open("rb") as file:
            for line, raw in enumerate(file, start=1):
                if raw.strip():
                    yield line, partial(_from_json_line, raw, f"{path}, line {line}", line, opts)
    elif fmt == "text":
        try:
            content = path.read_text(encoding="utf8")
        except UnicodeDecodeError as err:
            raise AnnotateError(f"{path}: not UTF-8 text ({err.reason})") from None
        if opts.text_unit == "file":
            yield 1, partial(Record, path.stem, content, {}, 1)
            return
        for line, text in enumerate(content.splitlines(), start=1):
            if text.strip():
                yield line, partial(Record, "", text, {}, line)
    elif fmt == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise AnnotateError(
                "parquet input needs pyarrow: pip install spacy-jmt[dask]"
            ) from None
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as err:  # pyarrow raises several types for damaged files
            raise AnnotateError(f"{path}: unreadable parquet ({err})") from None
        for row_number, row in enumerate(rows, start=1):
            where = f"{path}, row {row_number}"
            yield row_number, partial(_from_fields, row, where, row_number, opts)
    else:
        raise AnnotateError(f"unknown input format {fmt!r} (jsonl, text, parquet)")


def read_shard(path: Path, opts: Options, max_length: int) -> Tuple[List[Record], List[str]]:
    """RETURNS: the shard's docs, and the skipped lines as "<shard>, line N: why" (with
    on_error "skip"; with "fail" the first bad line raises).
    RAISES (AnnotateError): For a bad line (on_error "fail") or an unreadable shard."""
    records: List[Record] = []
    skipped: List[str] = []
    for line, make in _raw_records(path, opts):
        try:
            record = make()
            if len(record.text) > max_length:
                raise AnnotateError(
                    f"{path}, line {line}: text of {len(record.text)} characters is over the "
                    f"pipeline's max_length ({max_length})"
                )
        except AnnotateError as err:
            if opts.on_error == "fail":
                raise
            skipped.append(str(err))
            continue
        record.id = record.id or f"{path.stem}:{line}"
        records.append(record)
    return records, skipped


# -- writing shards ---------------------------------------------------------------------------


def output_name(index: int, output_format: str) -> str:
    return f"part-{index:05d}{OUTPUT_SUFFIXES[output_format]}"


def record_path(output: Path) -> Path:
    return output.with_name(output.name.split(".")[0] + ".done.json")


def _atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file in the same folder, then rename: `path` is either
    complete or absent, whatever happens to the process."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_docs(path: Path, docs: List[Doc], records: List[Record], output_format: str) -> None:
    """Write the annotated docs of one shard, with each doc's id and meta."""
    if output_format == "spacy":
        for doc, record in zip(docs, records):
            doc.user_data["id"] = record.id
            doc.user_data["meta"] = record.meta
        data = DocBin(docs=docs, store_user_data=True).to_bytes()
        _atomic_write(path, lambda tmp: tmp.write_bytes(data))
    else:
        lines = [
            json.dumps({"id": r.id, "meta": r.meta, **doc_to_dict(doc)}, ensure_ascii=False)
            for doc, r in zip(docs, records)
        ]
        _atomic_write(path, lambda tmp: tmp.write_text("".join(f"{x}\n" for x in lines), "utf8"))


def _finish(result: ShardResult, docs: List[Doc], records: List[Record], fmt: str) -> ShardResult:
    output = Path(result.output)
    write_docs(output, docs, records, fmt)
    result.docs, result.words = len(docs), sum(len(doc) for doc in docs)
    text = json.dumps(asdict(result), indent=1)
    _atomic_write(record_path(output), lambda tmp: tmp.write_text(text, "utf8"))
    return result


# -- one shard, on a worker -------------------------------------------------------------------

_PIPELINES: Dict[Tuple[str, int], Language] = {}  # per worker process: loaded once


def load_pipeline(model: str, threads: int) -> Language:
    """RETURNS (Language): The pipeline, loaded once per process, with torch pinned to
    `threads` threads (loading on a worker never goes through pickling)."""
    key = (model, threads)
    if key not in _PIPELINES:
        import torch

        torch.set_num_threads(threads)
        _PIPELINES[key] = spacy.load(model)
    return _PIPELINES[key]


def model_info(nlp: Language) -> Dict[str, str]:
    return {
        "name": f"{nlp.meta.get('lang', '')}_{nlp.meta.get('name', '')}",
        "version": str(nlp.meta.get("version", "")),
        "spacy_version": str(nlp.meta.get("spacy_version", "")),
    }


def _read(
    nlp: Language, opts: Options, shard: str, output: str
) -> Tuple[ShardResult, List[Record]]:
    """RETURNS: the shard's record so far (skipped lines, model) and its docs to annotate."""
    records, skipped = read_shard(Path(shard), opts, nlp.max_length)
    result = ShardResult(shard, output, skipped=len(skipped), model=model_info(nlp),
                         skipped_lines=skipped[:MAX_REPORTED])  # fmt: skip
    return result, records


def annotate_shard(opts: Options, shard: str, output: str) -> ShardResult:
    """Annotate one input shard into one output shard and its record (the Dask task).
    RETURNS (ShardResult): The record. RAISES (AnnotateError): For bad input (on_error
    "fail")."""
    start = time.perf_counter()
    nlp = load_pipeline(opts.model, opts.threads)
    result, records = _read(nlp, opts, shard, output)
    docs = list(nlp.pipe((r.text for r in records), batch_size=opts.batch_size))
    result.seconds = time.perf_counter() - start
    return _finish(result, docs, records, opts.output_format)


# -- the driver -------------------------------------------------------------------------------


def plan(
    shards: List[Path], out_dir: Path, opts: Options, overwrite: bool
) -> List[Tuple[str, str]]:
    """RETURNS: the (input, output) pairs still to do; done shards (with a record for the
    same input) are skipped unless `overwrite`.
    RAISES (AnnotateError): If a record belongs to another input (the inputs changed)."""
    todo = []
    for i, shard in enumerate(shards):
        output = out_dir / output_name(i, opts.output_format)
        record = record_path(output)
        if record.exists() and output.exists() and not overwrite:
            try:
                done = json.loads(record.read_text("utf8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                done = {}  # a damaged record: redo the shard
            if done.get("input") == str(shard):
                continue
            if done:
                raise AnnotateError(
                    f"{output} was made from {done.get('input')!r}, not {str(shard)!r}: the "
                    "inputs changed since the last run; use --overwrite or a new output folder"
                )
        record.unlink(missing_ok=True)
        todo.append((str(shard), str(output)))
    return todo


def _run_local(
    todo: List[Tuple[str, str]], opts: Options, n_process: int, on_shard: Callable
) -> None:
    """All pending shards through one `nlp.pipe` stream; a shard is written as soon as its
    last doc comes back (spaCy keeps the order)."""
    nlp = load_pipeline(opts.model, opts.threads)
    pending: Dict[int, Tuple[ShardResult, List[Record], float]] = {}

    def stream() -> Iterator[Tuple[str, int]]:
        for i, (shard, output) in enumerate(todo):
            result, records = _read(nlp, opts, shard, output)
            pending[i] = (result, records, time.perf_counter())
            for record in records:
                yield record.text, i

    docs: List[Doc] = []
    done = 0

    def flush(until: int) -> None:  # shards [done, until) have all their docs
        nonlocal done, docs
        while done < until:
            result, records, start = pending.pop(done)
            shard_docs, docs = docs[: len(records)], docs[len(records) :]
            result.seconds = time.perf_counter() - start
            on_shard(_finish(result, shard_docs, records, opts.output_format))
            done += 1

    for doc, i in nlp.pipe(stream(), as_tuples=True, batch_size=opts.batch_size,
                           n_process=n_process):  # fmt: skip
        flush(i)  # a doc of shard i: the shards before it are complete
        docs.append(doc)
    flush(len(todo))


def local_cluster(workers: int) -> Any:
    """RETURNS (distributed.LocalCluster): `workers` processes of one thread each, with two
    Dask defaults changed, both measured on 2 cores. The statistical profiler samples every
    worker thread's stack every 10 ms: on a pipeline's Python-heavy inference that cost
    about a tenth of the throughput. And the nanny spawns workers with
    MALLOC_TRIM_THRESHOLD_=65536, which also turns off glibc's dynamic mmap threshold
    (mallopt(3)): the tensors that torch frees at every batch go back to the OS and are
    faulted in again at the next (README, "Large corpora": Dask went from 75% to 106% of
    `--n-process 2`'s words/s). The settings hold for workers the nanny restarts, too."""
    import logging

    import dask
    from distributed import LocalCluster

    settings = {
        "distributed.worker.profile.enabled": False,
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,  # None: unset
    }
    with dask.config.set(settings):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=logging.ERROR,
        )  # fmt: skip


def _run_dask(
    todo: List[Tuple[str, str]],
    opts: Options,
    workers: int,
    scheduler: Optional[str],
    on_shard: Callable,
) -> None:
    """One task per shard on a Dask cluster; results in the order they finish."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise AnnotateError("--engine dask needs dask: pip install spacy-jmt[dask]") from None
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = local_cluster(workers)
        client = Client(cluster)
    try:
        run = uuid.uuid4().hex[:8]
        futures = [
            client.submit(
                annotate_shard,
                opts,
                shard,
                output,
                key=f"annotate-{run}-{i}",
                pure=False,
                retries=0,
            )
            for i, (shard, output) in enumerate(todo)
        ]
        try:
            for future in as_completed(futures):
                on_shard(future.result())  # an AnnotateError of a worker is raised here
        finally:
            client.cancel(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def annotate(
    source: str,
    out_dir: Path,
    opts: Options,
    engine: str = "local",
    n_process: int = 1,
    workers: int = 2,
    scheduler: Optional[str] = None,
    overwrite: bool = False,
    progress: bool = False,
    on_shard: Optional[Callable[[ShardResult], None]] = None,
) -> Dict[str, Any]:
    """Annotate every pending shard of `source` into `out_dir` and write the manifest.

    source (str): A file, a folder or a glob of input shards.
    out_dir (Path): The output folder (created).
    opts (Options): How to read, annotate and write.
    engine (str): "local" or "dask"; n_process for local, workers / scheduler for dask.
    overwrite (bool): Redo the shards that are already done.
    progress (bool): Show a progress bar (shards done, docs/s).
    on_shard (Callable): Called with each finished shard's record, on the driver.
    RETURNS (Dict[str, Any]): The manifest.
    RAISES (AnnotateError): For bad options or bad input.
    """
    if opts.output_format not in OUTPUT_SUFFIXES:
        raise AnnotateError(f"unknown output format {opts.output_format!r} (spacy, jsonl)")
    if opts.on_error not in ("fail", "skip") or opts.text_unit not in ("line", "file"):
        raise AnnotateError("on_error is fail or skip; text_unit is line or file")
    if engine not in ("local", "dask"):
        raise AnnotateError(f"unknown engine {engine!r} (local, dask)")
    shards = [shard.resolve() for shard in find_shards(source)]  # workers may sit elsewhere
    out_dir = out_dir.resolve()
    for shard in shards:
        shard_format(shard, opts.input_format)  # an unknown suffix fails before any work
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.tmp"):  # left by a process that died mid-write
        stale.unlink()
    started = time.time()
    todo = plan(shards, out_dir, opts, overwrite)
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="shard", disable=not progress, desc="annotate")
    n_docs = 0

    def finished(result: ShardResult) -> None:
        nonlocal n_docs
        n_docs += result.docs
        bar.update(1)
        bar.set_postfix(docs_per_s=f"{n_docs / max(time.time() - started, 1e-9):.0f}")
        if on_shard is not None:
            on_shard(result)

    try:
        if todo and engine == "local":
            _run_local(todo, opts, n_process, finished)
        elif todo:
            _run_dask(todo, opts, workers, scheduler, finished)
    finally:
        bar.close()
    return write_manifest(shards, out_dir, opts, engine, started)


def write_manifest(
    shards: List[Path], out_dir: Path, opts: Options, engine: str, started: float
) -> Dict[str, Any]:
    """Gather the shard records into `manifest.json` (written last, atomically)."""
    results = []
    for i in range(len(shards)):
        record = record_path(out_dir / output_name(i, opts.output_format))
        results.append(json.loads(record.read_text("utf8")))
    manifest = {
        "model": next((r["model"] for r in results if r.get("model")), {}) | {"path": opts.model},
        "engine": engine,
        "output_format": opts.output_format,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 3),
        "docs": sum(r["docs"] for r in results),
        "words": sum(r["words"] for r in results),
        "skipped": sum(r["skipped"] for r in results),
        "shards": [
            {k: r[k] for k in ("input", "docs", "words", "skipped", "skipped_lines")}
            | {"output": Path(r["output"]).name}
            for r in results
        ],
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False)
    _atomic_write(out_dir / MANIFEST, lambda tmp: tmp.write_text(text, "utf8"))
    return manifest


def read_output(out_dir: Path, vocab: Any) -> Iterator[Doc]:
    """Yield the annotated docs of an output folder in shard order (DocBin or JSONL
    shards), each with `doc.user_data["id"]` and `["meta"]`."""
    from .contract import doc_from_dict

    manifest = json.loads((out_dir / MANIFEST).read_text("utf8"))
    for shard in manifest["shards"]:
        path = out_dir / shard["output"]
        if path.suffix == ".spacy":
            yield from DocBin().from_disk(path).get_docs(vocab)
        else:
            for line in path.read_text("utf8").splitlines():
                data = json.loads(line)
                doc = doc_from_dict(vocab, data)
                doc.user_data["id"], doc.user_data["meta"] = data["id"], data["meta"]
                yield doc
