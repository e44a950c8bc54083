"""The shipped training configs build the pipeline they describe."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from pipelines import TEXTS, train_showcase
from spacy.util import load_config, load_model_from_config, registry

from spacy_jmt.converters.coref import get_clusters
from spacy_jmt.growth import check_tasks

ALL_CONFIGS = sorted((Path(__file__).parent.parent / "configs").rglob("*.cfg"))
# Training configs; the others assemble trained pipelines (`spacy assemble`, sourced jmt).
CONFIGS = [p for p in ALL_CONFIGS if "source" not in load_config(p)["components"]["jmt"]]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds_its_pipeline(path):
    config = load_config(path)
    uses_transformers = "spacy-transformers" in path.read_text(encoding="utf8")
    if uses_transformers and importlib.util.find_spec("spacy_transformers") is None:
        pytest.skip("the transformer tier needs the extra: pip install -e .[transformers]")
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    jmt = nlp.get_pipe("jmt")
    declared = config["components"]["jmt"]["tasks"]
    assert {task.name for task in jmt.tasks} == set(declared)
    for task in jmt.tasks:
        assert task.kind == declared[task.name]["kind"]
        assert task.level == declared[task.name]["level"]


def test_syntax_config_declares_the_jmt_hierarchy():
    config = load_config(Path(__file__).parent.parent / "configs" / "syntax.cfg")
    tasks = config["components"]["jmt"]["tasks"]
    levels = {name: task["level"] for name, task in tasks.items()}
    assert levels["sents"] == 0
    assert levels["tag"] == levels["pos"] < levels["chunks"] < levels["dep"]


def test_syntax_config_gives_the_lemma_task_spacys_rule_tables():
    """The lemma task's rule fallback reads the vocab's tables: the syntax config loads them
    at initialize from spacy-lookups-data (the vectors extra)."""
    pytest.importorskip("spacy_lookups_data")
    config = load_config(Path(__file__).parent.parent / "configs" / "syntax.cfg")
    assert config["components"]["jmt"]["tasks"]["lemma"]["rules"] is True
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    lookups = registry.resolve(nlp.config.interpolate()["initialize"])["lookups"]
    assert {"lemma_rules", "lemma_exc", "lemma_index"} <= set(lookups.tables)


def test_grow_config_keeps_the_syntax_pipelines_network():
    """grow_entities.cfg grows the pipeline that syntax.cfg trains: its model and tok2vec
    settings and every old task must be the same, or grow_from cannot copy the trained
    weights (it refuses a config that moves or drops a task)."""
    configs = Path(__file__).parent.parent / "configs"
    syntax = load_config(configs / "syntax.cfg")["components"]["jmt"]
    grow = load_config(configs / "grow_entities.cfg")["components"]["jmt"]
    assert {key: grow["model"].get(key) for key in syntax["model"]} == syntax["model"]
    check_tasks(syntax["tasks"], grow["tasks"])


def test_syntax_coref_config_assembles_two_trained_pipelines(tmp_path):
    """configs/syntax_coref.cfg puts two trained jmt components in one pipeline (spacy
    assemble), each annotating as it did alone."""
    pytest.importorskip("spacy_lookups_data")
    trained = train_showcase(tmp_path / "trained", n_iter=40)
    config = Path(__file__).parent.parent / "configs" / "syntax_coref.cfg"
    out = tmp_path / "assembled"
    paths = [
        "--paths.syntax",
        str(trained),
        "--paths.coref",
        str(trained),
        "--paths.vectors",
        "null",
    ]
    cmd = [sys.executable, "-m", "spacy", "assemble", str(config), str(out), *paths]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    nlp, alone = spacy.load(out), spacy.load(trained)
    assert nlp.pipe_names == ["jmt", "coref"]
    for doc, single in zip(nlp.pipe(TEXTS), alone.pipe(TEXTS)):
        assert [t.tag_ for t in doc] == [t.tag_ for t in single]
        clusters = [get_clusters(d) for d in (doc, single)]
        assert clusters[0] == clusters[1]
    assert any(get_clusters(doc) for doc in nlp.pipe(TEXTS))
