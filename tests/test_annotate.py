"""`spacy-jmt annotate`: shards in, shards out, on the local engine and on a real Dask
cluster; resume, a killed worker, bad input."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import spacy
from pipelines import TEXTS, train_showcase

from spacy_jmt.annotate import (
    AnnotateError,
    Options,
    annotate,
    local_cluster,
    read_output,
    read_shard,
)
from spacy_jmt.contract import doc_to_dict

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(train_showcase(tmp_path_factory.mktemp("showcase") / "model"))


def write_jsonl(path: Path, items: List[Dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf8")
    return path


def make_corpus(folder: Path, n_shards: int, per_shard: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_shards):
        items = [
            {"id": f"{i}-{j}", "text": TEXTS[(i + j) % len(TEXTS)], "source": f"s{i}"}
            for j in range(per_shard)
        ]
        write_jsonl(folder / f"shard-{i:03d}.jsonl", items)
    return folder


def contracts(out: Path, vocab) -> List[Dict[str, Any]]:
    return [
        {"id": d.user_data["id"], "meta": d.user_data["meta"], **doc_to_dict(d)}
        for d in read_output(out, vocab)
    ]


def test_local_and_dask_give_identical_annotations(model, tmp_path):
    corpus = make_corpus(tmp_path / "in", n_shards=5, per_shard=7)
    vocab = spacy.load(model).vocab
    local = annotate(str(corpus), tmp_path / "local", Options(model))
    assert local["docs"] == 35 and local["skipped"] == 0 and len(local["shards"]) == 5
    assert local["model"]["name"] == "en_showcase"
    assert [s["output"] for s in local["shards"]] == [f"part-0000{i}.spacy" for i in range(5)]
    expected = contracts(tmp_path / "local", vocab)
    assert [c["id"] for c in expected] == [f"{i}-{j}" for i in range(5) for j in range(7)]
    assert expected[0]["meta"] == {"source": "s0"} and expected[0]["ents"]
    dask = annotate(str(corpus), tmp_path / "dask", Options(model), engine="dask", workers=2)
    assert dask["docs"] == 35 and dask["engine"] == "dask"
    assert contracts(tmp_path / "dask", vocab) == expected
    annotate(str(corpus / "*.jsonl"), tmp_path / "jsonl", Options(model, "jsonl"),
                     n_process=2)  # fmt: skip
    assert contracts(tmp_path / "jsonl", vocab) == expected
    line = json.loads((tmp_path / "jsonl" / "part-00000.jsonl").read_text().splitlines()[0])
    assert line["id"] == "0-0" and line["tokens"][0]["tag"] and "span_attrs" in line


def test_resume_finishes_only_the_missing_shards(model, tmp_path):
    corpus = make_corpus(tmp_path / "in", n_shards=4, per_shard=3)
    out = tmp_path / "out"

    def interrupt(result):
        if result.output.endswith("part-00001.spacy"):
            raise KeyboardInterrupt  # the user stops the run after two shards

    with pytest.raises(KeyboardInterrupt):
        annotate(str(corpus), out, Options(model), on_shard=interrupt)
    assert not (out / "manifest.json").exists()
    done = sorted(p.name for p in out.glob("*.done.json"))
    assert done == ["part-00000.done.json", "part-00001.done.json"]
    first_write = (out / "part-00000.spacy").stat().st_mtime_ns
    redone: List[str] = []
    manifest = annotate(
        str(corpus), out, Options(model), on_shard=lambda r: redone.append(r.output)
    )
    assert [Path(p).name for p in redone] == ["part-00002.spacy", "part-00003.spacy"]
    assert (out / "part-00000.spacy").stat().st_mtime_ns == first_write
    assert manifest["docs"] == 12
    again: List[str] = []
    annotate(
        str(corpus), out, Options(model), overwrite=True, on_shard=lambda r: again.append(r.output)
    )
    assert len(again) == 4
    # the inputs changed under the same output folder: refuse rather than mix two corpora
    (corpus / "shard-000.jsonl").rename(corpus / "shard-999.jsonl")
    with pytest.raises(AnnotateError, match="inputs changed"):
        annotate(str(corpus), out, Options(model))


def test_a_killed_worker_loses_no_doc(model, tmp_path):
    """A real `distributed` worker process is killed by its pid while it holds a shard:
    the scheduler reruns that shard elsewhere, and every doc is in the output once."""
    corpus = make_corpus(tmp_path / "in", n_shards=16, per_shard=40)
    cluster = local_cluster(2)
    client = distributed.Client(cluster)
    trim = lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")  # noqa: E731
    assert list(client.run(trim).values()) == [None, None]  # see local_cluster
    killed: List[int] = []

    def kill_a_busy_worker(result):
        if killed:
            return
        pids = client.run(os.getpid)
        busy = [w for w, tasks in client.processing().items() if tasks and w in pids]
        if busy:
            killed.append(pids[busy[0]])
            os.kill(pids[busy[0]], signal.SIGKILL)

    try:
        address = cluster.scheduler_address
        manifest = annotate(str(corpus), tmp_path / "out", Options(model), engine="dask",
                            scheduler=address, on_shard=kill_a_busy_worker)  # fmt: skip
        client.wait_for_workers(2, timeout=60)
        assert list(client.run(trim).values()) == [None, None]  # the restarted one too
    finally:
        client.close()
        cluster.close()
    assert killed, "no worker was busy when the first shard finished"
    ids = [d.user_data["id"] for d in read_output(tmp_path / "out", spacy.blank("en").vocab)]
    assert sorted(ids) == sorted(f"{i}-{j}" for i in range(16) for j in range(40))
    assert manifest["docs"] == 16 * 40
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_bad_lines_fail_with_shard_and_line_or_are_counted(model, tmp_path):
    corpus = tmp_path / "in"
    corpus.mkdir()
    write_jsonl(corpus / "a.jsonl", [{"text": "The dog sleeps."}, {"text": "Bob lives in Rome."}])
    bad = corpus / "b.jsonl"
    bad.write_bytes(
        b'{"text": "Fine."}\n{"text": "cut\n{"body": "no text"}\n{"text": 3}\n"a string"\n'
        b'{"text": "caf\xe9"}\n'
    )
    with pytest.raises(AnnotateError, match=r"b\.jsonl, line 2: malformed JSON"):
        annotate(str(corpus), tmp_path / "out", Options(model))
    manifest = annotate(str(corpus), tmp_path / "out", Options(model, on_error="skip"))
    assert manifest["docs"] == 3 and manifest["skipped"] == 5
    reasons = manifest["shards"][1]["skipped_lines"]
    assert [r.split(": ", 1)[0].rsplit(", ", 1)[1] for r in reasons] == [
        "line 2", "line 3", "line 4", "line 5", "line 6"
    ]  # fmt: skip
    assert "no 'text' field" in reasons[1] and "int, not a string" in reasons[2]
    assert "expected an object" in reasons[3] and "not UTF-8" in reasons[4]
    ids = [d.user_data["id"] for d in read_output(tmp_path / "out", spacy.blank("en").vocab)]
    assert ids == ["a:1", "a:2", "b:1"]  # no id field: shard:line

    # a text over the pipeline's nlp.max_length (1,000,000 characters by default)
    with pytest.raises(AnnotateError, match=r"a\.jsonl, line 2: text of 18 characters is over"):
        read_shard(corpus / "a.jsonl", Options(model), max_length=16)
    records, skipped = read_shard(corpus / "a.jsonl", Options(model, on_error="skip"), 16)
    assert [r.text for r in records] == ["The dog sleeps."] and len(skipped) == 1


def test_text_and_parquet_inputs(model, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("The dog sleeps.\n\n  \nBob lives in Rome.\n")
    table = pa.table({"text": ["Anne saw Walter.", ""], "doc": ["x", "y"], "year": [1901, 1902]})
    pq.write_table(table, folder / "b.parquet")
    manifest = annotate(str(folder), tmp_path / "out", Options(model, id_field="doc"))
    docs = list(read_output(tmp_path / "out", spacy.blank("en").vocab))
    assert [d.user_data["id"] for d in docs] == ["a:1", "a:4", "x", "y"]
    assert docs[2].user_data["meta"] == {"year": 1901} and len(docs[3]) == 0
    assert manifest["docs"] == 4
    per_file = annotate(str(folder / "a.txt"), tmp_path / "o2", Options(model, text_unit="file"))
    assert per_file["docs"] == 1
    (folder / "c.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(AnnotateError, match=r"c\.parquet: unreadable parquet"):
        annotate(str(folder), tmp_path / "o3", Options(model))


def test_cli_reports_errors_and_writes_the_manifest(model, tmp_path):
    corpus = make_corpus(tmp_path / "in", n_shards=2, per_shard=2)
    run = [sys.executable, "-m", "spacy_jmt", "annotate"]
    ok = subprocess.run(run + [str(corpus), str(tmp_path / "out"), "-m", model, "--no-progress"],
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "4 docs" in ok.stdout and (tmp_path / "out" / "manifest.json").exists()
    missing = subprocess.run(run + [str(tmp_path / "nothing"), str(tmp_path / "o"), "-m", model],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 1 and "is no file, folder or glob" in missing.stderr
    assert "Traceback" not in missing.stderr
