"""The engines of `annotate` side by side: words/s of `local`, `local --n-process N` and
`dask --workers N` on the same corpus of shards, and the overhead per shard.

    python -m spacy_jmt.annotate_bench PIPELINE --corpus corpus/ewt-train.spacy \\
        --shards 50 --docs-per-shard 100 --workers 2

The texts are those of a DocBin's docs, written as JSONL shards to a temporary folder. Each
engine annotates the whole corpus into a fresh output folder (wall time includes starting
the processes or the cluster and loading the pipeline in each). The first row is plain
`nlp.pipe` over the same texts in this process, the pipeline already loaded, nothing read
or written: the compute. The overhead per shard of an engine is (wall time x processes -
that compute) / shards: what the engine adds, per shard, to a perfectly parallel run
(process or cluster start, a pipeline load per process, reading and writing, scheduling,
idle processes).

    python -m spacy_jmt.annotate_bench PIPELINE --chaos 20 --shards 20 --docs-per-shard 20

With --chaos N, instead: runs of `dask --workers 2`, each on a fresh LocalCluster, until N
of them had one worker process killed (SIGKILL, by its pid) at a random moment of the run;
after each run, every doc id must be in the output exactly once.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import spacy
from spacy.tokens import DocBin

from .annotate import Options, annotate, load_pipeline, local_cluster


def write_shards(corpus: Path, folder: Path, n_shards: int, per_shard: int) -> List[str]:
    """Write the first n_shards * per_shard texts of a DocBin (cycled if it has fewer) as
    JSONL shards. RETURNS (List[str]): The texts, in order."""
    texts = [doc.text for doc in DocBin().from_disk(corpus).get_docs(spacy.blank("en").vocab)]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise SystemExit(f"{corpus}: no texts")
    written = []
    for i in range(n_shards):
        chunk = [texts[(i * per_shard + j) % len(texts)] for j in range(per_shard)]
        written += chunk
        lines = (json.dumps({"id": f"{i}-{j}", "text": t}) for j, t in enumerate(chunk))
        (folder / f"shard-{i:05d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf8")
    return written


def plain_pipe(pipeline: str, texts: List[str]) -> Dict[str, Any]:
    """nlp.pipe over the texts in this process (one torch thread), after loading."""
    nlp = load_pipeline(pipeline, 1)
    start = time.perf_counter()
    words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=64))
    wall = time.perf_counter() - start
    return {"engine": "plain nlp.pipe (loaded)", "wall_s": wall, "words_per_s": words / wall,
            "docs": len(texts), "overhead_per_shard_s": 0.0}  # fmt: skip


def run_engine(
    name: str, source: str, out: Path, opts: Options, compute: float, processes: int, **kwargs: Any
) -> Dict[str, Any]:
    start = time.perf_counter()
    manifest = annotate(source, out, opts, **kwargs)
    wall = time.perf_counter() - start
    return {
        "engine": name,
        "wall_s": wall,
        "words_per_s": manifest["words"] / wall,
        "docs": manifest["docs"],
        "overhead_per_shard_s": (wall * processes - compute) / len(manifest["shards"]),
    }


def _kill_a_worker(client: Any, killed: List[int], rng: Any) -> None:
    import os
    import signal

    pids = list(client.run(os.getpid).values())
    if pids:
        killed.append(rng.choice(pids))
        os.kill(killed[-1], signal.SIGKILL)


def chaos_runs(opts: Options, folder: Path, out_root: Path, n_runs: int, seed: int = 0) -> None:
    """Annotate the shards on Dask until n_runs runs have had a random worker killed at a
    random time (between 0.5 s and 70% of the shortest run so far, so that the kill lands
    before the run ends; a run that ends first is printed and not counted); print lost and
    repeated docs."""
    import random
    import threading

    from distributed import Client

    from .annotate import read_output

    rng = random.Random(seed)
    expected = sorted(
        json.loads(line)["id"]
        for shard in sorted(folder.iterdir())
        for line in shard.read_text("utf8").splitlines()
    )
    vocab = spacy.blank("en").vocab
    lengths: List[float] = []  # of the runs so far, less the first 0.5 s
    run, kills = 0, 0
    while kills < n_runs and run < 2 * n_runs:
        cluster = local_cluster(2)
        client = Client(cluster)
        client.wait_for_workers(2)
        delay = rng.uniform(0.5, 0.7 * min(lengths, default=5.0))
        killed: List[int] = []
        timer = threading.Timer(delay, _kill_a_worker, args=(client, killed, rng))
        start = time.perf_counter()
        timer.start()
        try:
            out = out_root / f"chaos{run}"
            annotate(str(folder), out, opts, engine="dask", scheduler=cluster.scheduler_address)
        finally:
            timer.cancel()
            client.close()
            cluster.close()
        wall = time.perf_counter() - start
        lengths.append(max(wall - 0.5, 1.0))
        run, kills = run + 1, kills + bool(killed)
        ids = sorted(d.user_data["id"] for d in read_output(out, vocab))
        lost = len(set(expected) - set(ids))
        repeated = len(ids) - len(set(ids))
        print(f"run {run}: killed {'a worker' if killed else 'nothing (done first)'} at "
              f"{delay:.1f} s of {wall:.1f} s; {len(ids)} docs, {lost} lost, {repeated} "
              f"repeated", flush=True)  # fmt: skip


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline")
    parser.add_argument("--corpus", default="corpus/ewt-train.spacy")
    parser.add_argument("--shards", type=int, default=50)
    parser.add_argument("--docs-per-shard", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output-json", default=None)
    parser.add_argument("--chaos", type=int, default=0, help="runs with a worker killed")
    args = parser.parse_args(argv)
    opts = Options(str(Path(args.pipeline).resolve()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        texts = write_shards(Path(args.corpus), folder, args.shards, args.docs_per_shard)
        if args.chaos:
            return chaos_runs(opts, folder, Path(tmp), args.chaos)
        results = [plain_pipe(opts.model, texts)]
        compute = results[0]["wall_s"]
        n = args.workers
        runs = [
            ("local", 1, {}),
            (f"local --n-process {n}", n, {"n_process": n}),
            (f"dask --workers {n}", n, {"engine": "dask", "workers": n}),
        ]
        results += [
            run_engine(name, str(folder), Path(tmp) / f"out{i}", opts, compute, procs, **kwargs)
            for i, (name, procs, kwargs) in enumerate(runs)
        ]
    print(f"{args.shards} shards x {args.docs_per_shard} docs of {args.corpus}, {args.pipeline}")
    print("| engine | wall s | words/s | overhead per shard (s) |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['engine']} | {r['wall_s']:.1f} | {r['words_per_s']:,.0f} | "
            f"{r['overhead_per_shard_s']:.3f} |"
        )
    if args.output_json:
        Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output_json).write_text(json.dumps(results, indent=1), encoding="utf8")


if __name__ == "__main__":
    main()
