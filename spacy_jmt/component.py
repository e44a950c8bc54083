"""The `jmt` pipeline component: one hierarchical multi-task network, many Doc attributes.

This module imports neither torch nor the task kinds at import time, so that `spacy.blank()`
stays cheap in environments where the plugin is installed.
"""

import hashlib
import os
import warnings
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Union

import numpy
import srsly
from spacy import util
from spacy.attrs import SENT_START
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from .growth import Anchor, check_tasks, copy_weights, freeze_levels, load_source
from .model import attach_network, get_torch_network

DEFAULT_JMT_MODEL = """
[model]
@architectures = "spacy-jmt.JMTModel.v1"
hidden_width = 256
label_embedding_width = 32
shortcut_connections = true
dropout = 0.2
arc_width = 256
label_width = 64

[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 128
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false

[model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 128
depth = 2
window_size = 1
maxout_pieces = 3
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_JMT_MODEL)["model"]

# The syntactic hierarchy of JMT: tags at the bottom, chunks above, dependencies on top.
DEFAULT_TASKS: Dict[str, Dict[str, Any]] = {
    "sents": {"kind": "tagging", "attr": "SENT_START", "level": 0, "weight": 0.5},
    "tag": {"kind": "tagging", "attr": "TAG", "level": 1},
    "pos": {"kind": "tagging", "attr": "POS", "level": 1},
    "chunks": {"kind": "chunking", "level": 2},
    "dep": {"kind": "parsing", "level": 3},
}


@Language.factory(
    "jmt",
    assigns=["token.tag", "token.pos", "token.head", "token.dep", "token.is_sent_start",
             "doc.spans", "doc.ents", "doc._.relations", "doc.cats", "doc._.relatedness"],
    default_config={
        "model": DEFAULT_MODEL,
        "tasks": None,
        "overwrite": False,
        "max_sentence_length": 256,
        "successive_regularization": 0.0,
        "successive_regularization_interval": 0,
        "frozen_levels": 0,
        "scorer": {"@scorers": "spacy-jmt.jmt_scorer.v1"},
    },
    default_score_weights={
        "tag_acc": 0.2,
        "pos_acc": 0.2,
        "dep_uas": 0.1,
        "dep_las": 0.2,
        "chunks_f": 0.2,
        "sents_f": 0.1,
        "noun_chunks_f": 0.0,
        "dep_las_per_type": None,
        "chunks_per_type": None,
    },
)  # fmt: skip
def make_jmt(
    nlp: Language,
    name: str,
    model: Model,
    tasks: Optional[Dict[str, Dict[str, Any]]],
    overwrite: bool,
    max_sentence_length: int,
    successive_regularization: float,
    successive_regularization_interval: int,
    frozen_levels: int,
    scorer: Optional[Callable],
) -> "JMT":
    """Create a `jmt` component.

    model (Model): A model from `spacy-jmt.JMTModel.v1`.
    tasks (Optional[Dict[str, Dict[str, Any]]]): Per task name: "kind" (tagging, chunking,
        parsing), "level" (1 = lowest), "depth" (own BiLSTM layers), "weight" (loss weight)
        and the kind's own settings. None: the syntactic hierarchy of DEFAULT_TASKS. (A dict
        default would be merged into every user config, so tasks could not be left out.)
    overwrite (bool): Whether to overwrite annotation already on the doc.
    max_sentence_length (int): Sentences are found first (the doc's own, else those of a
        level-0 SENT_START task, else the doc is one sentence); longer ones are cut into
        windows of this many tokens, each with its own tree. Bounds time and memory per
        sentence (arc scores are quadratic in sentence length).
    successive_regularization (float): Strength of JMT's successive regularization: the
        squared drift of the anchored parameters from their values at the anchor is added
        to the loss. Anchored are the tok2vec and the levels; in a pipeline grown from a
        trained one (`grow_from`), the tok2vec and everything it inherited.
    successive_regularization_interval (int): Refresh the anchor every this many updates
        (0: keep the anchor taken at the first update or by `set_anchor`).
    frozen_levels (int): Train without updating the lowest N levels (level 0: the tok2vec;
        level k: the k-th BiLSTM) and the heads of the tasks on them. 0: train everything.
    scorer (Optional[Callable]): The scoring method.
    """
    return JMT(
        nlp.vocab,
        model,
        name,
        tasks=DEFAULT_TASKS if tasks is None else tasks,
        overwrite=overwrite,
        max_sentence_length=max_sentence_length,
        successive_regularization=successive_regularization,
        successive_regularization_interval=successive_regularization_interval,
        frozen_levels=frozen_levels,
        scorer=scorer,
    )


class JMT(TrainablePipe):
    """A hierarchical multi-task component (Hashimoto et al. 2017) for spaCy."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "jmt",
        *,
        tasks: Dict[str, Dict[str, Any]],
        overwrite: bool = False,
        max_sentence_length: int = 256,
        successive_regularization: float = 0.0,
        successive_regularization_interval: int = 0,
        frozen_levels: int = 0,
        scorer: Optional[Callable] = None,
    ) -> None:
        from .tasks import build_tasks

        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {
            "tasks": {key: dict(value) for key, value in tasks.items()},
            "labels": {key: [] for key in tasks},
            "states": {},
            "width_in": None,
            "overwrite": overwrite,
            "max_sentence_length": max_sentence_length,
            "successive_regularization": successive_regularization,
            "successive_regularization_interval": successive_regularization_interval,
            "frozen_levels": frozen_levels,
            "grown_from": None,
        }
        self.tasks = build_tasks(self.cfg["tasks"])
        self.model.attrs["get_segments"] = self._segmenter
        self._anchor: Optional[Anchor] = None
        self._inherited: Optional[Set[str]] = None  # torch parameters copied by grow_from
        self._n_updates = 0
        self._install_noun_chunks()

    # -- labels -----------------------------------------------------------------------------

    @property
    def labels(self) -> Dict[str, List[str]]:
        """RETURNS (Dict[str, List[str]]): The labels of each task."""
        return {task.name: list(task.labels) for task in self.tasks}

    @property
    def label_data(self) -> Dict[str, List[str]]:
        """RETURNS (Dict[str, List[str]]): The labels, for `spacy init labels`."""
        return self.labels

    def add_label(self, label: str, task: Optional[str] = None) -> int:
        """Add a label to a task before initialization.

        label (str): The label.
        task (Optional[str]): The task's name; may be left out if there is one task.
        RETURNS (int): 1 if the label was added, 0 if it was there already.
        """
        if task is None:
            if len(self.tasks) != 1:
                raise ValueError(
                    f"Name the task to add '{label}' to: {[t.name for t in self.tasks]}"
                )
            task = self.tasks[0].name
        if self.is_initialized:
            raise ValueError(Errors.E922.format(name=self.name))
        target = self._task(task)
        if label in target.labels:
            return 0
        target.labels = sorted(target.labels + [label])
        self.cfg["labels"][task] = target.labels
        return 1

    def _task(self, name: str):
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"No task '{name}' in component '{self.name}'")

    @property
    def is_initialized(self) -> bool:
        return bool(self.model.has_ref("network"))

    # -- inference --------------------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> Dict[str, Dict[str, Any]]:
        """Run the network over a batch of docs.

        docs (Iterable[Doc]): The docs.
        RETURNS (Dict[str, Dict[str, Any]]): The head outputs per task.
        """
        docs = list(docs)
        self._check_initialized()
        if not any(len(doc) for doc in docs):
            return {}
        return self.model.predict(docs)

    def set_annotations(self, docs: Iterable[Doc], outputs: Dict[str, Dict[str, Any]]) -> None:
        """Decode each task's outputs and write them to the docs, lowest level first.

        docs (Iterable[Doc]): The docs.
        outputs (Dict[str, Dict[str, Any]]): The outputs of `predict`.
        """
        docs = list(docs)
        if not outputs:
            return
        for task in self.tasks:
            task.set_annotations(docs, outputs, self.cfg["overwrite"])

    def task_weights(self, docs: Iterable[Doc], batch_size: int = 64) -> Dict[str, Any]:
        """The learned task-to-task weights of the communication graph (model setting
        `communication`): how much each task listened to each other task, token by token.

        docs (Iterable[Doc]): The docs to run the network on (their annotation is not read).
        batch_size (int): Docs per forward pass.
        RETURNS (Dict[str, Any]): "tasks": the nodes (task names, in order); "mean":
            (n_tasks, n_tasks) array, receiver x sender, the weights averaged over all tokens
            (each row of a task that hears anyone sums to 1; zeros where a task may not
            hear another); "per_token": one (len(doc), n_tasks, n_tasks) array per doc;
            "n_tokens": the tokens averaged over.
        """
        graph = get_torch_network(self.model).graph if self.is_initialized else None
        if graph is None:
            raise ValueError(
                f"Component '{self.name}' has no communication between its tasks (model "
                'setting `communication` is "none")'
            )
        names = list(graph.node_level)
        index = {name: i for i, name in enumerate(names)}
        per_token: List[numpy.ndarray] = []
        for batch in util.minibatch(docs, size=batch_size):  # lazily: progress bars advance
            weights = [numpy.zeros((len(doc), len(names), len(names)), "f") for doc in batch]
            outputs = self.predict(batch)
            for receiver, heard in graph.senders.items():
                if "messages" not in outputs.get(receiver, {}):
                    continue
                messages = outputs[receiver]["messages"].numpy()  # (batch, T, n_senders)
                columns = [index[j] for j in heard]
                for b, doc in enumerate(batch):
                    weights[b][:, index[receiver], columns] = messages[b, : len(doc)]
            per_token.extend(weights)
        n_tokens = sum(len(w) for w in per_token)
        total = sum((w.sum(0) for w in per_token), numpy.zeros((len(names), len(names)), "f"))
        mean = total / max(n_tokens, 1)
        return {"tasks": names, "mean": mean, "per_token": per_token, "n_tokens": n_tokens}

    def compare(self, doc_a: Doc, doc_b: Doc) -> Dict[str, Any]:
        """Relatedness and entailment of one sentence pair (see `compare_batch`).

        doc_a (Doc): Sentence A (e.g. `nlp.make_doc(text)`).
        doc_b (Doc): Sentence B.
        RETURNS (Dict[str, Any]): "relatedness" (float on the 1-5 scale), "entailment" (the
            most probable label) and "entailment_probs" (label -> probability); None for
            what the component has no task for.
        """
        return self.compare_batch([(doc_a, doc_b)])[0]

    def compare_batch(
        self, pairs: Iterable[Tuple[Doc, Doc]], batch_size: int = 64
    ) -> List[Dict[str, Any]]:
        """Relatedness and entailment of many sentence pairs, in batches.

        Each pair becomes a new pair doc of the two docs' tokens (`spacy_jmt.pairs.join_pair`:
        no other annotation is read, and the docs are not changed); the component runs on
        these docs as in its doc form (`doc._.relatedness`, `doc.cats`). The network must
        have its own tok2vec: with a tok2vec listener, run the whole pipeline on pair docs
        (`spacy_jmt.pairs.make_pair_doc`) instead.

        pairs (Iterable[Tuple[Doc, Doc]]): (sentence A, sentence B) per pair.
        batch_size (int): Pairs per forward pass.
        RETURNS (List[Dict[str, Any]]): Per pair, as `compare`.
        """
        from .pairs import entailment_probs, get_entailment, join_pair
        from .tasks.pair import PairTask

        tasks = [task for task in self.tasks if isinstance(task, PairTask)]
        if not tasks:
            raise ValueError(
                f"Component '{self.name}' has no relatedness or entailment task to compare "
                "sentence pairs with"
            )
        docs = [join_pair(doc_a, doc_b) for doc_a, doc_b in pairs]
        for batch in util.minibatch(docs, size=batch_size):
            outputs = self.predict(batch)
            for task in tasks:
                task.set_annotations(batch, outputs, True)
        return [
            {
                "relatedness": doc._.relatedness,
                "entailment": get_entailment(doc),
                "entailment_probs": entailment_probs(doc),
            }
            for doc in docs
        ]

    def _segmenter(self, docs: List[Doc], lengths: List[int]) -> Callable:
        """Give the model a function that finds the sentences of a batch once the level-0
        tasks have run: a doc's own sentence boundaries if it has them, else those
        predicted by a level-0 SENT_START task, else the whole doc; cut to windows of at
        most max_sentence_length tokens."""
        splitter = next(
            (t for t in self.tasks if t.level == 0 and getattr(t, "attr", "") == "SENT_START"),
            None,
        )

        def get_segments(outputs: Dict[str, Dict[str, Any]]) -> List[Any]:
            predicted = None
            if splitter is not None and splitter.name in outputs:
                start = splitter.labels.index("S")
                predicted = (outputs[splitter.name]["logits"].argmax(-1) == start).numpy()
            starts = []
            for b, doc in enumerate(docs):
                if doc.has_annotation("SENT_START"):
                    starts.append(doc.to_array(SENT_START).astype("int64") == 1)
                elif predicted is not None:
                    starts.append(predicted[b, : lengths[b]])
                else:
                    starts.append(numpy.zeros(lengths[b], dtype=bool))
            return sentence_segments(starts, self.cfg["max_sentence_length"])

        return get_segments

    # -- training ---------------------------------------------------------------------------

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch: one forward pass over all docs, each task's loss on the
        examples that annotate it, weighted and summed, then one backward pass.

        examples (Iterable[Example]): A batch of examples.
        drop (float): The dropout rate of the tok2vec layers (`[training] dropout`); the
            torch network's own dropout is set in the model config.
        sgd (Optional[Optimizer]): The optimizer.
        losses (Optional[Dict[str, float]]): Accumulates the total loss under the component
            name and each task's under "<component>:<task>".
        RETURNS (Dict[str, float]): The updated losses.
        """
        import torch

        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "JMT.update")
        self._check_initialized()
        if not any(len(eg.predicted) for eg in examples):
            return losses
        for eg in examples:
            copy_gold_sentences(eg)
        set_dropout_rate(self.model, drop)
        outputs, backprop = self.model.begin_update([eg.predicted for eg in examples])
        leaves = {
            name: {k: v.detach().requires_grad_() if torch.is_tensor(v) else v
                   for k, v in out.items()}
            for name, out in outputs.items()
        }  # fmt: skip
        total = None
        for task in self.tasks:
            loss = task.loss(examples, leaves)
            if loss is None:
                continue
            key = f"{self.name}:{task.name}"
            losses[key] = losses.get(key, 0.0) + loss.item()
            total = task.weight * loss if total is None else total + task.weight * loss
        if total is None:
            return losses
        losses[self.name] += total.item()
        total.backward()
        grads = {
            name: {k: v.grad for k, v in out.items() if torch.is_tensor(v) and v.grad is not None}
            for name, out in leaves.items()
        }
        backprop(grads)
        self._successive_regularization()
        if sgd is not None:
            self.finish_update(sgd)
        self._n_updates += 1
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Any) -> Any:
        """The losses are computed per task inside `update`, where the torch graph is."""
        raise NotImplementedError("JMT computes its losses per task inside update()")

    def set_anchor(self) -> None:
        """Take the current values of the anchored parameters (the tok2vec and the levels;
        after `grow_from`, the tok2vec and everything inherited) as the anchor that
        successive regularization pulls towards."""
        self._anchor = Anchor(self.model, self._inherited)

    def _successive_regularization(self) -> None:
        strength = self.cfg["successive_regularization"]
        interval = self.cfg["successive_regularization_interval"]
        if strength <= 0:
            return
        if self._anchor is None or (interval and self._n_updates % interval == 0):
            self.set_anchor()
            return
        self._anchor.add_gradient(strength)

    def drift_penalty(self) -> float:
        """RETURNS (float): The squared L2 distance of the anchored parameters from the
        anchor (0 right after `set_anchor`)."""
        if self._anchor is None:
            self.set_anchor()
        assert self._anchor is not None
        return self._anchor.drift()

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Dict[str, List[str]]] = None,
        grow_from: Optional[str] = None,
    ) -> None:
        """Infer each task's labels from the data (or take them from `labels`), size the
        network and initialize the model.

        get_examples (Callable[[], Iterable[Example]]): Returns a representative sample.
        nlp (Optional[Language]): The pipeline.
        labels (Optional[Dict[str, List[str]]]): Labels per task, e.g. from `spacy init labels`.
        grow_from (Optional[str]): A trained pipeline (directory or package) whose `jmt`
            tasks are all in this config: they keep their labels, learned state and weights
            (tok2vec, levels, heads), and only the new tasks start fresh (spacy_jmt.growth).
        """
        validate_get_examples(get_examples, "JMT.initialize")
        sample = list(islice(get_examples(), 1000))
        source = load_source(grow_from, self.name) if grow_from else None
        labels = dict(labels or {})
        if source is not None:
            check_tasks(source.cfg["tasks"], self.cfg["tasks"])
            labels = {**source.labels, **labels}
        found: Dict[str, set] = {t.name: set(t.labels) for t in self.tasks if t.name not in labels}
        for task in self.tasks:
            task.state.clear()
        for eg in get_examples():  # one pass over the data for all tasks
            for task in self.tasks:
                if task.name in found:
                    found[task.name].update(task.gold_labels(eg))
                task.observe(eg)
        for task in self.tasks:
            task.labels = sorted(
                set(labels[task.name]) if task.name in labels else found[task.name]
            )
            if not task.labels:
                raise ValueError(
                    Errors.E143.format(name=self.name) + f" (task '{task.name}' found no labels)"
                )
            self.cfg["labels"][task.name] = task.labels
        if source is not None:
            for task in self.tasks:
                if task.name in source.cfg["states"]:
                    task.state = source.cfg["states"][task.name]
        self.cfg["states"] = {task.name: task.state for task in self.tasks}
        for task in self.tasks:
            message = task.data_warning()
            if message:
                warnings.warn(message, UserWarning, stacklevel=2)
        docs = [eg.predicted for eg in sample] or [Doc(self.vocab, words=["x"])]
        tok2vec = self.model.get_ref("tok2vec")
        tok2vec.initialize(X=docs)
        self.cfg["width_in"] = tok2vec.get_dim("nO")
        self._build_network()
        self.model.get_ref("network").initialize()
        if source is not None:
            self._inherited = copy_weights(source, self)
            self.cfg["grown_from"] = {"pipeline": str(grow_from), "tasks": sorted(source.labels)}

    def _build_network(self) -> None:
        specs = [task.spec() for task in self.tasks]
        attach_network(self.model, self.cfg["width_in"], specs)
        freeze_levels(self.model, specs, self.cfg["frozen_levels"])
        self._anchor = None

    def _check_initialized(self) -> None:
        if not self.is_initialized:
            raise ValueError(Errors.E109.format(name=self.name))

    def _install_noun_chunks(self) -> None:
        """Make `doc.noun_chunks` yield the NP chunks of the (first) chunking task."""
        from .tasks.spans import ChunkingTask, ChunkNounChunks

        for task in self.tasks:
            if isinstance(task, ChunkingTask) and task.cfg["noun_chunk_label"]:
                current = self.vocab.get_noun_chunks
                if isinstance(current, ChunkNounChunks):
                    current = current.fallback
                self.vocab.get_noun_chunks = ChunkNounChunks(  # type: ignore[assignment]
                    task.key, task.cfg["noun_chunk_label"], current
                )
                return

    # -- serialization ----------------------------------------------------------------------

    def _restore(self, cfg: Dict[str, Any]) -> None:
        from .tasks import build_tasks

        self.cfg.update(cfg)
        self.tasks = build_tasks(self.cfg["tasks"], self.cfg["labels"], self.cfg.get("states"))
        if self.cfg["width_in"] is not None:
            self._build_network()

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "model": lambda: self.model.to_bytes(),
        }
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "JMT":
        try:
            msg = srsly.msgpack_loads(bytes_data)
        except ValueError as err:
            raise ValueError(f"[spacy-jmt] cannot load '{self.name}' from bytes: {err}") from err
        if "cfg" in msg and "cfg" not in exclude:
            self._restore(srsly.json_loads(msg["cfg"]))
        if "vocab" in msg and "vocab" not in exclude:
            self.vocab.from_bytes(msg["vocab"], exclude=exclude)
        if "model" in msg and "model" not in exclude:
            self.model.from_bytes(msg["model"])
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Save the component. The weights are written first and the cfg last, each to a
        temporary file that replaces the old one only when complete, and the cfg records the
        weights' checksum: a save cut off halfway leaves no directory that loads as if it
        were whole (`from_disk` refuses it, naming the file)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        digest = ""
        if "model" not in exclude:
            weights = self.model.to_bytes()
            digest = hashlib.sha256(weights).hexdigest()
            _write_atomic(path / "model", weights)
        if "vocab" not in exclude:
            self.vocab.to_disk(path / "vocab", exclude=exclude)
        if "cfg" not in exclude:
            cfg = {**self.cfg, MODEL_CHECKSUM: digest}
            _write_atomic(path / "cfg", srsly.json_dumps(cfg, indent=2).encode("utf8"))

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "JMT":
        """Load the component; a missing, truncated or mismatched file gets a ValueError
        that names it."""
        path = Path(path)
        expected = ""
        if "cfg" not in exclude:
            cfg = _read_file(path / "cfg", lambda data: srsly.json_loads(data.decode("utf8")))
            expected = cfg.pop(MODEL_CHECKSUM, "")
            self._restore(cfg)
        if "vocab" not in exclude and (path / "vocab").exists():
            self.vocab.from_disk(path / "vocab", exclude=exclude)
        if "model" not in exclude:
            weights = _read_file(path / "model", lambda data: data)
            if expected and hashlib.sha256(weights).hexdigest() != expected:
                raise ValueError(
                    f"[spacy-jmt] {path / 'model'} does not match {path / 'cfg'} (checksum "
                    "differs): the weights are damaged or from another save"
                )
            try:
                self.model.from_bytes(weights)
            except (ValueError, KeyError, TypeError, RuntimeError) as err:  # torch: Runtime
                raise ValueError(
                    f"[spacy-jmt] cannot load the weights in {path / 'model'}: they do not "
                    f"fit the network its cfg describes ({err})"
                ) from err
        return self


MODEL_CHECKSUM = "model_sha256"  # cfg key: the checksum of the saved weights


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temporary file that replaces it only when complete."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as file_:
        file_.write(data)
        file_.flush()
        os.fsync(file_.fileno())
    os.replace(tmp, path)


def _read_file(path: Path, parse: Callable[[bytes], Any]) -> Any:
    """Read and parse a saved file; a missing or unreadable one gets a ValueError naming it."""
    if not path.is_file():
        raise ValueError(
            f"[spacy-jmt] {path} is missing: the pipeline directory is incomplete (an "
            "interrupted save, or files removed)"
        )
    try:
        return parse(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"[spacy-jmt] {path} is damaged: {err}") from err


def copy_gold_sentences(example: Example) -> None:
    """Give a training doc the reference's sentence boundaries, so that the parser is trained
    on gold sentences (predicted docs of an Example carry none)."""
    from .tasks.tagging import aligned_sent_starts, set_sent_starts

    doc = example.predicted
    if doc.has_annotation("SENT_START") or not example.reference.has_annotation("SENT_START"):
        return
    set_sent_starts(doc, numpy.asarray(aligned_sent_starts(example)) == 1)


def sentence_segments(starts: List[numpy.ndarray], max_length: int) -> List[Tuple[int, int, int]]:
    """Turn sentence-start flags per doc into (doc index, start, end) segments of at most
    max_length tokens.

    starts (List[numpy.ndarray]): Per doc, a bool array with True where a sentence starts.
    max_length (int): The longest segment.
    RETURNS (List[Tuple[int, int, int]]): The segments of all docs, in order.
    """
    segments = []
    for b, flags in enumerate(starts):
        n = len(flags)
        bounds = [i for i in range(1, n) if flags[i]] + [n]
        begin = 0
        for end in bounds:
            for s in range(begin, end, max_length):
                segments.append((b, s, min(s + max_length, end)))
            begin = end
    return segments
