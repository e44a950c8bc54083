"""What every task kind provides to the `jmt` component and its network.

A kind is one module of this package with one `Task` subclass, registered in `KINDS`
(spacy_jmt/tasks/__init__.py). It declares its settings and validates them, reads its gold,
builds its torch head (`build_head`), computes its loss, decodes and writes the Doc, and
scores; its class flags tell the network how to wire it. Nothing outside the kind's module
switches on its name. Task modules import torch only inside the methods that need it, so
that building tasks (the component's constructor, the scorer) stays cheap.
"""

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Set, Type

from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab

from ..keys import CORPUS_KEY

if TYPE_CHECKING:
    from torch import Tensor, nn

# Settings every task accepts in the config, with their defaults. "corpora": the names of
# the spacy-jmt.MultiCorpus.v1 corpora the task learns from and is scored on (None: all).
# "write": False makes an auxiliary task, which learns (its loss, and the label embeddings
# it gives the levels above) but writes nothing to the docs and has no scores.
COMMON_SETTINGS: Dict[str, Any] = {
    "kind": None, "level": 1, "depth": 0, "weight": 1.0, "corpora": None, "write": True,
}  # fmt: skip


class Task:
    """A task kind: reads its gold, computes its loss, decodes and writes to the Doc, scores.

    Subclasses set `kind`, `settings` (their own config keys with defaults), the network
    flags below, and implement the methods below. `labels` is the sorted label set the
    network was sized with.

    name (str): The task's name in the config (also its key in losses and outputs).
    cfg (Dict[str, Any]): The task's settings from the config.
    labels (List[str]): The task's labels, if known.
    """

    kind = ""
    # The Doc attributes the kind writes (as in a factory's `assigns`), where a reader of a
    # pipeline needs to know, e.g. which tasks parse.
    assigns: tuple = ()
    settings: Dict[str, Any] = {}
    # Level 0 reads the word representations of the whole doc; levels >= 1 run per sentence.
    min_level = 0
    # Network flags: whether the head gives the levels above a label embedding per token;
    # whether the task is a node of the communication graph; whether it runs on sentence
    # pairs (docs of exactly two sentences) only.
    embeds_labels = False
    communicates = False
    pair_level = False
    # The settings that name another task whose label embeddings this task's head reads
    # (declared dependencies: the other task sits at this level or below and runs first).
    reads_settings: tuple = ()
    # The settings that only decoding reads: a loaded pipeline takes them from the config it
    # is loaded with (`spacy.load(path, config=...)`), not from the saved component.
    inference_settings: tuple = ()

    def __init__(self, name: str, cfg: Dict[str, Any], labels: Optional[List[str]] = None):
        unknown = set(cfg) - set(COMMON_SETTINGS) - set(self.settings)
        if unknown:
            raise ValueError(
                f"Unknown setting(s) {sorted(unknown)} for task '{name}' of kind '{self.kind}'. "
                f"Known: {sorted(set(COMMON_SETTINGS) | set(self.settings))}"
            )
        self.name = name
        self.cfg = {**COMMON_SETTINGS, **self.settings, **cfg}
        if not isinstance(self.cfg["level"], int) or self.cfg["level"] < self.min_level:
            raise ValueError(f"Task '{name}': level must be an integer >= {self.min_level}")
        corpora = self.cfg["corpora"]
        if corpora is not None and (
            isinstance(corpora, str) or not all(isinstance(c, str) for c in corpora)
        ):
            raise ValueError(
                f"Task '{name}': corpora must be a list of corpus names (the keys of "
                f"spacy-jmt.MultiCorpus.v1's paths) or null, got {corpora!r}"
            )
        if not isinstance(self.cfg["write"], bool):
            raise ValueError(f"Task '{name}': write must be true or false, not {cfg['write']!r}")
        self.labels: List[str] = list(labels or [])
        # What the task learns from the data besides its labels (JSON-serializable; saved
        # with the component), e.g. the relation task's argument-type constraints.
        self.state: Dict[str, Any] = {}
        # The component's model, once it has built the network (`bind_model`).
        self._model: Optional[Any] = None

    def require_number(self, key: str, ok: Callable[[float], bool], wanted: str) -> None:
        """RAISES (ValueError): Unless the setting `key` is a number (not a bool) for which
        `ok` holds; the message says it must be `wanted`."""
        value = self.cfg[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
            raise ValueError(f"Task '{self.name}': {key} must be {wanted}, not {value!r}")

    @property
    def reads(self) -> List[str]:
        """RETURNS (List[str]): The tasks whose label embeddings this task's head reads."""
        return [self.cfg[key] for key in self.reads_settings if self.cfg.get(key) is not None]

    def link(self, tasks: Dict[str, "Task"]) -> None:
        """Resolve the other tasks this one reads (by name), once all tasks exist; raise a
        ValueError if one is missing, of the wrong kind or above this one.

        tasks (Dict[str, Task]): Every task of the component, by name.
        """

    def linked(self, tasks: Dict[str, "Task"], setting: str, kind: Type["Task"]) -> Any:
        """RETURNS (Task): The task that the setting names, once checked to be a task of
        class `kind` at this task's level or below (it runs first).

        tasks (Dict[str, Task]): Every task of the component, by name.
        setting (str): The setting that names the other task, e.g. "spans_task".
        kind (Type[Task]): The Task class the other task must be.
        RAISES (ValueError): If the task is missing, of another kind or above this one.
        """
        name = self.cfg[setting]
        target = tasks.get(name)
        if target is None or not isinstance(target, kind):
            found = sorted(n for n, t in tasks.items() if isinstance(t, kind))
            raise ValueError(
                f"Task '{self.name}': {setting} {name!r} is not a {kind.kind} task of this "
                f"component ({kind.kind} tasks: {found})"
            )
        if target.level > self.level:
            raise ValueError(
                f"Task '{self.name}' (level {self.level}) must not sit below its {setting} "
                f"'{name}' (level {target.level})"
            )
        return target

    def owns(self) -> List[str]:
        """RETURNS (List[str]): The Doc attributes that this task writes and that only one
        task of a component may write (e.g. "doc.ents")."""
        return []

    def setup_vocab(self, vocab: Vocab) -> None:
        """Install what the task provides through the vocab (called by the component's
        constructor), e.g. the noun-chunk iterator of a chunking task."""

    @property
    def splits_sentences(self) -> bool:
        """RETURNS (bool): Whether the task predicts sentence starts (`sentence_starts`)."""
        return False

    @property
    def level(self) -> int:
        return self.cfg["level"]

    @property
    def weight(self) -> float:
        return self.cfg["weight"]

    @property
    def writes(self) -> bool:
        """RETURNS (bool): Whether the task writes its predictions to the docs and is scored
        (the setting `write`); an auxiliary task only trains the network."""
        return self.cfg["write"]

    @property
    def n_outputs(self) -> int:
        """RETURNS (int): Width of the head's output layer."""
        return len(self.labels)

    def spec(self) -> Dict[str, Any]:
        """RETURNS (Dict[str, Any]): What the torch network needs to wire this task in."""
        return {
            "name": self.name,
            "level": self.level,
            "embeds_labels": self.embeds_labels,
            "communicates": self.communicates,
            "pair_level": self.pair_level,
            "reads": self.reads,
            "build_head": self.build_head,
        }

    def build_head(self, width_in: int, sizes: Dict[str, Any]) -> "nn.Module":
        """Build the task's torch head (spacy_jmt.heads).

        width_in (int): Width of the level the task reads.
        sizes (Dict[str, Any]): The network's sizes: "width" (of the levels),
            "label_embedding_width", "dropout", "arc_width", "label_width".
        RETURNS (nn.Module): The head, called as `head(H, packing, inputs)`.
        """
        raise NotImplementedError

    def bind_model(self, model: Any) -> None:
        """Know the component's model, whose network holds the task's head (`head`)."""
        self._model = model

    @property
    def head(self) -> Optional["nn.Module"]:
        """RETURNS (Optional[nn.Module]): The task's torch head in the component's network,
        for kinds that score with it after the forward pass (None before `bind_model`);
        without gradients (decoding), the head of the network that predicts, which is the
        int8 copy where the component quantizes."""
        import torch

        from ..model import get_inference_network, get_torch_network

        if self._model is None or not self._model.has_ref("network"):
            return None
        get = get_torch_network if torch.is_grad_enabled() else get_inference_network
        return get(self._model).heads[self.name]

    def learns_from(self, example: Example) -> bool:
        """RETURNS (bool): Whether the task learns from and is scored on the example: with
        the setting `corpora`, only the examples of those MultiCorpus corpora (and those of
        other readers, which name no corpus). E.g. EWT's XPOS tags and CoNLL-2000's, which
        a tagger assigned with other conventions, need not train one head."""
        corpora = self.cfg["corpora"]
        corpus = example.reference.user_data.get(CORPUS_KEY)
        return corpora is None or corpus is None or corpus in corpora

    def visible(self, examples: List[Example]) -> List[Example]:
        """RETURNS (List[Example]): The examples as the task learns from them: those it does
        not learn from (`learns_from`) with a reference that annotates nothing, so that the
        kind treats them as it treats any corpus that lacks its annotation."""
        if self.cfg["corpora"] is None:
            return examples
        return [eg if self.learns_from(eg) else unannotated(eg) for eg in examples]

    def gold_labels(self, example: Example) -> Iterable[str]:
        """RETURNS (Iterable[str]): The labels this example's reference annotates."""
        raise NotImplementedError

    def observe(self, example: Example) -> None:
        """Learn `state` from one training example (called during `initialize`)."""

    def prune_labels(self, found: Set[str]) -> Set[str]:
        """RETURNS (Set[str]): The labels to learn of those found in the data (called at
        `initialize`, after every example was observed; labels given in the config or by
        `spacy init labels` are taken as they are)."""
        return found

    def data_warning(self) -> Optional[str]:
        """RETURNS (Optional[str]): What the task found in the data it observed and cannot
        learn (the component warns with it after `initialize`), or None."""
        return None

    def loss(
        self, examples: List[Example], outputs: Dict[str, Dict[str, Any]]
    ) -> Optional["Tensor"]:
        """The task's mean loss over the annotated items of the batch, or None if the batch
        annotates nothing for this task (missing annotation gives no loss).

        examples (List[Example]): The batch.
        outputs (Dict[str, Dict[str, Any]]): Every head's outputs for the batch (torch
            tensors); this task's own are `outputs[self.name]`, those of the tasks it
            reads are there too.
        RETURNS (Optional[torch.Tensor]): A scalar tensor.
        """
        raise NotImplementedError

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        """Decode the head's outputs (`outputs[self.name]`) and write them to the docs. Tasks
        run lowest level first, so a task may read what the tasks below it wrote."""
        raise NotImplementedError

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        """RETURNS (Dict[str, Any]): The task's scores, for `spacy train` and `spacy evaluate`."""
        raise NotImplementedError


def unannotated(example: Example) -> Example:
    """RETURNS (Example): The example with a reference of the same words and no annotation."""
    ref = example.reference
    blank = Doc(ref.vocab, words=[t.text for t in ref], spaces=[bool(t.whitespace_) for t in ref])
    return Example(example.predicted, blank)
