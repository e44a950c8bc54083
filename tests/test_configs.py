"""The shipped training configs build the pipeline they describe."""

from pathlib import Path

import pytest
from spacy.util import load_config, load_model_from_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.cfg"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds_its_pipeline(path):
    config = load_config(path)
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
