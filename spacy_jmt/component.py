"""The `jmt` pipeline component: one hierarchical multi-task network, many Doc attributes.

The component orchestrates: the task kinds (spacy_jmt/tasks/) read gold, compute losses,
decode and score; the model (spacy_jmt/model.py) runs the network; segmentation, the pair
API, the communication weights, growth and serialization live in modules of their own. This
module imports neither torch nor the task kinds at import time, so that `spacy.blank()`
stays cheap in environments where the plugin is installed.
"""

import warnings
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Union

from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from . import serialization
from .embed import WordCounts
from .growth import SuccessiveRegularization, check_tasks, copy_weights, freeze_levels, load_source
from .layers import LOG_VARIANCES
from .model import attach_network, get_torch_network
from .quantize import quantize_maxouts
from .segmentation import Segmenter, copy_gold_sentences

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


INIT_DOCS = 16  # docs the tok2vec is initialized on


@Language.factory(
    "jmt",
    assigns=["token.tag", "token.pos", "token.morph", "token.lemma", "token.head", "token.dep",
             "token.is_sent_start", "doc.spans", "doc.ents", "doc._.relations", "doc.cats",
             "doc._.relatedness"],
    default_config={
        "model": DEFAULT_MODEL,
        "tasks": None,
        "overwrite": False,
        "max_sentence_length": 256,
        "successive_regularization": 0.0,
        "successive_regularization_interval": 0,
        "frozen_levels": 0,
        "quantize": False,
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
    quantize: bool,
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
    quantize (bool): Predict with int8 weights in the network's LSTMs and linear layers
        (torch's dynamic quantization, on the CPU): faster, with the same accuracy on the
        syntax pipeline (README, fifteenth session). Training always runs in float32. An inference
        setting: `spacy.load(path, config={"components": {"jmt": {"quantize": False}}})`
        switches it off for a trained pipeline.
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
        quantize=quantize,
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
        quantize: bool = False,
        scorer: Optional[Callable] = None,
    ) -> None:
        from .tasks import build_tasks

        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.quantize = quantize  # not in cfg: an inference setting, not learned state
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
        self._inherited: Optional[Set[str]] = None  # torch parameters copied by grow_from
        self._regularization = SuccessiveRegularization(
            successive_regularization, successive_regularization_interval
        )
        self._set_tasks(build_tasks(self.cfg["tasks"]))

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
            if task.writes:
                task.set_annotations(docs, outputs, self.cfg["overwrite"])

    def task_weights(self, docs: Iterable[Doc], batch_size: int = 64) -> Dict[str, Any]:
        """The learned task-to-task weights of the communication graph (model setting
        `communication`), averaged over the docs and per token (spacy_jmt.heatmap)."""
        from .heatmap import task_weights

        return task_weights(self, docs, batch_size)

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
        """Relatedness and entailment of many sentence pairs, in batches of `batch_size`
        (spacy_jmt.pairs.compare_pairs). RETURNS (List[Dict[str, Any]]): Per pair, as
        `compare`."""
        from .pairs import compare_pairs

        return compare_pairs(self, pairs, batch_size)

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
        log_variances = leaves.get(LOG_VARIANCES, {})  # loss_weights = "uncertainty"
        total = None
        for task in self.tasks:
            loss = task.loss(task.visible(examples), leaves)
            if loss is None:
                continue
            key = f"{self.name}:{task.name}"
            losses[key] = losses.get(key, 0.0) + loss.item()
            if task.name in log_variances:  # Kendall et al. 2018
                s = log_variances[task.name][0]
                loss = torch.exp(-s) * loss + s / 2
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
        self._regularization.step(self.model, self._inherited)
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def loss_weights(self) -> Dict[str, float]:
        """The loss weights learned with the model setting `loss_weights = "uncertainty"`.

        RETURNS (Dict[str, float]): Task name -> exp(-s), the factor on its loss (before
            its configured "weight"); empty with fixed weights.
        """
        self._check_initialized()
        learned = get_torch_network(self.model).log_variances
        if learned is None:
            return {}
        return {name: float(s.detach()[0].neg().exp()) for name, s in learned.items()}

    def get_loss(self, examples: Iterable[Example], scores: Any) -> Any:
        """The losses are computed per task inside `update`, where the torch graph is."""
        raise NotImplementedError("JMT computes its losses per task inside update()")

    def set_anchor(self) -> None:
        """Take the current values of the anchored parameters (the tok2vec and the levels;
        after `grow_from`, the tok2vec and everything inherited) as the anchor that
        successive regularization pulls towards."""
        self._regularization.set_anchor(self.model, self._inherited)

    def drift_penalty(self) -> float:
        """RETURNS (float): The squared L2 distance of the anchored parameters from the
        anchor (0 right after `set_anchor`)."""
        return self._regularization.drift(self.model, self._inherited)

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
        sample = list(islice(get_examples(), INIT_DOCS))
        source = load_source(grow_from, self.name) if grow_from else None
        labels = dict(labels or {})
        if source is not None:
            check_tasks(source.cfg["tasks"], self.cfg["tasks"])
            labels = {**source.labels, **labels}
        found: Dict[str, set] = {t.name: set(t.labels) for t in self.tasks if t.name not in labels}
        for task in self.tasks:
            task.state.clear()
        word_counts = WordCounts(self.model.get_ref("tok2vec"))
        for eg in get_examples():  # one pass over the data for all tasks
            word_counts.add(eg.predicted)
            for task in self.tasks:
                if not task.learns_from(eg):
                    continue
                if task.name in found:
                    found[task.name].update(task.gold_labels(eg))
                task.observe(eg)
        for task in self.tasks:
            task.labels = sorted(
                set(labels[task.name])
                if task.name in labels
                else task.prune_labels(found[task.name])
            )
            if not task.labels:
                where = f" in the corpora {task.cfg['corpora']}" if task.cfg["corpora"] else ""
                raise ValueError(
                    Errors.E143.format(name=self.name)
                    + f" (task '{task.name}' found no labels{where})"
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
        # A few docs are enough for the tok2vec to infer its sizes; initializing runs it on
        # them, so LitBank's 2,000-token documents x 1,000 took 5 GB.
        docs = [eg.predicted for eg in sample] or [Doc(self.vocab, words=["x"])]
        tok2vec = self.model.get_ref("tok2vec")
        tok2vec.initialize(X=docs)
        word_counts.save()
        self.cfg["width_in"] = tok2vec.get_dim("nO")
        self._build_network()
        self.model.get_ref("network").initialize()
        if source is not None:
            self._inherited = copy_weights(source, self)
            self.cfg["grown_from"] = {"pipeline": str(grow_from), "tasks": sorted(source.labels)}

    def _build_network(self) -> None:
        specs = [task.spec() for task in self.tasks]
        attach_network(self.model, self.cfg["width_in"], specs)
        self.model.get_ref("network").shims[0].quantize = self.quantize
        quantize_maxouts(self.model.get_ref("tok2vec"), self.quantize)
        freeze_levels(self.model, specs, self.cfg["frozen_levels"])
        self._regularization.anchor = None

    def _set_tasks(self, tasks: List[Any]) -> None:
        """Use these tasks: the model finds the sentences with their splitter, and each task
        installs what it provides through the vocab (e.g. `doc.noun_chunks`)."""
        self.tasks = tasks
        self.model.attrs["get_segments"] = Segmenter(tasks, self.cfg["max_sentence_length"])
        for task in tasks:
            task.bind_model(self.model)
            task.setup_vocab(self.vocab)

    def _check_initialized(self) -> None:
        if not self.is_initialized:
            raise ValueError(Errors.E109.format(name=self.name))

    # -- serialization (spacy_jmt.serialization) -------------------------------------------

    def _restore(self, cfg: Dict[str, Any]) -> None:
        """Rebuild the tasks (and the network, if it was built) from a saved cfg; a task's
        inference settings keep the values this component was created with."""
        from .tasks import KINDS, build_tasks

        for name, settings in cfg["tasks"].items():
            given = self.cfg["tasks"].get(name, {})
            kind = KINDS.get(settings.get("kind"))
            for key in getattr(kind, "inference_settings", ()):
                if key in given:
                    settings[key] = given[key]
        self.cfg.update(cfg)
        self._set_tasks(build_tasks(self.cfg["tasks"], self.cfg["labels"], self.cfg.get("states")))
        if self.cfg["width_in"] is not None:
            self._build_network()

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return serialization.to_bytes(self, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "JMT":
        serialization.from_bytes(self, bytes_data, exclude, self._restore)
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Save the component; a save cut off halfway leaves no directory that loads as if
        it were whole (spacy_jmt.serialization)."""
        serialization.to_disk(self, path, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "JMT":
        """Load the component; a missing, truncated or mismatched file gets a ValueError
        that names it."""
        serialization.from_disk(self, path, exclude, self._restore)
        return self
