"""The architecture stays as ARCHITECTURE.md describes it: the imports of spacy_jmt form a
tree, the network layers know no task kind, and task modules import torch lazily."""

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import spacy
from spacy.tokens import Doc, Token
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Adam
from tiny_data import TINY_MODEL

import spacy_jmt
from spacy_jmt.tasks import KINDS, Task, register_kind
from spacy_jmt.tasks.tagging import token_cross_entropy, token_targets

PACKAGE = Path(spacy_jmt.__file__).parent


def _module_imports() -> Dict[str, Set[str]]:
    """Per module of the package, the modules of the package it imports (anywhere in it)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("spacy_jmt",) + path.relative_to(PACKAGE).with_suffix("").parts
        modules[".".join(p for p in parts if p != "__init__")] = path
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = [node.module] if node.module else []
                target = ".".join(base + module) if node.level else node.module or ""
                found = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {f for f in found if f in modules and f != name}
    return graph


def _find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    state: Dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, stack: List[str]) -> List[str]:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target, stack + [target])
                if cycle:
                    return cycle
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return []


def test_the_imports_form_a_tree():
    assert _find_cycle(_module_imports()) == []


def test_the_cycle_finder_finds_cycles():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_network_layers_name_no_task_kind():
    names = re.compile(r"\b(" + "|".join(sorted(KINDS)) + r")\b", re.IGNORECASE)
    for path in (PACKAGE / "layers").glob("*.py"):
        found = names.findall(path.read_text(encoding="utf8"))
        assert not found, f"{path.name} names task kinds {sorted(set(found))}"


def test_task_modules_import_without_torch():
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *args, **kwargs):\n"
        "    if name == 'torch' or name.startswith('torch.'):\n"
        "        raise ImportError('torch imported at module import')\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = guard\n"
        "sys.modules.pop('torch', None)\n"
        "import importlib.util, pathlib\n"
        "import spacy_jmt.tasks.base\n"
        "for path in sorted(pathlib.Path(spacy_jmt.tasks.base.__file__).parent.glob('*.py')):\n"
        "    importlib.import_module('spacy_jmt.tasks.' + path.stem if path.stem != '__init__'"
        " else 'spacy_jmt.tasks')\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


class CapitalizedTask(Task):
    """A kind written outside the package: does a token start with a capital letter? It
    writes `token._.capitalized` (True / False)."""

    kind = "test_capitalized"
    embeds_labels = True
    communicates = True
    fixed_labels = ["no", "yes"]

    def __init__(self, name, cfg, labels=None):
        super().__init__(name, cfg, labels)
        if not Token.has_extension("capitalized"):
            Token.set_extension("capitalized", default=None)

    def gold_labels(self, example):
        return self.fixed_labels

    def build_head(self, width_in, sizes):
        from spacy_jmt.heads import TaggerHead

        return TaggerHead(width_in, 2, 0, sizes["width"], sizes["label_embedding_width"], 0.0)

    def loss(self, examples, outputs):
        gold = [["yes" if t.text[:1].isupper() else "no" for t in eg.predicted] for eg in examples]
        logits = outputs[self.name]["logits"]
        return token_cross_entropy(logits, token_targets(gold, self.labels, logits.shape[1]))

    def set_annotations(self, docs, outputs, overwrite):
        best = outputs[self.name]["logits"].argmax(-1).numpy()
        for b, doc in enumerate(docs):
            for token, j in zip(doc, best[b]):
                token._.capitalized = self.labels[j] == "yes"

    def score(self, examples):
        pairs = [(t._.capitalized, t.text[:1].isupper()) for eg in examples for t in eg.predicted]
        return {f"{self.name}_acc": sum(p == g for p, g in pairs) / max(len(pairs), 1)}


def test_a_kind_from_outside_the_package_is_one_class():
    register_kind(CapitalizedTask)
    assert register_kind(CapitalizedTask) is CapitalizedTask  # idempotent
    fix_random_seed(0)
    nlp = spacy.blank("en")
    tasks = {
        "tag": {"kind": "tagging", "attr": "TAG", "level": 1},
        "cap": {"kind": "test_capitalized", "level": 2},
    }
    nlp.add_pipe(
        "jmt", config={"tasks": tasks, "model": {**TINY_MODEL, "communication": "complete"}}
    )
    words = "Anna met Bob in Rome and they ate pasta".split()
    tags = ["NNP", "VBD", "NNP", "IN", "NNP", "CC", "PRP", "VBD", "NN"]
    examples = [Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, tags=tags))]
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    for _ in range(40):
        losses = nlp.update(examples, sgd=optimizer)
    assert losses["jmt:cap"] < 0.05
    doc = nlp("Anna met Bob in Rome and they ate pasta")
    assert [t._.capitalized for t in doc] == [w[0].isupper() for w in words]
    assert nlp.evaluate(examples)["cap_acc"] == 1.0
    assert "cap" in nlp.get_pipe("jmt").task_weights([doc])["tasks"]
